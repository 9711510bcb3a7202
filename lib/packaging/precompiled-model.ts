import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Annotations, FileSystem } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import { GraphOptimizationLevel } from '../../contract/defaults';
import { ENV } from '../../contract/environment';
import { formatBytes, LAMBDA_LIMITS } from '../private/lambda-limits';
import { modelFingerprint } from '../model/local-model';
import { readManifest } from '../runtime/onnxruntime-manifest';
import { canonicalizeOrtFile } from '../private/ort-canonical';
import { STAGING_EXCLUDE, type StagedEntry } from '../private/staging';

/** A model saved in ORT format at synth, next to its .onnx in whatever packages it. */
export interface PrecompiledModel {
  /** The cached .ort file (stage or upload it from here; never write to it). */
  readonly path: string;
  /** Its name beside the model: `<model stem>.ort`. */
  readonly fileName: string;
  readonly sizeBytes: number;
  /** The graph optimisation level it was saved at. */
  readonly level: GraphOptimizationLevel;
  /** The onnxruntime-node version that wrote it. */
  readonly onnxruntimeVersion: string;
  /**
   * A hash of what its bytes are made from (the model's content, the onnxruntime version, the level
   * and the conversion's format), never of the bytes themselves: the custom asset hash of the assets
   * that hold it, so that no machine's conversion can move a template.
   */
  readonly inputHash: string;
}

/** FlatBuffers address with signed 32-bit offsets. */
const MAX_ORT_FORMAT_BYTES = 2 ** 31;

/**
 * Bumped when what the conversion writes changes for the same inputs: old cache entries are then
 * ignored, and the assets that hold a precompiled model get new hashes. 2: canonical bytes.
 */
const CACHE_FORMAT = 2;

/** Whether a packaging bound with `options` ships a precompiled copy. */
export function wantsPrecompiled(options: { readonly precompileModel?: boolean; readonly graphOptimizationLevel?: GraphOptimizationLevel }): boolean {
  return options.precompileModel !== false && options.graphOptimizationLevel !== GraphOptimizationLevel.DISABLED;
}

/**
 * The level the model is saved at. Basic optimisations (constant folding, redundant node removal,
 * semantics-preserving fusions into plain ONNX operators) give the same graph on every CPU. Extended
 * ones write contrib operators and choose paths by the machine that converts (onnxruntime's QDQ
 * rewrites read `session.qdqisint8allowed`, whose default differs between x86 and Arm), and layout
 * ones (NCHWc) are tied to its instruction set; onnxruntime's own converter leaves NCHWc out for that
 * reason. Synth runs on a laptop or a CI runner, the function on x86_64 or arm64: only basic is safe
 * to bake in. The instance applies the rest itself (ORT_GRAPH_OPTIMIZATION_LEVEL); a function that
 * turns optimisations off gets no precompiled copy.
 */
export const PRECOMPILED_LEVEL = GraphOptimizationLevel.BASIC;

/** Where onnxruntime-node is for the app being synthesized, or why it is not. */
type Runtime = { readonly dir: string; readonly version: string } | { readonly missing: string };

let runtime: Runtime | undefined;

/**
 * onnxruntime-node as the app would load it: from the app's folder (the working directory the CDK
 * CLI runs it in) first, then from the library's own. It is a development dependency of the library,
 * not a dependency: an app that does not install it gets models without a precompiled copy.
 */
function findOnnxRuntime(): Runtime {
  if (!runtime) {
    try {
      const manifest = require.resolve('onnxruntime-node/package.json', { paths: [process.cwd(), __dirname] });
      runtime = { dir: path.dirname(manifest), version: JSON.parse(fs.readFileSync(manifest, 'utf8')).version };
    } catch (e) {
      runtime = { missing: `onnxruntime-node is not installed where the app or the library can find it (${(e as Error).message.split('\n')[0]})` };
    }
  }
  return runtime;
}

/**
 * Replaces what `findOnnxRuntime` found (or forgets it, with no argument), for tests of a synth
 * without onnxruntime-node or with another version.
 */
export function overrideOnnxRuntimeLookup(found?: { readonly dir: string; readonly version: string } | { readonly missing: string }): void {
  runtime = found;
}

/** Conversions that failed in this process, by cache key: a model onnxruntime refuses is not tried again per endpoint. */
const refused = new Map<string, string>();

/**
 * Saves `localPath` in ORT format with onnxruntime-node, cached by the model's content, the
 * onnxruntime version and the level, so a repeated synth costs a hash of the file. The conversion
 * runs in a child process (onnxruntime's API is asynchronous, a construct is not) and writes beside
 * the cache entry, renamed into it only once complete: no half-written file is ever used. The
 * file is made canonical (see ort-canonical.ts) before it enters the cache: the same inputs give the
 * same bytes on every machine, whatever the process that converted them.
 *
 * Returns undefined, with an annotation saying why, where the model ships without it: an info for no
 * onnxruntime-node at synth (an app that never runs a model locally need not install it), a model
 * onnxruntime refuses to convert, or a file whose bytes cannot be made canonical; a warning naming the
 * version to install for a version other than the ONNX Runtime layer's (a newer converter may write
 * what the layer cannot read): the app meant to precompile and can fix it.
 */
export function precompileModel(scope: IConstruct, localPath: string, level: GraphOptimizationLevel = PRECOMPILED_LEVEL): PrecompiledModel | undefined {
  const skip = (why: string): undefined => {
    Annotations.of(scope).addInfo(`the model ${path.basename(localPath)} ships without a precompiled (ORT format) copy: ${why}`);
    return undefined;
  };
  const ort = findOnnxRuntime();
  if ('missing' in ort) {
    return skip(`${ort.missing}; install onnxruntime-node in the app to precompile it at synth`);
  }
  const sizeBytes = fs.statSync(localPath).size;
  if (sizeBytes >= MAX_ORT_FORMAT_BYTES) {
    return skip(`it is ${formatBytes(sizeBytes)}, and the ORT format is a FlatBuffer, which holds less than 2 GiB`);
  }
  if (path.extname(localPath) === '.ort') {
    return skip('its file name ends in .ort, the name its copy would take');
  }
  const layerVersion = readManifest().onnxruntimeVersion;
  if (ort.version !== layerVersion) {
    Annotations.of(scope).addWarningV2(
      'cdk-serverless-inference:onnxruntime-node-version',
      `the model ${path.basename(localPath)} ships without a precompiled (ORT format) copy: the onnxruntime-node installed here is ${ort.version}, ` +
        `the functions run ${layerVersion}. To precompile it, install that version: npm install -D -E onnxruntime-node@${layerVersion}`,
    );
    return undefined;
  }
  const inputHash = createHash('sha256')
    .update(JSON.stringify([CACHE_FORMAT, modelFingerprint(localPath), ort.version, level]))
    .digest('hex');
  const key = inputHash.slice(0, 32);
  const fileName = `${path.basename(localPath, path.extname(localPath))}.ort`;
  const cached = path.join(precompiledCacheDir(), `${key}.ort`);
  const result = (): PrecompiledModel => ({ path: cached, fileName, sizeBytes: fs.statSync(cached).size, level, onnxruntimeVersion: ort.version, inputHash });
  if (fs.existsSync(cached)) {
    touch(cached);
    return result();
  }
  const earlier = refused.get(key);
  if (earlier !== undefined) {
    return skip(earlier);
  }
  fs.mkdirSync(path.dirname(cached), { recursive: true });
  const partial = path.join(path.dirname(cached), `${key}.${process.pid}.partial.ort`);
  const child = spawnSync(process.execPath, ['-e', CONVERT], {
    env: { ...process.env, [ENV.ORT_DISABLE_TELEMETRY]: '1', CSI_ORT_DIR: ort.dir, CSI_SOURCE: localPath, CSI_TARGET: partial, CSI_LEVEL: level },
    encoding: 'utf8',
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let reason: string | undefined;
  if (child.status !== 0 || !fs.existsSync(partial)) {
    reason = `onnxruntime-node ${ort.version} could not convert it (${(child.stderr || child.error?.message || `exit ${child.status}`).trim().slice(0, 300)})`;
  } else {
    // onnxruntime writes part of the file in a per-process order: shipped as written, the copy (and
    // every asset that holds it) would differ from synth to synth.
    try {
      canonicalizeOrtFile(partial);
    } catch (e) {
      reason = `onnxruntime-node ${ort.version} wrote it in a layout whose bytes cannot be made the same on every synth (${(e as Error).message})`;
    }
  }
  if (reason !== undefined) {
    fs.rmSync(partial, { force: true });
    refused.set(key, reason);
    return skip(reason);
  }
  fs.renameSync(partial, cached);
  return result();
}

/**
 * The child's script: load the model at `level` and save the optimised graph in ORT format. Plain
 * JavaScript, passed with `-e`, so it needs no file of its own in the package.
 */
const CONVERT = `
const ort = require(process.env.CSI_ORT_DIR);
ort.InferenceSession.create(process.env.CSI_SOURCE, {
  graphOptimizationLevel: process.env.CSI_LEVEL,
  optimizedModelFilePath: process.env.CSI_TARGET,
  logSeverityLevel: 3,
  extra: { session: { save_model_format: 'ORT' } },
}).then(
  (s) => s.release().then(() => process.exit(0)),
  (e) => { process.stderr.write(String(e && e.message || e)); process.exit(2); },
);
`;

/**
 * Shared by every app on the machine, keyed by content: the same model converts once, whatever the
 * app, its output folder or the test run. Entries unused (by their access time) for a week are removed.
 */
export function precompiledCacheDir(): string {
  const dir = path.join(os.tmpdir(), 'cdk-serverless-inference', 'precompiled');
  pruneOnce(dir);
  return dir;
}

const pruned = new Set<string>();

function pruneOnce(dir: string): void {
  if (pruned.has(dir)) return;
  pruned.add(dir);
  const staleBefore = Date.now() - 7 * 24 * 60 * 60 * 1000;
  let names: string[] = [];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const file = path.join(dir, name);
    try {
      const stat = fs.statSync(file);
      if (Math.max(stat.atimeMs, stat.mtimeMs) < staleBefore) fs.rmSync(file, { force: true });
    } catch {
      // Removed meanwhile by another synth.
    }
  }
}

/**
 * Marks an entry used by its access time. Its modification time stays: staged folders and image
 * contexts are keyed by the paths, sizes and modification times of what goes in them.
 */
function touch(file: string): void {
  try {
    fs.utimesSync(file, new Date(), fs.statSync(file).mtime);
  } catch {
    // Read-only cache: it is still usable.
  }
}

/**
 * `precompiled`, when it still fits in Lambda's 250 MB of code and layers beside `otherBytes` (the
 * model, the handler, the ONNX Runtime layer): a model that fits alone must not stop fitting because
 * of its copy. Otherwise undefined, with an info annotation.
 */
export function ifItFits(scope: IConstruct, precompiled: PrecompiledModel | undefined, otherBytes: number): PrecompiledModel | undefined {
  if (precompiled && otherBytes + precompiled.sizeBytes > LAMBDA_LIMITS.maxUnzippedCodeBytes) {
    Annotations.of(scope).addInfo(
      `the model ships without its precompiled (ORT format) copy: with its ${formatBytes(precompiled.sizeBytes)} the code and layers would be ` +
        `${formatBytes(otherBytes + precompiled.sizeBytes)}, over Lambda's ${formatBytes(LAMBDA_LIMITS.maxUnzippedCodeBytes)}`,
    );
    return undefined;
  }
  return precompiled;
}

/**
 * The custom hash of an asset staged from `entries`, when one of them is `precompiled`: each entry by
 * its place and content, the precompiled copy by its `inputHash`. The copy's bytes are canonical; the
 * asset's hash does not rely on it. Empty (the asset's own fingerprint) without a precompiled copy.
 */
export function precompiledAssetHash(entries: readonly StagedEntry[], precompiled: PrecompiledModel | undefined): { assetHash?: string } {
  if (!precompiled) return {};
  const parts = entries.map((e) => {
    if (e.source === precompiled.path) return [e.destination, 'precompiled', precompiled.inputHash];
    const content = fs.statSync(e.source).isDirectory() ? FileSystem.fingerprint(e.source, { exclude: STAGING_EXCLUDE }) : modelFingerprint(e.source);
    return [e.destination, content];
  });
  return { assetHash: createHash('sha256').update(JSON.stringify(parts)).digest('hex') };
}

/** The larger of the ONNX Runtime layers, for a model layer that may serve either architecture. */
export function largestOnnxRuntimeLayerBytes(): number {
  return Math.max(...Object.values(readManifest().layers).map((l) => l.unzippedBytes));
}
