import { ASYNC_DEFAULTS } from '../../../contract/async-inference';
import { ENV } from '../../../contract/environment';

/** Asynchronous inference's configuration (ASYNC_*), read with the rest of the environment. */
export interface AsyncConfig {
  readonly bucket: string;
  readonly queueUrl: string;
  /** Buckets whose objects a caller may name as a request body, besides the uploads of `bucket`. */
  readonly inputBuckets: readonly string[];
  readonly maxReceiveCount: number;
  readonly maxInputBytes: number;
  readonly uploadUrlExpiresS: number;
  readonly eventBus?: string;
  readonly successTopicArn?: string;
  readonly errorTopicArn?: string;
  /** MODEL_S3_FORCE_PATH_STYLE: path-style addressing, which S3-compatible servers need. */
  readonly forcePathStyle: boolean;
}

/** S3's rule for bucket names, loosely: what could never be one is a wiring mistake. */
const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/**
 * Reads ASYNC_*: undefined without ASYNC_BUCKET (asynchronous inference off). As readConfig does, a
 * bad value throws at once with the variable's name.
 */
export function readAsyncConfig(env: NodeJS.ProcessEnv): AsyncConfig | undefined {
  const bucket = env[ENV.ASYNC_BUCKET];
  if (!bucket) return undefined;
  if (!BUCKET_NAME.test(bucket)) throw new Error(`${ENV.ASYNC_BUCKET} must be a bucket name, got: ${bucket}`);
  const queueUrl = env[ENV.ASYNC_QUEUE_URL];
  if (!queueUrl || !/^https?:\/\//.test(queueUrl)) {
    throw new Error(
      `${ENV.ASYNC_QUEUE_URL} must be the URL of the queue that asynchronous requests are sent to (it is required with ${ENV.ASYNC_BUCKET}), got: ${queueUrl ?? '(unset)'}`,
    );
  }
  const inputBuckets = (env[ENV.ASYNC_INPUT_BUCKETS] ?? '')
    .split(',')
    .map((b) => b.trim())
    .filter((b) => b !== '');
  for (const b of inputBuckets) {
    if (!BUCKET_NAME.test(b)) throw new Error(`${ENV.ASYNC_INPUT_BUCKETS} must be bucket names separated by commas, got: ${b}`);
  }
  const pathStyle = env[ENV.MODEL_S3_FORCE_PATH_STYLE];
  return {
    bucket,
    queueUrl,
    inputBuckets,
    maxReceiveCount: positive(env, ENV.ASYNC_MAX_RECEIVE_COUNT, ASYNC_DEFAULTS.MAX_RECEIVE_COUNT),
    maxInputBytes: positive(env, ENV.ASYNC_MAX_INPUT_BYTES, ASYNC_DEFAULTS.MAX_INPUT_BYTES),
    uploadUrlExpiresS: positive(env, ENV.ASYNC_UPLOAD_URL_EXPIRES_S, ASYNC_DEFAULTS.UPLOAD_URL_EXPIRES_S),
    eventBus: env[ENV.ASYNC_EVENT_BUS] || undefined,
    successTopicArn: env[ENV.ASYNC_SUCCESS_TOPIC_ARN] || undefined,
    errorTopicArn: env[ENV.ASYNC_ERROR_TOPIC_ARN] || undefined,
    forcePathStyle: pathStyle === 'true',
  };
}

function positive(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got: ${raw}`);
  return n;
}
