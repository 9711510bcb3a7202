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
   * Largest answer sent, in bytes, as Lambda counts a buffered one (the JSON of the whole HTTP
   * answer, binary data in base64): Lambda's payload limit, past which an answer becomes a 502. A
   * request whose answer would be larger is refused with a 422, before its JSON is built when the
   * output sizes show it. A streamed answer (RESPONSE_STREAMING=1) is counted the same way, which
   * overstates its binary data by a third.
   * @default 6291456; 200000000 (Lambda's streamed limit) with RESPONSE_STREAMING=1
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
   * Dynamic batching: the most rows (the model's first dimension, summed over the requests) one
   * merged `session.run` takes. Set to 2 or more, it turns the batcher on: requests for a model whose
   * inputs share a symbolic first dimension, and that agree on the other dimensions, are merged
   * into one run at a time (those that arrive while it runs form the next), and each gets its own
   * rows of the answer. The constructs set it from the `batching` prop (Managed Instances only).
   * @default - unset: no batching, each request runs alone
   */
  BATCH_MAX_SIZE: 'BATCH_MAX_SIZE',
  /**
   * Dynamic batching: how long a request that finds the model idle waits for others, in
   * milliseconds; 0 merges only the requests that arrive in the same turn of the event loop. Read
   * with BATCH_MAX_SIZE only.
   * @default 2
   */
  BATCH_MAX_QUEUE_DELAY_MS: 'BATCH_MAX_QUEUE_DELAY_MS',
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
   * Local directory of a model repository (`<name>/<version>/model.onnx`, Triton's layout), served
   * instead of one model: each model loads on its first request. One of MODEL_PATH, MODEL_S3_URI,
   * this one and MODEL_REPOSITORY_S3_URI is required.
   */
  MODEL_REPOSITORY_PATH: 'MODEL_REPOSITORY_PATH',
  /**
   * `s3://bucket/prefix/` of a model repository (`<prefix><name>/<version>/model.onnx`); each model
   * is fetched to MODEL_CACHE_DIR on its first request.
   */
  MODEL_REPOSITORY_S3_URI: 'MODEL_REPOSITORY_S3_URI',
  /**
   * A model repository's memory budget for loaded models, in MiB: a model is charged twice the size
   * of its file (REPOSITORY_SESSION_MEMORY_RATIO: the weights, and the copy onnxruntime prepacks),
   * and the least recently used models not serving a request are unloaded to make room. A
   * repository in S3 loads no more than MODEL_CACHE_DISK_MB of files either.
   * @default - the function's memory - 256 MiB, or a quarter of the machine's memory outside Lambda
   */
  MODEL_CACHE_MEMORY_MB: 'MODEL_CACHE_MEMORY_MB',
  /**
   * A model repository's budget for model files fetched from S3 into MODEL_CACHE_DIR, in MiB; the
   * least recently used files of unloaded models are removed to make room.
   * @default - 90 % of the size of the file system of MODEL_CACHE_DIR
   */
  MODEL_CACHE_DISK_MB: 'MODEL_CACHE_DISK_MB',
  /**
   * Models of a repository that a warm-up loads (comma-separated `name` or `name:version`), and that
   * are unloaded last.
   * @default - none: a warm-up loads no model
   */
  MODEL_REPOSITORY_WARM_MODELS: 'MODEL_REPOSITORY_WARM_MODELS',
  /**
   * How long a model repository's listing of a model's versions is reused, in milliseconds; a model
   * not in the listing is looked up at once, so a new model needs no wait.
   * @default 10000
   */
  MODEL_REPOSITORY_REFRESH_MS: 'MODEL_REPOSITORY_REFRESH_MS',
  /**
   * Name of the Amazon Data Firehose stream that capture records go to (the `dataCapture` prop): the
   * handler puts one record per sampled request after the answer is sent. With DATA_CAPTURE_DIR
   * unset too, nothing is captured.
   * @default - no capture to Firehose
   */
  DATA_CAPTURE_FIREHOSE_STREAM: 'DATA_CAPTURE_FIREHOSE_STREAM',
  /**
   * A local folder that capture records are appended to, one JSON Lines file per hour under
   * `yyyy/mm/dd/hh/` (what `serve --data-capture DIR` sets).
   * @default - no capture to a folder
   */
  DATA_CAPTURE_DIR: 'DATA_CAPTURE_DIR',
  /**
   * The share of infer requests captured, in percent (0 to 100, fractions allowed). Requests that a
   * shadow runs on are captured whatever it says.
   * @default 100
   */
  DATA_CAPTURE_SAMPLING_PERCENT: 'DATA_CAPTURE_SAMPLING_PERCENT',
  /**
   * What is captured: `Input`, `Output` or `InputAndOutput`.
   * @default `InputAndOutput`
   */
  DATA_CAPTURE_MODE: 'DATA_CAPTURE_MODE',
  /**
   * Local path of the shadow (candidate) model's .onnx file: it runs on a sampled copy of the infer
   * requests after the live answer is sent, and its answers are compared with the live ones and
   * captured beside them. One of this and SHADOW_MODEL_S3_URI turns the shadow on.
   * @default - no shadow
   */
  SHADOW_MODEL_PATH: 'SHADOW_MODEL_PATH',
  /**
   * `s3://bucket/key` of the shadow model's .onnx file, fetched under MODEL_CACHE_DIR at cold start.
   * @default - no shadow
   */
  SHADOW_MODEL_S3_URI: 'SHADOW_MODEL_S3_URI',
  /**
   * A pinned S3 object version of SHADOW_MODEL_S3_URI.
   * @default - the latest version
   */
  SHADOW_MODEL_S3_VERSION_ID: 'SHADOW_MODEL_S3_VERSION_ID',
  /**
   * The shadow model's version, as its capture records name it.
   * @default `shadow`
   */
  SHADOW_MODEL_VERSION: 'SHADOW_MODEL_VERSION',
  /**
   * The share of infer requests the shadow runs on, in percent (0 to 100, fractions allowed).
   * @default 100
   */
  SHADOW_SAMPLING_PERCENT: 'SHADOW_SAMPLING_PERCENT',
  /**
   * How the shadow's answer is compared with the live one: `tolerance` (every float within
   * SHADOW_TOLERANCE, other values equal) or `argmax` (the largest value of each row of every float
   * output at the same index, for classifiers).
   * @default `tolerance`
   */
  SHADOW_AGREEMENT: 'SHADOW_AGREEMENT',
  /**
   * The tolerance of float outputs: `|a - b| <= tolerance * max(1, |a|, |b|)`.
   * @default 0.0001
   */
  SHADOW_TOLERANCE: 'SHADOW_TOLERANCE',
  /**
   * The shadow function the live function invokes asynchronously after each shadowed answer
   * (`ShadowMode.SHADOW_FUNCTION`), with the request, the live answer and its capture record,
   * instead of running a shadow model itself.
   * @default - no shadow function
   */
  SHADOW_FUNCTION_NAME: 'SHADOW_FUNCTION_NAME',
  /**
   * `true` on a shadow function: its model is the candidate, and it takes the live function's
   * shadow events (compares, counts and writes the capture record) besides ordinary requests.
   * @default `false`
   */
  SHADOW_CANDIDATE: 'SHADOW_CANDIDATE',
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
  /**
   * The bucket of asynchronous inference (the `AsyncInference` construct): requests, uploads,
   * results and failures, under the prefixes of contract/async-inference.ts. Set, it turns the
   * asynchronous routes (`/v2/models/{name}/infer-async`) and the processing of SQS events on; its
   * S3 client uses MODEL_S3_FORCE_PATH_STYLE's addressing.
   * @default - no asynchronous inference: those routes are 404 and an SQS event is a direct invocation
   */
  ASYNC_BUCKET: 'ASYNC_BUCKET',
  /** URL of the SQS queue that accepted asynchronous requests are sent to. Required with ASYNC_BUCKET. */
  ASYNC_QUEUE_URL: 'ASYNC_QUEUE_URL',
  /**
   * Names of the buckets, comma-separated, whose objects a caller may name as a request body
   * (`X-Inference-Input-Location: s3://bucket/key`); the function's own uploads are always allowed.
   * @default - only the uploads of ASYNC_BUCKET
   */
  ASYNC_INPUT_BUCKETS: 'ASYNC_INPUT_BUCKETS',
  /**
   * The queue's maxReceiveCount: at the last receive, a request that still fails for a passing
   * reason (the model cannot be loaded, S3 fails) is recorded as failed before its message goes
   * to the dead-letter queue.
   * @default 3
   */
  ASYNC_MAX_RECEIVE_COUNT: 'ASYNC_MAX_RECEIVE_COUNT',
  /**
   * The largest request body read from S3, in bytes; a larger one is refused (413 at accept, a
   * failure record when it is processed).
   * @default 268435456
   */
  ASYNC_MAX_INPUT_BYTES: 'ASYNC_MAX_INPUT_BYTES',
  /**
   * How long a pre-signed upload URL is valid, in seconds.
   * @default 900
   */
  ASYNC_UPLOAD_URL_EXPIRES_S: 'ASYNC_UPLOAD_URL_EXPIRES_S',
  /**
   * Name or ARN of the EventBridge event bus that success and failure notifications are put on.
   * @default - no EventBridge notification
   */
  ASYNC_EVENT_BUS: 'ASYNC_EVENT_BUS',
  /**
   * ARN of the SNS topic a success is published to.
   * @default - no SNS notification of a success
   */
  ASYNC_SUCCESS_TOPIC_ARN: 'ASYNC_SUCCESS_TOPIC_ARN',
  /**
   * ARN of the SNS topic a failure is published to.
   * @default - no SNS notification of a failure
   */
  ASYNC_ERROR_TOPIC_ARN: 'ASYNC_ERROR_TOPIC_ARN',
} as const;

export type EnvName = (typeof ENV)[keyof typeof ENV];
