/**
 * What the canonicaliser refuses rather than rewrite: heads whose strings are not NUL-terminated,
 * whose objects overlap, or whose maps hold a key twice. Each file is a canonical file with one
 * string of its head altered, so that everything else still reads.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { canonicalOrtModel, readOrtResolver } from '../../../lib/private/ort-canonical';
import { dynamicQuantMatMulModel } from '../../../tools/onnx';
import { writeModel } from '../../support/handler';
import { convertToOrt } from '../../support/ort-format';

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
    canonical = canonicalOrtModel(convertToOrt(writeModel(dynamicQuantMatMulModel().bytes)));
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
