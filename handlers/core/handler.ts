/**
 * The request handling every handler shares (events, routes, errors, hooks, warm-up, telemetry),
 * over a backend that loads and runs the model. The handlers built on it are in onnx-handler.ts
 * and sagemaker-proxy-handler.ts, kept apart so that each Lambda bundle holds only its own backend.
 */
import { randomUUID } from 'node:crypto';
import { BINARY_TENSOR_CONTENT_TYPE, INFERENCE_HEADER_CONTENT_LENGTH } from '../../contract/binary-data';
import { READINESS_STATUS, ROUTES, SERVER_NAME } from '../../contract/routes';
import { METRIC } from '../../contract/metrics';
import type { WarmupResponse } from '../../contract/warmup';
import { VARIANT_HEADER } from '../../contract/variants';
import type { BackendModel, BackendRequest, InferenceBackend } from './backends/backend';
import type { AnswerObserver, Observation } from './capture/observer';
import type { ServiceConfig } from './config/config';
import { InferenceError, badRequest, isInferenceError, unprocessable } from './protocol/errors';
import { BoundedCompressor, CompressedJsonSink } from './http/compression';
import { type ContentCoding, type HttpRequest, type HttpResponse, acceptedCoding, base64Length, binaryResponse, jsonResponse, readEvent, readJsonBody } from './http/events';
import type { AfterResponseContext, HookContext, InferenceHooks } from './hooks/hooks';
import { jsonEscapeBytes, stringifyJson, stringifyJsonWithin, writeJson } from './protocol/json';
import { checkJsonValueNesting } from './protocol/nesting';
import { binaryDataOf } from './protocol/binary-data';
import { matchRoute } from './http/routes';
import { type ResponseStream, writeHttpResponse, writeValue } from './http/streaming';
import type { Telemetry } from './telemetry';
import { VERSION } from './version';
import type { WarmupRequest } from './http/warmup';
import { AsyncInference } from './async/async-inference';
import { matchAsyncRoute } from './async/async-routes';
import { isSqsEvent } from './async/sqs-event';
import { type BatchEventKind, handleBatchEvent, readBatchEvent } from './batch/batch-event';

/** Minimal view of Lambda's context object: the request id, and the time left for `afterResponse`. */
export interface InvocationContext {
  readonly awsRequestId?: string;
  getRemainingTimeInMillis?(): number;
}

export type InferenceHandler = (event: unknown, context?: InvocationContext) => Promise<unknown>;

/**
 * A handler for response streaming, as Lambda's `awslambda.streamifyResponse` takes it: it writes
 * the answer to `responseStream` and ends it, then may go on (the `afterResponse` hook).
 */
export type StreamingInferenceHandler = (event: unknown, responseStream: ResponseStream, context?: InvocationContext) => Promise<void>;

/** An inference answer: the value, the JSON text to send as it is when the backend kept it, and the hook's context. */
interface InferAnswer {
  readonly value: unknown;
  readonly json?: string;
  readonly context: HookContext;
  readonly request: unknown;
  /** What the backend was asked and answered, for an observer. */
  readonly backend: { readonly request: BackendRequest; readonly response: unknown; readonly inferenceMs: number };
  /** The backend's headers for the HTTP answer. */
  readonly headers?: Readonly<Record<string, string>>;
}

/** The `afterResponse` hook's call, once the answer is sent. */
interface AfterResponse {
  readonly response: unknown;
  readonly context: AfterResponseContext;
  /** The observer's work after the answer (data capture, the shadow). */
  readonly observation?: Observation;
}

/**
 * What an invocation answers, before it is sent: an HTTP answer (HTTP events) or a value (warm-up,
 * direct invocation), or for a failed direct invocation the error Lambda reports; and the
 * `afterResponse` hook's call, if it has one.
 */
export interface Outcome {
  readonly http?: HttpResponse;
  readonly value?: unknown;
  readonly error?: Error;
  readonly after?: AfterResponse;
}

/** How long before the function's timeout `afterResponse` is given up, so that its failure is still logged. */
const AFTER_RESPONSE_MARGIN_MS = 500;

/** The request handling every handler shares; the backend runs the model. */
export class InferenceService<M extends BackendModel> {
  private coldStart = true;
  private readonly instanceId = randomUUID();
  /** Asynchronous inference (ASYNC_BUCKET), when it is on: its routes and the queue's SQS events. */
  private readonly asyncInference?: AsyncInference;

  constructor(
    private readonly config: ServiceConfig,
    private readonly backend: InferenceBackend<M>,
    private readonly telemetry: Telemetry,
    private readonly hooks: InferenceHooks<unknown>,
    /** Sees each infer answer before it is sent, and works once it is (data capture, the shadow). */
    private readonly observer?: AnswerObserver,
  ) {
    if (config.async) {
      this.asyncInference = new AsyncInference(config.async, config.modelName, config.maxBodyBytes, {
        infer: async (body, text, requestId) => {
          const value = (await this.infer(body, text, requestId, undefined)).value;
          const outputs = (value as { outputs?: unknown } | null)?.outputs;
          if (Array.isArray(outputs) && outputs.some((o) => binaryDataOf(o) !== undefined)) {
            throw badRequest('an asynchronous result is JSON only: binary tensor data (binary_data, binary_data_output) needs the synchronous route');
          }
          return value;
        },
        describe: (e, requestId) => this.describeFailure(e, requestId),
        logger: this.telemetry.logger,
      });
    }
  }

  /** The buffered handler: the caller waits for `afterResponse` too, as Lambda freezes the instance once it returns. */
  readonly handle = async (event: unknown, context?: InvocationContext): Promise<unknown> => {
    let outcome: Outcome;
    try {
      outcome = await this.respond(event, context);
      if (outcome.after) await this.afterResponse(outcome.after, context);
    } finally {
      this.telemetry.flush();
    }
    if (outcome.error) throw outcome.error;
    return outcome.http ?? outcome.value;
  };

  /**
   * The streaming handler: the answer is written and the stream ended, so the caller has all of it,
   * then `afterResponse` runs while the invocation goes on. An HTTP answer carries its status and
   * headers in the metadata prelude that API Gateway and Function URLs read; a warm-up or direct
   * invocation's answer is the JSON value itself, as a buffered `Invoke` returns it.
   */
  readonly handleStream: StreamingInferenceHandler = async (event, responseStream, context) => {
    let outcome: Outcome;
    try {
      outcome = await this.respond(event, context);
    } catch (e) {
      this.telemetry.flush();
      throw e;
    }
    if (outcome.error) {
      this.telemetry.flush();
      throw outcome.error;
    }
    await (outcome.http ? writeHttpResponse(responseStream, outcome.http) : writeValue(responseStream, outcome.value));
    this.telemetry.flush();
    if (outcome.after) {
      await this.afterResponse(outcome.after, context);
      this.telemetry.flush();
    }
  };

  /** The answer to one event, not yet sent. */
  async respond(event: unknown, context?: InvocationContext): Promise<Outcome> {
    const coldStart = this.coldStart;
    this.coldStart = false;
    if (coldStart) this.telemetry.record(METRIC.COLD_START, 1);
    if (this.asyncInference && isSqsEvent(event)) return { value: await this.asyncInference.process(event) };
    const requestId = context?.awsRequestId ?? (event as { requestContext?: { requestId?: string } } | null | undefined)?.requestContext?.requestId ?? randomUUID();
    const batch = readBatchEvent(event);
    if (batch) return await this.batch(batch, requestId);
    const incoming = readEvent(event);
    switch (incoming.kind) {
      case 'warmup':
        return { value: await this.warmup(incoming.warmup, coldStart) };
      case 'direct':
        return await this.directInvoke(incoming.body, requestId);
      case 'http':
        return await this.http(incoming.request, requestId);
    }
  }

  /**
   * Runs the `afterResponse` hook, within the invocation's remaining time: its failure or overrun
   * is logged and counted; the answer is already sent (or, buffered, already decided).
   */
  private async afterResponse(after: AfterResponse, context: InvocationContext | undefined): Promise<void> {
    const remaining = context?.getRemainingTimeInMillis?.();
    const deadline = remaining === undefined ? undefined : Date.now() + Math.max(0, remaining - AFTER_RESPONSE_MARGIN_MS);
    await Promise.all([this.afterResponseHook(after, remaining), after.observation?.run(deadline).catch(() => undefined)]);
  }

  private async afterResponseHook(after: AfterResponse, remaining: number | undefined): Promise<void> {
    const hook = this.hooks.afterResponse;
    if (!hook) return;
    let timer: NodeJS.Timeout | undefined;
    const budget =
      remaining === undefined
        ? undefined
        : new Promise<never>((_, reject) => {
            const ms = Math.max(0, remaining - AFTER_RESPONSE_MARGIN_MS);
            timer = setTimeout(() => reject(new Error(`it did not finish within the function's remaining time (${ms} ms)`)), ms);
            timer.unref();
          });
    try {
      const run = Promise.resolve().then(() => hook(after.response, after.context));
      await (budget ? Promise.race([run, budget]) : run);
    } catch (e) {
      this.telemetry.logger.error('the afterResponse hook failed; the answer was sent', { requestId: after.context.requestId, error: describeCause(e) });
      this.telemetry.record(METRIC.AFTER_RESPONSE_FAILED, 1);
    } finally {
      clearTimeout(timer);
    }
  }

  private async warmup(warmup: WarmupRequest, coldStart: boolean): Promise<WarmupResponse> {
    // A cold instance is only warm once its model is loaded; a failure is reported, not thrown.
    const error = await this.loadError();
    if (warmup.holdMs > 0) await sleep(warmup.holdMs);
    this.telemetry.logger.debug('warm-up', { sender: warmup.sender, coldStart, modelReady: error === undefined });
    const ready = error === undefined;
    return { warmed: ready, modelReady: ready, instanceId: this.instanceId, coldStart, ...(error ? { error: this.notLoaded(error) } : {}) };
  }

  /** A direct invocation answers with the response body itself; a failure is thrown so the caller sees a function error. */
  private async directInvoke(body: unknown, requestId: string): Promise<Outcome> {
    try {
      // Lambda parsed the payload; the same bound as for an HTTP body applies before anything walks it.
      checkJsonValueNesting(body);
      const answer = await this.infer(body, undefined, requestId, undefined);
      const value = answer.value;
      const outputs = (value as { outputs?: unknown } | null)?.outputs;
      if (Array.isArray(outputs) && outputs.some((o) => binaryDataOf(o) !== undefined)) {
        throw badRequest('a direct invocation answers JSON only: binary tensor data (binary_data, binary_data_output) needs an HTTP request');
      }
      // Lambda sends the value as JSON, under the same payload limit as an HTTP answer. Its runtime
      // writes it with its own JSON.stringify, which writes a RawJsonNumber as stringifyJson does:
      // only counted here (up to the limit).
      if (stringifyJsonWithin(value, { maxBytes: this.config.maxResponseBytes, countOnly: true }) === undefined) throw this.tooLarge();
      return { value, after: this.afterCall(answer, 200) };
    } catch (e) {
      const { status, message } = this.describeFailure(e, requestId);
      const error = new Error(`[${status}] ${message}`);
      error.name = status < 500 ? 'InferenceRequestError' : 'InferenceServerError';
      return { error };
    }
  }

  /**
   * A Step Functions batch or its assembling step (batch/): answered with its counts; an item the
   * model refuses is a line of the job's failures, while a failure of the function (the model
   * cannot load, S3) is thrown, so that Step Functions retries the batch.
   */
  private async batch(batch: BatchEventKind, requestId: string): Promise<Outcome> {
    try {
      const value = await handleBatchEvent(batch, async () => ({
        signature: (await this.model()).signature,
        asIs: this.hooks.preprocess !== undefined,
        stack: this.hooks.preprocess === undefined && this.hooks.postprocess === undefined,
        infer: async (body: unknown) => {
          checkJsonValueNesting(body);
          return (await this.infer(body, undefined, requestId, undefined)).value;
        },
      }));
      if ('runs' in value) {
        this.telemetry.record(METRIC.BATCH_ITEMS, value.items);
        this.telemetry.record(METRIC.BATCH_ITEMS_FAILED, value.failed);
      }
      return { value };
    } catch (e) {
      const { status, message } = this.describeFailure(e, requestId);
      const error = new Error(`[${status}] ${message}`);
      error.name = status < 500 ? 'InferenceRequestError' : 'InferenceServerError';
      return { error };
    }
  }

  /** The `afterResponse` call of a successful answer, if there is such a hook. */
  private afterCall(answer: InferAnswer, statusCode: number, observation?: Observation): AfterResponse | undefined {
    if (!this.hooks.afterResponse && !observation) return undefined;
    return { response: answer.value, context: { ...answer.context, request: answer.request, statusCode }, observation };
  }

  private async http(request: HttpRequest, requestId: string): Promise<Outcome> {
    try {
      const asyncRoute = this.asyncInference && matchAsyncRoute(request.method, request.path, this.config.modelName);
      if (asyncRoute) return { http: await this.asyncInference!.http(asyncRoute, request, requestId) };
      const route = matchRoute(request.method, request.path, { name: this.config.modelName, version: this.config.modelVersion });
      switch (route.kind) {
        case ROUTES.SERVER_LIVE.kind:
          return this.jsonOutcome(200, { live: true });
        case ROUTES.SERVER_METADATA.kind:
          return this.jsonOutcome(200, { name: SERVER_NAME, version: VERSION, extensions: this.backend.binaryTensorData ? ['binary_tensor_data'] : [] });
        case ROUTES.SERVER_READY.kind:
        case ROUTES.MODEL_READY.kind: {
          // The protocol answers readiness with the status code: 200 ready, 4xx not. While a failed
          // load backs off (see ModelRuntime), a probe gets the last failure without a new attempt.
          const error = await this.loadError();
          const ready = error === undefined;
          const body = route.kind === ROUTES.MODEL_READY.kind ? { name: this.config.modelName, ready } : { ready };
          if (ready) return this.jsonOutcome(READINESS_STATUS.READY, body);
          this.telemetry.logger.warn('model not ready', { requestId, error: error.message });
          return this.jsonOutcome(READINESS_STATUS.NOT_READY, { ...body, error: `${this.notLoaded(error)} (request id ${requestId})` });
        }
        case ROUTES.MODEL_METADATA.kind:
          return this.jsonOutcome(200, {
            name: this.config.modelName,
            versions: [this.config.modelVersion],
            ...this.backend.metadata(await this.model()),
          });
        case ROUTES.INFER.kind: {
          const started = performance.now();
          const receivedAt = new Date();
          const body = readJsonBody(request, this.config.maxBodyBytes, this.backend.binaryTensorData);
          // Only the infer answer is compressed: it is the one that can be large, and the one
          // Triton's client asks compressed (it reads its other answers, and errors, uncompressed).
          const coding = acceptedCoding(request.headers['accept-encoding']);
          const answer = await this.infer(body.value, body.text, requestId, request, body.binary, coding !== undefined);
          const response = answer.json !== undefined ? this.passOn(answer.json, coding) : this.answer(answer.value, coding);
          // Headers added in place: a binary answer keeps its bytes beside it for a response stream.
          if (answer.headers) Object.assign(response.headers, answer.headers);
          const variant = answer.headers?.[VARIANT_HEADER.SERVED_BY];
          const observation = this.observer?.observe({ requestId, request, response, live: answer.backend, latencyMs: performance.now() - started, receivedAt, variant });
          if (observation) Object.assign(response.headers, observation.headers);
          return { http: response, after: this.afterCall(answer, 200, observation) };
        }
      }
    } catch (e) {
      const { status, message, headers } = this.describeFailure(e, requestId);
      return { http: jsonResponse(status, stringifyJson({ error: message }), headers) };
    }
  }

  /** `text` is the body's JSON text, if it came as text, so that a backend may pass it on as it is. */
  private async infer(body: unknown, text: string | undefined, requestId: string, http: HttpRequest | undefined, binary?: Buffer, answerCompressed = false): Promise<InferAnswer> {
    const model = await this.model();
    const context: HookContext = {
      requestId,
      modelName: this.config.modelName,
      signature: model.signature,
      logger: this.telemetry.logger,
      http,
    };
    const headers = http?.headers;
    const request = this.hooks.preprocess
      ? { body: await runHook('preprocess', () => this.hooks.preprocess!(body, context)), binary, answerCompressed, headers }
      : { body, json: text, binary, answerCompressed, headers };
    const result = await this.backend.infer(model, request);
    this.telemetry.record(METRIC.INFERENCE_MS, result.inferenceMs);
    if (result.batchRequests !== undefined) this.telemetry.record(METRIC.BATCH_REQUESTS, result.batchRequests);
    const backend = { request, response: result.response, inferenceMs: result.inferenceMs };
    if (!this.hooks.postprocess) {
      return { value: result.response, json: result.json, context, request: body, backend, headers: result.headers };
    }
    const value = await runHook('postprocess', () => this.hooks.postprocess!(result.response, { ...context, request: body }));
    return { value, context, request: body, backend, headers: result.headers };
  }

  private async model(): Promise<M> {
    try {
      return await this.backend.load();
    } catch (e) {
      const err = e as LoadFailure;
      const waitS = secondsUntil(err.retryAt);
      throw new InferenceError(503, `model '${this.config.modelName}' is not available: ${this.notLoaded(err)}`, waitS > 0 ? { 'Retry-After': String(waitS) } : {}, err.message);
    }
  }

  /**
   * Why the model is not loaded, as callers may read it: the failure's summary (never its message,
   * which names files, S3 objects and onnxruntime's internals: that goes to the log), and when the
   * next attempt is.
   */
  private notLoaded(e: LoadFailure): string {
    const waitS = secondsUntil(e.retryAt);
    return `${e.summary ?? 'the model cannot be loaded'}; ${waitS > 0 ? `the next attempt to load it is in ${waitS} s` : 'the next request retries the load'}`;
  }

  /** Loads the model if needed; why it cannot be loaded, or undefined once it is. */
  private loadError(): Promise<LoadFailure | undefined> {
    return this.backend.load().then(
      () => undefined,
      (e: unknown) => (e instanceof Error ? e : new Error(String(e))),
    );
  }

  /**
   * The 422 for an answer over the response limit (Lambda would turn it into a 502): its size when
   * it was counted whole, or only that it passed the limit, where its writing stopped there.
   */
  private tooLarge(bytes?: number, coding?: ContentCoding): InferenceError {
    const limit = this.config.maxResponseBytes;
    const size = bytes === undefined ? `takes more than the response limit of ${limit} bytes` : `is ${bytes} bytes, over the response limit of ${limit} bytes`;
    return unprocessable(`the answer${coding === undefined ? '' : `, compressed in ${coding},`} ${size}; ask for fewer values or fewer outputs`);
  }

  /**
   * The status and message a failure is answered with. A 5xx answer says what failed and gives the
   * request id; what the operator needs to fix it (paths, S3 URIs, ARNs, the runtime's own words)
   * is logged under that request id, never sent. Unexpected errors are logged with their stack.
   */
  private describeFailure(e: unknown, requestId: string): { status: number; message: string; headers?: Record<string, string> } {
    if (isInferenceError(e)) {
      const log = { requestId, status: e.status, error: e.message, ...(e.detail !== undefined ? { detail: e.detail } : {}) };
      if (e.status >= 500) {
        this.telemetry.logger.error('request failed', log);
      } else if (e.detail !== undefined) {
        this.telemetry.logger.warn('request refused', log);
      } else {
        this.telemetry.logger.info('request refused', log);
      }
      const withId = e.status >= 500 || e.detail !== undefined;
      return { status: e.status, message: withId ? `${e.message} (request id ${requestId})` : e.message, headers: e.headers };
    }
    this.telemetry.logger.error('internal error', { requestId, error: describeCause(e) });
    return { status: 500, message: `internal error (request id ${requestId})` };
  }

  /**
   * An infer answer: JSON, or with outputs asked for as binary tensor data (their bytes kept under
   * binary-data.ts's binaryOutput), the JSON header followed by their bytes in the order of the outputs.
   */
  private answer(value: unknown, coding: ContentCoding | undefined): HttpResponse {
    const limit = this.config.maxResponseBytes;
    const outputs = (value as { outputs?: unknown } | null)?.outputs;
    const binary = Array.isArray(outputs) ? outputs.map(binaryDataOf).filter((b): b is Buffer => b !== undefined) : [];
    if (coding !== undefined) return this.compressed(value, undefined, binary, coding);
    if (binary.length > 0) {
      // The JSON header and the bytes go base64-encoded (4 characters for every 3 bytes), unescaped.
      const binaryBytes = binary.reduce((n, b) => n + b.length, 0);
      const header = stringifyJsonWithin(value, { maxBytes: Math.floor(limit / 4) * 3 - binaryBytes });
      if (header === undefined) throw this.tooLarge();
      const response = binaryResponse(200, header, binary);
      const bytes = payloadBytes(response, base64Length(Buffer.byteLength(header) + binaryBytes));
      if (bytes > limit) throw this.tooLarge(bytes);
      return response;
    }
    // The body is a string in Lambda's JSON payload: counted escaped, up to what the rest leaves it.
    const body = stringifyJsonWithin(value, { maxBytes: limit - JSON_ANSWER_ENVELOPE_BYTES, escaped: true });
    if (body === undefined) throw this.tooLarge();
    if (body === '') throw new Error('the answer has no JSON form (did a postprocess hook return undefined?)');
    return jsonResponse(200, body);
  }

  /**
   * An infer answer compressed as it is written (see compression.ts): its JSON, or a backend's JSON
   * text, then a binary answer's bytes, given up once the compressed bytes pass what the limit
   * leaves them in base64. A binary answer's Inference-Header-Content-Length is its JSON's length
   * uncompressed.
   */
  private compressed(value: unknown, json: string | undefined, binary: readonly Buffer[], coding: ContentCoding): HttpResponse {
    const limit = this.config.maxResponseBytes;
    const headers: Record<string, string> =
      binary.length > 0 ? { 'Content-Type': BINARY_TENSOR_CONTENT_TYPE, [INFERENCE_HEADER_CONTENT_LENGTH]: '0' } : { 'Content-Type': 'application/json' };
    headers['Content-Encoding'] = coding;
    headers.Vary = 'Accept-Encoding';
    const envelope = payloadBytes({ statusCode: 200, headers, body: '', isBase64Encoded: true }, 0);
    const compressor = new BoundedCompressor(coding, Math.floor((limit - envelope) / 4) * 3);
    const sink = new CompressedJsonSink(compressor);
    if (!(json === undefined ? writeJson(value, sink) : sink.write(json, false))) throw this.tooLarge(undefined, coding);
    if (sink.bytes === 0) throw new Error('the answer has no JSON form (did a postprocess hook return undefined?)');
    for (const b of binary) {
      if (!compressor.write(b)) throw this.tooLarge(undefined, coding);
    }
    const packed = compressor.end();
    if (packed === undefined) throw this.tooLarge(undefined, coding);
    if (binary.length > 0) headers[INFERENCE_HEADER_CONTENT_LENGTH] = String(sink.bytes);
    const response = { statusCode: 200, headers, body: packed.toString('base64'), isBase64Encoded: true };
    const bytes = payloadBytes(response, response.body.length);
    if (bytes > limit) throw this.tooLarge(bytes, coding);
    return response;
  }

  /** A backend's JSON text as it sent it, within the response limit. */
  private passOn(json: string, coding: ContentCoding | undefined): HttpResponse {
    if (coding !== undefined) return this.compressed(undefined, json, [], coding);
    const response = jsonResponse(200, json);
    const bytes = payloadBytes(response, Buffer.byteLength(json) + jsonEscapeBytes(json));
    if (bytes > this.config.maxResponseBytes) throw this.tooLarge(bytes);
    return response;
  }

  private jsonOutcome(status: number, body: unknown): Outcome {
    return { http: this.json(status, body) };
  }

  private json(status: number, body: unknown): HttpResponse {
    return jsonResponse(status, stringifyJson(body));
  }
}

/** Why a backend cannot load its model: ModelLoadError's summary and back-off, when it has them. */
type LoadFailure = Error & { readonly summary?: string; readonly retryAt?: number };

/** Whole seconds (at least 1) until `at`, a performance.now() time; 0 when it has passed or is unknown. */
function secondsUntil(at: number | undefined): number {
  const ms = at === undefined ? 0 : at - performance.now();
  return ms > 0 ? Math.ceil(ms / 1000) : 0;
}

/**
 * The bytes Lambda counts for an HTTP answer: the JSON of the whole object, in which the body is a
 * string (its quotes, and the escaping of its `"` and `\\`). `bodyBytes` is the body as it stands
 * there, without its quotes: counted by the caller, which never writes the whole object again.
 */
function payloadBytes(response: HttpResponse, bodyBytes: number): number {
  // Field by field, in the answer's order: a binary answer's body is made only when read.
  const { statusCode, headers, isBase64Encoded } = response;
  return Buffer.byteLength(JSON.stringify({ statusCode, headers, body: '', isBase64Encoded })) + bodyBytes;
}

/** What a JSON answer's payload takes besides its body: its status, headers and the body's quotes. */
const JSON_ANSWER_ENVELOPE_BYTES = payloadBytes(jsonResponse(200, ''), 0);

/** A hook's own 4xx passes through; anything else it throws is a 500 that names the hook (its message goes to the log). */
async function runHook<T>(name: string, fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (isInferenceError(e)) throw e;
    throw new InferenceError(500, `the ${name} hook failed`, {}, (e as Error)?.message ?? String(e));
  }
}

/**
 * A handler that answers every request with a 500 saying that the function is misconfigured; the
 * configuration error (which names variables and their values) is logged at init and with each
 * request's id.
 */
export function misconfiguredHandler(error: Error): InferenceHandler {
  const message = `the inference function is misconfigured: ${error.message}`;
  console.error(JSON.stringify({ level: 'ERROR', message }));
  return async (event, context) => {
    const incoming = readEvent(event);
    const requestId = context?.awsRequestId ?? (event as { requestContext?: { requestId?: string } } | null | undefined)?.requestContext?.requestId ?? randomUUID();
    console.error(JSON.stringify({ level: 'ERROR', message: 'request failed', requestId, error: message }));
    const answer = `the inference function is misconfigured; its log says why (request id ${requestId})`;
    if (incoming.kind === 'http') return jsonResponse(500, stringifyJson({ error: answer }));
    if (incoming.kind === 'warmup') return { warmed: false, modelReady: false, error: answer } satisfies WarmupResponse;
    throw new Error(answer);
  };
}

/** A handler in both of Lambda's forms: buffered, and for response streaming. */
export interface InferenceEntry {
  readonly handle: InferenceHandler;
  readonly handleStream: StreamingInferenceHandler;
}

/** misconfiguredHandler's answers, in both forms. */
export function misconfiguredEntry(error: Error): InferenceEntry {
  const handle = misconfiguredHandler(error);
  return {
    handle,
    handleStream: async (event, responseStream, context) => {
      const answer = await handle(event, context);
      await (readEvent(event).kind === 'http' ? writeHttpResponse(responseStream, answer as HttpResponse) : writeValue(responseStream, answer));
    },
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
