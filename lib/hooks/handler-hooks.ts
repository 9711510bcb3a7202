import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Construct } from 'constructs';
import { HOOKS_MODULE_FILE } from '../../contract/hooks';
import { validationError } from '../private/errors';
import { bundleHooks, HooksBuildError, hooksOf, writeHooksBundle } from './hooks-bundle';
import { stagingDir } from '../private/staging';

/** How a hooks entry is bundled. */
export interface HandlerHooksOptions {
  /**
   * Modules left out of the bundle, to be found at run time (in a layer of your own). onnxruntime-node
   * is always left out: the ONNX Runtime layer brings it.
   * @default - only onnxruntime-node
   */
  readonly externalModules?: string[];

  /**
   * Identifiers replaced with constant expressions at bundling, as esbuild's `define`:
   * `{ 'process.env.STAGE': JSON.stringify('prod') }`.
   * @default - none
   */
  readonly define?: { [identifier: string]: string };

  /**
   * Whether a source map goes beside the bundle (and the function gets
   * `NODE_OPTIONS=--enable-source-maps`), so that a hook's stack trace names its own source lines.
   * @default true
   */
  readonly sourceMap?: boolean;
}

/** What a bound `HandlerHooks` gives the inference function: the bundled hooks module and what it exports. */
export interface HandlerHooksConfig {
  /** The folder that holds the bundled module, `hooks.mjs` (and its source map). */
  readonly directory: string;
  /** The hooks the module exports: `preprocess`, `postprocess`, `afterResponse`. */
  readonly hooks: string[];
  /** Whether the bundle has a source map. */
  readonly sourceMap: boolean;
}

/**
 * Pre- and post-processing around the library's handler, and work after the response: a
 * TypeScript or JavaScript file whose named exports `preprocess`, `postprocess` and
 * `afterResponse` are the hooks (see docs/hooks.md). The inference function bundles it
 * at synth, beside the prebuilt handler, with the esbuild this library brings: no Docker, no
 * network, the same bytes wherever it runs, so the code's asset hash changes only when the entry
 * or what it imports does. An entry that does not build fails the synth with esbuild's messages,
 * each naming the file, line and column.
 */
export abstract class HandlerHooks {
  /** The hooks exported by `entry`, a `.ts`, `.mts`, `.js` or `.mjs` file. */
  public static fromEntry(entry: string, options: HandlerHooksOptions = {}): HandlerHooks {
    return new EntryHooks(entry, options);
  }

  /** Bundles the hooks for a function in `scope`; a failure is a validation error of `scope`. */
  public abstract bind(scope: Construct): HandlerHooksConfig;
}

class EntryHooks extends HandlerHooks {
  constructor(
    private readonly entry: string,
    private readonly options: HandlerHooksOptions,
  ) {
    super();
  }

  public bind(scope: Construct): HandlerHooksConfig {
    const sourceMap = this.options.sourceMap ?? true;
    try {
      const bundle = bundleHooks({ entry: this.entry, externalModules: this.options.externalModules, define: this.options.define, sourceMap });
      const hooks = hooksOf(bundle, this.entry);
      // Keyed by the bundle's bytes: a folder written once is never rewritten, so what is staged
      // from it (by path, size and time) stays the same from one synth to the next.
      const directory = stagingDir(scope, 'hooks', bundle.hash.slice(0, 32));
      if (!fs.existsSync(path.join(directory, HOOKS_MODULE_FILE))) {
        const building = `${directory}.${process.pid}.partial`;
        fs.rmSync(building, { recursive: true, force: true });
        writeHooksBundle(bundle, building);
        fs.rmSync(directory, { recursive: true, force: true });
        fs.renameSync(building, directory);
      }
      return { directory, hooks, sourceMap };
    } catch (e) {
      if (e instanceof HooksBuildError) throw validationError(scope, `hooks: ${e.message}`);
      throw e;
    }
  }
}
