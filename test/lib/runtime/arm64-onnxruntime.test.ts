/**
 * The library's arm64 ONNX Runtime layer, run for real on this x86_64 machine: Debian's arm64 Node.js
 * under qemu-user, `require('onnxruntime-node')` resolved from the extracted layer mounted at /opt (as
 * Lambda mounts layers, through NODE_PATH=/opt/nodejs/node_modules), and /sys/devices/system/cpu hidden
 * in a private mount namespace, as in Lambda's sandbox. Each model's answers are checked against the
 * x86_64 layer's and against plain-JS references; what onnxruntime logs and how long it takes are
 * recorded (under emulation the times only say that it runs, not how fast Graviton is).
 *
 * A second part traces which int8 GEMM kernels onnxruntime runs (`qemu -d in_asm`), with cpuinfo
 * failing and with it working, on an emulated Graviton2 (Neoverse N1) and on a CPU with SVE and i8mm.
 *
 * Needs root, apt and Debian's mirror (scripts/arm64-sysroot.ts installs qemu-user-static and unpacks
 * an arm64 Node.js into a cache in the OS temp folder); without them it fails and says why.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_FEATURES, DEMO_MODEL_FILE, demoModel } from '../../../fixtures/demo-model';
import { builtLayerZip, readManifest } from '../../../lib/runtime/onnxruntime-manifest';
import { extractZip } from '../../../lib/private/zip-reader';
import { type Arm64Sysroot, defaultArm64CacheDir, ensureArm64Sysroot, SYSROOT_LD_LIBRARY_PATH } from '../../../scripts/arm64-sysroot';
import { buildOnnxRuntimeLayers } from '../../../scripts/build-layers';
import { convModel, dynamicQuantMatMulModel, type Matrix, matMulFp32Model, matMulIntegerModel, stringOpsModel } from '../../../tools/onnx';
import { tempDir } from '../../support/handler';

const REPO_ROOT = path.resolve(__dirname, '../../..');
const PROBE_SOURCE = path.join(__dirname, '../..', 'support', 'onnxruntime-probe.cjs');
const MINUTE = 60_000;
/** apt-get update, qemu-user-static and the arm64 packages on a cold cache; seconds when warm. */
const SETUP_TIMEOUT = 20 * MINUTE;
const RECORD_FILE = process.env.CSI_ARM64_RECORD ?? path.join(defaultArm64CacheDir(), 'arm64-onnxruntime-record.json');

/** What Lambda's arm64 launch named (Graviton2); qemu's model has the same ISA features (dot product, no SVE or i8mm). */
const GRAVITON2_CPU = 'neoverse-n1';
/** qemu's `max`: every feature qemu knows, SVE, SVE2, i8mm and bf16 among them (as Graviton3 and 4 have). */
const SVE_I8MM_CPU = 'max';

/**
 * /proc/cpuinfo of a two-vCPU Graviton2 (Neoverse N1, MIDR 0x413fd0c1). Under qemu-user an arm64
 * process reads the host's x86 /proc/cpuinfo, which cpuinfo cannot parse; the control run binds this
 * over it so that cpuinfo, given the sysfs folder too, initialises as it would on a Graviton2 host.
 */
const GRAVITON2_PROC_CPUINFO = [0, 1]
  .map((n) =>
    [
      `processor\t: ${n}`,
      'BogoMIPS\t: 243.75',
      'Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp ssbs',
      'CPU implementer\t: 0x41',
      'CPU architecture: 8',
      'CPU variant\t: 0x3',
      'CPU part\t: 0xd0c',
      'CPU revision\t: 1',
      '',
    ].join('\n'),
  )
  .join('\n');

// ---------------------------------------------------------------------------------------------
// The probe: one process that loads onnxruntime-node from the layer and runs the job's models.

interface Feed {
  readonly type: string;
  readonly dims: readonly number[];
  readonly data: readonly (number | string | boolean)[];
}

interface JobModel {
  readonly name: string;
  readonly file: string;
  readonly feeds: Readonly<Record<string, Feed>>;
  readonly sessionOptions?: Readonly<Record<string, unknown>>;
}

interface ProbeOutput {
  readonly type: string;
  readonly dims: number[];
  readonly data: (number | string | boolean)[];
}

interface ProbeModelResult {
  readonly name: string;
  readonly createMs: number;
  readonly firstRunMs: number;
  readonly secondRunMs: number;
  /** Threads the process gained while the session was created: its intra-op pool (size − 1). */
  readonly sessionThreads: number;
  readonly outputs: Record<string, ProbeOutput>;
}

interface ProbeResult {
  readonly arch: string;
  readonly nodeVersion: string;
  readonly ortVersion: string;
  readonly resolved: string;
  readonly cpus: number;
  readonly availableParallelism: number;
  readonly requireMs: number;
  readonly onnxruntimeMappings: string[];
  readonly models: ProbeModelResult[];
}

interface ProbeRun {
  readonly result: ProbeResult;
  /** What the process wrote to stderr besides the probe's phase markers, by phase (`require`, `create <model>`, ...). */
  readonly messages: Readonly<Record<string, string[]>>;
  /** From spawning to exit, process start (and, under qemu, translation) included. */
  readonly wallMs: number;
}

interface RunOptions {
  /** Run the arm64 layer under qemu with this CPU model; omitted: the x86_64 layer on the host's node. */
  readonly qemuCpu?: string;
  /** Mount an empty read-only tmpfs over /sys/devices/system/cpu, as Lambda's sandbox has none. */
  readonly hideCpuSysfs: boolean;
  /** Bind GRAVITON2_PROC_CPUINFO over /proc/cpuinfo. */
  readonly graviton2ProcCpuinfo?: boolean;
  /** Write qemu's log of translated guest code here. */
  readonly traceFile?: string;
}

/**
 * Inside a private mount namespace: optionally hide the CPU sysfs folder, mount the extracted layer at
 * /opt (where Lambda puts layers), then exec the given command.
 */
const NAMESPACE_SCRIPT = [
  'set -e',
  'if [ "$HIDE_CPU_SYSFS" = 1 ]; then mount -t tmpfs -o ro,size=1k none /sys/devices/system/cpu; fi',
  'if [ -n "$PROC_CPUINFO" ]; then mount --bind "$PROC_CPUINFO" /proc/cpuinfo; fi',
  'mount --bind "$LAYER_DIR" /opt',
  'exec "$@"',
].join('\n');

let work: string;
let sysroot: Arm64Sysroot;
const layerDirs: Record<'x86_64' | 'arm64', string> = { x86_64: '', arm64: '' };
let ortVersion: string;

function runProbe(jobFile: string, options: RunOptions): Promise<ProbeRun> {
  const arch = options.qemuCpu ? 'arm64' : 'x86_64';
  const taskDir = path.join(work, 'task');
  const probe = path.join(taskDir, 'probe.cjs');
  const command = options.qemuCpu
    ? [
        sysroot.qemu,
        '-cpu',
        options.qemuCpu,
        ...(options.traceFile ? ['-d', 'in_asm', '-D', options.traceFile] : []),
        '-L',
        sysroot.root,
        '-E',
        `LD_LIBRARY_PATH=${SYSROOT_LD_LIBRARY_PATH}`,
        '-E',
        'NODE_PATH=/opt/nodejs/node_modules',
        sysroot.node,
        probe,
        jobFile,
      ]
    : [process.execPath, probe, jobFile];
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    NODE_PATH: '/opt/nodejs/node_modules',
    LAYER_DIR: layerDirs[arch],
    HIDE_CPU_SYSFS: options.hideCpuSysfs ? '1' : '0',
    PROC_CPUINFO: options.graviton2ProcCpuinfo ? path.join(work, 'graviton2-proc-cpuinfo') : '',
  };
  const started = Date.now();
  return new Promise((resolve, reject) => {
    execFile(
      'unshare',
      ['-m', 'sh', '-c', NAMESPACE_SCRIPT, 'sh', ...command],
      { env, cwd: taskDir, timeout: 5 * MINUTE, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error) {
          reject(new Error(`The ${arch} probe (${JSON.stringify(options)}) failed: ${error.message}\n${stderr}`));
          return;
        }
        resolve({ result: JSON.parse(stdout) as ProbeResult, messages: messagesByPhase(stderr), wallMs: Date.now() - started });
      },
    );
  });
}

const ANSI_COLOUR = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g');

function messagesByPhase(stderr: string): Record<string, string[]> {
  const messages: Record<string, string[]> = {};
  let phase = 'start';
  for (const raw of stderr.split('\n')) {
    // onnxruntime colours its log lines on a terminal-like stream.
    const line = raw.replace(ANSI_COLOUR, '').trimEnd();
    if (line.startsWith('@@probe ')) {
      phase = line.slice('@@probe '.length);
    } else if (line) {
      messages[phase] = [...(messages[phase] ?? []), line];
    }
  }
  return messages;
}

const allMessages = (run: ProbeRun) => Object.values(run.messages).flat();
/** Lines about CPU detection: cpuinfo's own errors and onnxruntime's warnings about them. */
const CPU_DETECTION_MESSAGE = /cpuinfo|CPU vendor/i;

// ---------------------------------------------------------------------------------------------
// Models, inputs and their plain-JS answers.

const demo = demoModel();
const demoRows = [DEMO_FEATURES, [-0.3, 2.2, 0.1, -1.7]].map((row) => row.map(Math.fround));
const matMulFp32 = matMulFp32Model();
const fp32Input = matMulFp32.sampleInput(9);
const matMulInteger = matMulIntegerModel();
const integerInputs = matMulInteger.sampleInputs(7);
const dynamicQuant = dynamicQuantMatMulModel();
const dynamicQuantInput = dynamicQuant.sampleInput(5);
const conv = convModel();
const convInput = conv.sampleInput();
const strings = stringOpsModel();
const words = ['onnx', 'Lambda', 'graviton', 'ümlaut', '模型', 'runtime42', '', 'x', 'onnx '];

const matrixFeed = (type: string, m: Matrix): Feed => ({ type, dims: [m.rows, m.cols], data: m.values });

/** The Lambda handler's session options: as many intra-op threads as the instance has vCPUs. */
const HANDLER_THREADS = { intraOpNumThreads: 'availableParallelism', interOpNumThreads: 1 };

function writeJob(dir: string): { all: string; int8: string } {
  const file = (name: string, bytes: Uint8Array) => {
    const p = path.join(dir, `${name}.onnx`);
    fs.writeFileSync(p, bytes);
    return p;
  };
  const listed: JobModel[] = [
    { name: 'demo', file: DEMO_MODEL_FILE, feeds: { input: { type: 'float32', dims: [demoRows.length, 4], data: demoRows.flat() } } },
    // The same model again with onnxruntime's default thread pool, to record its size.
    { name: 'demo-default-threads', file: DEMO_MODEL_FILE, feeds: { input: { type: 'float32', dims: [1, 4], data: demoRows[0] } }, sessionOptions: {} },
    { name: 'matmul-fp32', file: file('matmul-fp32', matMulFp32.bytes), feeds: { x: matrixFeed('float32', fp32Input) } },
    {
      name: 'matmul-integer',
      file: file('matmul-integer', matMulInteger.bytes),
      feeds: { a_u8: matrixFeed('uint8', integerInputs.unsigned), a_s8: matrixFeed('int8', integerInputs.signed) },
    },
    { name: 'dynamic-quant-matmul', file: file('dynamic-quant-matmul', dynamicQuant.bytes), feeds: { x: matrixFeed('float32', dynamicQuantInput) } },
    { name: 'conv', file: file('conv', conv.bytes), feeds: { image: { type: 'float32', dims: [1, conv.channels, conv.size, conv.size], data: convInput } } },
    { name: 'strings', file: file('strings', strings.bytes), feeds: { words: { type: 'string', dims: [words.length], data: words } } },
  ];
  const models = listed.map((m) => ({ sessionOptions: HANDLER_THREADS, ...m }));
  const all = path.join(dir, 'job.json');
  fs.writeFileSync(all, JSON.stringify({ models }));
  const int8 = path.join(dir, 'job-int8.json');
  fs.writeFileSync(int8, JSON.stringify({ models: models.filter((m) => m.name === 'matmul-integer') }));
  return { all, int8 };
}

// ---------------------------------------------------------------------------------------------
// Kernel traces: which instruction families of libonnxruntime qemu translated (each address once).

interface KernelTrace {
  /** NEON UDOT/SDOT (Armv8.2 dot product): MLAS's U8X8/S8S8 "Udot"/"Sdot" QGEMM kernels. */
  readonly dotProduct: number;
  /** NEON UMMLA/SMMLA/USMMLA (i8mm): MLAS's "Ummla"/"Smmla" kernels. */
  readonly neonI8mm: number;
  /** SVE UMMLA/SMMLA/USMMLA: MLAS's SVE i8mm kernels. */
  readonly sveI8mm: number;
  /** Any SVE instruction. */
  readonly sve: number;
}

const INSTRUCTION = /^0x([0-9a-f]+):\s+([0-9a-f]{8})\s/;
const matches = (word: number, mask: number, values: readonly number[]) => values.includes((word & mask) >>> 0);

async function kernelTrace(traceFile: string, mappings: readonly string[]): Promise<KernelTrace> {
  const ranges = mappings
    .filter((line) => line.split(/\s+/)[1]?.includes('x'))
    .map(
      (line) =>
        line
          .split(/\s+/)[0]
          .split('-')
          .map((hex) => Number.parseInt(hex, 16)) as [number, number],
    );
  expect(ranges.length, `executable mappings of libonnxruntime in ${mappings.join('; ')}`).toBeGreaterThan(0);
  const seen = { dotProduct: new Set<number>(), neonI8mm: new Set<number>(), sveI8mm: new Set<number>(), sve: new Set<number>() };
  const lines = readline.createInterface({ input: fs.createReadStream(traceFile), crlfDelay: Number.POSITIVE_INFINITY });
  for await (const line of lines) {
    const m = INSTRUCTION.exec(line);
    if (!m) continue;
    const address = Number.parseInt(m[1], 16);
    if (!ranges.some(([start, end]) => address >= start && address < end)) continue;
    const word = Number.parseInt(m[2], 16);
    if (matches(word, 0xbf20fc00, [0x2e809400, 0x0e809400]) || matches(word, 0xbfc0f400, [0x2f80e000, 0x0f80e000])) seen.dotProduct.add(address);
    if (matches(word, 0xffe0fc00, [0x6e80a400, 0x4e80a400, 0x4e80ac00])) seen.neonI8mm.add(address);
    if (matches(word, 0xffe0fc00, [0x45009800, 0x45809800, 0x45c09800])) seen.sveI8mm.add(address);
    // A64's top-level encoding: op0 bits 28..25 = 0b0010 is the SVE space.
    if (((word >>> 25) & 0xf) === 0b0010) seen.sve.add(address);
  }
  return { dotProduct: seen.dotProduct.size, neonI8mm: seen.neonI8mm.size, sveI8mm: seen.sveI8mm.size, sve: seen.sve.size };
}

// ---------------------------------------------------------------------------------------------

function model(run: ProbeRun, name: string): ProbeModelResult {
  const found = run.result.models.find((m) => m.name === name);
  if (!found) throw new Error(`the probe ran no model named ${name}`);
  return found;
}

function expectClose(actual: readonly unknown[], expected: readonly number[], tolerance: number | readonly number[], what: string): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  const worst = expected.reduce<{ i: number; excess: number }>(
    (acc, e, i) => {
      const allowed = typeof tolerance === 'number' ? tolerance : tolerance[i];
      const excess = Math.abs(Number(actual[i]) - e) - allowed;
      return excess > acc.excess ? { i, excess } : acc;
    },
    { i: -1, excess: 0 },
  );
  expect(worst.i, `${what}: element ${worst.i} is ${actual[worst.i]}, expected ${expected[worst.i]}`).toBe(-1);
}

let setupStarted: number;
let x86: ProbeRun;
let arm: ProbeRun;
const record: Record<string, unknown> = {};

beforeAll(async () => {
  setupStarted = Date.now();
  const manifestReady = () => {
    try {
      readManifest();
      return true;
    } catch {
      return false;
    }
  };
  if (!manifestReady()) {
    await buildOnnxRuntimeLayers(path.join(REPO_ROOT, 'assets', 'layers'));
  }
  sysroot = await ensureArm64Sysroot({ log: (line) => console.log(`arm64 sysroot: ${line}`) });

  work = tempDir('csi-arm64-');
  const taskDir = path.join(work, 'task');
  fs.mkdirSync(taskDir);
  // Outside the repository: no node_modules above it, so only NODE_PATH (the layer) can provide onnxruntime-node.
  fs.copyFileSync(PROBE_SOURCE, path.join(taskDir, 'probe.cjs'));
  fs.writeFileSync(path.join(work, 'graviton2-proc-cpuinfo'), GRAVITON2_PROC_CPUINFO);
  const manifest = readManifest();
  ortVersion = manifest.onnxruntimeVersion;
  for (const arch of ['x86_64', 'arm64'] as const) {
    layerDirs[arch] = path.join(work, `layer-${arch}`);
    extractZip(builtLayerZip(manifest.layers[arch], arch), layerDirs[arch]);
  }
  const jobs = writeJob(work);
  record.jobs = jobs;

  [x86, arm] = await Promise.all([runProbe(jobs.all, { hideCpuSysfs: true }), runProbe(jobs.all, { qemuCpu: GRAVITON2_CPU, hideCpuSysfs: true })]);
  Object.assign(record, {
    sysroot: { nodeVersion: sysroot.nodeVersion, cached: sysroot.cached, steps: sysroot.steps },
    setupSeconds: (Date.now() - setupStarted) / 1000,
    x86_64: summarize(x86),
    arm64: summarize(arm),
  });
}, SETUP_TIMEOUT);

afterAll(() => {
  if (Object.keys(record).length === 0) return;
  record.totalSeconds = (Date.now() - setupStarted) / 1000;
  fs.mkdirSync(path.dirname(RECORD_FILE), { recursive: true });
  fs.writeFileSync(RECORD_FILE, `${JSON.stringify(record, null, 2)}\n`);
  console.log(`arm64 onnxruntime record (also in ${RECORD_FILE}):\n${JSON.stringify(record, null, 2)}`);
});

function summarize(run: ProbeRun) {
  return {
    node: run.result.nodeVersion,
    onnxruntime: run.result.ortVersion,
    resolved: run.result.resolved,
    availableParallelism: run.result.availableParallelism,
    wallMs: run.wallMs,
    requireMs: run.result.requireMs,
    models: run.result.models.map(({ name, createMs, firstRunMs, secondRunMs, sessionThreads }) => ({ name, createMs, firstRunMs, secondRunMs, sessionThreads })),
    messages: run.messages,
  };
}

describe('the arm64 layer on an emulated Graviton2, /sys/devices/system/cpu hidden as on Lambda', () => {
  it('loads onnxruntime-node from the layer through NODE_PATH=/opt/nodejs/node_modules, as Lambda does', () => {
    expect(arm.result.arch).toBe('arm64');
    expect(arm.result.ortVersion).toBe(ortVersion);
    expect(arm.result.resolved).toBe('/opt/nodejs/node_modules/onnxruntime-node/dist/index.js');
    expect(arm.result.onnxruntimeMappings.join('\n')).toContain('/opt/nodejs/node_modules/onnxruntime-node/bin/napi-v6/linux/arm64/libonnxruntime.so.1');
    expect(x86.result.arch).toBe('x64');
    expect(x86.result.onnxruntimeMappings.join('\n')).toContain('/opt/nodejs/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1');
  });

  it('logs only CPU-detection messages: cpuinfo cannot initialise on arm64 without the sysfs folder, x86_64 does not mind', () => {
    const unexpected = allMessages(arm).filter((line) => !CPU_DETECTION_MESSAGE.test(line));
    expect(unexpected, 'arm64 stderr lines that are not about CPU detection').toEqual([]);
    // Recorded, not required: a later onnxruntime whose cpuinfo initialises here would pass too.
    record.arm64CpuinfoFailed = allMessages(arm).some((line) => /failed/i.test(line));
    expect(allMessages(x86), 'x86_64 stderr').toEqual([]);
  });

  it('sizes the intra-op pool: the handler asks for every vCPU; onnxruntime alone, without cpuinfo, takes half', () => {
    const { availableParallelism, cpus } = arm.result;
    // The first session also starts threads of its own; the later ones start only their pools.
    for (const m of arm.result.models.slice(2).filter((m) => m.name !== 'demo-default-threads')) {
      expect(m.sessionThreads, `${m.name}: intra-op threads besides the caller's`).toBe(availableParallelism - 1);
    }
    // onnxruntime's default is its count of physical cores; without cpuinfo it guesses two logical
    // processors per core (hardware_concurrency / 2), which a Graviton, without SMT, does not have.
    expect(model(arm, 'demo-default-threads').sessionThreads).toBe(Math.max(1, Math.floor(cpus / 2)) - 1);
  });

  it('answers the demo model as the x86_64 layer and the plain-JS reference do', () => {
    const expected = demo.predict(demoRows).flat();
    const outputs = model(arm, 'demo').outputs;
    expectClose(outputs.probabilities.data, expected, 1e-5, 'arm64 vs plain JS');
    expectClose(outputs.probabilities.data, model(x86, 'demo').outputs.probabilities.data as number[], 1e-6, 'arm64 vs x86_64');
    expect(outputs.label.data).toEqual(demo.predictLabels(demoRows));
    expect(model(arm, 'demo-default-threads').outputs.label.data).toEqual(demo.predictLabels([demoRows[0]]));
  });

  it('answers an FP32 MatMul (SGEMM) as the x86_64 layer and the plain-JS reference do', () => {
    const y = model(arm, 'matmul-fp32').outputs.y;
    expect(y.dims).toEqual([fp32Input.rows, matMulFp32.weights.cols]);
    expectClose(y.data, matMulFp32.predict(fp32Input), 1e-5, 'arm64 vs plain JS');
    expectClose(y.data, model(x86, 'matmul-fp32').outputs.y.data as number[], 1e-5, 'arm64 vs x86_64');
  });

  it('answers int8 MatMulInteger exactly, with uint8 (U8S8) and int8 (S8S8) activations', () => {
    const outputs = model(arm, 'matmul-integer').outputs;
    expect(outputs.y_u8s8.type).toBe('int32');
    expect(outputs.y_u8s8.data).toEqual(matMulInteger.predict(integerInputs.unsigned, matMulInteger.unsignedZeroPoint));
    expect(outputs.y_s8s8.data).toEqual(matMulInteger.predict(integerInputs.signed, matMulInteger.signedZeroPoint));
    expect(outputs).toEqual(model(x86, 'matmul-integer').outputs);
  });

  it('answers a dynamically quantized MatMul (DynamicQuantizeLinear + MatMulInteger) within its quantization error', () => {
    const y = model(arm, 'dynamic-quant-matmul').outputs.y;
    const reference = dynamicQuant.predict(dynamicQuantInput);
    expectClose(
      y.data,
      reference.values,
      reference.bounds.map((b) => b * 1.01 + 1e-6),
      'arm64 vs the float product',
    );
    expectClose(y.data, model(x86, 'dynamic-quant-matmul').outputs.y.data as number[], 1e-5, 'arm64 vs x86_64');
  });

  it('answers a Conv, Relu and depthwise Conv as the x86_64 layer and the plain-JS reference do', () => {
    const y = model(arm, 'conv').outputs.features;
    expect(y.dims).toEqual([1, conv.features, conv.size, conv.size]);
    expectClose(y.data, conv.predict(convInput), 1e-4, 'arm64 vs plain JS');
    expectClose(y.data, model(x86, 'conv').outputs.features.data as number[], 1e-5, 'arm64 vs x86_64');
  });

  it('passes string tensors in and out through string kernels (LabelEncoder, StringConcat, RegexFullMatch, Equal)', () => {
    const outputs = model(arm, 'strings').outputs;
    const expected = strings.predict(words);
    expect(outputs.ids.data).toEqual(expected.ids);
    expect(outputs.tagged.data).toEqual(expected.tagged);
    expect(outputs.matches.data).toEqual(expected.matches);
    expect(outputs.same.data).toEqual(expected.same);
    expect(outputs).toEqual(model(x86, 'strings').outputs);
  });
});

describe('which int8 GEMM kernels onnxruntime picks on arm64 when cpuinfo cannot initialise', () => {
  it(
    'the same as with cpuinfo working: dot product on Graviton2 (Neoverse N1), SVE i8mm where the CPU has it',
    async () => {
      const jobs = record.jobs as { int8: string };
      const traced = async (name: string, options: RunOptions) => {
        const traceFile = path.join(work, `trace-${name}.log`);
        const run = await runProbe(jobs.int8, { ...options, traceFile });
        try {
          const trace = await kernelTrace(traceFile, run.result.onnxruntimeMappings);
          // Right answers whatever the kernel.
          const outputs = model(run, 'matmul-integer').outputs;
          expect(outputs.y_u8s8.data).toEqual(matMulInteger.predict(integerInputs.unsigned, matMulInteger.unsignedZeroPoint));
          expect(outputs.y_s8s8.data).toEqual(matMulInteger.predict(integerInputs.signed, matMulInteger.signedZeroPoint));
          return { run, trace, cpuinfoFailed: allMessages(run).some((line) => CPU_DETECTION_MESSAGE.test(line)) };
        } finally {
          fs.rmSync(traceFile, { force: true });
        }
      };
      const [lambdaLike, control, sveI8mm] = await Promise.all([
        traced('n1-no-sysfs', { qemuCpu: GRAVITON2_CPU, hideCpuSysfs: true }),
        traced('n1-cpuinfo-working', { qemuCpu: GRAVITON2_CPU, hideCpuSysfs: false, graviton2ProcCpuinfo: true }),
        traced('max-no-sysfs', { qemuCpu: SVE_I8MM_CPU, hideCpuSysfs: true }),
      ]);
      record.kernelTraces = Object.fromEntries(
        Object.entries({ lambdaLike, control, sveI8mm }).map(([k, v]) => [
          k,
          { ...v.trace, cpuinfoFailed: v.cpuinfoFailed, sessionThreads: model(v.run, 'matmul-integer').sessionThreads, wallMs: v.run.wallMs },
        ]),
      );

      expect(control.cpuinfoFailed, 'cpuinfo initialises with the sysfs folder and an arm64 /proc/cpuinfo').toBe(false);
      expect(lambdaLike.cpuinfoFailed, 'cpuinfo fails without the sysfs folder').toBe(true);
      // Graviton2 has the dot product (HWCAP_ASIMDDP) and neither i8mm nor SVE: the UDOT/SDOT kernels either way.
      for (const { trace } of [lambdaLike, control]) {
        expect(trace.dotProduct).toBeGreaterThan(0);
        expect(trace.neonI8mm + trace.sveI8mm + trace.sve).toBe(0);
      }
      // With SVE and i8mm (HWCAP2_SVEI8MM), still without cpuinfo: the SVE matrix-multiply kernels.
      expect(sveI8mm.cpuinfoFailed).toBe(true);
      expect(sveI8mm.trace.sveI8mm).toBeGreaterThan(0);
    },
    10 * MINUTE,
  );
});
