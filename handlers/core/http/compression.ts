/**
 * Compressed answers, as the request's `Accept-Encoding` asks (gzip or deflate, as Triton's client
 * asks with `response_compression_algorithm`, and httpx, so KServe's client, by default), written
 * within the response limit: the answer is compressed as it is written, never held whole, and given
 * up as soon as its compressed bytes pass the limit.
 */
import * as zlib from 'node:zlib';
import type { ContentCoding } from './events';
import type { JsonSink } from '../protocol/json';

/** Uncompressed bytes deflated at once: what one step holds besides the output so far. */
const SEGMENT_BYTES = 256 * 1024;

/** gzip's header: deflate, no flags, no time, fastest level, OS unknown (RFC 1952). */
const GZIP_HEADER = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 0xff]);
/** zlib's header: deflate, 32 KiB window, fastest level, its check bits (RFC 1950). */
const ZLIB_HEADER = Buffer.from([0x78, 0x01]);
/** A final, empty deflate block (fixed codes): what ends the stream after the flushed segments. */
const FINAL_BLOCK = Buffer.from([0x03, 0x00]);

/**
 * A gzip or zlib (`deflate`) stream written a segment at a time, at zlib's fastest level (on a JSON
 * answer nearly the ratio of the default level in a quarter of the time; binary tensors hardly
 * compress at any level). Each segment is deflated on its own, raw and ending in a sync flush, so
 * that the segments join into one deflate stream; the header, the final block and the checksum
 * (CRC-32 for gzip, Adler-32 for zlib) are written here. Once the output passes `maxBytes`, `write`
 * and `end` answer false and undefined, and nothing more is compressed.
 */
export class BoundedCompressor {
  private readonly parts: Buffer[];
  private bytes: number;
  private pending: string[] = [];
  private pendingChars = 0;
  private inputBytes = 0;
  private check: number;
  private over = false;

  constructor(
    private readonly coding: ContentCoding,
    private readonly maxBytes: number,
  ) {
    const header = coding === 'gzip' ? GZIP_HEADER : ZLIB_HEADER;
    this.parts = [header];
    this.bytes = header.length;
    this.check = coding === 'gzip' ? 0 : 1;
  }

  /** Adds text (UTF-8) or bytes; false once the output has passed the limit. */
  write(data: string | Buffer): boolean {
    if (this.over) return false;
    if (typeof data === 'string') {
      this.pending.push(data);
      this.pendingChars += data.length;
      return this.pendingChars < SEGMENT_BYTES || this.flush();
    }
    if (!this.flush()) return false;
    for (let at = 0; at < data.length; at += SEGMENT_BYTES) {
      if (!this.deflate(data.subarray(at, at + SEGMENT_BYTES))) return false;
    }
    return true;
  }

  /** The whole compressed stream, or undefined when it passed the limit. */
  end(): Buffer | undefined {
    if (!this.flush()) return undefined;
    const trailer = Buffer.alloc(this.coding === 'gzip' ? 8 : 4);
    if (this.coding === 'gzip') {
      trailer.writeUInt32LE(this.check >>> 0, 0);
      trailer.writeUInt32LE(this.inputBytes % 2 ** 32, 4);
    } else {
      trailer.writeUInt32BE(this.check >>> 0, 0);
    }
    this.bytes += FINAL_BLOCK.length + trailer.length;
    if (this.bytes > this.maxBytes) return undefined;
    return Buffer.concat([...this.parts, FINAL_BLOCK, trailer], this.bytes);
  }

  private flush(): boolean {
    if (this.over) return false;
    if (this.pending.length === 0) return true;
    const text = this.pending.length === 1 ? this.pending[0] : this.pending.join('');
    this.pending = [];
    this.pendingChars = 0;
    const data = Buffer.from(text, 'utf8');
    for (let at = 0; at < data.length; at += SEGMENT_BYTES) {
      if (!this.deflate(data.subarray(at, at + SEGMENT_BYTES))) return false;
    }
    return true;
  }

  private deflate(data: Buffer): boolean {
    this.inputBytes += data.length;
    this.check = this.coding === 'gzip' ? crc32(data, this.check) : adler32(data, this.check);
    const out = zlib.deflateRawSync(data, { level: zlib.constants.Z_BEST_SPEED, finishFlush: zlib.constants.Z_SYNC_FLUSH });
    this.parts.push(out);
    this.bytes += out.length;
    this.over = this.bytes > this.maxBytes;
    return !this.over;
  }
}

/** A JSON writer's pieces, compressed as they come (see json.ts's writeJson). */
export class CompressedJsonSink implements JsonSink {
  /** The UTF-8 bytes of the JSON written: the length of a binary answer's JSON header. */
  bytes = 0;

  constructor(private readonly compressor: BoundedCompressor) {}

  write(piece: string, plain: boolean): boolean {
    this.bytes += plain ? piece.length : Buffer.byteLength(piece);
    return this.compressor.write(piece);
  }

  reserve(): boolean {
    return true;
  }
}

/** CRC-32 (gzip's), continued from `crc`: zlib's own where Node has it (20.15 and later). */
function crc32(data: Buffer, crc: number): number {
  if (typeof zlib.crc32 === 'function') return zlib.crc32(data, crc);
  let c = ~crc;
  for (let i = 0; i < data.length; i++) c = CRC32_TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

const CRC32_TABLE = Int32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c;
});

/** Adler-32 (zlib's), continued from `adler`; the sums are reduced every 5552 bytes, as zlib does. */
function adler32(data: Buffer, adler: number): number {
  let a = adler & 0xffff;
  let b = adler >>> 16;
  for (let i = 0; i < data.length; ) {
    const end = Math.min(data.length, i + 5552);
    for (; i < end; i++) {
      a += data[i];
      b += a;
    }
    a %= 65521;
    b %= 65521;
  }
  return ((b << 16) | a) >>> 0;
}
