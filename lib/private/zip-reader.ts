import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';

/**
 * A small, strict zip extractor (APPNOTE 6.3) for the library's own layer zips. The package has no
 * runtime dependencies, so it relies on Node built-ins only; anything it does not need (zip64, spanned
 * archives, encryption, symlinks, methods other than stored and deflate) is refused rather than guessed.
 */

export interface ExtractZipOptions {
  /**
   * A `/`-terminated folder inside the zip whose contents land directly in `destDir`. Directory entries
   * above it are skipped; a file outside it is an error.
   */
  readonly stripPrefix?: string;
}

export interface ExtractZipResult {
  /** Regular files written. */
  readonly files: number;
  /** Their total uncompressed size. */
  readonly bytes: number;
}

const EOCD_SIGNATURE = 0x06054b50;
const ZIP64_EOCD_LOCATOR_SIGNATURE = 0x07064b50;
const CENTRAL_HEADER_SIGNATURE = 0x02014b50;
const LOCAL_HEADER_SIGNATURE = 0x04034b50;
const EOCD_SIZE = 22;
const CENTRAL_HEADER_SIZE = 46;
const LOCAL_HEADER_SIZE = 30;
const ZIP64_EXTRA_FIELD_ID = 0x0001;
const FLAG_ENCRYPTED = 0x0001;
const FLAG_UTF8 = 0x0800;
const METHOD_STORED = 0;
const METHOD_DEFLATE = 8;
const HOST_UNIX = 3;
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const DEFAULT_FILE_MODE = 0o644;

interface CentralEntry {
  readonly name: string;
  readonly nameBytes: Buffer;
  readonly method: number;
  readonly crc32: number;
  readonly compressedSize: number;
  readonly uncompressedSize: number;
  readonly localHeaderOffset: number;
  /** Permission bits, or undefined when the zip records none. */
  readonly mode: number | undefined;
  readonly isDirectory: boolean;
}

export function extractZip(zipFile: string, destDir: string, options: ExtractZipOptions = {}): ExtractZipResult {
  const prefix = options.stripPrefix ?? '';
  if (prefix !== '' && (!prefix.endsWith('/') || safeSegments(prefix.slice(0, -1)) === undefined)) {
    throw new Error(`stripPrefix must be a relative folder path ending with "/", got: ${JSON.stringify(prefix)}`);
  }
  const zip = fs.readFileSync(zipFile);
  const fail = (message: string): never => {
    throw new Error(`${zipFile}: ${message}`);
  };
  const entries = readCentralDirectory(zip, fail);

  const root = path.resolve(destDir);
  fs.mkdirSync(root, { recursive: true });
  const seen = new Set<string>();
  let files = 0;
  let bytes = 0;
  for (const entry of entries) {
    if (safeSegments(entry.isDirectory ? entry.name.slice(0, -1) : entry.name) === undefined) {
      fail(`refusing entry "${entry.name}": absolute paths, "..", "." and empty components are not allowed`);
    }
    const relative = stripPrefix(entry, prefix, fail);
    if (relative === undefined) {
      continue;
    }
    if (seen.has(relative)) {
      fail(`entry "${entry.name}" appears twice`);
    }
    seen.add(relative);

    const target = path.join(root, ...relative.split('/'));
    // Belt and braces over safeSegments: whatever the name, nothing lands outside destDir.
    const inside = path.relative(root, target);
    if (inside === '..' || inside.startsWith(`..${path.sep}`) || path.isAbsolute(inside)) {
      fail(`refusing entry "${entry.name}": it resolves outside ${root}`);
    }
    if (entry.isDirectory) {
      fs.mkdirSync(target, { recursive: true });
      continue;
    }
    const content = entryContent(zip, entry, fail);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    // Removing first means a symlink left at the target is replaced, never written through.
    fs.rmSync(target, { force: true });
    const mode = entry.mode ?? DEFAULT_FILE_MODE;
    fs.writeFileSync(target, content, { flag: 'wx', mode });
    // The umask must not decide the mode: an unreadable .node addon fails only at require time.
    fs.chmodSync(target, mode);
    files++;
    bytes += content.length;
  }
  return { files, bytes };
}

function readCentralDirectory(zip: Buffer, fail: (message: string) => never): CentralEntry[] {
  const eocd = findEndOfCentralDirectory(zip, fail);
  if (eocd >= 20 && zip.readUInt32LE(eocd - 20) === ZIP64_EOCD_LOCATOR_SIGNATURE) {
    fail('zip64 not supported (the archive has a zip64 end of central directory locator)');
  }
  const diskNumber = zip.readUInt16LE(eocd + 4);
  const centralDisk = zip.readUInt16LE(eocd + 6);
  const entriesOnDisk = zip.readUInt16LE(eocd + 8);
  const entryCount = zip.readUInt16LE(eocd + 10);
  const centralSize = zip.readUInt32LE(eocd + 12);
  const centralOffset = zip.readUInt32LE(eocd + 16);
  if (entryCount === 0xffff || centralSize === 0xffffffff || centralOffset === 0xffffffff) {
    fail('zip64 not supported (the end of central directory record defers to zip64 fields)');
  }
  if (diskNumber !== 0 || centralDisk !== 0 || entriesOnDisk !== entryCount) {
    fail('spanned or split archives are not supported');
  }
  if (centralOffset + centralSize > eocd) {
    fail('the central directory runs past the end of central directory record');
  }

  const entries: CentralEntry[] = [];
  let p = centralOffset;
  for (let i = 0; i < entryCount; i++) {
    if (p + CENTRAL_HEADER_SIZE > centralOffset + centralSize || zip.readUInt32LE(p) !== CENTRAL_HEADER_SIGNATURE) {
      fail(`central directory entry ${i} is missing or truncated`);
    }
    const versionMadeBy = zip.readUInt16LE(p + 4);
    const flags = zip.readUInt16LE(p + 8);
    const method = zip.readUInt16LE(p + 10);
    const crc32 = zip.readUInt32LE(p + 16);
    const compressedSize = zip.readUInt32LE(p + 20);
    const uncompressedSize = zip.readUInt32LE(p + 24);
    const nameLength = zip.readUInt16LE(p + 28);
    const extraLength = zip.readUInt16LE(p + 30);
    const commentLength = zip.readUInt16LE(p + 32);
    const diskStart = zip.readUInt16LE(p + 34);
    const externalAttributes = zip.readUInt32LE(p + 38);
    const localHeaderOffset = zip.readUInt32LE(p + 42);
    const end = p + CENTRAL_HEADER_SIZE + nameLength + extraLength + commentLength;
    if (end > centralOffset + centralSize) {
      fail(`central directory entry ${i} runs past the central directory`);
    }
    const nameBytes = zip.subarray(p + CENTRAL_HEADER_SIZE, p + CENTRAL_HEADER_SIZE + nameLength);
    const name = decodeName(nameBytes, flags, i, fail);
    const extra = zip.subarray(p + CENTRAL_HEADER_SIZE + nameLength, p + CENTRAL_HEADER_SIZE + nameLength + extraLength);

    if (compressedSize === 0xffffffff || uncompressedSize === 0xffffffff || localHeaderOffset === 0xffffffff || hasExtraField(extra, ZIP64_EXTRA_FIELD_ID)) {
      fail(`zip64 not supported (entry "${name}" has zip64 sizes or offsets)`);
    }
    if (diskStart !== 0) {
      fail(`entry "${name}" starts on another disk: spanned archives are not supported`);
    }
    if (flags & FLAG_ENCRYPTED) {
      fail(`entry "${name}" is encrypted`);
    }
    if (method !== METHOD_STORED && method !== METHOD_DEFLATE) {
      fail(`entry "${name}" uses compression method ${method}; only stored (0) and deflate (8) are supported`);
    }

    const isDirectory = name.endsWith('/');
    let mode: number | undefined;
    const unixMode = externalAttributes >>> 16;
    if (versionMadeBy >> 8 === HOST_UNIX && unixMode !== 0) {
      const type = unixMode & S_IFMT;
      if (type !== 0 && type !== (isDirectory ? S_IFDIR : S_IFREG)) {
        fail(`entry "${name}" is not a regular file or directory (mode ${unixMode.toString(8)}); links are not supported`);
      }
      // setuid, setgid and sticky bits have no business in an extracted package.
      mode = unixMode & 0o777;
    }
    entries.push({ name, nameBytes, method, crc32, compressedSize, uncompressedSize, localHeaderOffset, mode, isDirectory });
    p = end;
  }
  return entries;
}

/** The record sits at the very end, after a comment of at most 65535 bytes. */
function findEndOfCentralDirectory(zip: Buffer, fail: (message: string) => never): number {
  const lowest = Math.max(0, zip.length - EOCD_SIZE - 0xffff);
  for (let p = zip.length - EOCD_SIZE; p >= lowest; p--) {
    // A signature inside the comment is not the record: its comment length must reach the end exactly.
    if (zip.readUInt32LE(p) === EOCD_SIGNATURE && p + EOCD_SIZE + zip.readUInt16LE(p + 20) === zip.length) {
      return p;
    }
  }
  return fail('not a zip file (no end of central directory record)');
}

function decodeName(bytes: Buffer, flags: number, index: number, fail: (message: string) => never): string {
  if (flags & FLAG_UTF8) {
    const name = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    if (name.includes('\0')) {
      fail(`entry ${index} has a NUL byte in its name`);
    }
    return name;
  }
  // Without the UTF-8 flag a name is CP437; only its ASCII subset reads the same everywhere.
  if (bytes.some((b) => b >= 0x80 || b === 0)) {
    fail(`entry ${index} has a non-ASCII name without the UTF-8 flag`);
  }
  return bytes.toString('ascii');
}

function hasExtraField(extra: Buffer, id: number): boolean {
  for (let p = 0; p + 4 <= extra.length; p += 4 + extra.readUInt16LE(p + 2)) {
    if (extra.readUInt16LE(p) === id) {
      return true;
    }
  }
  return false;
}

/** The `/`-separated components of a relative path, or undefined when any could escape or confuse. */
function safeSegments(name: string): string[] | undefined {
  if (name === '' || name.startsWith('/') || name.includes('\\') || /^[A-Za-z]:/.test(name)) {
    return undefined;
  }
  const segments = name.split('/');
  return segments.every((s) => s !== '' && s !== '.' && s !== '..') ? segments : undefined;
}

/** The entry's path below the prefix, or undefined for a directory entry at or above it. */
function stripPrefix(entry: CentralEntry, prefix: string, fail: (message: string) => never): string | undefined {
  const name = entry.isDirectory ? entry.name.slice(0, -1) : entry.name;
  if (prefix === '') {
    return name;
  }
  if (entry.name.startsWith(prefix) && entry.name.length > prefix.length) {
    return name.slice(prefix.length);
  }
  if (entry.isDirectory && prefix.startsWith(entry.name)) {
    return undefined;
  }
  return fail(`entry "${entry.name}" is outside the folder ${prefix} being extracted`);
}

function entryContent(zip: Buffer, entry: CentralEntry, fail: (message: string) => never): Buffer {
  const p = entry.localHeaderOffset;
  if (p + LOCAL_HEADER_SIZE > zip.length || zip.readUInt32LE(p) !== LOCAL_HEADER_SIGNATURE) {
    fail(`entry "${entry.name}" has no local header at offset ${p}`);
  }
  const nameLength = zip.readUInt16LE(p + 26);
  const extraLength = zip.readUInt16LE(p + 28);
  const localName = zip.subarray(p + LOCAL_HEADER_SIZE, p + LOCAL_HEADER_SIZE + nameLength);
  // Readers that trust one header or the other would otherwise see different archives.
  if (!localName.equals(entry.nameBytes) || zip.readUInt16LE(p + 8) !== entry.method) {
    fail(`entry "${entry.name}": the local header does not match the central directory`);
  }
  const start = p + LOCAL_HEADER_SIZE + nameLength + extraLength;
  const end = start + entry.compressedSize;
  if (end > zip.length) {
    fail(`entry "${entry.name}" is truncated`);
  }
  const raw = zip.subarray(start, end);

  let content: Buffer;
  if (entry.method === METHOD_STORED) {
    if (entry.compressedSize !== entry.uncompressedSize) {
      fail(`stored entry "${entry.name}" has different compressed and uncompressed sizes`);
    }
    content = Buffer.from(raw);
  } else {
    try {
      // The bound stops a lying size field from inflating without limit.
      content = zlib.inflateRawSync(raw, { maxOutputLength: Math.max(1, entry.uncompressedSize) });
    } catch (e) {
      return fail(`entry "${entry.name}" does not inflate: ${(e as Error).message}`);
    }
  }
  if (content.length !== entry.uncompressedSize) {
    fail(`entry "${entry.name}" is ${content.length} bytes, the zip says ${entry.uncompressedSize}`);
  }
  const actual = crc32(content);
  if (actual !== entry.crc32) {
    fail(`CRC-32 mismatch in entry "${entry.name}": expected ${hex32(entry.crc32)}, got ${hex32(actual)}`);
  }
  return content;
}

function hex32(n: number): string {
  return n.toString(16).padStart(8, '0');
}

/** zlib.crc32 arrived in Node 20.15 and 22.2; the package supports older 20.x too. */
const nativeCrc32 = (zlib as { crc32?: (data: Uint8Array) => number }).crc32;

function crc32(data: Uint8Array): number {
  return typeof nativeCrc32 === 'function' ? nativeCrc32(data) >>> 0 : tableCrc32(data);
}

let crcTable: Uint32Array | undefined;

/** CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), as zip stores it. Exported for its test. */
export function tableCrc32(data: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) {
        c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      }
      crcTable[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (let i = 0; i < data.length; i++) {
    crc = crcTable[(crc ^ data[i]) & 0xff] ^ (crc >>> 8);
  }
  return (crc ^ 0xffffffff) >>> 0;
}
