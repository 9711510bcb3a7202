/**
 * Dynamic batching: `serve --workers 2` under 64 concurrent clients, the same handler with and
 * without its batcher, in the same run: requests per second, latency and CPU per request, then
 * latency at one offered load below what the unbatched server sustains.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { logisticRegressionModel, mlpModel, mulberry32, writeMatMulModel } from '../tools/onnx';
import { ms, summarize, times } from './lib/stats';
import { autocannon } from './lib/autocannon';
import type { Bench, BenchContext, BenchOutput } from './lib/types';

const CLIENTS = 64;
const WORKERS = 2;
/** The batcher's settings here: up to 16 rows a run (what a memory-bound MatMul takes for little more than one), 2 ms. */
const BATCH_SIZE = 16;
const BATCH_DELAY_MS = 2;
/** The offered load of the latency comparison, as a share of what the better unbatched server sustained. */
const OFFERED_SHARE = 0.7;

interface Variant {
  readonly id: 'unbatched' | 'unbatched-c64' | 'batched';
  readonly label: string;
  readonly args: readonly string[];
}

const VARIANTS: readonly Variant[] = [
  { id: 'unbatched', label: `unbatched, --concurrency ${WORKERS * 4} (the default)`, args: [] },
  { id: 'unbatched-c64', label: `unbatched, --concurrency ${CLIENTS}`, args: ['--concurrency', String(CLIENTS)] },
  {
    id: 'batched',
    label: `batched (--batch-size ${BATCH_SIZE} --batch-delay ${BATCH_DELAY_MS}), --concurrency ${CLIENTS}`,
    args: ['--concurrency', String(CLIENTS), '--batch-size', String(BATCH_SIZE), '--batch-delay', String(BATCH_DELAY_MS)],
  },
];

interface Workload {
  readonly label: string;
  readonly file: string;
  readonly body: string | Buffer;
  readonly headers: Record<string, string>;
  /** Checks one answer against the model's reference. */
  check(response: Response): Promise<void>;
}

interface Measure {
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  /** CPU time of the serve process (all its threads) per answered request, ms. */
  readonly cpuMsPerRequest: number;
}

export const batching: Bench = {
  name: 'batching',
  title: 'Dynamic batching on serve --workers 2',
  async run(ctx: BenchContext): Promise<BenchOutput> {
    const rounds = ctx.quick ? 1 : 3;
    const duration = ctx.quick ? 4 : 8;
    const workloads = makeWorkloads(ctx.tmpDir);
    const results: Record<string, Record<string, Measure[]>> = {};
    const offered: Record<string, { rate: number; baseline: Variant['id']; runs: Record<string, Measure[]> }> = {};
    const rows: string[][] = [];
    const latencyRows: string[][] = [];
    for (const w of workloads) {
      const byVariant: Record<string, Measure[]> = {};
      for (let round = 0; round < rounds; round++) {
        for (const v of round % 2 === 0 ? VARIANTS : [...VARIANTS].reverse()) {
          const m = await measure(ctx, w, v, duration);
          byVariant[v.id] = [...(byVariant[v.id] ?? []), m];
        }
      }
      results[w.label] = byVariant;
      const median = (id: string, f: (m: Measure) => number) => summarize(byVariant[id].map(f)).p50;
      const baseline: Variant['id'] = median('unbatched', (m) => m.rps) >= median('unbatched-c64', (m) => m.rps) ? 'unbatched' : 'unbatched-c64';
      for (const v of VARIANTS) {
        const rel = (f: (m: Measure) => number) => (v.id === baseline ? '1' : times(median(v.id, f) / median(baseline, f)));
        rows.push([
          w.label,
          v.label + (v.id === baseline ? ' (baseline)' : ''),
          `${summarize(byVariant[v.id].map((m) => m.rps)).min.toFixed(0)} / **${median(v.id, (m) => m.rps).toFixed(0)}** / ${summarize(byVariant[v.id].map((m) => m.rps)).max.toFixed(0)}`,
          rel((m) => m.rps),
          `${ms(median(v.id, (m) => m.p50))} / ${ms(median(v.id, (m) => m.p99))}`,
          `${median(v.id, (m) => m.cpuMsPerRequest).toFixed(3)}`,
          rel((m) => m.cpuMsPerRequest),
        ]);
      }
      // The same offered load for both: what the unbatched server sustains, less a margin.
      const rate = Math.max(10, Math.round(median(baseline, (m) => m.rps) * OFFERED_SHARE));
      const fixed: Record<string, Measure[]> = {};
      const pair = VARIANTS.filter((v) => v.id === baseline || v.id === 'batched');
      for (let round = 0; round < rounds; round++) {
        for (const v of round % 2 === 0 ? pair : [...pair].reverse()) {
          const m = await measure(ctx, w, v, duration, rate);
          fixed[v.id] = [...(fixed[v.id] ?? []), m];
        }
      }
      offered[w.label] = { rate, baseline, runs: fixed };
      const fmed = (id: string, f: (m: Measure) => number) => summarize(fixed[id].map(f)).p50;
      latencyRows.push([
        w.label,
        `${rate}`,
        `${ms(fmed(baseline, (m) => m.p50))} / ${ms(fmed(baseline, (m) => m.p99))}`,
        `${ms(fmed('batched', (m) => m.p50))} / ${ms(fmed('batched', (m) => m.p99))}`,
        `${times(fmed('batched', (m) => m.p50) / fmed(baseline, (m) => m.p50))} / ${times(fmed('batched', (m) => m.p99) / fmed(baseline, (m) => m.p99))}`,
        `${fmed(baseline, (m) => m.cpuMsPerRequest).toFixed(3)} / ${fmed('batched', (m) => m.cpuMsPerRequest).toFixed(3)}`,
      ]);
      ctx.log(`batching: ${w.label} done`);
    }
    return {
      method:
        `\`cdk-serverless-inference serve --workers ${WORKERS}\` (the CLI, a fresh process per run, the handler bundle in ${WORKERS} worker ` +
        `threads with one onnxruntime thread each) against autocannon in the bench process with ${CLIENTS} connections, ${duration} s per ` +
        `run after a 1 s warm-up run, ${rounds} run(s) per variant, the variants taking turns. Three variants of the same handler: ` +
        `unbatched at serve's default --concurrency (${WORKERS * 4}, as deployed) and at --concurrency ${CLIENTS}, and batched ` +
        `(--batch-size ${BATCH_SIZE} --batch-delay ${BATCH_DELAY_MS}, --concurrency ${CLIENTS}); the better unbatched one is the baseline. ` +
        "CPU per request is the serve process's CPU time (every thread, /proc/<pid>/stat) over the run, divided by its answers. " +
        `Then the same offered load for the baseline and the batched server (autocannon's overallRate, ${Math.round(OFFERED_SHARE * 100)} % ` +
        "of what the baseline sustained), for latency where neither is saturated. Every answer is checked against the model's reference first.",
      tables: [
        {
          caption: `${CLIENTS} clients as fast as the server answers`,
          columns: ['model', 'server', 'requests/s min / median / max', 'req/s vs baseline', 'latency p50 / p99 (ms, median run)', 'CPU ms per request', 'CPU vs baseline'],
          rows,
        },
        {
          caption: `The same offered load for both (requests/s over ${CLIENTS} connections)`,
          columns: ['model', 'offered req/s', 'baseline p50 / p99 (ms)', 'batched p50 / p99 (ms)', 'batched ÷ baseline p50 / p99', 'CPU ms per request, baseline / batched'],
          rows: latencyRows,
        },
      ],
      notes: [
        'The load generator runs on the same 2 cores as the server, for every variant alike. Latency with a fixed number of ' +
          'connections, as fast as the server answers, is mostly queueing (connections ÷ throughput); the second table compares ' +
          'latency at one load.',
        'The batcher merges only requests a worker has in flight at once: on Lambda Managed Instances that is ' +
          '`maxConcurrencyPerEnvironment` ÷ workers, which the `batching` prop raises to the batch size by default.',
      ],
      data: { clients: CLIENTS, workers: WORKERS, batchSize: BATCH_SIZE, batchDelayMs: BATCH_DELAY_MS, duration, rounds, saturated: results, offered },
    };
  },
};

function makeWorkloads(tmpDir: string): Workload[] {
  // The realistic MatMul: 100 MB of FP32 weights, every one read per run (a matrix-vector product
  // for one row, memory-bound). Binary tensor data in and out: 5,000 floats a row.
  const matmulFile = path.join(tmpDir, 'batching-matmul.onnx');
  const matmul = writeMatMulModel(matmulFile, 100 * 1000 * 1000);
  const x = Float32Array.from(matmul.input);
  const header = Buffer.from(
    JSON.stringify({ inputs: [{ name: 'x', shape: [1, matmul.k], datatype: 'FP32', parameters: { binary_data_size: x.byteLength } }], parameters: { binary_data_output: true } }),
  );
  const matmulBody = Buffer.concat([header, Buffer.from(x.buffer)]);

  const lr = logisticRegressionModel({ features: 100, seed: 1 });
  const lrFile = path.join(tmpDir, 'batching-lr.onnx');
  fs.writeFileSync(lrFile, lr.bytes);
  const random = mulberry32(8);
  const lrRow = Array.from({ length: lr.features }, () => Math.fround(random() * 2 - 1));

  const mlp = mlpModel({ seed: 2 });
  const mlpFile = path.join(tmpDir, 'batching-mlp.onnx');
  fs.writeFileSync(mlpFile, mlp.bytes);
  const mlpRow = [0.5, -1.2, 3.3, 0.7];

  const json = (name: string, row: number[]) => JSON.stringify({ inputs: [{ name, shape: [1, row.length], datatype: 'FP32', data: row }] });
  const checkJson = (output: string, expected: readonly number[], tolerance: number) => async (response: Response) => {
    const answer = (await response.json()) as { outputs?: { name: string; data: number[] }[] };
    const data = answer.outputs?.find((o) => o.name === output)?.data;
    if (response.status !== 200 || data?.length !== expected.length || !data.every((v, i) => Math.abs(v - expected[i]) <= tolerance)) {
      throw new Error(`batching: wrong answer ${JSON.stringify(answer).slice(0, 300)}`);
    }
  };
  return [
    {
      label: `MatMul 100 MB (${matmul.k}×${matmul.n} FP32), 1 row, binary tensors`,
      file: matmulFile,
      body: matmulBody,
      headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) },
      check: async (response) => {
        const bytes = Buffer.from(await response.arrayBuffer());
        const length = Number(response.headers.get('inference-header-content-length'));
        const raw = bytes.subarray(length);
        const y = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
        if (response.status !== 200 || y.length !== matmul.n || !matmul.expected.every((v, i) => Math.abs(v - y[i]) <= 1e-3 * (1 + Math.abs(v)))) {
          throw new Error(`batching: wrong MatMul answer (status ${response.status})`);
        }
      },
    },
    {
      label: 'logistic regression, 100 features, 1 row',
      file: lrFile,
      body: json('features', lrRow),
      headers: { 'content-type': 'application/json' },
      check: checkJson('probability', lr.predict([lrRow]), 1e-5),
    },
    {
      label: `MLP ${mlp.inputs}-${mlp.hidden}-${mlp.classes}, 1 row`,
      file: mlpFile,
      body: json('input', mlpRow),
      headers: { 'content-type': 'application/json' },
      check: checkJson('probabilities', mlp.predict([mlpRow]).flat(), 1e-5),
    },
  ];
}

/** One run of one variant: a fresh serve process, a warm-up, then `duration` s measured. */
async function measure(ctx: BenchContext, w: Workload, v: Variant, duration: number, overallRate?: number): Promise<Measure> {
  const server = await startServe(ctx, w.file, v.args);
  try {
    const url = `${server.url}/v2/models/model/infer`;
    await w.check(await fetch(url, { method: 'POST', headers: w.headers, body: w.body }));
    const options = { url, method: 'POST' as const, headers: w.headers, body: w.body, connections: CLIENTS, ...(overallRate ? { overallRate } : {}) };
    await autocannon({ ...options, duration: 1 });
    const latencies: number[] = [];
    const cpuBefore = cpuMs(server.child.pid!);
    const r = await autocannon({ ...options, duration }).on('response', (_client, status, _bytes, responseMs) => {
      if (status === 200) latencies.push(responseMs);
    });
    const cpu = cpuMs(server.child.pid!) - cpuBefore;
    if (r.non2xx > 0 || r.errors > 0 || r.timeouts > 0) {
      throw new Error(`batching, ${w.label}, ${v.label}: ${r.non2xx} non-2xx answers, ${r.errors} errors, ${r.timeouts} timeouts`);
    }
    const latency = summarize(latencies);
    return { rps: r['2xx'] / r.duration, p50: latency.p50, p99: latency.p99, cpuMsPerRequest: cpu / r['2xx'] };
  } finally {
    await server.stop();
  }
}

/** CPU time of a process, every thread, in ms (utime + stime, in clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** `cdk-serverless-inference serve --workers 2` on a free port, once it says where it serves. */
async function startServe(ctx: BenchContext, model: string, args: readonly string[]): Promise<{ url: string; child: ChildProcess; stop(): Promise<void> }> {
  const bin = path.join(ctx.repoRoot, 'bin', 'cdk-serverless-inference.js');
  const child = spawn(process.execPath, [bin, 'serve', '--model', model, '--port', '0', '--workers', String(WORKERS), '--queue', '1000', '--log-level', 'ERROR', ...args], {
    cwd: ctx.repoRoot,
    env: { ...process.env, POWERTOOLS_METRICS_DISABLED: 'true' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (c) => {
    out += String(c);
  });
  child.stderr!.on('data', (c) => {
    out += String(c);
  });
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start within 120 s:\n${out}`)), 120_000);
    const look = () => {
      const m = /Serving model '[^']*' \(version [^)]*\) at (\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stdout!.on('data', look);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited with code ${code}:\n${out}`));
    });
  });
  return { url, child, stop };
}
