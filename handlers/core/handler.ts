import { randomUUID } from 'node:crypto';
import type * as Ort from 'onnxruntime-node';
import { HandlerConfig, readConfig } from './config';
import { ORT_TYPE_OF } from './datatypes';
import { InferenceError, isInferenceError } from './errors';
import { HttpRequest, HttpResponse, jsonResponse, parseJsonBody, readEvent } from './events';
import type { HookContext, InferenceHooks } from './hooks';
import { stringifyJson } from './json';
import { LoadedModel, ModelRuntime, loadOnnxRuntime } from './model-runtime';
import { InferPlan, OutputResult, buildInferResponse, planInference } from './protocol';
import { matchRoute } from './routes';
import { Telemetry, createTelemetry } from './telemetry';
import { VERSION } from './version';
import type { WarmupRequest } from './warmup';

export interface InferenceHandlerOptions {
  /** Pre- and post-processing around inference. @default - none */
  readonly hooks?: InferenceHooks;
  /** Where the configuration is read from. @default process.env */
  readonly env?: NodeJS.ProcessEnv;
}

/** Minimal view of Lambda's context object: only the request id is used. */
export interface InvocationContext {
  readonly awsRequestId?: string;
}

export type InferenceHandler = (event: unknown, context?: InvocationContext) => Promise<unknown>;

/**
 * Creates the Lambda handler. The model starts loading at once, during the function's init phase;
 * the returned promise resolves when it is loaded or after MODEL_INIT_WAIT_MS (8 s by default),
 * whichever comes first, so that a model too big to load within Lambda's 10 s init limit finishes
 * loading during the first request instead of failing every cold start. A failed load is answered
 * with a clear 503 and retried by the next request. Use it as
 * `export const handler = await createInferenceHandler();` in an ES module.
 */
export async function createInferenceHandler(options: InferenceHandlerOptions = {}): Promise<InferenceHandler> {
  let config: HandlerConfig;
  try {
    config = readConfig(options.env ?? process.env);
  } catch (e) {
    return misconfiguredHandler(e as Error);
  }
  const telemetry = createTelemetry(config.modelName);
  const runtime = new ModelRuntime(config, {
    onLoaded: (m) => {
      telemetry.logger.info('model loaded', { source: m.source, loadMs: m.loadMs, signature: m.signature });
      telemetry.record('ModelLoadMs', m.loadMs);
    },
    onFailed: (e) => {
      telemetry.logger.error('model failed to load; the next request retries', { error: e.message, cause: describeCause(e.cause) });
      telemetry.record('ModelLoadFailed', 1);
    },
  });
  const loading = runtime.ensureLoaded().catch(() => undefined);
  // The timer must not keep a process alive on its own (tests, `serve`); Lambda's runtime does not care.
  await Promise.race([loading, sleep(config.initWaitMs, { unref: true })]);
  return new InferenceService(config, runtime, telemetry, options.hooks ?? {}).handle;
}

class InferenceService {
  private coldStart = true;
  private readonly instanceId = randomUUID();

  constructor(
    private readonly config: HandlerConfig,
    private readonly runtime: ModelRuntime,
    private readonly telemetry: Telemetry,
    private readonly hooks: InferenceHooks,
  ) {}

  readonly handle = async (event: unknown, context?: InvocationContext): Promise<unknown> => {
    const coldStart = this.coldStart;
    this.coldStart = false;
    if (coldStart) this.telemetry.record('ColdStart', 1);
    const incoming = readEvent(event);
    const requestId = context?.awsRequestId ?? (event as any)?.requestContext?.requestId ?? randomUUID();
    try {
      switch (incoming.kind) {
        case 'warmup':
          return await this.warmup(incoming.warmup, coldStart);
        case 'direct':
          return await this.directInvoke(incoming.body, requestId);
        case 'http':
          return await this.http(incoming.request, requestId);
      }
    } finally {
      this.telemetry.flush();
    }
  };

  private async warmup(warmup: WarmupRequest, coldStart: boolean) {
    // A cold instance is only warm once its model is loaded; a failure is reported, not thrown.
    const error = await this.runtime.ensureLoaded().then(
      () => undefined,
      (e: Error) => e.message,
    );
    if (warmup.holdMs > 0) await sleep(warmup.holdMs);
    this.telemetry.logger.debug('warm-up', { sender: warmup.sender, coldStart });
    return { warmed: true, instanceId: this.instanceId, coldStart, modelReady: this.runtime.isReady, ...(error ? { error } : {}) };
  }

  /** A direct invocation answers with the response body itself; a failure is thrown so the caller sees a function error. */
  private async directInvoke(body: unknown, requestId: string): Promise<unknown> {
    try {
      return await this.infer(body, requestId, undefined);
    } catch (e) {
      const { status, message } = this.describeFailure(e, requestId);
      const err = new Error(`[${status}] ${message}`);
      err.name = status < 500 ? 'InferenceRequestError' : 'InferenceServerError';
      throw err;
    }
  }

  private async http(request: HttpRequest, requestId: string): Promise<HttpResponse> {
    try {
      const route = matchRoute(request.method, request.path, { name: this.config.modelName, version: this.config.modelVersion });
      switch (route.kind) {
        case 'server-live':
          return this.json(200, { live: true });
        case 'server-metadata':
          return this.json(200, { name: 'cdk-serverless-inference', version: VERSION, extensions: [] });
        case 'server-ready':
        case 'model-ready': {
          // The protocol answers readiness with the status code: 200 ready, 4xx not.
          const model = await this.runtime.ensureLoaded().catch(() => undefined);
          const body = route.kind === 'model-ready' ? { name: this.config.modelName, ready: !!model } : { ready: !!model };
          return this.json(model ? 200 : 400, model ? body : { ...body, error: this.runtime.lastError?.message });
        }
        case 'model-metadata':
          return this.json(200, this.metadata(await this.model()));
        case 'infer':
          return this.json(200, await this.infer(parseJsonBody(request, this.config.maxBodyBytes), requestId, request));
      }
    } catch (e) {
      const { status, message, headers } = this.describeFailure(e, requestId);
      return jsonResponse(status, stringifyJson({ error: message }), headers);
    }
  }

  private async infer(body: unknown, requestId: string, http: HttpRequest | undefined): Promise<unknown> {
    const model = await this.model();
    const context: HookContext = {
      requestId,
      modelName: this.config.modelName,
      signature: model.signature,
      logger: this.telemetry.logger,
      http,
    };
    const request = this.hooks.preprocess ? await runHook('preprocess', () => this.hooks.preprocess!(body, context)) : body;
    const plan = planInference(request, model.signature);
    const started = performance.now();
    const results = await this.run(model, plan);
    this.telemetry.record('InferenceMs', performance.now() - started);
    const response = buildInferResponse(plan, results, { name: this.config.modelName, version: this.config.modelVersion });
    return this.hooks.postprocess
      ? runHook('postprocess', () => this.hooks.postprocess!(response, { ...context, request: body }))
      : response;
  }

  private async run(model: LoadedModel, plan: InferPlan): Promise<Map<string, OutputResult>> {
    const ort = loadOnnxRuntime();
    const feeds: Record<string, Ort.Tensor> = {};
    for (const [name, t] of plan.feeds) {
      feeds[name] = new ort.Tensor(ORT_TYPE_OF[t.datatype] as any, t.data as any, t.shape);
    }
    let out: Ort.InferenceSession.OnnxValueMapType;
    try {
      // The failure is answered and logged here; onnxruntime's own log line would only repeat it.
      out = await model.session.run(feeds, plan.outputs.map((o) => o.name), { logSeverityLevel: 4 });
    } catch (e) {
      const message = (e as Error).message;
      // onnxruntime's own input checks (e.g. a symbolic dimension the graph constrains) are the
      // client's mistake, not the model's.
      if (/invalid dimensions|invalid rank|shape mismatch|incompatible dimensions/i.test(message)) {
        throw new InferenceError(400, `the model rejected the input: ${message}`);
      }
      throw new InferenceError(500, `the model failed on this request: ${message}`);
    }
    const results = new Map<string, OutputResult>();
    for (const o of plan.outputs) {
      const t = out[o.name] as Ort.Tensor;
      results.set(o.name, { dims: t.dims, data: t.data });
    }
    return results;
  }

  private async model(): Promise<LoadedModel> {
    try {
      return await this.runtime.ensureLoaded();
    } catch (e) {
      throw new InferenceError(503, `model '${this.config.modelName}' is not available: ${(e as Error).message}; the next request retries the load`);
    }
  }

  private metadata(model: LoadedModel) {
    const spec = (s: (typeof model.signature.inputs)[number]) => ({
      name: s.name,
      datatype: s.datatype,
      shape: s.shape.map((d) => (typeof d === 'number' ? d : -1)),
    });
    return {
      name: this.config.modelName,
      versions: [this.config.modelVersion],
      platform: 'onnxruntime_onnx',
      inputs: model.signature.inputs.map(spec),
      outputs: model.signature.outputs.map(spec),
    };
  }

  /** The status and message a failure is answered with; unexpected errors are logged with their stack but never sent. */
  private describeFailure(e: unknown, requestId: string): { status: number; message: string; headers?: Record<string, string> } {
    if (isInferenceError(e)) {
      if (e.status >= 500) {
        this.telemetry.logger.error('request failed', { requestId, status: e.status, error: e.message });
        return { status: e.status, message: `${e.message} (request id ${requestId})`, headers: e.headers };
      }
      this.telemetry.logger.info('request refused', { requestId, status: e.status, error: e.message });
      return { status: e.status, message: e.message, headers: e.headers };
    }
    this.telemetry.logger.error('internal error', { requestId, error: describeCause(e) });
    return { status: 500, message: `internal error (request id ${requestId})` };
  }

  private json(status: number, body: unknown): HttpResponse {
    return jsonResponse(status, stringifyJson(body));
  }
}

/** A hook's own 4xx passes through; anything else it throws is a 500 that names the hook. */
async function runHook<T>(name: string, fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (isInferenceError(e)) throw e;
    throw new InferenceError(500, `the ${name} hook failed: ${(e as Error)?.message ?? String(e)}`);
  }
}

/** A handler that answers every request with the configuration error, so it shows in every response and log. */
function misconfiguredHandler(error: Error): InferenceHandler {
  const message = `the inference function is misconfigured: ${error.message}`;
  console.error(JSON.stringify({ level: 'ERROR', message }));
  return async (event) => {
    const incoming = readEvent(event);
    if (incoming.kind === 'http') return jsonResponse(500, stringifyJson({ error: message }));
    if (incoming.kind === 'warmup') return { warmed: false, error: message };
    throw new Error(message);
  };
}

function describeCause(e: unknown): unknown {
  return e instanceof Error ? { name: e.name, message: e.message, stack: e.stack } : e;
}

function sleep(ms: number, options: { unref?: boolean } = {}): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    if (options.unref) timer.unref();
  });
}
