/**
 * The request handling every handler shares (events, routes, errors, hooks, warm-up, telemetry),
 * over a backend that loads and runs the model. The handlers built on it are in onnx-handler.ts
 * and sagemaker-proxy-handler.ts, kept apart so that each Lambda bundle holds only its own backend.
 */
import { METRIC } from '../../contract/metrics';
import { randomUUID } from 'node:crypto';
import type { BackendModel, InferenceBackend } from './backend';
import type { ServiceConfig } from './config';
import { InferenceError, isInferenceError } from './errors';
import { type HttpRequest, type HttpResponse, jsonResponse, readEvent, readJsonBody } from './events';
import type { HookContext, InferenceHooks } from './hooks';
import { stringifyJson } from './json';
import { checkJsonValueNesting } from './nesting';
import { matchRoute } from './routes';
import type { Telemetry } from './telemetry';
import { VERSION } from './version';
import type { WarmupRequest } from './warmup';

/** Minimal view of Lambda's context object: only the request id is used. */
export interface InvocationContext {
  readonly awsRequestId?: string;
}

export type InferenceHandler = (event: unknown, context?: InvocationContext) => Promise<unknown>;

/** An inference answer: the value, and the JSON text to send as it is when the backend kept it. */
interface InferAnswer {
  readonly value: unknown;
  readonly json?: string;
}

/** The request handling every handler shares; the backend runs the model. */
export class InferenceService<M extends BackendModel> {
  private coldStart = true;
  private readonly instanceId = randomUUID();

  constructor(
    private readonly config: ServiceConfig,
    private readonly backend: InferenceBackend<M>,
    private readonly telemetry: Telemetry,
    private readonly hooks: InferenceHooks<unknown>,
  ) {}

  readonly handle = async (event: unknown, context?: InvocationContext): Promise<unknown> => {
    const coldStart = this.coldStart;
    this.coldStart = false;
    if (coldStart) this.telemetry.record(METRIC.COLD_START, 1);
    const incoming = readEvent(event);
    const requestId = context?.awsRequestId ?? (event as { requestContext?: { requestId?: string } } | null | undefined)?.requestContext?.requestId ?? randomUUID();
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
    const error = await this.loadError();
    if (warmup.holdMs > 0) await sleep(warmup.holdMs);
    this.telemetry.logger.debug('warm-up', { sender: warmup.sender, coldStart });
    return { warmed: true, instanceId: this.instanceId, coldStart, modelReady: error === undefined, ...(error ? { error } : {}) };
  }

  /** A direct invocation answers with the response body itself; a failure is thrown so the caller sees a function error. */
  private async directInvoke(body: unknown, requestId: string): Promise<unknown> {
    try {
      // Lambda parsed the payload; the same bound as for an HTTP body applies before anything walks it.
      checkJsonValueNesting(body);
      return (await this.infer(body, undefined, requestId, undefined)).value;
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
          const error = await this.loadError();
          const ready = error === undefined;
          const body = route.kind === 'model-ready' ? { name: this.config.modelName, ready } : { ready };
          return this.json(ready ? 200 : 400, ready ? body : { ...body, error });
        }
        case 'model-metadata':
          return this.json(200, {
            name: this.config.modelName,
            versions: [this.config.modelVersion],
            ...this.backend.metadata(await this.model()),
          });
        case 'infer': {
          const body = readJsonBody(request, this.config.maxBodyBytes);
          const answer = await this.infer(body.value, body.text, requestId, request);
          return answer.json !== undefined ? jsonResponse(200, answer.json) : this.json(200, answer.value);
        }
      }
    } catch (e) {
      const { status, message, headers } = this.describeFailure(e, requestId);
      return jsonResponse(status, stringifyJson({ error: message }), headers);
    }
  }

  /** `text` is the body's JSON text, if it came as text, so that a backend may pass it on as it is. */
  private async infer(body: unknown, text: string | undefined, requestId: string, http: HttpRequest | undefined): Promise<InferAnswer> {
    const model = await this.model();
    const context: HookContext = {
      requestId,
      modelName: this.config.modelName,
      signature: model.signature,
      logger: this.telemetry.logger,
      http,
    };
    const request = this.hooks.preprocess ? { body: await runHook('preprocess', () => this.hooks.preprocess!(body, context)) } : { body, json: text };
    const result = await this.backend.infer(model, request);
    this.telemetry.record(METRIC.INFERENCE_MS, result.inferenceMs);
    if (!this.hooks.postprocess) {
      return { value: result.response, json: result.json };
    }
    return { value: await runHook('postprocess', () => this.hooks.postprocess!(result.response, { ...context, request: body })) };
  }

  private async model(): Promise<M> {
    try {
      return await this.backend.load();
    } catch (e) {
      throw new InferenceError(503, `model '${this.config.modelName}' is not available: ${(e as Error).message}; the next request retries the load`);
    }
  }

  /** Loads the model if needed; the reason it cannot be loaded, or undefined once it is. */
  private loadError(): Promise<string | undefined> {
    return this.backend.load().then(
      () => undefined,
      (e: Error) => e.message,
    );
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
export function misconfiguredHandler(error: Error): InferenceHandler {
  const message = `the inference function is misconfigured: ${error.message}`;
  console.error(JSON.stringify({ level: 'ERROR', message }));
  return async (event) => {
    const incoming = readEvent(event);
    if (incoming.kind === 'http') return jsonResponse(500, stringifyJson({ error: message }));
    if (incoming.kind === 'warmup') return { warmed: false, error: message };
    throw new Error(message);
  };
}

export function describeCause(e: unknown): unknown {
  return e instanceof Error ? { name: e.name, message: e.message, stack: e.stack } : e;
}

export function sleep(ms: number, options: { unref?: boolean } = {}): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    if (options.unref) timer.unref();
  });
}
