/** Defaults that a construct writes into the environment and a handler assumes when it is unset. */

/** The model's name in the routes, `/v2/models/{name}/infer`. */
export const DEFAULT_MODEL_NAME = 'model';

/** The version a model reports when nothing identifies it. */
export const DEFAULT_MODEL_VERSION = '1';

/**
 * How long the init phase waits for the model before the first request takes over. Lambda caps an
 * on-demand init at 10 s; 8 s leaves room for the runtime's own start.
 */
export const DEFAULT_MODEL_INIT_WAIT_MS = 8_000;

/**
 * The SageMaker proxy's budget for one call, retries included: under API Gateway's 29 s, so the
 * caller gets the proxy's own 504 rather than the gateway's.
 */
export const DEFAULT_SAGEMAKER_TIMEOUT_MS = 25_000;

/** Lambda's limit on a synchronous invocation's request and answer payloads (6 MiB). */
export const LAMBDA_MAX_PAYLOAD_BYTES = 6 * 1024 * 1024;

/**
 * Lambda's limit on a streamed answer (`InvokeWithResponseStream`: API Gateway's STREAM transfer
 * mode, a function URL's RESPONSE_STREAM), which AWS documents as 200 MB: counted in decimal
 * megabytes, the lower reading, so that an answer within it is never cut off by Lambda.
 */
export const LAMBDA_MAX_STREAMED_RESPONSE_BYTES = 200 * 1000 * 1000;

/** The first pause after a failed model load before the next attempt; doubled after each failure. */
export const DEFAULT_MODEL_LOAD_RETRY_MS = 1_000;

/** Dynamic batching: how long the first request of a batch waits for others, where nothing says otherwise. */
export const DEFAULT_BATCH_MAX_QUEUE_DELAY_MS = 2;

/** The longest pause between two attempts to load a model that keeps failing. */
export const MAX_MODEL_LOAD_RETRY_MS = 60_000;

/** How long the S3 download of a model may stall (no bytes) before it is retried. */
export const DEFAULT_DOWNLOAD_IDLE_TIMEOUT_MS = 30_000;

/** API Gateway's REST integration timeout: no answer after it reaches the caller. */
export const API_GATEWAY_TIMEOUT_MS = 29_000;

/** The content type sent to and asked of a SageMaker endpoint. */
export const DEFAULT_SAGEMAKER_CONTENT_TYPE = 'application/json';

/** onnxruntime's graph optimisation levels, as the handler reads them from ORT_GRAPH_OPTIMIZATION_LEVEL. */
export enum GraphOptimizationLevel {
  /** No graph optimisation. */
  DISABLED = 'disabled',
  /** Semantics-preserving rewrites such as constant folding and redundant node removal. */
  BASIC = 'basic',
  /** Basic, plus fusions of common node patterns. */
  EXTENDED = 'extended',
  /** Extended, plus layout optimisations. */
  ALL = 'all',
}
