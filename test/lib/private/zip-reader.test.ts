import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import * as yazl from 'yazl';
import { extractZip, tableCrc32 } from '../../../lib/private/zip-reader';
import { tempDir } from '../../support/handler';

interface Entry {
  readonly name: string;
  /** Omitted for a directory entry. */
  readonly content?: Buffer;
  readonly mode?: number;
  readonly compress?: boolean;
}

function buildZip(entries: readonly Entry[], options: { forceZip64Format?: boolean } = {}): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const zip = new yazl.ZipFile();
    const chunks: Buffer[] = [];
    zip.outputStream.on('data', (c: Buffer) => chunks.push(c));
    zip.outputStream.on('error', reject);
    zip.outputStream.on('end', () => resolve(Buffer.concat(chunks)));
    for (const e of entries) {
      if (e.content === undefined) {
        zip.addEmptyDirectory(e.name, { mode: e.mode });
      } else {
        zip.addBuffer(e.content, e.name, { mode: e.mode, compress: e.compress, ...options });
      }
    }
    zip.end();
  });
}

function writeZip(bytes: Buffer): string {
  const file = path.join(tempDir('zip-src-'), 'test.zip');
  fs.writeFileSync(file, bytes);
  return file;
}

/** yazl refuses unsafe names, so a same-length safe name is written and then overwritten in place. */
function renameEntry(zip: Buffer, from: string, to: string): Buffer {
  expect(to.length).toBe(from.length);
  const out = Buffer.from(zip);
  let hits = 0;
  for (let p = out.indexOf(from); p !== -1; p = out.indexOf(from, p + 1)) {
    out.write(to, p, 'latin1');
    hits++;
  }
  // Once in the local header and once in the central directory.
  expect(hits).toBe(2);
  return out;
}

/** Every regular file under dir, by `/`-separated relative path. */
function listTree(dir: string, rel = ''): string[] {
  return fs.readdirSync(path.join(dir, rel), { withFileTypes: true }).flatMap((d) => {
    const child = rel ? `${rel}/${d.name}` : d.name;
    return d.isDirectory() ? listTree(dir, child) : [child];
  });
}

const text = Buffer.from('hello, zip\n'.repeat(200));
const noise = randomBytes(10_000);
const script = Buffer.from('#!/bin/sh\necho hi\n');

const sample: Entry[] = [
  { name: 'top.txt', content: text, mode: 0o100640, compress: true },
  { name: 'a/b/c/noise.bin', content: noise, compress: false },
  { name: 'a/b/run.sh', content: script, mode: 0o100755, compress: true },
  { name: 'a/empty.txt', content: Buffer.alloc(0), compress: true },
  { name: 'a/stored-empty.txt', content: Buffer.alloc(0), compress: false },
  { name: 'empty-dir/', mode: 0o40755 },
];

describe('extractZip', () => {
  it('extracts stored and deflated entries into nested folders with their bytes and modes', async () => {
    const zip = await buildZip(sample);
    // The sample really holds both methods (offset 10 of a central directory header).
    const methods = new Set<number>();
    for (let p = zip.indexOf('PK\x01\x02'); p !== -1; p = zip.indexOf('PK\x01\x02', p + 1)) methods.add(zip.readUInt16LE(p + 10));
    expect([...methods].sort()).toEqual([0, 8]);

    const dest = tempDir('zip-out-');
    const result = extractZip(writeZip(zip), dest);

    const files = sample.filter((e) => e.content !== undefined);
    expect(result.files).toBe(files.length);
    expect(result.bytes).toBe(files.reduce((sum, e) => sum + e.content!.length, 0));
    expect(listTree(dest).sort()).toEqual(files.map((e) => e.name).sort());
    for (const e of files) {
      expect(fs.readFileSync(path.join(dest, e.name)).equals(e.content!), e.name).toBe(true);
    }
    expect(fs.statSync(path.join(dest, 'a/b/run.sh')).mode & 0o777).toBe(0o755);
    expect(fs.statSync(path.join(dest, 'top.txt')).mode & 0o777).toBe(0o640);
    expect(fs.statSync(path.join(dest, 'empty-dir')).isDirectory()).toBe(true);
  });

  it('sets modes exactly, whatever the umask', async () => {
    const zip = writeZip(await buildZip([{ name: 'x.so', content: noise, mode: 0o100755 }]));
    const dest = tempDir('zip-out-');
    const previous = process.umask(0o077);
    try {
      extractZip(zip, dest);
    } finally {
      process.umask(previous);
    }
    expect(fs.statSync(path.join(dest, 'x.so')).mode & 0o777).toBe(0o755);
  });

  it('strips a folder prefix and skips the directory entries above it', async () => {
    const zip = await buildZip([
      { name: 'nodejs/' },
      { name: 'nodejs/node_modules/' },
      { name: 'nodejs/node_modules/pkg/package.json', content: Buffer.from('{}') },
      { name: 'nodejs/node_modules/pkg/lib/index.js', content: text, compress: true },
    ]);
    const dest = tempDir('zip-out-');
    expect(extractZip(writeZip(zip), dest, { stripPrefix: 'nodejs/node_modules/' })).toEqual({ files: 2, bytes: 2 + text.length });
    expect(listTree(dest).sort()).toEqual(['pkg/lib/index.js', 'pkg/package.json']);
    expect(fs.readFileSync(path.join(dest, 'pkg/lib/index.js')).equals(text)).toBe(true);
  });

  it('refuses a file outside the stripped prefix', async () => {
    const zip = writeZip(await buildZip([{ name: 'other/file.txt', content: text }]));
    expect(() => extractZip(zip, tempDir('zip-out-'), { stripPrefix: 'nodejs/' })).toThrow(/"other\/file.txt" is outside/);
  });

  it('names the entry whose CRC-32 does not match', async () => {
    const zip = await buildZip([
      { name: 'ok.txt', content: text, compress: true },
      { name: 'dir/data.bin', content: noise, compress: false },
    ]);
    const corrupted = Buffer.from(zip);
    const at = corrupted.indexOf(noise) + 1234;
    corrupted[at] ^= 0xff;
    expect(() => extractZip(writeZip(corrupted), tempDir('zip-out-'))).toThrow(/CRC-32 mismatch in entry "dir\/data.bin"/);
  });

  it('names a deflated entry whose data is damaged', async () => {
    const zip = await buildZip([{ name: 'deflated.txt', content: Buffer.from(noise.toString('hex').repeat(3)), compress: true }]);
    const corrupted = Buffer.from(zip);
    const dataStart = 30 + zip.readUInt16LE(26) + zip.readUInt16LE(28);
    corrupted[dataStart + 100] ^= 0x55;
    expect(() => extractZip(writeZip(corrupted), tempDir('zip-out-'))).toThrow(/entry "deflated.txt"/);
  });

  it('refuses a ../ entry and writes nothing outside the destination', async () => {
    const zip = renameEntry(await buildZip([{ name: 'aa/evil', content: text }]), 'aa/evil', '../evil');
    const parent = tempDir('zip-slip-');
    const dest = path.join(parent, 'dest');
    expect(() => extractZip(writeZip(zip), dest)).toThrow(/refusing entry "\.\.\/evil"/);
    expect(fs.existsSync(path.join(parent, 'evil'))).toBe(false);
  });

  it('refuses a .. component deeper in the path', async () => {
    const zip = renameEntry(await buildZip([{ name: 'a/bb/c/evil', content: text }]), 'a/bb/c/evil', 'a/../../evi');
    expect(() => extractZip(writeZip(zip), tempDir('zip-out-'))).toThrow(/refusing entry "a\/\.\.\/\.\.\/evi"/);
  });

  it('refuses an absolute path', async () => {
    const zip = renameEntry(await buildZip([{ name: 'xtmp/evil', content: text }]), 'xtmp/evil', '/tmp/evil');
    expect(() => extractZip(writeZip(zip), tempDir('zip-out-'))).toThrow(/refusing entry "\/tmp\/evil"/);
  });

  it('refuses a symlink entry', async () => {
    const zip = writeZip(await buildZip([{ name: 'link', content: Buffer.from('/etc/passwd'), mode: 0o120777 }]));
    expect(() => extractZip(zip, tempDir('zip-out-'))).toThrow(/"link" is not a regular file/);
  });

  it('detects zip64 and says it is not supported', async () => {
    const zip = writeZip(await buildZip([{ name: 'big.txt', content: text }], { forceZip64Format: true }));
    expect(() => extractZip(zip, tempDir('zip-out-'))).toThrow(/zip64 not supported/);
  });

  it('refuses a file that is not a zip', () => {
    expect(() => extractZip(writeZip(Buffer.from('not a zip at all')), tempDir('zip-out-'))).toThrow(/no end of central directory/);
  });
});

describe('tableCrc32', () => {
  it('gives the standard check value for "123456789"', () => {
    expect(tableCrc32(Buffer.from('123456789'))).toBe(0xcbf43926);
    expect(tableCrc32(Buffer.alloc(0))).toBe(0);
  });

  it.skipIf(typeof (zlib as { crc32?: unknown }).crc32 !== 'function')('agrees with zlib.crc32', () => {
    const nodeCrc32 = (zlib as unknown as { crc32: (d: Uint8Array) => number }).crc32;
    for (const data of [noise, text, randomBytes(1), randomBytes(4097)]) {
      expect(tableCrc32(data)).toBe(nodeCrc32(data) >>> 0);
    }
  });
});

describe('the ONNX Runtime layer zip', () => {
  const layersDir = path.resolve(__dirname, '../../../assets/layers');
  const manifest = JSON.parse(fs.readFileSync(path.join(layersDir, 'onnxruntime-layers.json'), 'utf8'));
  const layer = manifest.layers.x86_64;
  const zipFile = path.join(layersDir, layer.file);

  it('extracts to exactly the bytes the manifest reports', () => {
    const zip = fs.readFileSync(zipFile);
    // The manifest describes this very zip.
    expect(zip.length).toBe(layer.zippedBytes);
    expect(createHash('sha256').update(zip).digest('hex')).toBe(layer.sha256);

    const dest = tempDir('zip-layer-');
    const result = extractZip(zipFile, dest);
    const files = listTree(dest);
    const onDisk = files.reduce((sum, f) => sum + fs.statSync(path.join(dest, f)).size, 0);
    expect(result.bytes).toBe(layer.unzippedBytes);
    expect(onDisk).toBe(layer.unzippedBytes);
    expect(result.files).toBe(files.length);

    // Only x64 binaries, executable as the layer build writes them.
    const binding = 'nodejs/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/onnxruntime_binding.node';
    expect(fs.statSync(path.join(dest, binding)).mode & 0o777).toBe(0o755);
    expect(files.some((f) => f.includes('/linux/arm64/'))).toBe(false);

    // What the installed packages ship is what comes out (the layer adds only licence texts).
    for (const f of files.filter((f) => !/\/LICENSE$/.test(f))) {
      const installed = path.resolve(__dirname, '../../..', 'node_modules', f.slice('nodejs/node_modules/'.length));
      expect(fs.readFileSync(path.join(dest, f)).equals(fs.readFileSync(installed)), f).toBe(true);
    }
  });

  it.skipIf(!hasUnzip())('holds the same file list as Info-ZIP reads from it', () => {
    const dest = tempDir('zip-layer-');
    extractZip(zipFile, dest);
    const listed = execFileSync('unzip', ['-Z1', zipFile], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l !== '' && !l.endsWith('/'));
    expect(listTree(dest).sort()).toEqual(listed.sort());
  });
});

function hasUnzip(): boolean {
  try {
    execFileSync('unzip', ['-v'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
