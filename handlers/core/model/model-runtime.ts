import * as fs from 'node:fs';
import type * as Ort from 'onnxruntime-node';
import type { HandlerConfig } from '../config/config';
import { datatypeOfOrtType } from '../protocol/datatypes';
import type { ModelSignature } from '../protocol/protocol';
import type { TensorSpec } from '../protocol/tensors';
import { onnxSessionOptions } from './session-options';
import { MAX_MODEL_LOAD_RETRY_MS } from '../../../contract/defaults';
import { ENV } from '../../../contract/environment';

/** Where the loaded model came from, for logs and model metadata. */
export interface ModelSource {
  readonly path: string;
  readonly sizeBytes: number;
  readonly etag?: string;
  readonly versionId?: string;
  /** False when an S3 model was already on disk from an earlier load of this instance. */
  readonly downloaded?: boolean;
  /** The session was created from the model precompiled in ORT format. */
  readonly precompiled?: boolean;
  /** Why the precompiled model was not used although one was configured (the .onnx was loaded instead). */
  readonly precompiledRefused?: string;
}

export interface LoadedModel {
  readonly session: Ort.InferenceSession;
  readonly signature: ModelSignature;
  readonly source: ModelSource;
  readonly loadMs: number;
}

type State =
  | { readonly status: 'idle' }
  | { readonly status: 'loading'; readonly promise: Promise<LoadedModel> }
  | { readonly status: 'ready'; readonly model: LoadedModel }
  | { readonly status: 'failed'; readonly error: ModelLoadError; readonly failures: number; readonly retryAt: number };

/**
 * A model that could not be loaded. The message says why and names the file or S3 object, for the
 * log; the summary says the same without them, for answers that callers see.
 */
export class ModelLoadError extends Error {
  /** When the next attempt may start (performance.now() time), while the runtime backs off. */
  retryAt?: number;

  constructor(
    message: string,
    readonly summary: string,
    readonly cause?: unknown,
  ) {
    super(message);
    this.name = 'ModelLoadError';
  }
}

export interface ModelRuntimeHooks {
  onLoaded?(model: LoadedModel): void;
  onFailed?(error: ModelLoadError): void;
}

/**
 * Owns the instance's one inference session. It loads once and is shared by every request;
 * concurrent callers during a load share that one attempt.
 *
 * A failed load is not kept as a broken instance forever, nor retried on every call: loading can
 * mean downloading gigabytes from S3 and parsing them, and readiness probes, warm-up pings and
 * requests can come many times a second. After a failure, calls are answered with that failure
 * (the handler answers 503 with Retry-After, and `not ready`) until a pause has passed; the first
 * call after it starts a new attempt. The pause is `loadRetryMs` (MODEL_LOAD_RETRY_MS, 1 s by
 * default) after the first failure and doubles after each further one, up to 60 s: a cause fixed
 * by the operator (an object uploaded, a permission granted) is picked up within a minute, and a
 * lasting one costs one attempt a minute at most. A success forgets the failures.
 */
export class ModelRuntime {
  private state: State = { status: 'idle' };

  constructor(
    private readonly config: HandlerConfig,
    private readonly hooks: ModelRuntimeHooks = {},
  ) {}

  get isReady(): boolean {
    return this.state.status === 'ready';
  }

  /** The last load's error, while the model is not loaded. */
  get lastError(): Error | undefined {
    return this.state.status === 'failed' ? this.state.error : undefined;
  }

  get current(): LoadedModel | undefined {
    return this.state.status === 'ready' ? this.state.model : undefined;
  }

  /**
   * The loaded model, loading it first when needed. After a failure it rejects with that failure
   * until the back-off pause has passed, then tries again.
   */
  ensureLoaded(): Promise<LoadedModel> {
    switch (this.state.status) {
      case 'ready':
        return Promise.resolve(this.state.model);
      case 'loading':
        return this.state.promise;
      case 'failed':
        if (performance.now() < this.state.retryAt) return Promise.reject(this.state.error);
        return this.startLoad(this.state.failures);
      default:
        return this.startLoad(0);
    }
  }

  private startLoad(failures: number): Promise<LoadedModel> {
    const promise = this.load().then(
      (model) => {
        this.state = { status: 'ready', model };
        this.hooks.onLoaded?.(model);
        return model;
      },
      (e: unknown) => {
        const error = e instanceof ModelLoadError ? e : new ModelLoadError(`${this.describeLocation()}: ${(e as Error).message}`, 'the model cannot be loaded', e);
        const base = this.config.loadRetryMs;
        const pause = Math.min(base * 2 ** Math.min(failures, 30), Math.max(base, MAX_MODEL_LOAD_RETRY_MS));
        error.retryAt = performance.now() + pause;
        this.state = { status: 'failed', error, failures: failures + 1, retryAt: error.retryAt };
        this.hooks.onFailed?.(error);
        throw error;
      },
    );
    this.state = { status: 'loading', promise };
    return promise;
  }

  private async load(): Promise<LoadedModel> {
    const started = performance.now();
    const ort = this.onnxRuntime();
    let refused: string | undefined;
    if (this.hasPrecompiled()) {
      // The precompiled model is an optimisation only: whatever keeps it from loading (absent from
      // an older deployment, corrupt, written by an onnxruntime this one cannot read) is logged and
      // the .onnx loaded as before.
      try {
        const source = await this.fetchPrecompiled();
        const session = await ort.InferenceSession.create(source.path, { ...this.sessionOptions(), extra: { session: ORT_FORMAT_SESSION_CONFIG } });
        return this.loaded(session, { ...source, precompiled: true }, started);
      } catch (e) {
        refused = (e as Error).message;
      }
    }
    const source = await this.fetch();
    let session: Ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(source.path, this.sessionOptions());
    } catch (e) {
      throw new ModelLoadError(`onnxruntime cannot load the model ${source.path}: ${(e as Error).message}`, 'onnxruntime cannot load the model', e);
    }
    return this.loaded(session, { ...source, ...(refused !== undefined ? { precompiled: false, precompiledRefused: refused } : {}) }, started);
  }

  private loaded(session: Ort.InferenceSession, source: ModelSource, started: number): LoadedModel {
    const signature = {
      inputs: session.inputMetadata.map((m) => specOf(m, 'input')),
      outputs: session.outputMetadata.map((m) => specOf(m, 'output')),
    };
    return { session, signature, source, loadMs: Math.round(performance.now() - started) };
  }

  /** The same options for the .onnx and the precompiled model (see session-options.ts). */
  private sessionOptions(): Ort.InferenceSession.SessionOptions {
    return onnxSessionOptions(this.config);
  }

  private hasPrecompiled(): boolean {
    const loc = this.config.location;
    return loc.kind === 'file' ? loc.precompiledPath !== undefined : loc.precompiledUri !== undefined;
  }

  private async fetchPrecompiled(): Promise<ModelSource> {
    const loc = this.config.location;
    if (loc.kind === 'file') {
      const stat = await fs.promises.stat(loc.precompiledPath!);
      return { path: loc.precompiledPath!, sizeBytes: stat.size };
    }
    const { fetchS3Model } = await import('./s3-model.js');
    // Its key holds the model's content hash, so the latest version is the one synth wrote.
    const fetched = await fetchS3Model({ ...loc.fetchSettings, uri: loc.precompiledUri!, cacheDir: loc.cacheDir, idleTimeoutMs: loc.idleTimeoutMs });
    return { path: fetched.path, sizeBytes: fetched.sizeBytes, etag: fetched.etag, versionId: fetched.versionId, downloaded: fetched.downloaded };
  }

  private async fetch(): Promise<ModelSource> {
    const loc = this.config.location;
    if (loc.kind === 'file') {
      let stat: fs.Stats;
      try {
        stat = await fs.promises.stat(loc.path);
      } catch (e) {
        throw new ModelLoadError(`the model file ${loc.path} does not exist or cannot be read`, 'the model file does not exist or cannot be read', e);
      }
      return { path: loc.path, sizeBytes: stat.size };
    }
    // Imported here, not at the top: a function whose model is a local file never loads the S3 client.
    const { fetchS3Model } = await import('./s3-model.js');
    try {
      const fetched = await fetchS3Model({
        ...loc.fetchSettings,
        uri: loc.uri,
        versionId: loc.versionId,
        cacheDir: loc.cacheDir,
        idleTimeoutMs: loc.idleTimeoutMs,
        // onnxruntime's require (tens of ms, synchronous) while the ranges are in flight, not after
        // the download: the socket buffers hold what arrives meanwhile. A failure is left for
        // load() to meet again and report after the fetch, as before.
        onTransferStarted: () => {
          try {
            this.onnxRuntime();
          } catch {
            // Reported by load().
          }
        },
      });
      return {
        path: fetched.path,
        sizeBytes: fetched.sizeBytes,
        etag: fetched.etag,
        versionId: fetched.versionId,
        downloaded: fetched.downloaded,
      };
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      throw new ModelLoadError(
        `cannot fetch the model ${loc.uri}: ${(e as Error).message}`,
        `the model cannot be fetched from S3${typeof code === 'string' ? ` (${code})` : ''}`,
        e,
      );
    }
  }

  /**
   * onnxruntime, with the environment its native code reads when it loads: ORT_DISABLE_TELEMETRY as
   * the configuration decided. onnxruntime takes it from the process environment and from nowhere
   * else, so it is written there; the first load in a process decides for the process.
   */
  private onnxRuntime(): typeof Ort {
    process.env[ENV.ORT_DISABLE_TELEMETRY] = this.config.ortDisableTelemetry;
    return loadOnnxRuntime();
  }

  private describeLocation(): string {
    const loc = this.config.location;
    return loc.kind === 'file' ? loc.path : loc.uri;
  }
}

function specOf(m: Ort.InferenceSession.ValueMetadata, kind: 'input' | 'output'): TensorSpec {
  if (!m.isTensor) {
    const message = `the model's ${kind} '${m.name}' is not a tensor; the inference protocol carries tensors only`;
    throw new ModelLoadError(message, message);
  }
  const datatype = datatypeOfOrtType(m.type);
  if (!datatype) {
    const message = `the model's ${kind} '${m.name}' has element type ${m.type}, which the inference protocol cannot carry`;
    throw new ModelLoadError(message, message);
  }
  return { name: m.name, datatype, shape: m.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : typeof d === 'string' && d ? d : -1)) };
}

/**
 * How a session reads a model in ORT format: memory-mapped, its initializers used where they lie in
 * the mapping rather than copied, so the weights are file-backed pages the kernel can drop and share
 * instead of anonymous memory (only what a kernel prepacks is copied).
 */
const ORT_FORMAT_SESSION_CONFIG = {
  // onnxruntime-node prefixes these with `session.`: the keys of onnxruntime's session config.
  load_model_format: 'ORT',
  use_memory_mapped_ort_model: '1',
  use_ort_model_bytes_directly: '1',
  use_ort_model_bytes_for_initializers: '1',
};

let ort: typeof Ort | undefined;

/**
 * onnxruntime-node is a native addon that the ONNX Runtime layer provides under /opt/nodejs. It is
 * loaded with `require` because Lambda finds layer packages through NODE_PATH, which ES module
 * imports ignore. ModelRuntime loads it first, with the environment the configuration decided (its
 * usage telemetry off: onnxruntime 1.30's Linux build collects it unless told not to, a model server
 * has no business phoning home, and it costs ~10 ms of session creation); later calls get the same
 * module.
 */
export function loadOnnxRuntime(): typeof Ort {
  if (!ort) {
    try {
      ort = require('onnxruntime-node') as typeof Ort;
    } catch (e) {
      throw new ModelLoadError(
        `cannot load onnxruntime-node (${(e as Error).message}); on Lambda it comes from the ONNX Runtime layer, locally install it with npm`,
        'onnxruntime-node cannot be loaded',
        e,
      );
    }
  }
  return ort;
}
