/**
 * Fetches an S3 model to a local cache directory (Lambda's /tmp) at cold start.
 *
 * - The body is streamed to a file of this attempt's own (`<file>.<host>-<pid>-<thread>-<random>.partial`)
 *   and renamed only once its length (and MD5, when the ETag is one) has been checked, so a path
 *   this module returns always holds a whole object, even when several processes share the cache
 *   directory and fetch the same object at once: each writes its own file, and the renames are
 *   atomic. A partial file is never read; one left by an attempt that is no longer running is
 *   removed (see removeStalePartials).
 * - Beside the file, `<file>.json` records the ETag it was downloaded with. The next fetch (a warm
 *   instance, a retry) sends it as If-None-Match: a 304 reuses the file, a new ETag replaces it.
 * - `@aws-sdk/client-s3` is imported inside the function, never at the top, so a handler whose model
 *   is a local file never loads it (the handler build's code splitting puts it in its own chunk).
 * - Nothing is read from the environment here (the SDK reads its own variables): the caller passes
 *   what readS3FetchSettings read (see config.ts) as options.
 *
 * Nothing is logged here: the result says what happened and the caller logs it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { close as closeFd, createWriteStream, ftruncate, open as openFd, write as writeFd } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, statfs, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Readable, Transform, type TransformCallback, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { threadId, Worker } from 'node:worker_threads';
import type { GetObjectCommandOutput, HeadObjectCommandOutput, S3Client } from '@aws-sdk/client-s3';
import { DEFAULT_DOWNLOAD_IDLE_TIMEOUT_MS } from '../../../contract/defaults';
import { CRC_ALGORITHMS, type CrcAlgorithm, compositeChecksum, crcToBase64, fullObjectCrc, SegmentCrcs } from './crc';

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
   * Longest time to open a connection to S3 (used only when this module creates the client).
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
   * Path-style addressing, which S3-compatible servers need (used only when this module creates
   * the client); MODEL_S3_FORCE_PATH_STYLE.
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

/** What `<file>.json` holds: enough to ask S3 whether the cached file is still the object. */
interface CacheRecord {
  readonly bucket: string;
  readonly key: string;
  /** The version asked for (not the one returned), so a pinned and an unpinned fetch never share. */
  readonly requestedVersionId: string | null;
  readonly versionId: string | null;
  readonly etag: string;
  readonly sizeBytes: number;
}

interface CacheFiles {
  readonly model: string;
  readonly record: string;
}

/** Facts about the download in progress, for error messages. */
interface Progress {
  bytes: number;
  expectedBytes?: number;
}

const inFlight = new Map<string, Promise<FetchedModel>>();

/**
 * The partial files this process is writing, kept on globalThis so that every copy of this module
 * in the process (a handler bundle, a test's import of the source) sees the same set.
 */
const LIVE_PARTIALS: Set<string> = livePartials();

function livePartials(): Set<string> {
  const shared = globalThis as Record<symbol, Set<string> | undefined>;
  const key = Symbol.for('cdk-serverless-inference.s3-model.live-partials');
  shared[key] ??= new Set<string>();
  return shared[key];
}

/** This machine, as partial file names record it. */
const HOST_TAG =
  os
    .hostname()
    .replace(/[^A-Za-z0-9]/g, '_')
    .slice(0, 32) || 'host';

/** A new partial file for `target`, unique to this attempt, registered as being written. */
function newPartial(target: string): string {
  const file = `${target}.${HOST_TAG}-${process.pid}-${threadId}-${randomBytes(4).toString('hex')}.partial`;
  LIVE_PARTIALS.add(file);
  return file;
}

/**
 * `<host>-<pid>-<thread>-<random>.partial`: who wrote a partial file. The thread matters: on Lambda
 * Managed Instances (and `serve --workers`) several worker threads of one process load the model,
 * each with its own list of the downloads it runs.
 */
const PARTIAL_OWNER = /\.([A-Za-z0-9_]+)-(\d+)-(\d+)-[0-9a-f]{8}\.partial$/;

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
      // The cached file is stale: free its space before the new one needs it.
      await removeCacheEntry(files);
      await ensureFreeSpace(options.cacheDir, objectSize, uri, options.freeBytes ?? statfsFreeBytes);
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
    await rename(partial, files.model);
    const record: CacheRecord = {
      bucket: location.bucket,
      key: location.key,
      requestedVersionId: options.versionId ?? null,
      versionId: response.VersionId ?? options.versionId ?? null,
      etag: response.ETag ?? '',
      sizeBytes: progress.bytes,
    };
    if (record.etag) {
      await writeFileAtomically(files.record, JSON.stringify(record));
    }
    return fetched(record, true);
  } catch (error) {
    // Best effort: a failure to delete must not hide why the fetch failed.
    await rm(partial, { force: true }).catch(() => undefined);
    throw toModelFetchError(error, { uri, versionId: options.versionId, idleTimeoutMs, progress, cacheDir: options.cacheDir });
  } finally {
    LIVE_PARTIALS.delete(partial);
    ownClient?.destroy();
  }
}

/**
 * Removes the partial files of `model` that no running attempt will finish: they are never read,
 * and each can be as large as the model. A file is left alone while this process writes it, or
 * while the process that wrote it (named in the file name) still runs on this machine and has
 * added to it within twice the idle timeout: a download that stalls longer fails and removes its
 * own file. One written by a process that no longer runs here (a crashed or restarted runtime),
 * or by this process outside any attempt in progress, goes at once; one written on another
 * machine (a shared file system) once it is older than that.
 */
async function removeStalePartials(model: string, idleTimeoutMs: number): Promise<void> {
  const dir = path.dirname(model);
  const prefix = `${path.basename(model)}.`;
  const names = await readdir(dir).catch(() => [] as string[]);
  await Promise.all(
    names
      .filter((name) => name.startsWith(prefix) && name.endsWith('.partial'))
      .map(async (name) => {
        const file = path.join(dir, name);
        if (LIVE_PARTIALS.has(file) || !(await isStalePartial(file, name, idleTimeoutMs))) return;
        await rm(file, { force: true }).catch(() => undefined);
      }),
  );
}

async function isStalePartial(file: string, name: string, idleTimeoutMs: number): Promise<boolean> {
  const owner = PARTIAL_OWNER.exec(name);
  if (owner && owner[1] === HOST_TAG) {
    const pid = Number(owner[2]);
    // This thread's own file outside an attempt, or a file of a process gone: nobody finishes it.
    // Another thread of this process may still be writing its own: judged by age below.
    if ((pid === process.pid && Number(owner[3]) === threadId) || (pid !== process.pid && !isRunning(pid))) return true;
  }
  try {
    const { mtimeMs } = await stat(file);
    return Date.now() - mtimeMs > Math.max(2 * idleTimeoutMs, 60_000);
  } catch {
    return false;
  }
}

/** Whether a process of this id runs on this machine (EPERM: it does, as another user). */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * One file per bucket/key/version: a short hash keeps names unique and bounded, the key's own
 * file name keeps them readable (and keeps the extension onnxruntime may look at).
 */
function cacheFilesFor(cacheDir: string, location: S3Location, versionId: string | undefined): CacheFiles {
  const identity = JSON.stringify([location.bucket, location.key, versionId ?? null]);
  const hash = createHash('sha256').update(identity).digest('hex').slice(0, 16);
  const baseName =
    path.posix
      .basename(location.key)
      .replace(/[^A-Za-z0-9._-]/g, '_')
      .slice(-100) || 'model';
  const model = path.join(cacheDir, `${hash}-${baseName}`);
  return { model, record: `${model}.json` };
}

async function prepareCacheDir(cacheDir: string): Promise<void> {
  try {
    await mkdir(cacheDir, { recursive: true });
  } catch (error) {
    throw new ModelFetchError(
      'Unknown',
      `Cannot create the model cache directory ${cacheDir}: ${messageOf(error)}. Point MODEL_CACHE_DIR at a writable directory (on Lambda, under /tmp).`,
      { cause: error },
    );
  }
}

/** The record of a complete cached file for this object, or undefined when there is none to reuse. */
async function readCacheRecord(files: CacheFiles, location: S3Location, versionId: string | undefined): Promise<CacheRecord | undefined> {
  try {
    const record = JSON.parse(await readFile(files.record, 'utf8')) as Partial<CacheRecord>;
    const { size } = await stat(files.model);
    const matches =
      record.bucket === location.bucket &&
      record.key === location.key &&
      record.requestedVersionId === (versionId ?? null) &&
      typeof record.etag === 'string' &&
      record.etag !== '' &&
      record.sizeBytes === size;
    return matches ? (record as CacheRecord) : undefined;
  } catch {
    // No record, no file or an unreadable record: nothing to reuse, the object is downloaded.
    return undefined;
  }
}

/** The record goes first, so a model file without a matching record is never taken for current. */
async function removeCacheEntry(files: CacheFiles): Promise<void> {
  await rm(files.record, { force: true });
  await rm(files.model, { force: true });
}

async function writeFileAtomically(file: string, content: string): Promise<void> {
  const temporary = newPartial(file);
  try {
    await writeFile(temporary, content);
    await rename(temporary, file);
  } catch (error) {
    await rm(temporary, { force: true }).catch(() => undefined);
    throw error;
  } finally {
    LIVE_PARTIALS.delete(temporary);
  }
}

type S3Sdk = typeof import('@aws-sdk/client-s3');

async function loadS3Sdk(): Promise<S3Sdk> {
  const loaded = (await import('@aws-sdk/client-s3')) as S3Sdk & { default?: S3Sdk };
  // esbuild with code splitting exposes a CommonJS package (the SDK's `main`) behind a dynamic
  // import only as `default`; Node and tsc expose the named exports.
  return typeof loaded.S3Client === 'function' ? loaded : loaded.default!;
}

async function createS3Client(forcePathStyle: boolean, idleTimeoutMs: number, connectTimeoutMs = DEFAULT_CONNECT_TIMEOUT_MS): Promise<S3Client> {
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

async function getObjectUnlessMatch(
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

function nodeStreamOf(response: GetObjectCommandOutput, uri: string): Readable {
  if (!(response.Body instanceof Readable)) {
    throw new ModelFetchError('Unknown', `S3 returned no Node.js stream for ${uri} (got ${typeof response.Body}); the fetch needs the SDK's Node.js HTTP handler.`);
  }
  return response.Body;
}

function requireContentLength(response: GetObjectCommandOutput, uri: string): number {
  if (response.ContentLength === undefined) {
    throw new ModelFetchError('Corrupt', `S3 returned ${uri} without a Content-Length, so its size cannot be checked; the endpoint (or a proxy in between) must send one.`);
  }
  return response.ContentLength;
}

async function statfsFreeBytes(directory: string): Promise<number> {
  const stats = await statfs(directory);
  return stats.bavail * stats.bsize;
}

async function ensureFreeSpace(cacheDir: string, neededBytes: number, uri: string, freeBytes: (directory: string) => Promise<number>): Promise<void> {
  const available = await freeBytes(cacheDir);
  if (neededBytes > available) {
    throw new ModelFetchError(
      'NoSpace',
      `Not enough space in ${cacheDir} for ${uri}: the model is ${formatBytes(neededBytes)} but only ` +
        `${formatBytes(available)} is free. Raise the function's ephemeral storage (up to 10240 MB) ` +
        'or point MODEL_CACHE_DIR at a larger volume.',
    );
  }
}

/** Fails `body` with a TimeoutError when `arm` is not called again within `idleTimeoutMs`. */
function idleWatchdog(body: Readable, idleTimeoutMs: number): { arm(): void; clear(): void } {
  let timer: NodeJS.Timeout | undefined;
  return {
    arm() {
      clearTimeout(timer);
      timer = setTimeout(() => {
        body.destroy(Object.assign(new Error(`No data from S3 for ${idleTimeoutMs} ms`), { name: 'TimeoutError' }));
      }, idleTimeoutMs);
    },
    clear() {
      clearTimeout(timer);
    },
  };
}

/** Streams the body to `file`, counting bytes into `progress`; returns the body's MD5 (hex). */
async function streamToFile(body: Readable, file: string, idleTimeoutMs: number, progress: Progress): Promise<string> {
  const md5 = createHash('md5');
  // The SDK's socket timeout covers a client this module built; this one also covers an injected client.
  const idle = idleWatchdog(body, idleTimeoutMs);
  const meter = new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      idle.arm();
      progress.bytes += chunk.length;
      md5.update(chunk);
      callback(null, chunk);
    },
  });
  idle.arm();
  try {
    // No fsync before the rename: the file only has to survive the process, not the machine.
    await pipeline(body, meter, createWriteStream(file));
  } finally {
    idle.clear();
  }
  return md5.digest('hex');
}

/**
 * A plain MD5 ETag (32 hex digits) is checked. A multipart ETag (`-N` suffix) and the ETag of an
 * SSE-KMS, DSSE-KMS or SSE-C object are not MD5s of the content, so only the length is checked.
 */
function verifyDownload(response: GetObjectCommandOutput, received: { bytes: number; md5?: string }, expectedBytes: number, uri: string): void {
  verifyLength(received.bytes, expectedBytes, uri);
  const expectedMd5 = plainMd5Of(response);
  if (expectedMd5 !== undefined && expectedMd5 !== received.md5) {
    throw new ModelFetchError('Corrupt', `The download of ${uri} is corrupt: its MD5 is ${received.md5} but the ETag says ${expectedMd5}; the file was deleted, fetch again.`);
  }
}

function verifyLength(bytes: number, expectedBytes: number, uri: string): void {
  if (bytes !== expectedBytes) {
    throw new ModelFetchError('Corrupt', `Downloaded ${bytes} bytes of ${uri} but S3 announced ${expectedBytes} (Content-Length); the partial file was deleted, fetch again.`);
  }
}

function plainMd5Of(response: GetObjectCommandOutput): string | undefined {
  const etag = /^"?([0-9a-fA-F]{32})"?$/.exec(response.ETag ?? '');
  const kmsOrCustomerKey = response.ServerSideEncryption === 'aws:kms' || response.ServerSideEncryption === 'aws:kms:dsse' || response.SSECustomerAlgorithm !== undefined;
  return etag && !kmsOrCustomerKey ? etag[1].toLowerCase() : undefined;
}

const MIB = 1024 * 1024;
const DEFAULT_PART_BYTES = 8 * MIB;
const LARGE_OBJECT_PART_BYTES = 16 * MIB;
const DEFAULT_PART_ATTEMPTS = 3;
/** Part sizes that upload tools commonly use, tried in order to explain a multipart ETag's part count. */
const COMMON_UPLOAD_PART_BYTES = [8, 16, 5, 10, 32, 64, 15, 25, 50, 100, 128].map((n) => n * MIB);

interface DownloadTuning {
  /** Size of the ranges (the first one's, and the default of the others). */
  readonly partSizeBytes: number;
  /** Whether the size came from the options: then it is not adapted to the object. */
  readonly partSizeFixed: boolean;
  readonly concurrency: number;
  readonly partAttempts: number;
}

/**
 * Part size and concurrency, from the options, else from the function's memory: Lambda gives a
 * function network bandwidth and CPU in proportion to its memory, and each range in flight holds
 * only a socket's and a stream's buffers (tens of KiB), not the range.
 */
function downloadTuning(options: FetchS3ModelOptions): DownloadTuning {
  const fixedPart = options.partSizeBytes;
  const memoryMb = options.memoryMb;
  const concurrency = options.concurrency ?? (memoryMb === undefined ? 8 : Math.min(16, Math.max(4, Math.floor(memoryMb / 128))));
  return {
    partSizeBytes: Math.max(1, fixedPart ?? DEFAULT_PART_BYTES),
    partSizeFixed: fixedPart !== undefined,
    concurrency: Math.max(1, concurrency),
    partAttempts: Math.max(1, options.partAttempts ?? DEFAULT_PART_ATTEMPTS),
  };
}

/** The part size of the ranges after the first: the object's upload part size where a common one explains its ETag's part count. */
function partSizeFor(objectSize: number, etag: string | undefined, tuning: DownloadTuning): number {
  if (tuning.partSizeFixed) return tuning.partSizeBytes;
  const parts = Number(/-(\d+)"?$/.exec(etag ?? '')?.[1]);
  if (parts > 1) {
    const uploaded = COMMON_UPLOAD_PART_BYTES.find((size) => Math.ceil(objectSize / size) === parts);
    if (uploaded !== undefined) return uploaded;
  }
  return objectSize >= 1024 * MIB ? LARGE_OBJECT_PART_BYTES : tuning.partSizeBytes;
}

function contentRangeOf(response: GetObjectCommandOutput): { start: number; end: number; total: number } | undefined {
  const match = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(response.ContentRange ?? '');
  return match ? { start: Number(match[1]), end: Number(match[2]), total: Number(match[3]) } : undefined;
}

interface RangedFetch {
  readonly location: S3Location;
  readonly versionId?: string;
  readonly uri: string;
  /** The answer to the first GET (the first range) and its body. */
  readonly response: GetObjectCommandOutput;
  readonly body: Readable;
  readonly firstEnd: number;
  readonly objectSize: number;
  readonly file: string;
  readonly idleTimeoutMs: number;
  readonly progress: Progress;
  readonly tuning: DownloadTuning;
  /** The object's CRC checksum, from a HEAD, when it has one. */
  readonly checksum?: ObjectChecksum;
  readonly onTransferStarted?: () => void;
}

/** A CRC checksum S3 keeps for the object: of the whole object, or composite (of its upload's parts). */
interface ObjectChecksum {
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
async function objectChecksum(client: Pick<S3Client, 'send'>, location: S3Location, versionId: string | undefined, idleTimeoutMs: number): Promise<ObjectChecksum | undefined> {
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

interface Part {
  readonly start: number;
  /** Inclusive, as in a Range header. */
  readonly end: number;
}

/**
 * Fetches the object as byte ranges, `tuning.concurrency` at a time, each streamed to its own
 * offset of one preallocated file. Every range after the first is asked for with If-Match on the
 * first answer's ETag, so an object replaced during the download fails it instead of mixing two
 * objects. A range whose connection drops or stalls is asked for again from where it stopped, up
 * to `partAttempts` times. The first failure that is not retried aborts the other ranges.
 * When the ETag is a plain MD5, a worker thread hashes the file's written prefix as it grows, so
 * the hash neither waits for the end nor blocks the event loop.
 */
async function fetchInRanges(client: Pick<S3Client, 'send'>, job: RangedFetch): Promise<void> {
  const { objectSize, response, uri, progress } = job;
  const partSize = partSizeFor(objectSize, response.ETag, job.tuning);
  const parts: Part[] = [{ start: 0, end: job.firstEnd }];
  // After the first range, boundaries fall on multiples of the part size (the upload's parts).
  for (let start = Math.ceil((job.firstEnd + 1) / partSize) * partSize, previous = job.firstEnd + 1; previous < objectSize; start += partSize) {
    const end = Math.min(start, objectSize) - 1;
    if (end >= previous) parts.push({ start: previous, end });
    previous = end + 1;
  }
  const fd = await new Promise<number>((resolve, reject) => openFd(job.file, 'w', (error, opened) => (error ? reject(error) : resolve(opened))));
  const abort = new AbortController();
  // Each range's GET and stream listen on the signal, and the SDK keeps its listener until the
  // download ends: past ten parts Node warned of a leak (MaxListenersExceededWarning) in the log.
  setMaxListeners(2 * parts.length + 16, abort.signal);
  // A CRC of the same object (same ETag) is checked part by part; otherwise a plain MD5 ETag is.
  const checksum = job.checksum !== undefined && job.checksum.etag === response.ETag ? job.checksum : undefined;
  const crcs = checksum === undefined ? undefined : new SegmentCrcs(job.file, checksum.algorithm);
  const expectedMd5 = crcs ? undefined : plainMd5Of(response);
  const hasher = expectedMd5 === undefined ? undefined : new PrefixHasher(job.file);
  try {
    await new Promise<void>((resolve, reject) => ftruncate(fd, objectSize, (error) => (error ? reject(error) : resolve())));
    const done = new Array<boolean>(parts.length).fill(false);
    let prefixPart = 0;
    const partDone = (index: number) => {
      if (crcs) {
        // Split where the upload's parts meet, for a composite checksum (which has a CRC per part).
        const step = checksum?.partBytes ?? objectSize;
        for (let at = parts[index].start; at <= parts[index].end; at = (Math.floor(at / step) + 1) * step) {
          crcs.add(at, Math.min(parts[index].end + 1, (Math.floor(at / step) + 1) * step));
        }
      }
      done[index] = true;
      while (prefixPart < parts.length && done[prefixPart]) prefixPart += 1;
      hasher?.advance(prefixPart === parts.length ? objectSize : parts[prefixPart].start);
    };
    let next = 1;
    // Once every lane's first GET has answered, the transfer is under way: nothing the caller then
    // does on this thread delays a request, only the reading of bytes the sockets hold meanwhile.
    const laneCount = Math.min(job.tuning.concurrency, parts.length);
    let answered = 1;
    const answeredOnce = () => {
      if (++answered === laneCount) job.onTransferStarted?.();
    };
    if (laneCount === 1) job.onTransferStarted?.();
    const runPart = async (index: number, first?: Readable): Promise<void> => {
      await fetchPart(client, job, fd, parts[index], abort.signal, first, index <= laneCount - 1 && index > 0 ? answeredOnce : undefined);
      partDone(index);
    };
    const lane = async (first?: Readable): Promise<void> => {
      if (first) await runPart(0, first);
      while (next < parts.length && !abort.signal.aborted) {
        await runPart(next++);
      }
    };
    const lanes = [lane(job.body), ...Array.from({ length: Math.min(job.tuning.concurrency, parts.length) - 1 }, () => lane())].map((running) =>
      running.catch((error: unknown) => {
        abort.abort();
        throw error;
      }),
    );

    // Every lane settles before the file is closed: none may write to a closed (or reused) descriptor.
    const settled = await Promise.allSettled(lanes);
    const failed = settled.find((outcome) => outcome.status === 'rejected' && (outcome.reason as { name?: unknown })?.name !== 'AbortError');
    const anyFailed = failed ?? settled.find((outcome) => outcome.status === 'rejected');
    if (anyFailed) throw (anyFailed as PromiseRejectedResult).reason;
    verifyLength(progress.bytes, objectSize, uri);
    if (crcs && checksum) {
      const segments = await crcs.all();
      const computed =
        checksum.partBytes === undefined
          ? crcToBase64(checksum.algorithm, fullObjectCrc(checksum.algorithm, segments))
          : compositeChecksum(checksum.algorithm, segments, objectSize, checksum.partBytes);
      if (computed !== checksum.value) {
        throw new ModelFetchError(
          'Corrupt',
          `The download of ${uri} is corrupt: its ${checksum.algorithm} is ${computed} but S3 says ${checksum.value}; the file was deleted, fetch again.`,
        );
      }
    }
    if (hasher && expectedMd5 !== undefined) {
      const md5 = await hasher.digest();
      if (md5 !== expectedMd5) {
        throw new ModelFetchError('Corrupt', `The download of ${uri} is corrupt: its MD5 is ${md5} but the ETag says ${expectedMd5}; the file was deleted, fetch again.`);
      }
    }
  } finally {
    abort.abort();
    hasher?.stop();
    crcs?.stop();
    await new Promise<void>((resolve) => closeFd(fd, () => resolve()));
  }
}

/** Whether a range that failed this way is worth asking for again. */
function retryable(error: unknown): boolean {
  if (error instanceof ModelFetchError) return error.code === 'Interrupted' || error.code === 'Timeout';
  const name = (error as { name?: unknown } | undefined)?.name;
  const code = (error as { code?: unknown } | undefined)?.code;
  const status = httpStatusOf(error);
  return name === 'TimeoutError' || (typeof code === 'string' && INTERRUPTION_CODES.has(code)) || (status !== undefined && status >= 500);
}

/** One range into its place in the file, resumed from where it stopped after a retryable failure. */
async function fetchPart(
  client: Pick<S3Client, 'send'>,
  job: RangedFetch,
  fd: number,
  part: Part,
  signal: AbortSignal,
  firstBody?: Readable,
  onAnswer?: () => void,
): Promise<void> {
  const cursor = { position: part.start };
  let body = firstBody;
  let answered = onAnswer;
  for (let attempt = 1; ; attempt++) {
    try {
      if (!body) {
        body = await getRange(client, job, cursor.position, part.end, signal);
        answered?.();
        answered = undefined;
      }
      const stream = body;
      const abortStream = () => stream.destroy(Object.assign(new Error('aborted: another range failed'), { name: 'AbortError' }));
      signal.addEventListener('abort', abortStream, { once: true });
      try {
        await streamToPosition(stream, fd, cursor, job.idleTimeoutMs, job.progress);
      } finally {
        signal.removeEventListener('abort', abortStream);
        stream.destroy();
      }
      if (cursor.position !== part.end + 1) {
        throw new ModelFetchError('Interrupted', `A range of ${job.uri} ended after ${cursor.position - part.start} of ${part.end + 1 - part.start} bytes.`);
      }
      return;
    } catch (error) {
      body = undefined;
      if (signal.aborted || attempt >= job.tuning.partAttempts || !retryable(error)) throw error;
    }
  }
}

async function getRange(client: Pick<S3Client, 'send'>, job: RangedFetch, start: number, end: number, signal: AbortSignal): Promise<Readable> {
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

/**
 * Streams a body into `fd` from `cursor.position` on, with positional writes, advancing the cursor
 * past each byte written: after a failure it says where a retry resumes.
 */
async function streamToPosition(body: Readable, fd: number, cursor: { position: number }, idleTimeoutMs: number, progress: Progress): Promise<void> {
  const idle = idleWatchdog(body, idleTimeoutMs);
  // The write in progress: awaited before returning, so that no write lands (and moves the cursor)
  // after a failure has been reported and a retry or the file's removal has begun.
  let writing: Promise<void> = Promise.resolve();
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      idle.arm();
      writing = new Promise<void>((resolve) => {
        writeAll(fd, chunk, cursor.position, (error) => {
          if (!error) {
            cursor.position += chunk.length;
            progress.bytes += chunk.length;
          }
          resolve();
          callback(error);
        });
      });
    },
  });
  idle.arm();
  try {
    await pipeline(body, sink);
  } finally {
    idle.clear();
    await writing;
  }
}

function writeAll(fd: number, chunk: Buffer, position: number, callback: (error: Error | null) => void): void {
  writeFd(fd, chunk, 0, chunk.length, position, (error, written) => {
    if (error) return callback(error);
    if (written < chunk.length) return writeAll(fd, chunk.subarray(written), position + written, callback);
    callback(null);
  });
}

/**
 * MD5 of a file's prefix, computed in a worker thread that reads the file as `advance` extends the
 * prefix: the main thread only posts offsets.
 */
class PrefixHasher {
  private readonly worker: Worker;
  private readonly result: Promise<string>;

  constructor(file: string) {
    this.worker = new Worker(PREFIX_HASHER_SOURCE, { eval: true, workerData: file });
    this.worker.unref();
    this.result = new Promise<string>((resolve, reject) => {
      this.worker.once('message', (digest: string) => resolve(digest));
      this.worker.once('error', reject);
      this.worker.once('exit', () => reject(new Error('the hashing thread stopped before it finished')));
    });
    // Observed through digest(); an unread failure must not become an unhandled rejection.
    this.result.catch(() => undefined);
  }

  advance(upTo: number): void {
    this.worker.postMessage(upTo);
  }

  digest(): Promise<string> {
    this.worker.postMessage('digest');
    return this.result;
  }

  stop(): void {
    void this.worker.terminate();
  }
}

const PREFIX_HASHER_SOURCE = `
const { createHash } = require('node:crypto');
const { openSync, readSync } = require('node:fs');
const { parentPort, workerData } = require('node:worker_threads');
const hash = createHash('md5');
const fd = openSync(workerData, 'r');
const buffer = Buffer.allocUnsafe(4 * 1024 * 1024);
let hashed = 0;
parentPort.on('message', (message) => {
  if (message === 'digest') {
    parentPort.postMessage(hash.digest('hex'));
    return;
  }
  while (hashed < message) {
    const read = readSync(fd, buffer, 0, Math.min(buffer.length, message - hashed), hashed);
    if (read === 0) throw new Error('the file is shorter than the bytes written to it');
    hash.update(buffer.subarray(0, read));
    hashed += read;
  }
});
`;

interface FailureContext {
  readonly uri: string;
  readonly versionId?: string;
  readonly idleTimeoutMs: number;
  readonly progress: Progress;
  readonly cacheDir: string;
}

const INTERRUPTION_CODES = new Set(['ECONNRESET', 'EPIPE', 'ERR_STREAM_PREMATURE_CLOSE', 'ECONNABORTED']);
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

function toModelFetchError(error: unknown, context: FailureContext): ModelFetchError {
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

function httpStatusOf(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function formatBytes(bytes: number): string {
  return `${(bytes / 1024 ** 2).toFixed(1)} MiB (${bytes} bytes)`;
}
