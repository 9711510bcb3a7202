/**
 * The S3 side of a model fetch: the object's address, the AWS SDK and the client built with it, the
 * requests (a GET unless the cached ETag still matches, a GET of one range, a HEAD for the object's
 * checksum) and what their answers say.
 *
 * `@aws-sdk/client-s3` is imported inside the functions, never at the top, so a handler whose model
 * is a local file never loads it (the handler build's code splitting puts it in its own chunk).
 */
import { Readable } from 'node:stream';
import type { GetObjectCommandOutput, HeadObjectCommandOutput, S3Client } from '@aws-sdk/client-s3';
import { CRC_ALGORITHMS, type CrcAlgorithm } from './crc';
import { httpStatusOf, ModelFetchError } from './s3-fetch-error';

export interface S3Location {
  readonly bucket: string;
  readonly key: string;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;

export function parseS3Uri(uri: string): S3Location {
  const match = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri);
  if (!match) {
    throw new ModelFetchError('InvalidUri', `Invalid S3 model URI ${JSON.stringify(uri)}: expected s3://<bucket>/<key>, e.g. s3://my-bucket/models/model.onnx`);
  }
  return { bucket: match[1], key: match[2] };
}

type S3Sdk = typeof import('@aws-sdk/client-s3');

async function loadS3Sdk(): Promise<S3Sdk> {
  const loaded = (await import('@aws-sdk/client-s3')) as S3Sdk & { default?: S3Sdk };
  // esbuild with code splitting exposes a CommonJS package (the SDK's `main`) behind a dynamic
  // import only as `default`; Node and tsc expose the named exports.
  return typeof loaded.S3Client === 'function' ? loaded : loaded.default!;
}

/** A client for one fetch, built with the SDK's own variables and the fetch's timeouts. */
export async function createS3Client(forcePathStyle: boolean, idleTimeoutMs: number, connectTimeoutMs = DEFAULT_CONNECT_TIMEOUT_MS): Promise<S3Client> {
  const { S3Client } = await loadS3Sdk();
  return new S3Client({
    // The SDK reads AWS_REGION and AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL itself.
    forcePathStyle,
    // A model bucket in another region than the function still works.
    followRegionRedirects: true,
    // Options, not an instance: the SDK builds its own NodeHttpHandler from them, so this module
    // needs no direct dependency on @smithy/node-http-handler. socketTimeout is the idle timeout
    // and also covers the body stream; requestTimeout would cap the whole download.
    requestHandler: { connectionTimeout: connectTimeoutMs, socketTimeout: idleTimeoutMs },
  });
}

/** A GET of the object (or of its first `firstRangeBytes`), unless its ETag is still `etag`. */
export async function getObjectUnlessMatch(
  client: Pick<S3Client, 'send'>,
  location: S3Location,
  versionId: string | undefined,
  etag: string | undefined,
  firstRangeBytes?: number,
): Promise<GetObjectCommandOutput | 'not-modified'> {
  const { GetObjectCommand } = await loadS3Sdk();
  const Range = firstRangeBytes === undefined ? undefined : `bytes=0-${firstRangeBytes - 1}`;
  try {
    // A GET of the whole object asks for its checksum: the SDK then checks a full-object one as the body streams.
    const ChecksumMode = Range === undefined ? 'ENABLED' : undefined;
    return await client.send(new GetObjectCommand({ Bucket: location.bucket, Key: location.key, VersionId: versionId, IfNoneMatch: etag, Range, ChecksumMode }));
  } catch (error) {
    // The SDK turns a 304 into an exception whose name varies by server.
    if (httpStatusOf(error) === 304) {
      return 'not-modified';
    }
    // S3 answers a range of an empty object 416: ask again for the whole object.
    if (httpStatusOf(error) === 416 && Range !== undefined) {
      return getObjectUnlessMatch(client, location, versionId, etag);
    }
    throw error;
  }
}

/** The object a download fetches in ranges: its address, and the first answer every range must match. */
export interface RangedObject {
  readonly location: S3Location;
  readonly versionId?: string;
  readonly uri: string;
  /** The answer to the first GET: its version and ETag are the object's. */
  readonly response: GetObjectCommandOutput;
  readonly objectSize: number;
}

/**
 * One range of the object, of the version the first answer named and If-Match its ETag: an object
 * replaced meanwhile fails with `Interrupted`, an answer for other bytes with `Corrupt`.
 */
export async function getRange(client: Pick<S3Client, 'send'>, job: RangedObject, start: number, end: number, signal: AbortSignal): Promise<Readable> {
  const { GetObjectCommand } = await loadS3Sdk();
  const { location, response, uri } = job;
  let answer: GetObjectCommandOutput;
  try {
    answer = await client.send(
      new GetObjectCommand({
        Bucket: location.bucket,
        Key: location.key,
        // The version the first answer named, so that every range is of the same object.
        VersionId: response.VersionId ?? job.versionId,
        IfMatch: response.ETag,
        Range: `bytes=${start}-${end}`,
      }),
      { abortSignal: signal },
    );
  } catch (error) {
    if (httpStatusOf(error) === 412) {
      throw new ModelFetchError(
        'Interrupted',
        `${uri} changed while it was being downloaded (its ETag is no longer ${response.ETag}); the partial file was deleted, fetch again.`,
        {
          cause: error,
        },
      );
    }
    throw error;
  }
  const body = nodeStreamOf(answer, uri);
  const range = contentRangeOf(answer);
  if (!range || range.start !== start || range.end !== end || range.total !== job.objectSize) {
    body.destroy();
    throw new ModelFetchError('Corrupt', `S3 answered the range ${start}-${end} of ${uri} with ${answer.ContentRange ?? 'no Content-Range'} (object of ${job.objectSize} bytes).`);
  }
  return body;
}

export function nodeStreamOf(response: GetObjectCommandOutput, uri: string): Readable {
  if (!(response.Body instanceof Readable)) {
    throw new ModelFetchError('Unknown', `S3 returned no Node.js stream for ${uri} (got ${typeof response.Body}); the fetch needs the SDK's Node.js HTTP handler.`);
  }
  return response.Body;
}

export function requireContentLength(response: GetObjectCommandOutput, uri: string): number {
  if (response.ContentLength === undefined) {
    throw new ModelFetchError('Corrupt', `S3 returned ${uri} without a Content-Length, so its size cannot be checked; the endpoint (or a proxy in between) must send one.`);
  }
  return response.ContentLength;
}

export function contentRangeOf(response: GetObjectCommandOutput): { start: number; end: number; total: number } | undefined {
  const match = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(response.ContentRange ?? '');
  return match ? { start: Number(match[1]), end: Number(match[2]), total: Number(match[3]) } : undefined;
}

export function plainMd5Of(response: GetObjectCommandOutput): string | undefined {
  const etag = /^"?([0-9a-fA-F]{32})"?$/.exec(response.ETag ?? '');
  const kmsOrCustomerKey = response.ServerSideEncryption === 'aws:kms' || response.ServerSideEncryption === 'aws:kms:dsse' || response.SSECustomerAlgorithm !== undefined;
  return etag && !kmsOrCustomerKey ? etag[1].toLowerCase() : undefined;
}

/** A CRC checksum S3 keeps for the object: of the whole object, or composite (of its upload's parts). */
export interface ObjectChecksum {
  readonly algorithm: CrcAlgorithm;
  /** As S3 sends it: base64, with `-<parts>` when composite. */
  readonly value: string;
  /** The ETag of the object the HEAD described: the checksum is used only if the GET's is the same. */
  readonly etag?: string;
  /** A composite checksum's upload part size (every part but the last), from a HEAD of part 1. */
  readonly partBytes?: number;
  readonly parts?: number;
}

/**
 * The object's CRC checksum, asked for with a HEAD (ChecksumMode ENABLED); undefined when it has
 * none, when the HEAD fails or takes longer than the idle timeout (the download then goes on with
 * the MD5 or length checks it had before), and for a composite checksum whose part size a HEAD of
 * part 1 does not give.
 */
export async function objectChecksum(
  client: Pick<S3Client, 'send'>,
  location: S3Location,
  versionId: string | undefined,
  idleTimeoutMs: number,
): Promise<ObjectChecksum | undefined> {
  const ask = async (): Promise<ObjectChecksum | undefined> => {
    const { HeadObjectCommand } = await loadS3Sdk();
    const head = (await client.send(
      new HeadObjectCommand({ Bucket: location.bucket, Key: location.key, VersionId: versionId, ChecksumMode: 'ENABLED' }),
    )) as HeadObjectCommandOutput;
    for (const algorithm of CRC_ALGORITHMS) {
      const value = head[`Checksum${algorithm}`];
      if (typeof value !== 'string' || value === '') continue;
      const parts = Number(/-(\d+)$/.exec(value)?.[1] ?? 0);
      if (head.ChecksumType !== 'COMPOSITE' && parts === 0) return { algorithm, value, etag: head.ETag };
      if (parts === 0) return undefined;
      const first = (await client.send(
        new HeadObjectCommand({ Bucket: location.bucket, Key: location.key, VersionId: head.VersionId ?? versionId, PartNumber: 1, IfMatch: head.ETag }),
      )) as HeadObjectCommandOutput;
      const partBytes = first.ContentLength;
      const total = head.ContentLength;
      // Parts of one size but the last is how the SDK's and the CLI's uploads split an object; any other split cannot be checked.
      if (partBytes === undefined || total === undefined || partBytes <= 0 || Math.ceil(total / partBytes) !== parts) return undefined;
      return { algorithm, value, etag: head.ETag, partBytes, parts };
    }
    return undefined;
  };
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), idleTimeoutMs);
    timer.unref();
  });
  try {
    return await Promise.race([ask().catch(() => undefined), late]);
  } finally {
    clearTimeout(timer);
  }
}
