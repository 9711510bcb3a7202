import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import * as zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnnxRuntimeLayers } from '../../../scripts/build-layers';
import { logisticRegressionModel } from '../../../tools/onnx';

const execFileAsync = promisify(execFile);

const REPO_ROOT = path.resolve(__dirname, '../../..');
const ORT_NODE_DIR = path.join(REPO_ROOT, 'node_modules', 'onnxruntime-node');
const ORT_COMMON_DIR = path.join(REPO_ROOT, 'node_modules', 'onnxruntime-common');
const MB = 1024 * 1024;

const ARCHES = [
  { arch: 'x86_64', nativeDir: 'linux/x64', otherNativeDir: 'linux/arm64', maxUnzippedBytes: 60 * MB },
  { arch: 'arm64', nativeDir: 'linux/arm64', otherNativeDir: 'linux/x64', maxUnzippedBytes: 40 * MB },
] as const;

interface Manifest {
  onnxruntimeVersion: string;
  layers: Record<string, { file: string; zippedBytes: number; unzippedBytes: number; sha256: string }>;
}

// A zip reader written from the format spec (APPNOTE 4.3), independent of the writer under test.
interface ZipEntry {
  name: string;
  method: number;
  crc32: number;
  compressedSize: number;
  uncompressedSize: number;
  unixMode: number;
  dosTime: number;
  dosDate: number;
  localHeaderOffset: number;
}

function readCentralDirectory(zip: Buffer): ZipEntry[] {
  const eocd = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  expect(eocd, 'end of central directory record').toBeGreaterThan(0);
  const count = zip.readUInt16LE(eocd + 10);
  let p = zip.readUInt32LE(eocd + 16);
  const entries: ZipEntry[] = [];
  for (let i = 0; i < count; i++) {
    expect(zip.readUInt32LE(p), `central directory header ${i}`).toBe(0x02014b50);
    const nameLength = zip.readUInt16LE(p + 28);
    const extraLength = zip.readUInt16LE(p + 30);
    const commentLength = zip.readUInt16LE(p + 32);
    entries.push({
      name: zip.toString('utf8', p + 46, p + 46 + nameLength),
      method: zip.readUInt16LE(p + 10),
      dosTime: zip.readUInt16LE(p + 12),
      dosDate: zip.readUInt16LE(p + 14),
      crc32: zip.readUInt32LE(p + 16),
      compressedSize: zip.readUInt32LE(p + 20),
      uncompressedSize: zip.readUInt32LE(p + 24),
      unixMode: zip.readUInt32LE(p + 38) >>> 16,
      localHeaderOffset: zip.readUInt32LE(p + 42),
    });
    p += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

function entryContent(zip: Buffer, entry: ZipEntry): Buffer {
  const p = entry.localHeaderOffset;
  expect(zip.readUInt32LE(p), `local header of ${entry.name}`).toBe(0x04034b50);
  const start = p + 30 + zip.readUInt16LE(p + 26) + zip.readUInt16LE(p + 28);
  const raw = zip.subarray(start, start + entry.compressedSize);
  const content = entry.method === 8 ? zlib.inflateRawSync(raw) : Buffer.from(raw);
  expect(content.length, `size of ${entry.name}`).toBe(entry.uncompressedSize);
  expect(zlib.crc32(content) >>> 0, `CRC-32 of ${entry.name}`).toBe(entry.crc32);
  return content;
}

function extractZip(zip: Buffer, destination: string): void {
  for (const entry of readCentralDirectory(zip)) {
    const target = path.join(destination, entry.name);
    expect(target.startsWith(destination + path.sep), `${entry.name} stays inside the layer`).toBe(true);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, entryContent(zip, entry), { mode: entry.unixMode & 0o777 });
  }
}

function sha256(content: Buffer): string {
  return createHash('sha256').update(content).digest('hex');
}

function readManifest(dir: string): Manifest {
  return JSON.parse(fs.readFileSync(path.join(dir, 'onnxruntime-layers.json'), 'utf8'));
}

const tmpDirs: string[] = [];
function makeTmpDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tmpDirs.push(dir);
  return dir;
}

let firstBuild: string;
let manifest: Manifest;

beforeAll(async () => {
  firstBuild = makeTmpDir('ort-layers-a-');
  await buildOnnxRuntimeLayers(firstBuild);
  manifest = readManifest(firstBuild);
});

afterAll(() => {
  for (const dir of tmpDirs) {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

describe('manifest', () => {
  it('names the installed onnxruntime-node version', () => {
    const installed = JSON.parse(fs.readFileSync(path.join(ORT_NODE_DIR, 'package.json'), 'utf8')).version;
    expect(manifest.onnxruntimeVersion).toBe(installed);
  });

  it.each(ARCHES)('records the $arch zip as written', ({ arch }) => {
    const layer = manifest.layers[arch];
    expect(layer.file).toBe(`onnxruntime-node-${arch}.zip`);
    const zip = fs.readFileSync(path.join(firstBuild, layer.file));
    expect(layer.zippedBytes).toBe(zip.length);
    expect(layer.sha256).toBe(sha256(zip));
    const extractedBytes = readCentralDirectory(zip).reduce((sum, e) => sum + e.uncompressedSize, 0);
    expect(layer.unzippedBytes).toBe(extractedBytes);
  });

  it.each(ARCHES)('keeps the $arch layer under its size budget', ({ arch, maxUnzippedBytes }) => {
    expect(manifest.layers[arch].unzippedBytes).toBeLessThan(maxUnzippedBytes);
  });
});

describe.each(ARCHES)('$arch zip entries', ({ arch, nativeDir, otherNativeDir }) => {
  let zip: Buffer;
  let entries: ZipEntry[];
  let names: string[];
  beforeAll(() => {
    zip = fs.readFileSync(path.join(firstBuild, `onnxruntime-node-${arch}.zip`));
    entries = readCentralDirectory(zip);
    names = entries.map((e) => e.name);
  });

  it('uses the Lambda Node.js layer layout for exactly the two packages', () => {
    for (const name of names) {
      expect(name).toMatch(/^nodejs\/node_modules\/onnxruntime-(node|common)\/[^/]/);
    }
  });

  it("holds this architecture's two native binaries, byte for byte", () => {
    const binaries = names.filter((n) => n.includes('/bin/'));
    expect(binaries.sort()).toEqual([
      `nodejs/node_modules/onnxruntime-node/bin/napi-v6/${nativeDir}/libonnxruntime.so.1`,
      `nodejs/node_modules/onnxruntime-node/bin/napi-v6/${nativeDir}/onnxruntime_binding.node`,
    ]);
    for (const name of binaries) {
      const installed = fs.readFileSync(path.join(ORT_NODE_DIR, name.replace('nodejs/node_modules/onnxruntime-node/', '')));
      expect(sha256(entryContent(zip, entries.find((e) => e.name === name)!))).toBe(sha256(installed));
    }
  });

  it('leaves out other platforms, GPU providers, install scripts, sources, maps and typings', () => {
    const unwanted = names.filter((n) =>
      [otherNativeDir, 'darwin', 'win32', 'providers', 'cuda', 'tensorrt', 'DirectML', '/script/', '/lib/', '.map', '.d.ts', '.ts'].some((s) => n.includes(s)),
    );
    expect(unwanted).toEqual([]);
  });

  it('holds every runtime JavaScript file of both packages', () => {
    const jsUnder = (dir: string): string[] => fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.js'));
    const expected = [
      ...jsUnder(path.join(ORT_NODE_DIR, 'dist')).map((f) => `nodejs/node_modules/onnxruntime-node/dist/${f}`),
      ...jsUnder(path.join(ORT_COMMON_DIR, 'dist/cjs')).map((f) => `nodejs/node_modules/onnxruntime-common/dist/cjs/${f}`),
      ...jsUnder(path.join(ORT_COMMON_DIR, 'dist/esm')).map((f) => `nodejs/node_modules/onnxruntime-common/dist/esm/${f}`),
    ];
    expect(expected.length).toBeGreaterThan(10);
    expect(names.filter((n) => n.endsWith('.js')).sort()).toEqual(expected.sort());
    expect(names).toEqual(
      expect.arrayContaining([
        'nodejs/node_modules/onnxruntime-node/package.json',
        'nodejs/node_modules/onnxruntime-common/package.json',
        // Module-type markers: without them dist/cjs would load as ES modules ("type": "module" above it).
        'nodejs/node_modules/onnxruntime-common/dist/cjs/package.json',
        'nodejs/node_modules/onnxruntime-common/dist/esm/package.json',
      ]),
    );
  });

  it('carries the MIT licence notice of both packages', () => {
    for (const pkg of ['onnxruntime-node', 'onnxruntime-common']) {
      const licence = entries.find((e) => e.name === `nodejs/node_modules/${pkg}/LICENSE`);
      expect(licence, `${pkg}/LICENSE`).toBeDefined();
      const text = entryContent(zip, licence!).toString('utf8');
      expect(text).toContain('MIT License');
      expect(text).toContain('Copyright (c) Microsoft Corporation');
      expect(text).toContain('The above copyright notice and this permission notice shall be included');
    }
  });

  it('is sorted, with a fixed timestamp and permissions (0755 for shared objects, 0644 otherwise)', () => {
    expect(names).toEqual([...names].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
    const dos19800101 = (0 << 9) | (1 << 5) | 1;
    for (const e of entries) {
      expect({ name: e.name, date: e.dosDate, time: e.dosTime }).toEqual({ name: e.name, date: dos19800101, time: 0 });
      const isSharedObject = e.name.endsWith('.node') || e.name.endsWith('.so.1');
      expect({ name: e.name, mode: e.unixMode }).toEqual({ name: e.name, mode: isSharedObject ? 0o100755 : 0o100644 });
    }
  });
});

describe('determinism and incremental builds', () => {
  it('writes byte-identical zips and manifest on a second, independent build', async () => {
    const secondBuild = makeTmpDir('ort-layers-b-');
    await buildOnnxRuntimeLayers(secondBuild);
    expect(fs.readFileSync(path.join(secondBuild, 'onnxruntime-layers.json'), 'utf8')).toBe(fs.readFileSync(path.join(firstBuild, 'onnxruntime-layers.json'), 'utf8'));
    for (const { arch } of ARCHES) {
      const file = `onnxruntime-node-${arch}.zip`;
      expect(sha256(fs.readFileSync(path.join(secondBuild, file)))).toBe(sha256(fs.readFileSync(path.join(firstBuild, file))));
    }
  });

  it('leaves an up-to-date build alone and rebuilds a damaged zip', async () => {
    const dir = makeTmpDir('ort-layers-c-');
    await buildOnnxRuntimeLayers(dir);
    const zipPath = path.join(dir, 'onnxruntime-node-arm64.zip');
    const past = new Date(2001, 0, 1);
    fs.utimesSync(zipPath, past, past);

    await buildOnnxRuntimeLayers(dir);
    expect(fs.statSync(zipPath).mtimeMs).toBe(past.getTime());

    fs.writeFileSync(zipPath, 'not a zip');
    await buildOnnxRuntimeLayers(dir);
    expect(sha256(fs.readFileSync(zipPath))).toBe(manifest.layers.arm64.sha256);
  });
});

// Loads the layer the way a Lambda Node.js runtime does: extracted to its own folder and found only
// through NODE_PATH, from a process that cannot see this repository's node_modules.
const hostArch = process.platform === 'linux' ? ({ x64: 'x86_64', arm64: 'arm64' } as Record<string, string>)[process.arch] : undefined;

describe.runIf(hostArch !== undefined)('the layer on its own', () => {
  it(`loads onnxruntime-node from NODE_PATH and runs a model (${hostArch} layer)`, async () => {
    const optDir = makeTmpDir('ort-layer-opt-');
    const workDir = makeTmpDir('ort-layer-task-');
    expect(path.relative(REPO_ROOT, workDir).startsWith('..')).toBe(true);
    extractZip(fs.readFileSync(path.join(firstBuild, `onnxruntime-node-${hostArch}.zip`)), optDir);

    const model = logisticRegressionModel({ features: 6, seed: 42 });
    const modelPath = path.join(workDir, 'model.onnx');
    fs.writeFileSync(modelPath, model.bytes);
    const rows = [
      [1, 0, 0, 0, 0, 0],
      [0.5, -0.25, 0.75, -1, 0.125, 0.3],
      [-1, -1, -1, -1, -1, -1],
      [1, 1, 1, 1, 1, 1],
    ];
    const inputName = model.spec.inputs[0].name;
    const outputName = model.spec.outputs[0].name;

    const probe = `
      const fs = require('node:fs');
      const ort = require('onnxruntime-node');
      (async () => {
        const [modelPath, inputName, outputName, rowsJson] = process.argv.slice(2);
        const rows = JSON.parse(rowsJson);
        const session = await ort.InferenceSession.create(modelPath);
        const input = new ort.Tensor('float32', Float32Array.from(rows.flat()), [rows.length, rows[0].length]);
        const output = (await session.run({ [inputName]: input }))[outputName];
        const nativeLibraries = fs.readFileSync('/proc/self/maps', 'utf8').split('\\n')
          .map((line) => line.slice(line.indexOf('/')))
          .filter((file) => file.includes('onnxruntime') && (file.endsWith('.node') || file.includes('.so')));
        console.log(JSON.stringify({
          resolvedNode: require.resolve('onnxruntime-node'),
          resolvedCommon: require.resolve('onnxruntime-common'),
          nativeLibraries: [...new Set(nativeLibraries)],
          dims: output.dims,
          values: Array.from(output.data),
        }));
      })().catch((err) => { console.error(err); process.exit(1); });
    `;
    const probePath = path.join(workDir, 'probe.cjs');
    fs.writeFileSync(probePath, probe);

    const layerModules = path.join(optDir, 'nodejs', 'node_modules');
    const { stdout } = await execFileAsync(process.execPath, [probePath, modelPath, inputName, outputName, JSON.stringify(rows)], {
      cwd: workDir,
      // A clean environment: nothing from this test runner (NODE_OPTIONS, loaders) leaks in.
      // ONNX Runtime 1.30 on Linux keeps a telemetry database under $HOME/.cache unless told not to.
      env: { PATH: process.env.PATH ?? '', HOME: workDir, NODE_PATH: layerModules, ORT_DISABLE_TELEMETRY: '1' },
      timeout: 30_000,
    });
    const result = JSON.parse(stdout);

    expect(result.resolvedNode).toBe(path.join(layerModules, 'onnxruntime-node', 'dist', 'index.js'));
    expect(result.resolvedCommon).toBe(path.join(layerModules, 'onnxruntime-common', 'dist', 'cjs', 'index.js'));
    expect(result.nativeLibraries.sort()).toEqual(
      [
        path.join(layerModules, 'onnxruntime-node', 'bin', 'napi-v6', 'linux', process.arch, 'libonnxruntime.so.1'),
        path.join(layerModules, 'onnxruntime-node', 'bin', 'napi-v6', 'linux', process.arch, 'onnxruntime_binding.node'),
      ].sort(),
    );

    expect(fs.readdirSync(workDir).sort(), 'files written to HOME with ORT_DISABLE_TELEMETRY=1').toEqual(['model.onnx', 'probe.cjs']);

    const expected = model.predict(rows);
    expect(new Set(expected.map((p) => p.toFixed(3))).size, 'the rows give distinct probabilities').toBe(rows.length);
    expect(result.dims).toEqual([rows.length, 1]);
    expect(result.values).toHaveLength(rows.length);
    for (const [i, value] of result.values.entries()) expect(value).toBeCloseTo(expected[i], 5);
  });
});
