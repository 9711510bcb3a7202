/**
 * The environment variables that configure the inference handler. The constructs set them; a user
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
  /** Where an S3 model is written. Default `/tmp/models`. */
  MODEL_CACHE_DIR: 'MODEL_CACHE_DIR',
  /** Idle socket timeout of the S3 download, in milliseconds. Default 30000. */
  MODEL_DOWNLOAD_TIMEOUT_MS: 'MODEL_DOWNLOAD_TIMEOUT_MS',
  /**
   * How long the init phase waits for the model before handing over to the first request, in
   * milliseconds. Default 8000 (Lambda's on-demand init phase is capped at 10 s).
   */
  MODEL_INIT_WAIT_MS: 'MODEL_INIT_WAIT_MS',
  /** onnxruntime intra-op threads. Default: the vCPUs the instance has. */
  ORT_INTRA_OP_THREADS: 'ORT_INTRA_OP_THREADS',
  /** onnxruntime inter-op threads. Default 1. */
  ORT_INTER_OP_THREADS: 'ORT_INTER_OP_THREADS',
  /** onnxruntime graph optimisation level: disabled, basic, extended or all. Default `all`. */
  ORT_GRAPH_OPTIMIZATION_LEVEL: 'ORT_GRAPH_OPTIMIZATION_LEVEL',
  /** Largest request body accepted, in bytes. Default 6291456 (Lambda's synchronous payload limit). */
  MAX_BODY_BYTES: 'MAX_BODY_BYTES',
} as const;

export type EnvName = (typeof ENV)[keyof typeof ENV];
