/**
 * An S3 answer's body written to disk: streamed in order to a file (one GET), or from an offset on
 * into a file the ranges share; either fails with a TimeoutError when S3 sends nothing for the idle
 * timeout. And the checks of what arrived: its length, and the MD5 of a plain ETag.
 */
import { createHash } from 'node:crypto';
import { createWriteStream, write as writeFd } from 'node:fs';
import { type Readable, Transform, type TransformCallback, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { GetObjectCommandOutput } from '@aws-sdk/client-s3';
import { plainMd5Of } from './s3-client';
import { ModelFetchError, type Progress } from './s3-fetch-error';

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
export async function streamToFile(body: Readable, file: string, idleTimeoutMs: number, progress: Progress): Promise<string> {
  const md5 = createHash('md5');
  // The SDK's socket timeout covers a client createS3Client built; this one also covers an injected client.
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
 * Streams a body into `fd` from `cursor.position` on, with positional writes, advancing the cursor
 * past each byte written: after a failure it says where a retry resumes.
 */
export async function streamToPosition(body: Readable, fd: number, cursor: { position: number }, idleTimeoutMs: number, progress: Progress): Promise<void> {
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
 * A plain MD5 ETag (32 hex digits) is checked. A multipart ETag (`-N` suffix) and the ETag of an
 * SSE-KMS, DSSE-KMS or SSE-C object are not MD5s of the content, so only the length is checked.
 */
export function verifyDownload(response: GetObjectCommandOutput, received: { bytes: number; md5?: string }, expectedBytes: number, uri: string): void {
  verifyLength(received.bytes, expectedBytes, uri);
  const expectedMd5 = plainMd5Of(response);
  if (expectedMd5 !== undefined && expectedMd5 !== received.md5) {
    throw new ModelFetchError('Corrupt', `The download of ${uri} is corrupt: its MD5 is ${received.md5} but the ETag says ${expectedMd5}; the file was deleted, fetch again.`);
  }
}

export function verifyLength(bytes: number, expectedBytes: number, uri: string): void {
  if (bytes !== expectedBytes) {
    throw new ModelFetchError('Corrupt', `Downloaded ${bytes} bytes of ${uri} but S3 announced ${expectedBytes} (Content-Length); the partial file was deleted, fetch again.`);
  }
}
