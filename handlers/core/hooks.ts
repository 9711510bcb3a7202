import type { Logger } from '@aws-lambda-powertools/logger';
import type { HttpRequest } from './events';
import type { InferResponse, ModelSignature } from './protocol';

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
 * which wraps the shared handler (see the README's "Hooks"). A hook that rejects a request throws
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
}

/** Hooks around a SageMaker endpoint: `postprocess` gets the endpoint's JSON answer as it is. */
export type SageMakerProxyHooks = InferenceHooks<unknown>;
