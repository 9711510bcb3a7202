/**
 * What a failed S3 model fetch reports: a code the caller can act on and a message that says what
 * to check, mapped here from the SDK's, the network's and the file system's errors.
 */

export type ModelFetchErrorCode = 'NotFound' | 'AccessDenied' | 'NoSpace' | 'Interrupted' | 'Timeout' | 'Corrupt' | 'InvalidUri' | 'Unknown';

export class ModelFetchError extends Error {
  constructor(
    readonly code: ModelFetchErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ModelFetchError';
  }
}

/** Facts about the download in progress, for error messages. */
export interface Progress {
  bytes: number;
  expectedBytes?: number;
}

/** What the fetch was doing when it failed, for the message. */
export interface FailureContext {
  readonly uri: string;
  readonly versionId?: string;
  readonly idleTimeoutMs: number;
  readonly progress: Progress;
  readonly cacheDir: string;
}

/** Errors of a connection that dropped: worth another attempt. */
export const INTERRUPTION_CODES = new Set(['ECONNRESET', 'EPIPE', 'ERR_STREAM_PREMATURE_CLOSE', 'ECONNABORTED']);
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/** The error a fetch rejects with: a ModelFetchError as it is, anything else given a code and a message that says what to check. */
export function toModelFetchError(error: unknown, context: FailureContext): ModelFetchError {
  if (error instanceof ModelFetchError) {
    return error;
  }
  const { uri, versionId, idleTimeoutMs, progress } = context;
  const name = (error as { name?: unknown } | undefined)?.name;
  const code = (error as { code?: unknown } | undefined)?.code;
  const status = httpStatusOf(error);
  const object = versionId === undefined ? uri : `version ${versionId} of ${uri}`;
  const make = (fetchCode: ModelFetchErrorCode, message: string) => new ModelFetchError(fetchCode, message, { cause: error });

  // The SDK's own check of a whole-object GET's checksum (ChecksumMode ENABLED).
  if (/^Checksum mismatch/.test(messageOf(error))) {
    return make('Corrupt', `The download of ${uri} is corrupt: ${messageOf(error)}; the file was deleted, fetch again.`);
  }
  if (name === 'NoSuchKey') {
    return make('NotFound', `${uri} does not exist (NoSuchKey). Check MODEL_S3_URI and that the model was uploaded.`);
  }
  if (name === 'NoSuchBucket') {
    return make('NotFound', `The bucket of ${uri} does not exist (NoSuchBucket). Check MODEL_S3_URI.`);
  }
  if (name === 'NoSuchVersion' || (versionId !== undefined && name === 'InvalidArgument')) {
    return make('NotFound', `${object} does not exist (${String(name)}). Check MODEL_S3_VERSION_ID.`);
  }
  if (status === 403 || name === 'AccessDenied') {
    return make(
      'AccessDenied',
      `Access denied to ${object} (${String(name)}). Grant the function's role s3:GetObject` +
        `${versionId === undefined ? '' : ' and s3:GetObjectVersion'} on it (and kms:Decrypt if the bucket uses ` +
        'SSE-KMS). Without s3:ListBucket on the bucket, S3 also answers 403 for a key that does not exist.',
    );
  }
  // The SDK names a connection reset before the answer's headers a TimeoutError: it is a drop.
  if ((name === 'TimeoutError' && !(typeof code === 'string' && INTERRUPTION_CODES.has(code))) || code === 'ETIMEDOUT') {
    return make(
      'Timeout',
      `Timed out fetching ${uri} after ${progress.bytes} bytes (idle timeout ${idleTimeoutMs} ms). Check the ` +
        'network path to S3 (a function in a VPC needs an S3 gateway endpoint or a NAT) or raise MODEL_DOWNLOAD_TIMEOUT_MS.',
    );
  }
  if (code === 'ENOSPC') {
    return make(
      'NoSpace',
      `${context.cacheDir} ran out of space while writing ${uri} (${progress.bytes} of ${progress.expectedBytes ?? '?'} bytes). ` +
        "Raise the function's ephemeral storage or point MODEL_CACHE_DIR at a larger volume.",
    );
  }
  if (typeof code === 'string' && INTERRUPTION_CODES.has(code)) {
    return make(
      'Interrupted',
      `The connection to S3 dropped after ${progress.bytes} of ${progress.expectedBytes ?? '?'} bytes of ${uri} (${code}); the partial file was deleted, fetch again.`,
    );
  }
  if (typeof code === 'string' && UNREACHABLE_CODES.has(code)) {
    return make('Unknown', `Cannot reach S3 for ${uri} (${code}). Check AWS_ENDPOINT_URL_S3 / AWS_REGION and the network path to S3.`);
  }
  return make('Unknown', `Fetching ${object} failed: ${String(name ?? 'Error')}: ${messageOf(error)}`);
}

export function httpStatusOf(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
