import { gzipSync } from 'node:zlib';

/** A file for {@link tarGz}. */
export interface TarEntry {
  readonly path: string;
  readonly bytes: Uint8Array;
}

/**
 * A gzipped ustar archive of regular files (a SageMaker `model.tar.gz`), byte-for-byte the same
 * for the same entries: fixed modes, owners and times, no directories of its own.
 */
export function tarGz(entries: readonly TarEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const entry of entries) {
    if (Buffer.byteLength(entry.path) > 100) throw new Error(`tar path over 100 bytes: ${entry.path}`);
    const header = Buffer.alloc(512);
    header.write(entry.path, 0, 'utf8');
    header.write('0000644\0', 100);
    header.write('0000000\0', 108);
    header.write('0000000\0', 116);
    header.write(`${entry.bytes.length.toString(8).padStart(11, '0')}\0`, 124);
    header.write('00000000000\0', 136);
    header.write('        ', 148);
    header.write('0', 156);
    header.write('ustar\0', 257);
    header.write('00', 263);
    const checksum = header.reduce((sum, b) => sum + b, 0);
    header.write(`${checksum.toString(8).padStart(6, '0')}\0 `, 148);
    blocks.push(header, Buffer.from(entry.bytes), Buffer.alloc((512 - (entry.bytes.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(blocks), { level: 9 });
}
