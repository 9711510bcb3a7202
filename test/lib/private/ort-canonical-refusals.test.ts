/**
 * What the canonicaliser refuses rather than rewrite: heads whose strings are not NUL-terminated,
 * whose objects overlap, or whose maps hold a key twice. Each file is a canonical file with one
 * string of its head altered, so that everything else still reads.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { canonicalOrtModel, readOrtResolver } from '../../../lib/private/ort-canonical';
import { dynamicQuantMatMulModel } from '../../../tools/onnx';
import { tempDir, writeModel } from '../../support/handler';

const ORT_DIR = path.dirname(require.resolve('onnxruntime-node/package.json'));

/** onnxruntime's own ORT format bytes for `onnxFile`, written in a new process. */
function convert(onnxFile: string): Buffer {
  const target = path.join(tempDir(), 'model.ort');
  const script = `require(process.env.ORT_DIR).InferenceSession.create(process.env.SOURCE, {
    graphOptimizationLevel: 'basic', optimizedModelFilePath: process.env.TARGET, logSeverityLevel: 3,
    extra: { session: { save_model_format: 'ORT' } },
  }).then((s) => s.release());`;
  const r = spawnSync(process.execPath, ['-e', script], {
    env: { ...process.env, ORT_DIR, SOURCE: onnxFile, TARGET: target, ORT_DISABLE_TELEMETRY: '1' },
    encoding: 'utf8',
  });
  expect(r.status, r.stderr).toBe(0);
  return fs.readFileSync(target);
}

/** Where the string `value` (its 4-byte length, then its bytes) lies in the head of `model`: once. */
function stringAt(model: Buffer, value: string): number {
  const { modelArea } = readOrtResolver(model);
  const encoded = Buffer.alloc(4 + value.length);
  encoded.writeUInt32LE(value.length, 0);
  encoded.write(value, 4, 'utf8');
  const head = model.subarray(0, modelArea);
  const at = head.indexOf(encoded);
  expect(at, `"${value}" in the head`).toBeGreaterThanOrEqual(8);
  expect(head.indexOf(encoded, at + 1), `"${value}" once in the head`).toBe(-1);
  return at;
}

describe('a canonical head, altered', () => {
  let canonical: Buffer;
  let kernelTypeStrs: string[];
  beforeAll(() => {
    canonical = canonicalOrtModel(convert(writeModel(dynamicQuantMatMulModel().bytes)));
    kernelTypeStrs = [...new Set(readOrtResolver(canonical).ops.flatMap((op) => op.kernelTypeStrs.map((k) => k.name)))].sort();
  });

  it('is refused where a string of it does not end in NUL', () => {
    const name = kernelTypeStrs[0];
    const altered = Buffer.from(canonical);
    altered[stringAt(canonical, name) + 4 + name.length] = 0x41;
    expect(() => canonicalOrtModel(altered)).toThrow(/is not NUL-terminated/);
  });

  it('is refused where a string of it runs into the next object', () => {
    // Strings lie last in the head, sorted, each once: the first one's next neighbour is a string
    // whose length (under 2^24) ends in a zero byte, which the longer string then ends at.
    const [first, second] = kernelTypeStrs;
    const at = stringAt(canonical, first);
    const next = stringAt(canonical, second);
    expect(next).toBeGreaterThan(at);
    const altered = Buffer.from(canonical);
    altered.writeUInt32LE(next + 3 - (at + 4), at);
    expect(altered[next + 3]).toBe(0);
    expect(() => canonicalOrtModel(altered)).toThrow(/objects overlap at \d+/);
  });

  it('is refused where an operator holds a kernel type string twice', () => {
    // Two names of one length that one operator both has: made the same string, they are one key twice.
    const op = readOrtResolver(canonical).ops.find((o) => {
      const names = o.kernelTypeStrs.map((k) => k.name);
      return names.some((a, i) => names.some((b, j) => i !== j && a.length === b.length));
    });
    expect(op, 'an operator with two kernel type strings of one length').toBeDefined();
    const names = op!.kernelTypeStrs.map((k) => k.name);
    const [a, b] = names.filter((n) => names.some((m) => m !== n && m.length === n.length));
    const altered = Buffer.from(canonical);
    altered.write(b, stringAt(canonical, a) + 4, 'utf8');
    expect(() => canonicalOrtModel(altered)).toThrow(new RegExp(`the key "${b}" is there twice`));
  });
});
