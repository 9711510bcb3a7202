/**
 * An object fetched as byte ranges in parallel into one file: the tuning (part size, concurrency,
 * attempts per range), the ranges' boundaries on the upload's parts, the retries that resume a range
 * where it stopped, and the checks as the ranges arrive (the object's CRC part by part, or the MD5
 * of the file's written prefix in a worker thread).
 */
import { setMaxListeners } from 'node:events';
import { close as closeFd, ftruncate, open as openFd } from 'node:fs';
import type { Readable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import type { GetObjectCommandOutput, S3Client } from '@aws-sdk/client-s3';
import { compositeChecksum, crcToBase64, fullObjectCrc, SegmentCrcs } from './crc';
import { streamToPosition, verifyLength } from './s3-body-writer';
import { getRange, type ObjectChecksum, plainMd5Of, type S3Location } from './s3-client';
import { httpStatusOf, INTERRUPTION_CODES, ModelFetchError, type Progress } from './s3-fetch-error';

const MIB = 1024 * 1024;
const DEFAULT_PART_BYTES = 8 * MIB;
const LARGE_OBJECT_PART_BYTES = 16 * MIB;
const DEFAULT_PART_ATTEMPTS = 3;
/** Part sizes that upload tools commonly use, tried in order to explain a multipart ETag's part count. */
const COMMON_UPLOAD_PART_BYTES = [8, 16, 5, 10, 32, 64, 15, 25, 50, 100, 128].map((n) => n * MIB);

/** What the caller may set of the tuning; fetchS3Model's options of the same names. */
export interface TuningOptions {
  readonly partSizeBytes?: number;
  readonly concurrency?: number;
  readonly partAttempts?: number;
  readonly memoryMb?: number;
}

export interface DownloadTuning {
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
export function downloadTuning(options: TuningOptions): DownloadTuning {
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

/** One download in ranges: the object, the first GET's answer, the file the ranges are written to, and how. */
export interface RangedFetch {
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
export async function fetchInRanges(client: Pick<S3Client, 'send'>, job: RangedFetch): Promise<void> {
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
