/**
 * The CRCs S3 keeps as object checksums (CRC32, CRC32C, CRC64NVME), computed per byte range in a
 * worker thread and joined with CRC combination, so that ranges can be checked in whatever order
 * they arrive and the object's checksum needs no second pass over the file.
 *
 * All three are reflected CRCs whose initial value and final XOR are all ones, for which
 * crc(A ‖ B) = crc(A) · x^(8·|B|) mod P ⊕ crc(B) (zlib's crc32_combine). The arithmetic here is
 * zlib's (multmodp, x2nmodp), in BigInt so that one code serves 32 and 64 bits: an object needs a
 * few dozen combinations, not one per byte.
 */
import { Worker } from 'node:worker_threads';

export type CrcAlgorithm = 'CRC32' | 'CRC32C' | 'CRC64NVME';

interface CrcParameters {
  readonly width: number;
  /** The polynomial, bit-reflected. */
  readonly poly: bigint;
}

const PARAMETERS: Record<CrcAlgorithm, CrcParameters> = {
  CRC32: { width: 32, poly: 0xedb88320n },
  CRC32C: { width: 32, poly: 0x82f63b78n },
  CRC64NVME: { width: 64, poly: 0x9a6c9329ac4bc9b5n },
};

/** The algorithms in the order an object's checksum headers are looked at. */
export const CRC_ALGORITHMS: readonly CrcAlgorithm[] = ['CRC64NVME', 'CRC32C', 'CRC32'];

/** a · b mod P, both polynomials in the reflected representation (zlib's multmodp). */
function multModP(a: bigint, b: bigint, p: CrcParameters): bigint {
  let m = 1n << BigInt(p.width - 1);
  let product = 0n;
  for (;;) {
    if (a & m) {
      product ^= b;
      if ((a & (m - 1n)) === 0n) break;
    }
    m >>= 1n;
    b = b & 1n ? (b >> 1n) ^ p.poly : b >> 1n;
  }
  return product;
}

/** x^(2^k) mod P for k = 0..63, per algorithm. */
const POWERS = new Map<CrcAlgorithm, bigint[]>();

function powersOf(algorithm: CrcAlgorithm): bigint[] {
  let table = POWERS.get(algorithm);
  if (!table) {
    const p = PARAMETERS[algorithm];
    table = [1n << BigInt(p.width - 2)];
    for (let k = 1; k < 64; k++) table.push(multModP(table[k - 1], table[k - 1], p));
    POWERS.set(algorithm, table);
  }
  return table;
}

/** x^(8·bytes) mod P (zlib's x2nmodp(bytes, 3)). */
function shiftFor(algorithm: CrcAlgorithm, bytes: number): bigint {
  const p = PARAMETERS[algorithm];
  const table = powersOf(algorithm);
  let result = 1n << BigInt(p.width - 1);
  let n = BigInt(bytes);
  let k = 3;
  while (n > 0n) {
    if (n & 1n) result = multModP(table[k % 64], result, p);
    n >>= 1n;
    k++;
  }
  return result;
}

/** The CRC of A ‖ B from the CRC of A, the CRC of B and B's length. */
export function combineCrc(algorithm: CrcAlgorithm, crcA: bigint, crcB: bigint, bytesB: number): bigint {
  if (bytesB === 0) return crcA;
  return multModP(shiftFor(algorithm, bytesB), crcA, PARAMETERS[algorithm]) ^ crcB;
}

/** The CRC of a few bytes, bit by bit: for the part checksums a composite checksum is taken over. */
export function crcOfBytes(algorithm: CrcAlgorithm, bytes: Uint8Array): bigint {
  const p = PARAMETERS[algorithm];
  const ones = (1n << BigInt(p.width)) - 1n;
  let crc = ones;
  for (const byte of bytes) {
    crc ^= BigInt(byte);
    for (let bit = 0; bit < 8; bit++) crc = crc & 1n ? (crc >> 1n) ^ p.poly : crc >> 1n;
  }
  return crc ^ ones;
}

/** A CRC as S3 writes it in a checksum header: its big-endian bytes, in base64. */
export function crcToBase64(algorithm: CrcAlgorithm, crc: bigint): string {
  return Buffer.from(crcBytes(algorithm, crc)).toString('base64');
}

function crcBytes(algorithm: CrcAlgorithm, crc: bigint): Uint8Array {
  const bytes = new Uint8Array(PARAMETERS[algorithm].width / 8);
  for (let i = bytes.length - 1; i >= 0; i--) {
    bytes[i] = Number(crc & 0xffn);
    crc >>= 8n;
  }
  return bytes;
}

/** A byte range of the object and its CRC; `end` is exclusive. */
export interface CrcSegment {
  readonly start: number;
  readonly end: number;
  readonly crc: bigint;
}

/** The object's full-object checksum from the CRCs of segments that cover it, in any order. */
export function fullObjectCrc(algorithm: CrcAlgorithm, segments: readonly CrcSegment[]): bigint {
  const ordered = [...segments].sort((a, b) => a.start - b.start);
  let crc = crcOfBytes(algorithm, new Uint8Array(0));
  let at = 0;
  for (const s of ordered) {
    if (s.start !== at) throw new Error(`the checksummed ranges leave a gap or overlap at byte ${at}`);
    crc = combineCrc(algorithm, crc, s.crc, s.end - s.start);
    at = s.end;
  }
  return crc;
}

/**
 * A multipart upload's composite checksum (`<base64>-<parts>`): the CRC of its parts' CRCs,
 * concatenated big-endian. `partBytes` is the size of every part but the last.
 */
export function compositeChecksum(algorithm: CrcAlgorithm, segments: readonly CrcSegment[], objectBytes: number, partBytes: number): string {
  const parts = Math.ceil(objectBytes / partBytes);
  const joined = new Uint8Array(parts * (PARAMETERS[algorithm].width / 8));
  for (let part = 0; part < parts; part++) {
    const start = part * partBytes;
    const end = Math.min(objectBytes, start + partBytes);
    const inPart = segments.filter((s) => s.start >= start && s.end <= end);
    const crc = fullObjectCrc(
      algorithm,
      inPart.map((s) => ({ ...s, start: s.start - start, end: s.end - start })),
    );
    joined.set(crcBytes(algorithm, crc), part * crcBytes(algorithm, 0n).length);
  }
  return `${crcToBase64(algorithm, crcOfBytes(algorithm, joined))}-${parts}`;
}

/**
 * Computes the CRC of byte ranges of a file in a worker thread, as the download completes them:
 * the main thread only posts ranges. CRC32 is zlib's native one; CRC32C and CRC64NVME are table
 * code (slice-by-8) at a few hundred MB/s, which on the event loop would stall the download.
 */
export class SegmentCrcs {
  private readonly worker: Worker;
  private readonly segments: CrcSegment[] = [];
  private pending = 0;
  private failure: Error | undefined;
  private waiting: Array<() => void> = [];

  constructor(
    file: string,
    readonly algorithm: CrcAlgorithm,
  ) {
    this.worker = new Worker(SEGMENT_CRC_SOURCE, { eval: true, workerData: { file, algorithm } });
    this.worker.unref();
    this.worker.on('message', (segment: CrcSegment) => {
      this.segments.push(segment);
      this.settle();
    });
    this.worker.on('error', (error: Error) => {
      this.failure = error;
      this.pending = 0;
      this.settle(true);
    });
    this.worker.on('exit', () => {
      this.failure ??= new Error('the checksum thread stopped before it finished');
      this.settle(true);
    });
  }

  /** Queues `[start, end)`, which is in the file from now on. */
  add(start: number, end: number): void {
    if (end <= start) return;
    this.pending += 1;
    this.worker.postMessage({ start, end });
  }

  /** Every queued range's CRC, once all are computed. */
  async all(): Promise<readonly CrcSegment[]> {
    while (this.pending > 0 && !this.failure) await new Promise<void>((resolve) => this.waiting.push(resolve));
    if (this.failure) throw this.failure;
    return this.segments;
  }

  stop(): void {
    this.worker.removeAllListeners('exit');
    void this.worker.terminate();
  }

  private settle(all = false): void {
    if (!all) this.pending -= 1;
    for (const wake of this.waiting.splice(0)) wake();
  }
}

/**
 * The worker: reads each posted range of the file and answers its CRC. The CRC32C and CRC64NVME
 * tables are those of the AWS SDK's Crc32cJs and Crc64NvmeJs (@aws-sdk/checksums), spread to
 * slice-by-8; the SDK's classes cannot be loaded in a thread made from source, which the handler
 * bundle needs (no node_modules on Lambda). test/crc.test.ts checks every algorithm against them.
 */
const SEGMENT_CRC_SOURCE = `
const { openSync, readSync } = require('node:fs');
const zlib = require('node:zlib');
const { parentPort, workerData } = require('node:worker_threads');

function tables32(poly) {
  const t = new Uint32Array(256 * 8);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let j = 0; j < 8; j++) c = c & 1 ? (c >>> 1) ^ poly : c >>> 1;
    t[i] = c >>> 0;
  }
  for (let s = 1; s < 8; s++) for (let i = 0; i < 256; i++) { const p = t[(s - 1) * 256 + i]; t[s * 256 + i] = (p >>> 8) ^ t[p & 255]; }
  return t;
}
function crc32Tables(t) {
  return (crc, b, n) => {
    let c = ~crc >>> 0;
    let i = 0;
    for (; i + 8 <= n; i += 8) {
      c ^= b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24);
      c = t[1792 + (c & 255)] ^ t[1536 + ((c >>> 8) & 255)] ^ t[1280 + ((c >>> 16) & 255)] ^ t[1024 + (c >>> 24)] ^ t[768 + b[i + 4]] ^ t[512 + b[i + 5]] ^ t[256 + b[i + 6]] ^ t[b[i + 7]];
    }
    for (; i < n; i++) c = (c >>> 8) ^ t[(c ^ b[i]) & 255];
    return ~c >>> 0;
  };
}
function crc64Nvme() {
  const t = [];
  for (let slice = 0; slice < 8; slice++) {
    const table = new Uint32Array(512);
    for (let i = 0; i < 256; i++) {
      let crc = BigInt(i);
      for (let j = 0; j < 8 * (slice + 1); j++) crc = crc & 1n ? (crc >> 1n) ^ 0x9a6c9329ac4bc9b5n : crc >> 1n;
      table[i * 2] = Number((crc >> 32n) & 0xffffffffn);
      table[i * 2 + 1] = Number(crc & 0xffffffffn);
    }
    t.push(table);
  }
  const [t0, t1, t2, t3, t4, t5, t6, t7] = t;
  // State: [high 32 bits, low 32 bits] of the register, all ones at the start.
  return (state, data, len) => {
    let crc1 = state[0], crc2 = state[1], i = 0;
    while (i + 8 <= len) {
      const i0 = ((crc2 ^ data[i++]) & 255) << 1, i1 = (((crc2 >>> 8) ^ data[i++]) & 255) << 1;
      const i2 = (((crc2 >>> 16) ^ data[i++]) & 255) << 1, i3 = (((crc2 >>> 24) ^ data[i++]) & 255) << 1;
      const i4 = ((crc1 ^ data[i++]) & 255) << 1, i5 = (((crc1 >>> 8) ^ data[i++]) & 255) << 1;
      const i6 = (((crc1 >>> 16) ^ data[i++]) & 255) << 1, i7 = (((crc1 >>> 24) ^ data[i++]) & 255) << 1;
      crc1 = t7[i0] ^ t6[i1] ^ t5[i2] ^ t4[i3] ^ t3[i4] ^ t2[i5] ^ t1[i6] ^ t0[i7];
      crc2 = t7[i0 + 1] ^ t6[i1 + 1] ^ t5[i2 + 1] ^ t4[i3 + 1] ^ t3[i4 + 1] ^ t2[i5 + 1] ^ t1[i6 + 1] ^ t0[i7 + 1];
    }
    while (i < len) {
      const idx = ((crc2 ^ data[i]) & 255) << 1;
      crc2 = ((crc2 >>> 8) | ((crc1 & 255) << 24)) >>> 0;
      crc1 = (crc1 >>> 8) ^ t0[idx];
      crc2 ^= t0[idx + 1];
      i++;
    }
    state[0] = crc1; state[1] = crc2;
  };
}

const algorithm = workerData.algorithm;
let segment;
if (algorithm === 'CRC64NVME') {
  const update = crc64Nvme();
  segment = (read) => {
    const state = [0xffffffff, 0xffffffff];
    read((b, n) => update(state, b, n));
    return (BigInt((state[0] ^ 0xffffffff) >>> 0) << 32n) | BigInt((state[1] ^ 0xffffffff) >>> 0);
  };
} else {
  const update = algorithm === 'CRC32' && typeof zlib.crc32 === 'function' ? (crc, b, n) => zlib.crc32(b.subarray(0, n), crc) : crc32Tables(tables32(algorithm === 'CRC32' ? 0xedb88320 : 0x82f63b78));
  segment = (read) => {
    let crc = 0;
    read((b, n) => { crc = update(crc, b, n); });
    return BigInt(crc >>> 0);
  };
}

const fd = openSync(workerData.file, 'r');
const buffer = Buffer.allocUnsafe(4 * 1024 * 1024);
parentPort.on('message', ({ start, end }) => {
  const crc = segment((take) => {
    for (let at = start; at < end; ) {
      const read = readSync(fd, buffer, 0, Math.min(buffer.length, end - at), at);
      if (read === 0) throw new Error('the file is shorter than the bytes written to it');
      take(buffer, read);
      at += read;
    }
  });
  parentPort.postMessage({ start, end, crc });
});
`;
