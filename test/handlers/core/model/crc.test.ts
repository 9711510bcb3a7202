/**
 * S3's CRC checksums as the S3 fetcher computes them: per range in a worker thread, joined by CRC
 * combination, against the check values of the CRC catalogue and the AWS SDK's own implementations.
 */
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Crc32, Crc32c, Crc64Nvme } from '@aws-sdk/checksums/crc';
import { describe, expect, it } from 'vitest';
import { type CrcAlgorithm, combineCrc, compositeChecksum, crcOfBytes, crcToBase64, fullObjectCrc, SegmentCrcs } from '../../../../handlers/core/model/crc';
import { tempDir } from '../../../support/handler';

const SDK = { CRC32: () => new Crc32(), CRC32C: () => new Crc32c(), CRC64NVME: () => new Crc64Nvme() };
const ALGORITHMS: CrcAlgorithm[] = ['CRC32', 'CRC32C', 'CRC64NVME'];

/** The SDK's checksum of `bytes`, as S3 sends it (base64 of the big-endian value). */
async function sdkChecksum(algorithm: CrcAlgorithm, bytes: Uint8Array): Promise<string> {
  const hash = SDK[algorithm]();
  hash.update(bytes);
  return Buffer.from(await hash.digest()).toString('base64');
}

describe('CRC arithmetic', () => {
  it.each([
    ['CRC32', 0xcbf43926n],
    ['CRC32C', 0xe3069283n],
    ['CRC64NVME', 0xae8b14860a799888n],
  ] as const)('%s of "123456789" is the catalogue check value', (algorithm, check) => {
    expect(crcOfBytes(algorithm, Buffer.from('123456789'))).toBe(check);
  });

  it.each(ALGORITHMS)('%s: combining the CRCs of two pieces gives the CRC of the whole, as the SDK computes it', async (algorithm) => {
    const bytes = randomBytes(3001);
    for (const cut of [0, 1, 7, 1500, 3000, 3001]) {
      const a = crcOfBytes(algorithm, bytes.subarray(0, cut));
      const b = crcOfBytes(algorithm, bytes.subarray(cut));
      expect(crcToBase64(algorithm, combineCrc(algorithm, a, b, bytes.length - cut))).toBe(await sdkChecksum(algorithm, bytes));
    }
  });

  it('a composite checksum is the CRC of the parts’ CRCs, with the part count', async () => {
    const bytes = randomBytes(2500);
    const parts = [bytes.subarray(0, 1000), bytes.subarray(1000, 2000), bytes.subarray(2000)];
    const joined = Buffer.concat(await Promise.all(parts.map(async (p) => Buffer.from(await sdkChecksum('CRC32C', p), 'base64'))));
    const expected = `${await sdkChecksum('CRC32C', joined)}-3`;
    // Segments that do not follow the parts (a part in two pieces, given out of order) still add up.
    const segment = (start: number, end: number) => ({ start, end, crc: crcOfBytes('CRC32C', bytes.subarray(start, end)) });
    expect(compositeChecksum('CRC32C', [segment(2000, 2500), segment(0, 400), segment(1000, 2000), segment(400, 1000)], 2500, 1000)).toBe(expected);
    expect(compositeChecksum('CRC32C', [segment(0, 2500)], 2500, 1000)).not.toBe(expected);
  });

  it('refuses segments that leave a gap', () => {
    expect(() =>
      fullObjectCrc('CRC32', [
        { start: 0, end: 10, crc: 0n },
        { start: 11, end: 20, crc: 0n },
      ]),
    ).toThrow(/gap or overlap at byte 10/);
  });
});

describe('SegmentCrcs, the worker thread', () => {
  it.each(ALGORITHMS)('%s of a 9 MB file in uneven ranges, posted out of order, equals the SDK’s', async (algorithm) => {
    const bytes = randomBytes(9 * 1024 * 1024 + 13);
    const file = path.join(tempDir(), 'object');
    await writeFile(file, bytes);
    const crcs = new SegmentCrcs(file, algorithm);
    try {
      const cuts = [0, 5 * 1024 * 1024 + 1, 5 * 1024 * 1024 + 9, 8 * 1024 * 1024, bytes.length];
      for (let i = cuts.length - 2; i >= 0; i--) crcs.add(cuts[i], cuts[i + 1]);
      const crc = fullObjectCrc(algorithm, await crcs.all());
      expect(crcToBase64(algorithm, crc)).toBe(await sdkChecksum(algorithm, bytes));
    } finally {
      crcs.stop();
    }
  });
});
