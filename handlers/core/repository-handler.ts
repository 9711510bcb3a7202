/**
 * The handler of a model repository: many models behind one function, each loaded on its first
 * request and unloaded, least recently used first, under a memory budget (repository/).
 *
 * Each model version gets the single-model handling of handler.ts (its routes, request checks
 * against its own signature, hooks, answers), through an InferenceService of its own whose
 * backend is the model leased for the request. What is the repository's own is answered here: the
 * server routes, the index (`POST /v2/repository/index`), unknown models (404), names that would
 * leave the root (400), a model larger than the budget (507, see MODEL_TOO_LARGE_STATUS), and
 * warm-ups, which load the warm models (MODEL_REPOSITORY_WARM_MODELS).
 */
import { randomUUID } from 'node:crypto';
import * as path from 'node:path';
import { METRIC } from '../../contract/metrics';
import { MODEL_TOO_LARGE_STATUS, REPOSITORY_INDEX_ROUTE, REPOSITORY_SESSION_MEMORY_RATIO } from '../../contract/repository';
import { MODELS_SEGMENT, ROUTES_ROOT, SERVER_NAME, VERSIONS_SEGMENT } from '../../contract/routes';
import type { WarmupResponse } from '../../contract/warmup';
import { OnnxBackend } from './backends/onnx-backend';
import type { HandlerConfig, ModelLocation } from './config/config';
import { type InferenceEntry, InferenceService, type InvocationContext, describeCause, misconfiguredEntry, sleep } from './handler';
import type { InferenceHooks } from './hooks/hooks';
import { type HttpResponse, jsonResponse, readEvent } from './http/events';
import { type ResponseStream, writeHttpResponse, writeValue } from './http/streaming';
import type { WarmupRequest } from './http/warmup';
import { type LoadedModel, ModelLoadError, ModelRuntime } from './model/model-runtime';
import type { InferenceHandlerOptions } from './onnx-handler';
import { InferenceError, badRequest, isInferenceError, methodNotAllowed, notFound } from './protocol/errors';
import { stringifyJson } from './protocol/json';
import { FileBudget, FilesInUseError } from './repository/file-budget';
import { CacheFullError, type ModelCacheStats, ModelCache, type ModelKey, TooLargeError, keyOf } from './repository/model-cache';
import { DirectoryStore, ModelRepository, type RepositoryStore, type RepositoryVersion, isValidName } from './repository/model-repository';
import { type RepositoryConfig, readRepositoryConfig } from './repository/repository-config';
import { type Telemetry, createTelemetry } from './telemetry';
import { VERSION } from './version';

/** A model version's handling: its runtime (one session), its InferenceService and telemetry. */
interface Slot {
  readonly key: ModelKey;
  readonly runtime: ModelRuntime;
  readonly service: InferenceService<LoadedModel>;
}

/** Where a request goes: the server's routes, the index, or a model. */
type Target =
  | { readonly kind: 'server'; readonly segments: readonly string[] }
  | { readonly kind: 'index' }
  | { readonly kind: 'model'; readonly name: string; readonly version?: string };

/** The repository handler, in both of Lambda's forms, with its cache for tests and `serve` to read. */
export interface RepositoryEntry extends InferenceEntry {
  /** The loaded models and the budget's figures. */
  stats(): ModelCacheStats & { readonly diskBudgetBytes?: number; readonly diskUsedBytes?: number; readonly diskRemovals?: number };
}

/** createModelRepositoryEntry's buffered handler. */
export async function createModelRepositoryHandler(options: InferenceHandlerOptions = {}) {
  return (await createModelRepositoryEntry(options)).handle;
}

/**
 * The handler of a model repository (MODEL_REPOSITORY_PATH or MODEL_REPOSITORY_S3_URI). Nothing is
 * loaded at init: each model loads on its first request, the warm ones on the first warm-up.
 */
export async function createModelRepositoryEntry(options: InferenceHandlerOptions = {}): Promise<RepositoryEntry> {
  let config: RepositoryConfig;
  try {
    config = readRepositoryConfig(options.env ?? process.env);
  } catch (e) {
    return { ...misconfiguredEntry(e as Error), stats: () => emptyStats() };
  }
  const service = new RepositoryService(config, options.hooks ?? {});
  return { handle: service.handle, handleStream: service.handleStream, stats: () => service.stats() };
}

class RepositoryService {
  private coldStart = true;
  private readonly instanceId = randomUUID();
  private readonly repository: ModelRepository;
  private readonly cache: ModelCache<LoadedModel>;
  private readonly slots = new Map<string, Slot>();
  private readonly telemetries = new Map<string, Telemetry>();
  private readonly telemetry: Telemetry;
  private files?: Promise<FileBudget>;
  private filesReady?: FileBudget;

  constructor(
    private readonly config: RepositoryConfig,
    private readonly hooks: InferenceHooks<unknown>,
  ) {
    this.telemetry = createTelemetry(config.base);
    const store =
      config.source.kind === 'directory'
        ? new DirectoryStore(config.source.root)
        : lazyS3Store(config.source.uri, lazyS3Client(config.s3.fetchSettings.forcePathStyle, config.s3.idleTimeoutMs));
    this.repository = new ModelRepository(store, config.refreshMs);
    const warm = new Set(config.warmModels.map((m) => m.name));
    this.cache = new ModelCache<LoadedModel>({
      budgetBytes: config.memoryBudgetBytes,
      waitMs: config.waitMs,
      preferred: (key) => warm.has(key.name),
      onEvicted: (key, bytes) => {
        this.slots.delete(keyOf(key));
        const t = this.telemetryOf(key.name);
        t.logger.info('model unloaded to make room', { model: key.name, version: key.version, bytes });
        t.record(METRIC.MODEL_EVICTED, 1);
        // Its own line: the model evicted is not the one whose request flushes next.
        t.flush();
      },
    });
  }

  stats(): ReturnType<RepositoryEntry['stats']> {
    const disk = this.filesReady?.stats();
    return { ...this.cache.stats(), ...(disk ? { diskBudgetBytes: disk.budgetBytes, diskUsedBytes: disk.usedBytes, diskRemovals: disk.removals } : {}) };
  }

  readonly handle = async (event: unknown, context?: InvocationContext): Promise<unknown> => {
    const coldStart = this.countColdStart();
    const incoming = readEvent(event);
    const requestId = requestIdOf(event, context);
    try {
      switch (incoming.kind) {
        case 'warmup':
          return await this.warmup(incoming.warmup, coldStart);
        case 'http': {
          const target = targetOf(incoming.request.method, incoming.request.path);
          if (target.kind !== 'model') return await this.answer(target);
          return await this.forModel(target, requestId, async (slot) => {
            const answer = (await slot.service.handle(event, context)) as HttpResponse;
            return { value: answer, failed: answer.statusCode >= 500 };
          });
        }
        case 'direct': {
          const target = directTarget(incoming.body);
          return await this.forModel(target, requestId, async (slot) => ({ value: await slot.service.handle(stripTarget(incoming.body), context), failed: false }));
        }
      }
    } catch (e) {
      const { status, message, headers } = this.describeFailure(e, requestId);
      if (incoming.kind === 'http') return jsonResponse(status, stringifyJson({ error: message }), headers);
      if (incoming.kind === 'warmup') return { warmed: false, modelReady: false, instanceId: this.instanceId, error: message } satisfies WarmupResponse;
      // A direct invocation's failure is a function error, as InferenceService reports it.
      const error = new Error(`[${status}] ${message}`);
      error.name = status < 500 ? 'InferenceRequestError' : 'InferenceServerError';
      throw error;
    } finally {
      this.telemetry.flush();
    }
  };

  readonly handleStream = async (event: unknown, responseStream: ResponseStream, context?: InvocationContext): Promise<void> => {
    const incoming = readEvent(event);
    if (incoming.kind === 'http') {
      let target: Target | undefined;
      try {
        target = targetOf(incoming.request.method, incoming.request.path);
      } catch {
        // Answered by handle below.
      }
      if (target?.kind === 'model') {
        this.countColdStart();
        const requestId = requestIdOf(event, context);
        let failure: unknown;
        try {
          await this.forModel(target, requestId, async (slot) => {
            await slot.service.handleStream(event, responseStream, context);
            return { value: undefined, failed: false };
          });
          return;
        } catch (e) {
          failure = e;
        } finally {
          this.telemetry.flush();
        }
        const { status, message, headers } = this.describeFailure(failure, requestId);
        await writeHttpResponse(responseStream, jsonResponse(status, stringifyJson({ error: message }), headers));
        return;
      }
    }
    const answer = await this.handle(event, context);
    await (incoming.kind === 'http' ? writeHttpResponse(responseStream, answer as HttpResponse) : writeValue(responseStream, answer));
  };

  /** Whether this is the instance's first invocation (counted once). */
  private countColdStart(): boolean {
    if (!this.coldStart) return false;
    this.coldStart = false;
    this.telemetry.record(METRIC.COLD_START, 1);
    return true;
  }

  /** The server's routes and the index. */
  private async answer(target: Exclude<Target, { kind: 'model' }>): Promise<HttpResponse> {
    if (target.kind === 'index') {
      const models = await this.readRepository(() => this.repository.models());
      const index = models.flatMap((m) =>
        [...m.versions.keys()].map((version) => ({ name: m.name, version, state: this.cache.isLoaded({ name: m.name, version }) ? 'READY' : 'UNAVAILABLE' })),
      );
      return jsonResponse(200, stringifyJson(index));
    }
    const route = target.segments.join('/');
    if (route === '') return jsonResponse(200, stringifyJson({ name: SERVER_NAME, version: VERSION, extensions: ['binary_tensor_data', 'model_repository'] }));
    if (route === 'health/live') return jsonResponse(200, stringifyJson({ live: true }));
    if (route === 'health/ready') return jsonResponse(200, stringifyJson({ ready: true }));
    throw notFound(
      `no route /${ROUTES_ROOT}/${route}; this endpoint serves POST /v2/models/{name}/infer for each model of its repository, and POST /v2/repository/index lists them`,
    );
  }

  /**
   * Runs `fn` with the model's slot while a lease holds its session: the model is looked up (404),
   * loaded if need be (one load, whatever the concurrency) and released once `fn` is done.
   */
  private async forModel<T>(target: { name: string; version?: string }, requestId: string, fn: (slot: Slot) => Promise<{ value: T; failed: boolean }>, counted = true): Promise<T> {
    const started = performance.now();
    const model = await this.readRepository(() => this.repository.model(target.name));
    if (!model) throw notFound(`unknown model '${target.name}'; the repository has no model of that name (POST /v2/repository/index lists them)`);
    const version = target.version ?? model.defaultVersion;
    const found = model.versions.get(version);
    if (!found) throw notFound(`model '${target.name}' has no version '${version}'; it has versions ${[...model.versions.keys()].sort().join(', ')}`);
    const telemetry = this.telemetryOf(target.name);
    const lease = await this.lease(found, requestId);
    if (counted) telemetry.record(METRIC.MODEL_CACHE_HIT, lease.hit ? 1 : 0);
    let failed = true;
    try {
      const result = await fn(this.slots.get(keyOf(found))!);
      failed = result.failed;
      return result.value;
    } finally {
      lease.release();
      if (counted) {
        telemetry.record(METRIC.MODEL_REQUEST_MS, performance.now() - started);
        if (failed) telemetry.record(METRIC.MODEL_REQUEST_FAILED, 1);
      }
      telemetry.flush();
    }
  }

  /** The repository's listing; a failure to read it (S3 unreachable, access denied) is a 503 whose cause goes to the log. */
  private async readRepository<T>(read: () => Promise<T>): Promise<T> {
    try {
      return await read();
    } catch (e) {
      const code = (e as { name?: unknown }).name;
      throw new InferenceError(
        503,
        `the model repository cannot be read now${typeof code === 'string' && code !== 'Error' ? ` (${code})` : ''}; retry shortly`,
        { 'Retry-After': '1' },
        `${this.repository.store.root}: ${(e as Error).message}`,
      );
    }
  }

  /** A lease on the model version's session, loading it if need be; a failure is the InferenceError to answer. */
  private async lease(found: RepositoryVersion, requestId: string) {
    const key: ModelKey = { name: found.name, version: found.version };
    const slot = this.slotOf(found);
    const last = slot.runtime.lastError as ModelLoadError | undefined;
    if (last?.retryAt !== undefined && performance.now() < last.retryAt) throw this.notAvailable(key, last);
    const bytes = REPOSITORY_SESSION_MEMORY_RATIO * Math.max(found.model.sizeBytes, found.precompiled?.sizeBytes ?? 0);
    try {
      return await this.cache.lease(key, {
        bytes,
        load: async () => {
          if (this.config.source.kind === 's3') {
            const files = await this.fileBudget();
            await files.reserve(key, this.cacheDirOf(key), found.model.sizeBytes + (found.precompiled?.sizeBytes ?? 0));
          }
          return slot.runtime.ensureLoaded();
        },
        unload: (m) => {
          m.session.release().catch(() => undefined);
        },
      });
    } catch (e) {
      if (e instanceof TooLargeError) {
        throw new InferenceError(
          MODEL_TOO_LARGE_STATUS,
          `model '${key.name}' version '${key.version}' needs about ${e.bytes} bytes once loaded, more than this function's model budget of ${e.budgetBytes} bytes: it cannot be loaded here (give the function more memory or ephemeral storage, or serve the model from an endpoint of its own)`,
        );
      }
      if (e instanceof CacheFullError || e instanceof FilesInUseError) {
        this.telemetry.logger.warn('no room for the model: every loaded model is in use', { requestId, model: key.name, version: key.version });
        throw new InferenceError(503, `model '${key.name}' cannot be loaded now: the models loaded are all serving requests; retry shortly`, { 'Retry-After': '1' });
      }
      if (e instanceof ModelLoadError) throw this.notAvailable(key, e);
      throw e;
    }
  }

  private notAvailable(key: ModelKey, e: ModelLoadError): InferenceError {
    const waitS = e.retryAt === undefined ? 0 : Math.max(0, Math.ceil((e.retryAt - performance.now()) / 1000));
    const next = waitS > 0 ? `the next attempt to load it is in ${waitS} s` : 'the next request retries the load';
    return new InferenceError(503, `model '${key.name}' is not available: ${e.summary}; ${next}`, waitS > 0 ? { 'Retry-After': String(waitS) } : {}, e.message);
  }

  /** The model version's slot: its runtime and InferenceService, made on first use and dropped when it is unloaded. */
  private slotOf(found: RepositoryVersion): Slot {
    const key: ModelKey = { name: found.name, version: found.version };
    const id = keyOf(key);
    const known = this.slots.get(id);
    if (known) return known;
    const config: HandlerConfig = { ...this.config.base, modelName: key.name, modelVersion: key.version, location: this.locationOf(found) };
    const telemetry = this.telemetryOf(key.name);
    const runtime = new ModelRuntime(config, {
      onLoaded: (m) => {
        if (m.source.precompiledRefused !== undefined)
          telemetry.logger.warn('precompiled model not used; loaded the .onnx instead', { version: key.version, reason: m.source.precompiledRefused });
        telemetry.logger.info('model loaded', { version: key.version, source: m.source, loadMs: m.loadMs });
        telemetry.record(METRIC.MODEL_LOAD_MS, m.loadMs);
      },
      onFailed: (e) => {
        telemetry.logger.error('model failed to load; a later request retries', { version: key.version, error: e.message, cause: describeCause(e.cause) });
        telemetry.record(METRIC.MODEL_LOAD_FAILED, 1);
      },
    });
    // The service's own telemetry without ColdStart: this handler counts the instance's once.
    const serviceTelemetry: Telemetry = {
      logger: telemetry.logger,
      record: (name, value) => {
        if (name !== METRIC.COLD_START) telemetry.record(name, value);
      },
      flush: () => telemetry.flush(),
    };
    const slot: Slot = { key, runtime, service: new InferenceService(config, new OnnxBackend(config, runtime), serviceTelemetry, this.hooks) };
    this.slots.set(id, slot);
    return slot;
  }

  private locationOf(found: RepositoryVersion): ModelLocation {
    if (this.config.source.kind === 'directory') {
      return { kind: 'file', path: found.model.location, ...(found.precompiled ? { precompiledPath: found.precompiled.location } : {}) };
    }
    return {
      kind: 's3',
      uri: found.model.location,
      ...(found.precompiled ? { precompiledUri: found.precompiled.location } : {}),
      cacheDir: this.cacheDirOf(found),
      idleTimeoutMs: this.config.s3.idleTimeoutMs,
      fetchSettings: this.config.s3.fetchSettings,
    };
  }

  private cacheDirOf(key: ModelKey): string {
    return path.join(this.config.cacheDir, key.name, key.version);
  }

  /** The /tmp budget, from MODEL_CACHE_DISK_MB or the cache directory's file system (90 % of it). */
  private fileBudget(): Promise<FileBudget> {
    this.files ??= (async () => {
      let budget = this.config.diskBudgetBytes;
      if (budget === undefined) {
        const fs = await import('node:fs');
        await fs.promises.mkdir(this.config.cacheDir, { recursive: true });
        const s = await fs.promises.statfs(this.config.cacheDir);
        budget = Math.floor(s.blocks * s.bsize * 0.9);
      }
      this.filesReady = new FileBudget(budget, (key) => this.cache.holds(key));
      return this.filesReady;
    })();
    return this.files;
  }

  private telemetryOf(name: string): Telemetry {
    let t = this.telemetries.get(name);
    if (!t) {
      t = createTelemetry({ ...this.config.base, modelName: name });
      this.telemetries.set(name, t);
    }
    return t;
  }

  /** Loads the warm models (MODEL_REPOSITORY_WARM_MODELS); the instance is warm once they are. */
  private async warmup(warmup: WarmupRequest, coldStart: boolean): Promise<WarmupResponse> {
    const errors: string[] = [];
    for (const m of this.config.warmModels) {
      try {
        // A warm-up is not a request of the model: its metrics count only the load.
        await this.forModel(m, 'warm-up', async () => ({ value: undefined, failed: false }), false);
      } catch (e) {
        errors.push(isInferenceError(e) ? e.message : `model '${m.name}' cannot be loaded`);
      }
    }
    if (warmup.holdMs > 0) await sleep(warmup.holdMs);
    const ready = errors.length === 0;
    return { warmed: ready, modelReady: ready, instanceId: this.instanceId, coldStart, ...(ready ? {} : { error: errors.join('; ') }) };
  }

  private describeFailure(e: unknown, requestId: string): { status: number; message: string; headers?: Record<string, string> } {
    if (isInferenceError(e)) {
      const log = { requestId, status: e.status, error: e.message, ...(e.detail !== undefined ? { detail: e.detail } : {}) };
      if (e.status >= 500) this.telemetry.logger.error('request failed', log);
      else this.telemetry.logger.info('request refused', log);
      const withId = e.status >= 500 || e.detail !== undefined;
      return { status: e.status, message: withId ? `${e.message} (request id ${requestId})` : e.message, headers: e.headers };
    }
    this.telemetry.logger.error('internal error', { requestId, error: describeCause(e) });
    return { status: 500, message: `internal error (request id ${requestId})` };
  }
}

/** Where an HTTP request goes. A model or version name that is not a plain name (`..`, `/`, encoded or not) is a 400. */
export function targetOf(method: string, rawPath: string): Target {
  const segments = rawPath
    .split('/')
    .filter((s) => s.length > 0)
    .map(decodeSegment);
  const start = segments.indexOf(ROUTES_ROOT);
  if (start < 0) throw notFound(`no route /${segments.join('/')}; routes are under /${ROUTES_ROOT} (POST /${ROUTES_ROOT}/models/{name}/infer)`);
  const s = segments.slice(start + 1);
  if (s[0] === MODELS_SEGMENT && s.length >= 2) {
    const name = checkName('model', s[1]);
    if (s[2] === VERSIONS_SEGMENT) {
      if (s.length < 4) throw notFound(`no route /${segments.join('/')}`);
      return { kind: 'model', name, version: checkName('version', s[3]) };
    }
    return { kind: 'model', name };
  }
  if (s.length === REPOSITORY_INDEX_ROUTE.segments.length && s.every((x, i) => x === REPOSITORY_INDEX_ROUTE.segments[i])) {
    if (method !== REPOSITORY_INDEX_ROUTE.method) throw methodNotAllowed(method, `/${segments.join('/')}`, [REPOSITORY_INDEX_ROUTE.method]);
    return { kind: 'index' };
  }
  return { kind: 'server', segments: s };
}

function checkName(what: 'model' | 'version', name: string): string {
  if (!isValidName(name)) {
    throw badRequest(
      `the ${what} name ${JSON.stringify(name.slice(0, 200))} is not valid: a name is letters, digits, '_', '-' and '.', not starting with '.', and cannot leave the model repository`,
    );
  }
  return name;
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new InferenceError(400, `the path segment '${segment.slice(0, 200)}' is not valid percent-encoding`);
  }
}

/** A direct invocation names its model in the body: `{"model_name": "churn", "model_version": "2", "inputs": [...]}`. */
function directTarget(body: unknown): { name: string; version?: string } {
  const b = body as { model_name?: unknown; model_version?: unknown } | null;
  if (typeof b?.model_name !== 'string')
    throw badRequest('a direct invocation of a model repository names its model: add "model_name" (and optionally "model_version") to the request');
  const name = checkName('model', b.model_name);
  if (b.model_version === undefined) return { name };
  if (typeof b.model_version !== 'string') throw badRequest('"model_version" must be a string');
  return { name, version: checkName('version', b.model_version) };
}

function stripTarget(body: unknown): unknown {
  const { model_name: _name, model_version: _version, ...rest } = body as Record<string, unknown>;
  return rest;
}

function requestIdOf(event: unknown, context: InvocationContext | undefined): string {
  return context?.awsRequestId ?? (event as { requestContext?: { requestId?: string } } | null | undefined)?.requestContext?.requestId ?? randomUUID();
}

/** The S3 store, imported (with the SDK) on its first use: a handler of a local repository never loads it. */
function lazyS3Store(uri: string, client: () => Promise<import('@aws-sdk/client-s3').S3Client>): RepositoryStore {
  let store: Promise<RepositoryStore> | undefined;
  const get = () => {
    store ??= import('./repository/s3-store.js').then(({ S3Store }) => new S3Store(uri, client));
    return store;
  };
  return {
    root: uri,
    listModels: async () => (await get()).listModels(),
    readModel: async (name) => (await get()).readModel(name),
  };
}

function lazyS3Client(forcePathStyle: boolean, idleTimeoutMs: number) {
  let client: ReturnType<typeof createClient> | undefined;
  const createClient = async () => (await import('./model/s3-client.js')).createS3Client(forcePathStyle, idleTimeoutMs);
  return () => {
    client ??= createClient();
    return client;
  };
}

function emptyStats(): ModelCacheStats {
  return { budgetBytes: 0, usedBytes: 0, peakBytes: 0, loads: 0, hits: 0, evictions: 0, loaded: [] };
}
