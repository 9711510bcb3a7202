/**
 * Sizes: the handler bundle, each ONNX Runtime layer unzipped against the unpruned onnxruntime-node
 * package, and what Lambda's 250 MB of code plus layers leaves for a model in a layer or the code.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { count, mib, times } from './lib/stats';
import type { Bench, BenchContext, BenchOutput } from './lib/types';

/** Function code plus all its layers, unzipped. */
const LAMBDA_UNZIPPED_LIMIT = 262_144_000;

interface LayerManifest {
  readonly onnxruntimeVersion: string;
  readonly layers: Record<string, { file: string; zippedBytes: number; unzippedBytes: number }>;
}

export const sizes: Bench = {
  name: 'sizes',
  title: 'Sizes against the 250 MB limit',
  async run(ctx: BenchContext): Promise<BenchOutput> {
    const root = ctx.repoRoot;
    const handler = treeBytes(path.join(root, 'assets', 'handlers', 'inference'));
    const manifest = JSON.parse(fs.readFileSync(path.join(root, 'assets', 'layers', 'onnxruntime-layers.json'), 'utf8')) as LayerManifest;
    const unpruned = treeBytes(path.join(root, 'node_modules', 'onnxruntime-node')) + treeBytes(path.join(root, 'node_modules', 'onnxruntime-common'));
    const layers = Object.entries(manifest.layers).map(([arch, layer]) => {
      const zip = path.join(root, 'assets', 'layers', layer.file);
      return { arch, zipped: fs.statSync(zip).size, ...zipContents(zip), manifestUnzipped: layer.unzippedBytes };
    });

    const sizeRows = [
      ['inference handler bundle (`assets/handlers/inference`, all files)', count(handler), mib(handler), times(handler / unpruned)],
      ...layers.map((l) => [`OnnxRuntimeLayer ${l.arch}, unzipped (${l.files} files)`, count(l.unzipped), mib(l.unzipped), times(l.unzipped / unpruned)]),
      ...layers.map((l) => [`OnnxRuntimeLayer ${l.arch}, zipped`, count(l.zipped), mib(l.zipped), times(l.zipped / unpruned)]),
      ['baseline: onnxruntime-node + onnxruntime-common in node_modules, unpruned', count(unpruned), mib(unpruned), '1'],
    ];
    const roomRows = layers.map((l) => {
      const room = LAMBDA_UNZIPPED_LIMIT - handler - l.unzipped;
      return [l.arch, count(handler), count(l.unzipped), count(room), mib(room), `${((room / LAMBDA_UNZIPPED_LIMIT) * 100).toFixed(1)} %`];
    });
    const mismatches = layers.filter((l) => l.unzipped !== l.manifestUnzipped);
    return {
      method:
        'Byte counts, not disk blocks: the sum of file sizes under a folder (symlinks not followed), and for a layer the ' +
        "uncompressed sizes in its zip's central directory, read here rather than taken from the layer manifest. Lambda " +
        `counts a function's code plus all its layers, unzipped, against 250 MiB (${count(LAMBDA_UNZIPPED_LIMIT)} bytes). ` +
        'The baseline is what an unpruned install of onnxruntime-node puts in node_modules (binaries for every platform).',
      tables: [
        { caption: 'What ships', columns: ['part', 'bytes', 'MiB', 'vs unpruned package'], rows: sizeRows },
        {
          caption: 'What is left for a model in a layer (LayerModelEndpoint) or in the code (BundledModelEndpoint)',
          columns: ['architecture', 'handler bundle', 'ONNX Runtime layer', 'left for the model (bytes)', 'left (MiB)', 'share of the limit'],
          rows: roomRows,
        },
      ],
      notes: [
        `The unpruned package alone is ${mib(unpruned)}, ${unpruned > LAMBDA_UNZIPPED_LIMIT ? 'over' : 'under'} the limit by itself.`,
        mismatches.length === 0
          ? "Each layer's measured unzipped size equals the one its manifest records (what synth checks)."
          : `The manifest's unzipped size differs from the zip's for ${mismatches.map((l) => `${l.arch} (manifest ${count(l.manifestUnzipped)}, zip ${count(l.unzipped)})`).join(', ')}.`,
      ],
      data: { limit: LAMBDA_UNZIPPED_LIMIT, handler, unpruned, layers, onnxruntimeVersion: manifest.onnxruntimeVersion },
    };
  },
};

function treeBytes(p: string): number {
  const stat = fs.lstatSync(p);
  if (stat.isSymbolicLink()) return 0;
  if (!stat.isDirectory()) return stat.size;
  return fs.readdirSync(p).reduce((total, name) => total + treeBytes(path.join(p, name)), 0);
}

/** Sum of the uncompressed sizes of a zip's files, from its central directory (no zip64: layers are far below 4 GB). */
function zipContents(file: string): { unzipped: number; files: number } {
  const zip = fs.readFileSync(file);
  let end = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 22 - 0xffff); i--) {
    if (zip.readUInt32LE(i) === 0x06054b50) {
      end = i;
      break;
    }
  }
  if (end < 0) throw new Error(`${file}: no end of central directory record`);
  const entries = zip.readUInt16LE(end + 10);
  let offset = zip.readUInt32LE(end + 16);
  let unzipped = 0;
  let files = 0;
  for (let n = 0; n < entries; n++) {
    if (zip.readUInt32LE(offset) !== 0x02014b50) throw new Error(`${file}: bad central directory entry ${n}`);
    const size = zip.readUInt32LE(offset + 24);
    const nameLength = zip.readUInt16LE(offset + 28);
    if (size === 0xffffffff) throw new Error(`${file}: zip64 entries are not read here`);
    if (!zip.toString('utf8', offset + 46, offset + 46 + nameLength).endsWith('/')) {
      unzipped += size;
      files++;
    }
    offset += 46 + nameLength + zip.readUInt16LE(offset + 30) + zip.readUInt16LE(offset + 32);
  }
  return { unzipped, files };
}
