/**
 * The environment variables that configure the handlers (the ONNX Runtime inference handler and the
 * SageMaker proxy). The constructs set them; a user
 * running the handler elsewhere (or `serve`) sets them by hand. The README documents each one.
 *
 * This module is imported by the constructs too, so that both sides agree on the names.
 */
export const ENV = {
  /** Name of the model in the routes (`/v2/models/{name}/infer`). Default `model`. */
  MODEL_NAME: 'MODEL_NAME',
  /** Version reported by `GET /v2/models/{name}` and accepted in `/versions/{v}/` routes. Default `1`. */
  MODEL_VERSION: 'MODEL_VERSION',
  /** Local path of the .onnx file (layer under /opt, EFS mount, image, or the function's own code). */
  MODEL_PATH: 'MODEL_PATH',
  /** `s3://bucket/key` of the .onnx file, fetched to MODEL_CACHE_DIR at cold start. */
  MODEL_S3_URI: 'MODEL_S3_URI',
  /** Optional S3 object version of MODEL_S3_URI. */
  MODEL_S3_VERSION_ID: 'MODEL_S3_VERSION_ID',
  /**
   * Local path of the model precompiled in ORT format beside MODEL_PATH (set by the packaging when
   * it precompiled the model at synth). The handler creates the session from it, memory-mapped, and
   * falls back to MODEL_PATH, with a log line, when it is missing or onnxruntime refuses it.
   */
  MODEL_PRECOMPILED_PATH: 'MODEL_PRECOMPILED_PATH',
  /**
   * `s3://bucket/key` of the model precompiled in ORT format, fetched instead of MODEL_S3_URI; the
   * .onnx is fetched when this one cannot be fetched or loaded. Its object version is pinned by the
   * key (the key holds the model's content hash).
   */
  MODEL_PRECOMPILED_S3_URI: 'MODEL_PRECOMPILED_S3_URI',
  /** Where an S3 model is written. Default `/tmp/models`. */
  MODEL_CACHE_DIR: 'MODEL_CACHE_DIR',
  /** Idle socket timeout of the S3 download, in milliseconds. Default 30000. */
  MODEL_DOWNLOAD_TIMEOUT_MS: 'MODEL_DOWNLOAD_TIMEOUT_MS',
  /**
   * How long the init phase waits for the model before handing over to the first request, in
   * milliseconds. Default 8000 (Lambda's on-demand init phase is capped at 10 s).
   */
  MODEL_INIT_WAIT_MS: 'MODEL_INIT_WAIT_MS',
  /**
   * `1` when the function is invoked with response streaming (API Gateway's STREAM transfer mode,
   * a Function URL's RESPONSE_STREAM): the entry exports a streaming handler, which ends the
   * response before the `afterResponse` hook runs. Anything else: a buffered handler.
   */
  RESPONSE_STREAMING: 'RESPONSE_STREAMING',
  /**
   * The users' hooks module (`preprocess`, `postprocess`, `afterResponse` as named exports), a file
   * name relative to the handler's entry: the constructs bundle it beside the entry as
   * `hooks.mjs`. Unset: no hooks.
   */
  HOOKS_MODULE: 'INFERENCE_HOOKS_MODULE',
  /** onnxruntime intra-op threads. Default: the vCPUs the instance has. */
  ORT_INTRA_OP_THREADS: 'ORT_INTRA_OP_THREADS',
  /** onnxruntime inter-op threads. Default 1. */
  ORT_INTER_OP_THREADS: 'ORT_INTER_OP_THREADS',
  /** onnxruntime graph optimisation level: disabled, basic, extended or all. Default `all`. */
  ORT_GRAPH_OPTIMIZATION_LEVEL: 'ORT_GRAPH_OPTIMIZATION_LEVEL',
  /** Largest request body accepted, in bytes. Default 6291456 (Lambda's synchronous payload limit). */
  MAX_BODY_BYTES: 'MAX_BODY_BYTES',
  /**
   * Largest answer sent, in bytes, as Lambda counts it (the JSON of the whole HTTP answer). Default
   * 6291456 (Lambda's synchronous payload limit: a larger answer becomes a 502). A request whose
   * answer would be larger is refused with a 422, before its JSON is built when the output sizes
   * show it.
   */
  MAX_RESPONSE_BYTES: 'MAX_RESPONSE_BYTES',
  /**
   * After a failed model load, how long the instance waits before it loads again, in milliseconds;
   * doubled after each further failure, up to 60 s (or this value, if larger). Until then requests
   * are answered 503 (with Retry-After) and readiness probes `not ready`, without a new attempt.
   * Default 1000; 0 tries again on every request.
   */
  MODEL_LOAD_RETRY_MS: 'MODEL_LOAD_RETRY_MS',
  /** Name of the SageMaker endpoint a SageMaker proxy function invokes. Required there, unused elsewhere. */
  SAGEMAKER_ENDPOINT_NAME: 'SAGEMAKER_ENDPOINT_NAME',
  /** Content-Type of the request body sent to the SageMaker endpoint. Default `application/json`. */
  SAGEMAKER_CONTENT_TYPE: 'SAGEMAKER_CONTENT_TYPE',
  /**
   * Accept header sent to the SageMaker endpoint. Default `application/json`; the proxy answers
   * JSON only, so an endpoint that answers anything else gets a 502.
   */
  SAGEMAKER_ACCEPT: 'SAGEMAKER_ACCEPT',
  /**
   * How long the proxy waits for the SageMaker endpoint, in milliseconds, retries included.
   * Default 25000: below API Gateway's 29 s integration timeout, so the caller gets the proxy's own
   * 504 rather than the gateway's. The function's timeout must be longer than this plus the hooks.
   */
  SAGEMAKER_TIMEOUT_MS: 'SAGEMAKER_TIMEOUT_MS',
  /**
   * Attempts per request, the first included, for throttling and SageMaker's own 5xx answers (the
   * SDK's standard retry mode), all within SAGEMAKER_TIMEOUT_MS. Default 2. A container's failure
   * (ModelError) is never retried.
   */
  SAGEMAKER_MAX_ATTEMPTS: 'SAGEMAKER_MAX_ATTEMPTS',
  /**
   * Size of the byte ranges an S3 model is fetched in, in MiB (at least 1). Default 8, or 16 for
   * objects of 1 GiB and more; where the object's multipart ETag (`-N`) is explained by a common
   * part size, that size, so that ranges match the parts it was uploaded in. An object no larger
   * than one range is fetched with one GET. Here as in MODEL_S3_CONCURRENCY and
   * MODEL_S3_PART_ATTEMPTS, a value that is not a positive integer is refused with the variable's
   * name (the handler answers 500 and its log says why).
   */
  MODEL_S3_PART_SIZE_MB: 'MODEL_S3_PART_SIZE_MB',
  /**
   * How many ranges of an S3 model are fetched at once. Default: the function's memory
   * (AWS_LAMBDA_FUNCTION_MEMORY_SIZE) divided by 128 MB, between 4 and 16; 8 where that is unset.
   * 1 fetches the object with one GET, as earlier versions did.
   */
  MODEL_S3_CONCURRENCY: 'MODEL_S3_CONCURRENCY',
  /**
   * Attempts per range, the first included, when its connection drops or stalls past
   * MODEL_DOWNLOAD_TIMEOUT_MS; a retry resumes where the range stopped. Default 3.
   */
  MODEL_S3_PART_ATTEMPTS: 'MODEL_S3_PART_ATTEMPTS',
  /** `true` for path-style S3 addressing, which S3-compatible servers need, or `false`; anything else is refused. Default `false`. */
  MODEL_S3_FORCE_PATH_STYLE: 'MODEL_S3_FORCE_PATH_STYLE',
  /** Powertools' service name of the logs and metrics: a metric dimension. Default `cdk-serverless-inference`. */
  POWERTOOLS_SERVICE_NAME: 'POWERTOOLS_SERVICE_NAME',
  /** Powertools' namespace of the embedded metrics. Default `CdkServerlessInference` (METRICS_NAMESPACE). */
  POWERTOOLS_METRICS_NAMESPACE: 'POWERTOOLS_METRICS_NAMESPACE',
  /** onnxruntime's own switch for its usage telemetry; the handler sets `1` unless it is set. */
  ORT_DISABLE_TELEMETRY: 'ORT_DISABLE_TELEMETRY',
} as const;

export type EnvName = (typeof ENV)[keyof typeof ENV];
