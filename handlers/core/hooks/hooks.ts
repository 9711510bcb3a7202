import type { Logger } from '@aws-lambda-powertools/logger';
import type { HttpRequest } from '../http/events';
import type { InferResponse, ModelSignature } from '../protocol/protocol';

/** What a hook knows about the request it handles. */
export interface HookContext {
  /** The Lambda request id (or the API's, locally). */
  readonly requestId: string;
  readonly modelName: string;
  /**
   * The model's inputs and outputs, as onnxruntime reports them. Empty behind the SageMaker proxy,
   * which does not know the endpoint's model.
   */
  readonly signature: ModelSignature;
  /** The handler's structured logger. */
  readonly logger: Logger;
  /** The HTTP request (headers, path), absent for a direct invocation. */
  readonly http?: HttpRequest;
}

/** The body of an answer to the `instances` form. */
export interface PredictionsResponse {
  readonly predictions: unknown[];
}

/**
 * Pre- and post-processing around inference: plain async functions in the user's own entry file,
 * which wraps the shared handler (see docs/hooks.md). A hook that rejects a request throws
 * `badRequest("...")` for a 400; any other error it throws is a 500. `Response` is what inference
 * answers: the handler's own response, or whatever JSON a SageMaker endpoint returns.
 */
export interface InferenceHooks<Response = InferResponse | PredictionsResponse> {
  /**
   * Turns the parsed request body (any JSON) into an inference request: `{"inputs": [...]}` (Open
   * Inference Protocol) or `{"instances": [...]}`; behind the SageMaker proxy, any JSON object the
   * endpoint takes.
   */
  preprocess?(body: unknown, context: HookContext): unknown | Promise<unknown>;
  /**
   * Turns the inference response into the JSON body sent back. `request` is the body as it came in,
   * before `preprocess`.
   */
  postprocess?(response: Response, context: HookContext & { readonly request: unknown }): unknown | Promise<unknown>;
  /**
   * Runs once the caller has the whole answer of a successful inference (`response` is the body
   * sent, after `postprocess`): log it, write it to a database, emit an event. With response
   * streaming (what the constructs deploy when hooks export it) the stream is ended first, and the
   * invocation goes on until this hook settles, within the function's timeout. Whatever it throws,
   * or a run past the function's remaining time, is logged and counted (`AfterResponseFailed`),
   * and never changes the answer. Without streaming the caller waits for it.
   */
  afterResponse?(response: unknown, context: AfterResponseContext): void | Promise<void>;
}

/** What `afterResponse` knows: the request's context, the body as it came in, and the status sent. */
export interface AfterResponseContext extends HookContext {
  /** The request body as it came in, before `preprocess`. */
  readonly request: unknown;
  /** The HTTP status sent (200 for a direct invocation's answer). */
  readonly statusCode: number;
}

/** Hooks around a SageMaker endpoint: `postprocess` gets the endpoint's JSON answer as it is. */
export type SageMakerProxyHooks = InferenceHooks<unknown>;
