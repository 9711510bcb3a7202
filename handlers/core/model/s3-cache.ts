/**
 * The cache directory an S3 model is fetched into (Lambda's /tmp): per object, the model file and
 * `<file>.json`, the record of the ETag it was downloaded with and of the file it describes; and
 * the partial files downloads write first (`<file>.<host>-<pid>-<thread>-<random>.partial`), one
 * per attempt, renamed once checked. A partial file is never read; one that no running attempt
 * will finish is removed. A model file is replaced only by such a rename, never removed first:
 * another thread or process may have returned its path and not yet opened it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, statfs, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { threadId } from 'node:worker_threads';
import type { S3Location } from './s3-client';
import { messageOf, ModelFetchError } from './s3-fetch-error';

/** What `<file>.json` holds: enough to ask S3 whether the cached file is still the object. */
export interface CacheRecord {
  readonly bucket: string;
  readonly key: string;
  /** The version asked for (not the one returned), so a pinned and an unpinned fetch never share. */
  readonly requestedVersionId: string | null;
  readonly versionId: string | null;
  readonly etag: string;
  readonly sizeBytes: number;
  /**
   * The file this record describes (its inode and modification time, which a rename keeps): a
   * record written by one download never pairs with the file another one renamed into place.
   */
  readonly inode: number;
  readonly mtimeMs: number;
}

export interface CacheFiles {
  readonly model: string;
  readonly record: string;
}

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
export function newPartial(target: string): string {
  const file = `${target}.${HOST_TAG}-${process.pid}-${threadId}-${randomBytes(4).toString('hex')}.partial`;
  LIVE_PARTIALS.add(file);
  return file;
}

/** The partial file is no longer written (renamed, removed or given up): removeStalePartials may judge it. */
export function releasePartial(file: string): void {
  LIVE_PARTIALS.delete(file);
}

/**
 * `<host>-<pid>-<thread>-<random>.partial`: who wrote a partial file. The thread matters: on Lambda
 * Managed Instances (and `serve --workers`) several worker threads of one process load the model,
 * each with its own list of the downloads it runs.
 */
const PARTIAL_OWNER = /\.([A-Za-z0-9_]+)-(\d+)-(\d+)-[0-9a-f]{8}\.partial$/;

/**
 * Removes the partial files of `model` that no running attempt will finish: they are never read,
 * and each can be as large as the model. A file is left alone while this process writes it, or
 * while the process that wrote it (named in the file name) still runs on this machine and has
 * added to it within twice the idle timeout: a download that stalls longer fails and removes its
 * own file. One written by a process that no longer runs here (a crashed or restarted runtime),
 * or by this process outside any attempt in progress, goes at once; one written on another
 * machine (a shared file system) once it is older than that.
 */
export async function removeStalePartials(model: string, idleTimeoutMs: number): Promise<void> {
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
export function cacheFilesFor(cacheDir: string, location: S3Location, versionId: string | undefined): CacheFiles {
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

/** Creates the cache directory; a failure names it and says where it may be. */
export async function prepareCacheDir(cacheDir: string): Promise<void> {
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
export async function readCacheRecord(files: CacheFiles, location: S3Location, versionId: string | undefined): Promise<CacheRecord | undefined> {
  try {
    const record = JSON.parse(await readFile(files.record, 'utf8')) as Partial<CacheRecord>;
    const { size, ino, mtimeMs } = await stat(files.model);
    const matches =
      record.inode === ino &&
      record.mtimeMs === mtimeMs &&
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

/** What a record says of a file: which one it is (see CacheRecord). */
export async function fileIdentity(file: string): Promise<Pick<CacheRecord, 'inode' | 'mtimeMs'>> {
  const { ino, mtimeMs } = await stat(file);
  return { inode: ino, mtimeMs };
}

/**
 * Removes the cached file when its record does not name the object S3 has just answered with
 * (another ETag, or no readable record): an older object, whose space a new download needs. A file
 * recorded with this ETag stays: another thread or process is fetching, or has just fetched and
 * returned, the same object. The record goes first, so a model file without a matching record is
 * never taken for current.
 */
export async function removeOtherObject(files: CacheFiles, etag: string | undefined): Promise<void> {
  const recorded = await readFile(files.record, 'utf8')
    .then((text) => (JSON.parse(text) as Partial<CacheRecord>).etag)
    .catch(() => undefined);
  if (recorded !== undefined && recorded === etag) return;
  await rm(files.record, { force: true });
  await rm(files.model, { force: true });
}

/** Writes `file` whole or not at all: a partial file of its own, renamed over it. */
export async function writeFileAtomically(file: string, content: string): Promise<void> {
  const temporary = newPartial(file);
  try {
    await writeFile(temporary, content);
    await rename(temporary, file);
  } catch (error) {
    await rm(temporary, { force: true }).catch(() => undefined);
    throw error;
  } finally {
    releasePartial(temporary);
  }
}

/** Free bytes of a directory's file system: available blocks times block size. */
export async function statfsFreeBytes(directory: string): Promise<number> {
  const stats = await statfs(directory);
  return stats.bavail * stats.bsize;
}

/** Fails with `NoSpace`, naming both sizes, when the object cannot fit in the cache directory. */
export async function ensureFreeSpace(cacheDir: string, neededBytes: number, uri: string, freeBytes: (directory: string) => Promise<number>): Promise<void> {
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

function formatBytes(bytes: number): string {
  return `${(bytes / 1024 ** 2).toFixed(1)} MiB (${bytes} bytes)`;
}
