/**
 * Fetches an S3 model to a local cache directory (Lambda's /tmp) at cold start.
 *
 * - The body is streamed to a file of this attempt's own (`<file>.<host>-<pid>-<thread>-<random>.partial`)
 *   and renamed only once its length (and MD5, when the ETag is one) has been checked, so a path
 *   this module returns always holds a whole object, even when several processes share the cache
 *   directory and fetch the same object at once: each writes its own file, and the renames are
 *   atomic. A partial file is never read; one left by an attempt that is no longer running is
 *   removed (see removeStalePartials). The cached file is never removed before the new one
 *   replaces it: another thread or process may have returned its path (see removeOtherObject for
 *   the one exception, a cache too small for both).
 * - Beside the file, `<file>.json` records the ETag it was downloaded with, and which file it
 *   describes. The next fetch (a warm instance, a retry) sends it as If-None-Match: a 304 reuses
 *   the file, a new ETag replaces it.
 * - `@aws-sdk/client-s3` is imported only once a fetch starts, never at the top, so a handler whose
 *   model is a local file never loads it (the handler build's code splitting puts it in its own chunk).
 * - Nothing is read from the environment here (the SDK reads its own variables): the caller passes
 *   what readS3FetchSettings read (see config.ts) as options.
 *
 * This file decides what a fetch does: reuse the cached file, or download the object in one GET or
 * in parallel ranges. The parts it uses have a file each: the cache directory (s3-cache.ts), the
 * requests to S3 (s3-client.ts), a body written to disk and checked (s3-body-writer.ts), the
 * parallel ranges (s3-ranged-fetch.ts) and the errors a fetch reports (s3-fetch-error.ts).
 *
 * Nothing is logged here: the result says what happened and the caller logs it.
 */
import { rename, rm } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import type { S3Client } from '@aws-sdk/client-s3';
import { DEFAULT_DOWNLOAD_IDLE_TIMEOUT_MS } from '../../../contract/defaults';
import { streamToFile, verifyDownload, verifyLength } from './s3-body-writer';
import {
  type CacheFiles,
  type CacheRecord,
  cacheFilesFor,
  ensureFreeSpace,
  fileIdentity,
  newPartial,
  prepareCacheDir,
  readCacheRecord,
  releasePartial,
  removeOtherObject,
  removeStalePartials,
  statfsFreeBytes,
  writeFileAtomically,
} from './s3-cache';
import { contentRangeOf, createS3Client, getObjectUnlessMatch, nodeStreamOf, objectChecksum, parseS3Uri, requireContentLength, type S3Location } from './s3-client';
import { ModelFetchError, type Progress, toModelFetchError } from './s3-fetch-error';
import { downloadTuning, fetchInRanges } from './s3-ranged-fetch';

export { parseS3Uri, type S3Location } from './s3-client';
export { ModelFetchError, type ModelFetchErrorCode } from './s3-fetch-error';

export interface FetchS3ModelOptions {
  /** `s3://bucket/key` of the model. */
  readonly uri: string;
  /**
   * Object version to fetch.
   * @default - the current version
   */
  readonly versionId?: string;
  /** Directory the model is written to (created if missing). */
  readonly cacheDir: string;
  /**
   * Longest time without a byte from S3 before the fetch fails with `Timeout`.
   * @default 30000
   */
  readonly idleTimeoutMs?: number;
  /**
   * Longest time to open a connection to S3 (used only when the fetch creates the client).
   * @default 5000
   */
  readonly connectTimeoutMs?: number;
  /**
   * Client to use instead of one built here, with `forcePathStyle` and the SDK's own variables
   * (AWS_REGION, AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL). It is not destroyed here.
   * @default - a client built here, destroyed when the fetch ends
   */
  readonly client?: Pick<S3Client, 'send'>;
  /**
   * Path-style addressing, which S3-compatible servers need (used only when the fetch creates the
   * client); MODEL_S3_FORCE_PATH_STYLE.
   * @default false
   */
  readonly forcePathStyle?: boolean;
  /**
   * Free bytes of a directory.
   * @default - `fs.statfs`: available blocks times block size
   */
  readonly freeBytes?: (directory: string) => Promise<number>;
  /**
   * Size of the byte ranges fetched in parallel (MODEL_S3_PART_SIZE_MB).
   * @default - 8 MiB (16 MiB from 1 GiB), or the object's multipart part size
   */
  readonly partSizeBytes?: number;
  /**
   * Ranges fetched at once; 1 fetches the object with one GET (MODEL_S3_CONCURRENCY).
   * @default - from `memoryMb` (see downloadTuning), else 8
   */
  readonly concurrency?: number;
  /**
   * Attempts per range, the first included (MODEL_S3_PART_ATTEMPTS).
   * @default 3
   */
  readonly partAttempts?: number;
  /**
   * The function's memory in MB (Lambda's AWS_LAMBDA_FUNCTION_MEMORY_SIZE), from which the
   * concurrency is chosen when it is not given.
   * @default - unknown: 8 ranges at once
   */
  readonly memoryMb?: number;
  /**
   * Called once, when every request the download starts with is in flight (or its one GET has
   * answered): the caller may do synchronous work then (load onnxruntime), which the socket
   * buffers absorb, instead of after the download. Not called when no download is needed.
   */
  readonly onTransferStarted?: () => void;
}

export interface FetchedModel {
  /** Local path of the complete model file. */
  readonly path: string;
  /** ETag as S3 returned it (quoted). */
  readonly etag?: string;
  /** Version S3 returned, or the one asked for. */
  readonly versionId?: string;
  readonly sizeBytes: number;
  /** `false` when the file already in the cache was the current object and was reused. */
  readonly downloaded: boolean;
  readonly durationMs: number;
}

const inFlight = new Map<string, Promise<FetchedModel>>();

/**
 * Fetches the model unless the cache already holds the current object. Concurrent calls for the
 * same object share one download (they would otherwise write the same `.partial` file).
 */
export async function fetchS3Model(options: FetchS3ModelOptions): Promise<FetchedModel> {
  const location = parseS3Uri(options.uri);
  const files = cacheFilesFor(options.cacheDir, location, options.versionId);
  const running = inFlight.get(files.model);
  if (running) {
    return running;
  }
  const fetching = fetchOnce(options, location, files).finally(() => inFlight.delete(files.model));
  inFlight.set(files.model, fetching);
  return fetching;
}

async function fetchOnce(options: FetchS3ModelOptions, location: S3Location, files: CacheFiles): Promise<FetchedModel> {
  const started = performance.now();
  const idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_DOWNLOAD_IDLE_TIMEOUT_MS;
  const uri = `s3://${location.bucket}/${location.key}`;
  const progress: Progress = { bytes: 0 };
  let ownClient: S3Client | undefined;
  const fetched = (record: CacheRecord, downloaded: boolean): FetchedModel => ({
    path: files.model,
    // A record without an ETag is never written, so only a fresh download can lack one.
    etag: record.etag || undefined,
    versionId: record.versionId ?? undefined,
    sizeBytes: record.sizeBytes,
    downloaded,
    durationMs: Math.round(performance.now() - started),
  });
  const partial = newPartial(files.model);
  try {
    await prepareCacheDir(options.cacheDir);
    await removeStalePartials(files.model, idleTimeoutMs);
    const cached = await readCacheRecord(files, location, options.versionId);
    ownClient = options.client ? undefined : await createS3Client(options.forcePathStyle ?? false, idleTimeoutMs, options.connectTimeoutMs);
    const client = options.client ?? ownClient!;
    const tuning = downloadTuning(options);
    // With parallel ranges allowed, the first GET asks for the first range only: its answer gives
    // the object's size (Content-Range), and an object no larger than a range needs no other GET.
    const firstRange = tuning.concurrency > 1 ? tuning.partSizeBytes : undefined;
    // Alongside the first range, a HEAD asks for the object's checksum (S3 sends none with a range):
    // a CRC the ranges can be checked against as they arrive, where the object has one.
    // With a cached file, whose object is most likely unchanged (a 304), the HEAD waits for the GET's answer.
    let checksum = firstRange === undefined || cached ? undefined : objectChecksum(client, location, options.versionId, idleTimeoutMs);
    const response = await getObjectUnlessMatch(client, location, options.versionId, cached?.etag, firstRange);
    if (firstRange !== undefined && cached && response !== 'not-modified') checksum = objectChecksum(client, location, options.versionId, idleTimeoutMs);
    if (response === 'not-modified') {
      return fetched(cached!, false);
    }
    const body = nodeStreamOf(response, uri);
    const range = contentRangeOf(response);
    const objectBytes = range?.total ?? response.ContentLength;
    if (cached && response.ETag === cached.etag && objectBytes === cached.sizeBytes) {
      // A server that ignores If-None-Match: the object is still the cached one.
      body.destroy();
      return fetched(cached, false);
    }
    try {
      const expectedBytes = requireContentLength(response, uri);
      const objectSize = range?.total ?? expectedBytes;
      progress.expectedBytes = objectSize;
      // The cached file stays until the new one is renamed over it; only when both would not fit
      // is a cached file of another object removed first.
      const freeBytes = options.freeBytes ?? statfsFreeBytes;
      if ((await freeBytes(options.cacheDir)) < objectSize) await removeOtherObject(files, response.ETag);
      await ensureFreeSpace(options.cacheDir, objectSize, uri, freeBytes);
      if (range && range.start === 0 && range.end + 1 < range.total) {
        await fetchInRanges(client, {
          location,
          versionId: options.versionId,
          uri,
          response,
          body,
          firstEnd: range.end,
          objectSize,
          file: partial,
          idleTimeoutMs,
          progress,
          tuning,
          checksum: await checksum,
          onTransferStarted: options.onTransferStarted,
        });
      } else {
        if (range && (range.start !== 0 || range.end + 1 !== range.total)) {
          throw new ModelFetchError('Corrupt', `S3 answered a GET of ${uri} with the range ${range.start}-${range.end}/${range.total}, which is not the first range asked for.`);
        }
        options.onTransferStarted?.();
        const md5 = await streamToFile(body, partial, idleTimeoutMs, progress);
        verifyDownload(response, { bytes: progress.bytes, md5 }, expectedBytes, uri);
        // A whole-object range: what came must also be the whole object (the MD5 check above comes first: its message says more).
        verifyLength(progress.bytes, objectSize, uri);
      }
    } finally {
      body.destroy();
    }
    const record: CacheRecord = {
      bucket: location.bucket,
      key: location.key,
      requestedVersionId: options.versionId ?? null,
      versionId: response.VersionId ?? options.versionId ?? null,
      etag: response.ETag ?? '',
      sizeBytes: progress.bytes,
      ...(await fileIdentity(partial)),
    };
    // The record first, naming this file: until the rename it matches no file, and a file renamed
    // into place by another download never matches it. The rename replaces the cached file at once.
    if (record.etag) {
      await writeFileAtomically(files.record, JSON.stringify(record));
    }
    await rename(partial, files.model);
    return fetched(record, true);
  } catch (error) {
    // Best effort: a failure to delete must not hide why the fetch failed.
    await rm(partial, { force: true }).catch(() => undefined);
    throw toModelFetchError(error, { uri, versionId: options.versionId, idleTimeoutMs, progress, cacheDir: options.cacheDir });
  } finally {
    releasePartial(partial);
    ownClient?.destroy();
  }
}
