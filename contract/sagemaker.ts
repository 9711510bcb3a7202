/**
 * What the SageMaker proxy's two integrations (the Lambda proxy and API Gateway's direct call) share
 * with SageMaker Runtime's `InvokeEndpoint`: the headers a caller may set, the request size limits,
 * and the container statuses passed on as they are.
 */

/**
 * `InvokeEndpoint`'s request headers a caller may set (SageMaker's API reference names them), passed
 * on to SageMaker once checked: a multi-model endpoint's model, a production variant, data capture's
 * inference id, and the container's custom attributes.
 */
export const SAGEMAKER_HEADER = {
  /** Opaque to SageMaker, read by the container: at most 1024 printable ASCII characters. */
  CUSTOM_ATTRIBUTES: 'X-Amzn-SageMaker-Custom-Attributes',
  /** The model of a multi-model endpoint to invoke, a path relative to its S3 prefix: 1 to 1024 printable ASCII characters. */
  TARGET_MODEL: 'X-Amzn-SageMaker-Target-Model',
  /** The production variant to invoke, bypassing the endpoint's traffic split: a variant name. */
  TARGET_VARIANT: 'X-Amzn-SageMaker-Target-Variant',
  /** The id data capture records with the request: 1 to 64 printable ASCII characters. */
  INFERENCE_ID: 'X-Amzn-SageMaker-Inference-Id',
} as const;

/**
 * The largest request body `InvokeEndpoint` takes, as SageMaker documents it: 6 MB for a real-time
 * endpoint, 4 MB for a serverless one (counted here in MiB, so that nothing SageMaker takes is
 * refused). A larger body is answered 413 before SageMaker is called.
 */
export const SAGEMAKER_MAX_REQUEST_BYTES = {
  REAL_TIME: 6 * 1024 * 1024,
  SERVERLESS: 4 * 1024 * 1024,
} as const;

/**
 * A model container's 4xx statuses that mean the same at this API; a container's other 4xx (401,
 * 404...) would speak of this API rather than of the model, and is answered 400.
 */
export const SAGEMAKER_PASSED_CONTAINER_STATUSES: readonly number[] = [400, 413, 415, 422, 429];
