/**
 * Asynchronous inference: what the `AsyncInference` construct (lib/async) and the handler
 * (handlers/core/async) agree on. The routes are apart from the protocol's table (routes.ts), so
 * that an endpoint without asynchronous inference keeps exactly its routes.
 */

/** `POST /v2/models/{model}/infer-async`: accept a request; `GET .../infer-async/{id}`: its status. */
export const ASYNC_ROUTE_SEGMENT = 'infer-async';

/** `POST /v2/models/{model}/infer-async/uploads`: a pre-signed URL to upload a large request to. */
export const ASYNC_UPLOADS_SEGMENT = 'uploads';

/**
 * The request header that names a request body already in S3 (`s3://bucket/key`), instead of a
 * body: SageMaker Asynchronous Inference's `InputLocation`.
 */
export const ASYNC_INPUT_LOCATION_HEADER = 'X-Inference-Input-Location';

/** Where each object lives in the asynchronous inference bucket, by key prefix. */
export const ASYNC_PREFIX = {
  /** A request as accepted (its body, or an empty marker for a request by reference), until it expires. */
  REQUESTS: 'requests/',
  /** Bodies uploaded with a pre-signed URL. */
  UPLOADS: 'uploads/',
  /** The answer of a request that succeeded: the protocol's infer response, as JSON. */
  RESULTS: 'results/',
  /** Why a request failed: `{ id, status: 'failed', error, status_code }`. */
  ERRORS: 'errors/',
} as const;

/** The state `GET .../infer-async/{id}` answers. */
export const ASYNC_STATUS = { PENDING: 'pending', DONE: 'done', FAILED: 'failed' } as const;

/** The status of an accepted request: 202, with its id and where its result will be. */
export const ASYNC_ACCEPTED_STATUS = 202;

/** What a success or failure notification says, on SNS (the message) or EventBridge (the detail). */
export const ASYNC_NOTIFICATION = {
  /** The EventBridge event's `source`. */
  SOURCE: 'cdk-serverless-inference',
  /** The EventBridge event's `detail-type` of a success. */
  SUCCEEDED: 'Inference Succeeded',
  /** The EventBridge event's `detail-type` of a failure. */
  FAILED: 'Inference Failed',
} as const;

/** The SQS message the accept path sends the queue: the request's id and where everything is. */
export interface AsyncQueueMessage {
  readonly id: string;
  readonly model_name: string;
  /** `s3://bucket/key` of the request body. */
  readonly input_location: string;
  /** `s3://bucket/key` where the answer goes. */
  readonly output_location: string;
  /** `s3://bucket/key` where a failure's reason goes. */
  readonly failure_location: string;
}

/** An id is a UUID: nothing a caller sends becomes a key without passing this. */
export const ASYNC_ID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Defaults the construct writes and the handler assumes. */
export const ASYNC_DEFAULTS = {
  /** Receives of a message before it goes to the dead-letter queue (the queue's maxReceiveCount). */
  MAX_RECEIVE_COUNT: 3,
  /** How long a pre-signed upload URL is valid, in seconds. */
  UPLOAD_URL_EXPIRES_S: 900,
  /** The largest request body read from S3, in bytes (256 MiB): the function's memory must hold it, parsed. */
  MAX_INPUT_BYTES: 256 * 1024 * 1024,
} as const;
