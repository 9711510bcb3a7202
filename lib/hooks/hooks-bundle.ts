import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HOOK_NAMES, HOOKS_MODULE_FILE } from '../../contract/hooks';
import { builtAssetPath } from '../private/package-paths';

/** How a hooks entry is bundled. */
export interface HooksBundleOptions {
  /** The entry file (TypeScript or JavaScript). */
  readonly entry: string;
  /** Modules left out of the bundle, besides onnxruntime-node. */
  readonly externalModules?: readonly string[];
  /** Identifiers replaced with constant expressions. */
  readonly define?: Readonly<Record<string, string>>;
  /** Whether a source map goes beside the module. */
  readonly sourceMap?: boolean;
}

/** A bundled hooks module: its files (the module and its map), its named exports, the files it was built from. */
export interface HooksBundle {
  readonly files: ReadonlyArray<{ readonly name: string; readonly contents: Uint8Array }>;
  readonly exports: readonly string[];
  /** A hash of the files' contents. */
  readonly hash: string;
  /** Absolute paths of the source files read. */
  readonly inputs: readonly string[];
}

/** A hooks entry that esbuild cannot bundle: its messages, each with the file, line and column. */
export class HooksBuildError extends Error {}

/** Bundled already in this process, with the state of the files each was built from. */
const BUILT = new Map<string, { readonly stamps: string; readonly bundle: HooksBundle }>();

/**
 * Bundles a users' hooks entry into one ES module, `hooks.mjs`, to sit beside the prebuilt handler:
 * with the esbuild that this package brings (its WebAssembly build, the same on every platform, so
 * no Docker, no network and no esbuild of the app's own), onnxruntime-node external, and
 * `cdk-serverless-inference/handler` resolved to this version's hook helpers. Paths in the output
 * are relative to the entry's project (the nearest folder with a package.json), so the bytes, and
 * an asset hash made from them, depend on the entry and what it imports, not on where it is built.
 */
export function bundleHooks(options: HooksBundleOptions): HooksBundle {
  const entry = path.resolve(options.entry);
  if (!fs.statSync(entry, { throwIfNoEntry: false })?.isFile()) {
    throw new HooksBuildError(`the hooks entry ${entry} is not a file`);
  }
  const key = JSON.stringify([entry, options.externalModules ?? [], options.define ?? {}, options.sourceMap ?? true]);
  const built = BUILT.get(key);
  if (built && built.stamps === stamps(built.bundle.inputs)) return built.bundle;

  const projectRoot = findProjectRoot(entry);
  // Required lazily: only a synth or `serve` with hooks pays for loading the compiler.
  const esbuild = require('esbuild-wasm') as typeof import('esbuild-wasm');
  let result: import('esbuild-wasm').BuildResult<{ write: false; metafile: true }>;
  try {
    result = esbuild.buildSync({
      entryPoints: [entry],
      absWorkingDir: projectRoot,
      outfile: path.join(projectRoot, HOOKS_MODULE_FILE),
      write: false,
      metafile: true,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      mainFields: ['module', 'main'],
      external: ['onnxruntime-node', ...(options.externalModules ?? [])],
      alias: { 'cdk-serverless-inference/handler': builtAssetPath('handlers', 'hooks-api', 'index.mjs') },
      // ES modules have no `require`; CommonJS dependencies that use it get one.
      banner: { js: "import { createRequire as __hooksCreateRequire } from 'node:module'; const require = __hooksCreateRequire(import.meta.url);" },
      define: { ...options.define },
      sourcemap: (options.sourceMap ?? true) ? 'linked' : false,
      sourcesContent: true,
      legalComments: 'none',
      logLevel: 'silent',
    });
  } catch (e) {
    throw new HooksBuildError(`${entry} does not build:\n${describeBuildFailure(e, projectRoot)}`);
  }
  const files = result.outputFiles.map((f) => ({ name: path.basename(f.path), contents: f.contents })).sort((a, b) => a.name.localeCompare(b.name));
  const hash = createHash('sha256');
  for (const f of files) hash.update(`${f.name}\0`).update(f.contents);
  const output = Object.values(result.metafile.outputs).find((o) => o.entryPoint !== undefined);
  const inputs = Object.keys(result.metafile.inputs).map((p) => path.resolve(projectRoot, p));
  const bundle: HooksBundle = { files, exports: [...(output?.exports ?? [])].sort(), hash: hash.digest('hex'), inputs };
  BUILT.set(key, { stamps: stamps(inputs), bundle });
  return bundle;
}

/**
 * The hooks a bundle exports. Throws when it exports none, or exports a hook's name in another case
 * (`postProcess`): such a hook would never run, and nothing else would say so.
 */
export function hooksOf(bundle: HooksBundle, entry: string): string[] {
  for (const name of bundle.exports) {
    const hook = HOOK_NAMES.find((h) => h.toLowerCase() === name.toLowerCase());
    if (hook !== undefined && hook !== name) {
      throw new HooksBuildError(`${entry} exports '${name}': the hook is named '${hook}'`);
    }
  }
  const hooks = bundle.exports.filter((name) => (HOOK_NAMES as readonly string[]).includes(name));
  if (hooks.length === 0) {
    throw new HooksBuildError(`${entry} exports none of the hooks (${HOOK_NAMES.join(', ')}); it exports: ${bundle.exports.join(', ') || 'nothing'}`);
  }
  return hooks;
}

/** Writes a bundle's files into `dir`. */
export function writeHooksBundle(bundle: HooksBundle, dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  for (const f of bundle.files) fs.writeFileSync(path.join(dir, f.name), f.contents);
}

/** The folder of the nearest package.json above the entry, else the entry's own folder. */
function findProjectRoot(entry: string): string {
  for (let dir = path.dirname(entry); ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) return path.dirname(entry);
  }
}

/** Sizes and modification times of the files a bundle was built from: when they move, it is built again. */
function stamps(inputs: readonly string[]): string {
  return inputs
    .map((p) => {
      const s = fs.statSync(p, { throwIfNoEntry: false });
      return s ? `${p}:${s.size}:${s.mtimeMs}` : `${p}:-`;
    })
    .join('\n');
}

/** esbuild's errors as `file:line:column: message` lines, the way compilers print them. */
function describeBuildFailure(e: unknown, projectRoot: string): string {
  const errors = (e as { errors?: Array<{ text: string; location?: { file: string; line: number; column: number; lineText: string } | null }> }).errors;
  if (!errors?.length) return (e as Error)?.message ?? String(e);
  return errors
    .slice(0, 10)
    .map((m) => {
      if (!m.location) return `error: ${m.text}`;
      const file = path.resolve(projectRoot, m.location.file);
      return `${file}:${m.location.line}:${m.location.column + 1}: error: ${m.text}\n    ${m.location.lineText.trim()}`;
    })
    .join('\n');
}
