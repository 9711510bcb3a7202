/**
 * The environment variables that configure the handlers (the ONNX Runtime inference handler and the
 * SageMaker proxy). The constructs set them; a user
 * running the handler elsewhere (or `serve`) sets them by hand.
 *
 * This module is imported by the constructs too, so that both sides agree on the names. Each doc
 * comment, with its `@default`, is the variable's row in docs/environment.md, which
 * `scripts/docs-env-table.ts` generates from this file (`npm run docgen`).
 */
export const ENV = {
  /**
   * Name of the model in the routes (`/v2/models/{name}/infer`).
   * @default `model`
   */
  MODEL_NAME: 'MODEL_NAME',
  /**
   * Version reported by `GET /v2/models/{name}` and accepted in `/versions/{v}/` routes.
   * @default `1`
   */
  MODEL_VERSION: 'MODEL_VERSION',
  /** Local path of the .onnx file (layer under /opt, EFS mount, image, or the function's own code). */
  MODEL_PATH: 'MODEL_PATH',
  /**
   * `s3://bucket/key` of the .onnx file, fetched to MODEL_CACHE_DIR at cold start. One of MODEL_PATH
   * and this one is required.
   */
  MODEL_S3_URI: 'MODEL_S3_URI',
  /**
   * A pinned S3 object version of MODEL_S3_URI.
   * @default - the latest version
   */
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
  /**
   * Where an S3 model is written.
   * @default `/tmp/models`
   */
  MODEL_CACHE_DIR: 'MODEL_CACHE_DIR',
  /**
   * Idle socket timeout of the S3 download, in milliseconds.
   * @default 30000
   */
  MODEL_DOWNLOAD_TIMEOUT_MS: 'MODEL_DOWNLOAD_TIMEOUT_MS',
  /**
   * How long the init phase waits for the model before handing over to the first request, in
   * milliseconds (Lambda's on-demand init phase is capped at 10 s).
   * @default 8000
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
   * `hooks.mjs` (the `hooks` prop).
   * @default - no hooks
   */
  HOOKS_MODULE: 'INFERENCE_HOOKS_MODULE',
  /**
   * onnxruntime threads within an operator (intra-op).
   * @default - the vCPUs the instance has
   */
  ORT_INTRA_OP_THREADS: 'ORT_INTRA_OP_THREADS',
  /**
   * onnxruntime threads across operators (inter-op).
   * @default 1
   */
  ORT_INTER_OP_THREADS: 'ORT_INTER_OP_THREADS',
  /**
   * onnxruntime graph optimisation level: `disabled`, `basic`, `extended` or `all`.
   * @default `all`
   */
  ORT_GRAPH_OPTIMIZATION_LEVEL: 'ORT_GRAPH_OPTIMIZATION_LEVEL',
  /**
   * Largest request body accepted, in bytes (Lambda's synchronous payload limit); a larger one gets
   * a 413. The SageMaker proxy refuses a request it would send the endpoint over this size too
   * (after `preprocess`); its construct sets the endpoint's own limit.
   * @default 6291456
   */
  MAX_BODY_BYTES: 'MAX_BODY_BYTES',
  /**
   * Largest answer sent, in bytes, as Lambda counts it (the JSON of the whole HTTP answer): Lambda's
   * synchronous payload limit, past which an answer becomes a 502. A request whose answer would be
   * larger is refused with a 422, before its JSON is built when the output sizes show it.
   * @default 6291456
   */
  MAX_RESPONSE_BYTES: 'MAX_RESPONSE_BYTES',
  /**
   * After a failed model load, how long the instance waits before it loads again, in milliseconds;
   * doubled after each further failure, up to 60 s (or this value, if larger). Until then requests
   * are answered 503 (with Retry-After) and readiness probes `not ready`, without a new attempt.
   * 0 tries again on every request.
   * @default 1000
   */
  MODEL_LOAD_RETRY_MS: 'MODEL_LOAD_RETRY_MS',
  /**
   * A/B variants: a JSON array of `{"name", "weight", "version"?, "env"?}` (contract/variants.ts),
   * two or more. The handler loads every variant's model side by side and answers each infer
   * request with one, chosen by weight, naming it in the `X-Inference-Variant` header and the
   * answer's `parameters.variant`. A variant without `env` serves MODEL_PATH or MODEL_S3_URI; one
   * with it names its own model with those variables. A bad value makes every request a 500 whose
   * cause is in the log.
   * @default - one model, no variants
   */
  MODEL_VARIANTS: 'MODEL_VARIANTS',
  /**
   * With MODEL_VARIANTS: the request header (a user id, say) whose value decides the variant, the
   * same for every request that carries the same value, on every instance and version while the
   * variants' names, order and weights stay. Requests without it are assigned at random by weight.
   * @default - every request assigned at random by weight
   */
  MODEL_VARIANT_HEADER: 'MODEL_VARIANT_HEADER',
  /** Name of the SageMaker endpoint a SageMaker proxy function invokes. Required there, unused elsewhere. */
  SAGEMAKER_ENDPOINT_NAME: 'SAGEMAKER_ENDPOINT_NAME',
  /**
   * Content-Type of the request body sent to the SageMaker endpoint.
   * @default `application/json`
   */
  SAGEMAKER_CONTENT_TYPE: 'SAGEMAKER_CONTENT_TYPE',
  /**
   * Accept header sent to the SageMaker endpoint. The proxy answers JSON only, so an endpoint that
   * answers anything else gets a 502.
   * @default `application/json`
   */
  SAGEMAKER_ACCEPT: 'SAGEMAKER_ACCEPT',
  /**
   * How long the proxy waits for the SageMaker endpoint, in milliseconds, retries included: by
   * default below API Gateway's 29 s integration timeout, so the caller gets the proxy's own 504
   * rather than the gateway's. The function's timeout must be longer than this plus the hooks.
   * @default 25000
   */
  SAGEMAKER_TIMEOUT_MS: 'SAGEMAKER_TIMEOUT_MS',
  /**
   * Attempts per request, the first included, for throttling and SageMaker's own 5xx answers (the
   * SDK's standard retry mode), all within SAGEMAKER_TIMEOUT_MS. A container's failure
   * (ModelError) is never retried.
   * @default 2
   */
  SAGEMAKER_MAX_ATTEMPTS: 'SAGEMAKER_MAX_ATTEMPTS',
  /**
   * Size of the byte ranges an S3 model is fetched in, in MiB (at least 1). An object no larger
   * than one range is fetched with one GET. Here as in MODEL_S3_CONCURRENCY and
   * MODEL_S3_PART_ATTEMPTS, a value that is not a positive integer is refused with the variable's
   * name (the handler answers 500 and its log says why).
   * @default - 8, or 16 for objects of 1 GiB and more; where the object's multipart ETag (`-N`) is
   * explained by a common part size, that size, so that ranges match the parts it was uploaded in
   */
  MODEL_S3_PART_SIZE_MB: 'MODEL_S3_PART_SIZE_MB',
  /**
   * How many ranges of an S3 model are fetched at once. 1 fetches the object with one GET, as
   * earlier versions did.
   * @default - the function's memory (AWS_LAMBDA_FUNCTION_MEMORY_SIZE) divided by 128 MB, between
   * 4 and 16; 8 where that is unset
   */
  MODEL_S3_CONCURRENCY: 'MODEL_S3_CONCURRENCY',
  /**
   * Attempts per range, the first included, when its connection drops or stalls past
   * MODEL_DOWNLOAD_TIMEOUT_MS; a retry resumes where the range stopped.
   * @default 3
   */
  MODEL_S3_PART_ATTEMPTS: 'MODEL_S3_PART_ATTEMPTS',
  /**
   * `true` for path-style S3 addressing, which S3-compatible servers need, or `false`; anything
   * else is refused.
   * @default `false`
   */
  MODEL_S3_FORCE_PATH_STYLE: 'MODEL_S3_FORCE_PATH_STYLE',
  /**
   * Powertools' service name of the logs and metrics: a metric dimension. The constructs set one
   * unique to each function.
   * @default `cdk-serverless-inference`
   */
  POWERTOOLS_SERVICE_NAME: 'POWERTOOLS_SERVICE_NAME',
  /**
   * Powertools' namespace of the embedded metrics (METRICS_NAMESPACE).
   * @default `CdkServerlessInference`
   */
  POWERTOOLS_METRICS_NAMESPACE: 'POWERTOOLS_METRICS_NAMESPACE',
  /**
   * onnxruntime's own switch for its usage telemetry, off unless set otherwise.
   * @default `1`
   */
  ORT_DISABLE_TELEMETRY: 'ORT_DISABLE_TELEMETRY',
} as const;

export type EnvName = (typeof ENV)[keyof typeof ENV];
