/**
 * Builds the ONNX Runtime Lambda layer zips shipped in `assets/layers`, one per architecture, when the
 * library is built. A user's `cdk synth` then only points at a prebuilt, deterministic zip: it never
 * installs onnxruntime-node, downloads, or runs Docker, and the asset hash only moves when the
 * onnxruntime-node version (or this script) does.
 *
 * The whole npm package is 288 MB (every platform, over Lambda's 250 MB unzipped limit); a layer keeps
 * only what `require('onnxruntime-node')` loads on Linux for one architecture.
 *
 * Run directly: `npx tsx scripts/build-layers.ts [outDir]` (default `<repo>/assets/layers`).
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as yazl from 'yazl';
import type { OnnxRuntimeLayerFile, OnnxRuntimeLayerManifest } from '../lib/runtime/onnxruntime-manifest';

type ArchitectureName = 'x86_64' | 'arm64';

/** Read by `OnnxRuntimeLayer`; the file name is part of the contract between the two. */
export const ONNXRUNTIME_LAYERS_MANIFEST = 'onnxruntime-layers.json';

/** Lambda architecture name → the folder under onnxruntime-node's `bin/napi-v6/` holding its binaries. */
const NATIVE_DIRS: Record<ArchitectureName, string> = {
  x86_64: 'linux/x64',
  arm64: 'linux/arm64',
};

/**
 * The addon and the ONNX Runtime library it loads through its `$ORIGIN` runpath. Listed by name rather
 * than copying the folder: onnxruntime-node's install script can drop CUDA/TensorRT provider libraries
 * there, which a CPU Lambda cannot use.
 */
const NATIVE_FILES = ['onnxruntime_binding.node', 'libonnxruntime.so.1'];

/** Lambda adds `/opt/nodejs/node_modules` to NODE_PATH for Node.js runtimes. */
const LAYER_NODE_MODULES = 'nodejs/node_modules';

/**
 * DOS timestamps are local time, so the date is built from local fields and the Info-ZIP UTC timestamp
 * is turned off: the zip's bytes are then the same in every time zone.
 */
const FIXED_MTIME = new Date(1980, 0, 1, 0, 0, 0);
const FILE_MODE = 0o100644;
/** ELF shared objects keep the executable bit they get from a normal install of a native build. */
const SHARED_OBJECT_MODE = 0o100755;

/**
 * Neither npm package ships a licence file, though both declare MIT (the ONNX Runtime repository's
 * LICENSE, reproduced here). MIT requires the notice to travel with every copy, so the layer carries it.
 */
const ONNXRUNTIME_MIT_LICENSE = `MIT License

Copyright (c) Microsoft Corporation

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
`;

const LICENSE_FILE_NAME = /^(licen[cs]e|notice|third[-_]?party[-_]?notices)(\.(txt|md))?$/i;

interface LayerEntry {
  /** Path inside the zip, `/`-separated. */
  readonly zipPath: string;
  readonly content: Buffer;
  readonly mode: number;
}

interface InstalledPackage {
  readonly dir: string;
  readonly name: string;
  readonly version: string;
  readonly manifest: { readonly license?: string; readonly dependencies?: Record<string, string> };
}

/**
 * Writes `onnxruntime-node-<arch>.zip` for x86_64 and arm64 and `onnxruntime-layers.json` into
 * `outDir`. Skips the work when the manifest there was built from the same inputs and its zips are intact.
 */
export async function buildOnnxRuntimeLayers(outDir: string): Promise<void> {
  const ortNode = findInstalledPackage('onnxruntime-node', __dirname);
  const ortCommon = findInstalledPackage('onnxruntime-common', ortNode.dir);
  const wantedCommon = ortNode.manifest.dependencies?.['onnxruntime-common'];
  if (wantedCommon !== ortCommon.version) {
    throw new Error(
      `onnxruntime-node ${ortNode.version} depends on onnxruntime-common ${wantedCommon}, ` +
        `but ${ortCommon.dir} is version ${ortCommon.version}. Reinstall dependencies so the two match.`,
    );
  }

  const commonEntries = [...packageEntries(ortNode, isNodeRuntimeFile), ...packageEntries(ortCommon, isCommonRuntimeFile)];
  const entriesByArch = {} as Record<ArchitectureName, LayerEntry[]>;
  for (const arch of architectureNames()) {
    entriesByArch[arch] = sortEntries([...commonEntries, ...nativeEntries(ortNode, arch)]);
  }

  const inputsSha256 = fingerprintInputs(ortNode.version, entriesByArch);
  fs.mkdirSync(outDir, { recursive: true });
  if (isUpToDate(outDir, inputsSha256)) {
    return;
  }

  const layers = {} as Record<ArchitectureName, OnnxRuntimeLayerFile>;
  await Promise.all(
    architectureNames().map(async (arch) => {
      const file = `onnxruntime-node-${arch}.zip`;
      const zip = await zipEntries(entriesByArch[arch]);
      writeFileAtomically(path.join(outDir, file), zip);
      layers[arch] = {
        file,
        zippedBytes: zip.length,
        unzippedBytes: entriesByArch[arch].reduce((sum, e) => sum + e.content.length, 0),
        sha256: sha256(zip),
      };
    }),
  );

  const manifest: OnnxRuntimeLayerManifest = {
    onnxruntimeVersion: ortNode.version,
    inputsSha256,
    // Fixed key order keeps the manifest's bytes stable too.
    layers: { x86_64: layers.x86_64, arm64: layers.arm64 },
  };
  // Written last: a manifest on disk always describes complete zips.
  writeFileAtomically(path.join(outDir, ONNXRUNTIME_LAYERS_MANIFEST), Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`));
}

function architectureNames(): ArchitectureName[] {
  return Object.keys(NATIVE_DIRS) as ArchitectureName[];
}

/** Node's own lookup: the nearest `node_modules/<name>` above `fromDir`. */
function findInstalledPackage(name: string, fromDir: string): InstalledPackage {
  let dir = fromDir;
  for (;;) {
    const candidate = path.join(dir, 'node_modules', name);
    const packageJson = path.join(candidate, 'package.json');
    if (fs.existsSync(packageJson)) {
      const manifest = JSON.parse(fs.readFileSync(packageJson, 'utf8'));
      return { dir: candidate, name, version: manifest.version, manifest };
    }
    const parent = path.dirname(dir);
    if (parent === dir) {
      throw new Error(
        `Cannot find ${name} in any node_modules above ${fromDir}: the ONNX Runtime layers are built from the ` +
          'installed onnxruntime-node (a devDependency). Run `npm ci` first.',
      );
    }
    dir = parent;
  }
}

/**
 * onnxruntime-node's runtime is `dist/*.js` plus the native addon; adm-zip and global-agent only serve
 * its install script, so they stay out.
 */
function isNodeRuntimeFile(relPath: string): boolean {
  return relPath === 'package.json' || (relPath.startsWith('dist/') && relPath.endsWith('.js'));
}

/**
 * onnxruntime-common ships CommonJS and ES module builds selected by its `exports`; each build folder's
 * package.json sets its module type and must come along.
 */
function isCommonRuntimeFile(relPath: string): boolean {
  return (
    relPath === 'package.json' ||
    ((relPath.startsWith('dist/cjs/') || relPath.startsWith('dist/esm/')) && (relPath.endsWith('.js') || path.posix.basename(relPath) === 'package.json'))
  );
}

function packageEntries(pkg: InstalledPackage, isRuntimeFile: (relPath: string) => boolean): LayerEntry[] {
  const prefix = `${LAYER_NODE_MODULES}/${pkg.name}/`;
  const entries = listFiles(pkg.dir)
    .filter(isRuntimeFile)
    .map((rel) => ({ zipPath: prefix + rel, content: fs.readFileSync(path.join(pkg.dir, rel)), mode: FILE_MODE }));
  if (!entries.some((e) => e.zipPath.endsWith('.js'))) {
    throw new Error(`${pkg.dir} has no runtime JavaScript under dist/: is the package installed completely?`);
  }
  return [...entries, ...licenseEntries(pkg, prefix)];
}

function licenseEntries(pkg: InstalledPackage, prefix: string): LayerEntry[] {
  const shipped = fs
    .readdirSync(pkg.dir, { withFileTypes: true })
    .filter((d) => d.isFile() && LICENSE_FILE_NAME.test(d.name))
    .map((d) => ({ zipPath: prefix + d.name, content: fs.readFileSync(path.join(pkg.dir, d.name)), mode: FILE_MODE }));
  if (shipped.length > 0) {
    return shipped;
  }
  if (pkg.manifest.license !== 'MIT') {
    throw new Error(
      `${pkg.name} ${pkg.version} ships no licence file and declares licence "${pkg.manifest.license}", ` +
        'expected MIT: check its terms before redistributing it in a Lambda layer.',
    );
  }
  return [{ zipPath: `${prefix}LICENSE`, content: Buffer.from(ONNXRUNTIME_MIT_LICENSE), mode: FILE_MODE }];
}

function nativeEntries(ortNode: InstalledPackage, arch: ArchitectureName): LayerEntry[] {
  const relDir = `bin/napi-v6/${NATIVE_DIRS[arch]}`;
  return NATIVE_FILES.map((name) => {
    const source = path.join(ortNode.dir, relDir, name);
    if (!fs.existsSync(source)) {
      throw new Error(`onnxruntime-node ${ortNode.version} has no ${relDir}/${name} (looked in ${ortNode.dir}), which the ${arch} layer needs.`);
    }
    return {
      zipPath: `${LAYER_NODE_MODULES}/onnxruntime-node/${relDir}/${name}`,
      content: fs.readFileSync(source),
      mode: SHARED_OBJECT_MODE,
    };
  });
}

/** Paths relative to `root`, `/`-separated; symlinks and `node_modules` are not followed. */
function listFiles(root: string, rel = ''): string[] {
  const out: string[] = [];
  for (const d of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
    const childRel = rel ? `${rel}/${d.name}` : d.name;
    if (d.isDirectory() && d.name !== 'node_modules') {
      out.push(...listFiles(root, childRel));
    } else if (d.isFile()) {
      out.push(childRel);
    }
  }
  return out;
}

/** Code-unit order, not locale order: the same on every machine. */
function sortEntries(entries: LayerEntry[]): LayerEntry[] {
  const sorted = [...entries].sort((a, b) => (a.zipPath < b.zipPath ? -1 : a.zipPath > b.zipPath ? 1 : 0));
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i].zipPath === sorted[i - 1].zipPath) {
      throw new Error(`Two files map to ${sorted[i].zipPath} in the ONNX Runtime layer`);
    }
  }
  return sorted;
}

/** Covers everything that shapes the zips' bytes, including this script's own code. */
function fingerprintInputs(version: string, entriesByArch: Record<ArchitectureName, LayerEntry[]>): string {
  const hash = createHash('sha256');
  hash.update(`onnxruntime-node@${version}\0`);
  hash.update(fs.readFileSync(__filename));
  for (const arch of architectureNames()) {
    hash.update(`\0${arch}\0`);
    for (const e of entriesByArch[arch]) {
      hash.update(`${e.zipPath}\0${e.mode}\0${sha256(e.content)}\0`);
    }
  }
  return hash.digest('hex');
}

function isUpToDate(outDir: string, inputsSha256: string): boolean {
  const manifestPath = path.join(outDir, ONNXRUNTIME_LAYERS_MANIFEST);
  if (!fs.existsSync(manifestPath)) {
    return false;
  }
  let manifest: Partial<OnnxRuntimeLayerManifest>;
  try {
    manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8'));
  } catch {
    return false;
  }
  if (manifest.inputsSha256 !== inputsSha256 || !manifest.layers) {
    return false;
  }
  const layers = manifest.layers;
  return architectureNames().every((arch) => {
    const zipPath = path.join(outDir, layers[arch]?.file ?? '');
    return layers[arch] !== undefined && fs.existsSync(zipPath) && sha256(fs.readFileSync(zipPath)) === layers[arch].sha256;
  });
}

function zipEntries(entries: readonly LayerEntry[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const zip = new yazl.ZipFile();
    const chunks: Buffer[] = [];
    zip.outputStream.on('data', (chunk: Buffer) => chunks.push(chunk));
    zip.outputStream.on('error', reject);
    zip.outputStream.on('end', () => resolve(Buffer.concat(chunks)));
    for (const e of entries) {
      zip.addBuffer(e.content, e.zipPath, { mtime: FIXED_MTIME, mode: e.mode, forceDosTimestamp: true });
    }
    zip.end();
  });
}

/** Tests and builds may run side by side: a reader sees the old file or the new one, never half of one. */
function writeFileAtomically(file: string, content: Buffer): void {
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  fs.writeFileSync(tmp, content);
  fs.renameSync(tmp, file);
}

function sha256(content: Buffer): string {
  return createHash('sha256').update(content).digest('hex');
}

if (typeof module !== 'undefined' && require.main === module) {
  const outDir = path.resolve(process.argv[2] ?? path.join(__dirname, '..', 'assets', 'layers'));
  const started = Date.now();
  buildOnnxRuntimeLayers(outDir)
    .then(() => {
      const manifest: OnnxRuntimeLayerManifest = JSON.parse(fs.readFileSync(path.join(outDir, ONNXRUNTIME_LAYERS_MANIFEST), 'utf8'));
      for (const [arch, layer] of Object.entries(manifest.layers)) {
        const mb = (n: number) => (n / 1024 / 1024).toFixed(1);
        console.log(
          `onnxruntime-node ${manifest.onnxruntimeVersion} ${arch}: ${path.join(outDir, layer.file)} ` +
            `(${mb(layer.zippedBytes)} MB zipped, ${mb(layer.unzippedBytes)} MB unzipped)`,
        );
      }
      console.log(`ONNX Runtime layers ready in ${Date.now() - started} ms`);
    })
    .catch((err: unknown) => {
      console.error(err instanceof Error ? err.message : err);
      process.exitCode = 1;
    });
}
