/**
 * The model loader of the EFS model copy custom resource (`custom-resources` Provider framework):
 * copies an ONNX model from S3 onto an EFS mount at deploy time, so the inference function reads it
 * with no download. The provider's onEvent handler (`start`) runs each copy as a job of its own, an
 * asynchronous invocation of the loader, and its isComplete handler reads how the job ended (see
 * copy-job.ts); a Delete comes to the loader synchronously.
 *
 * - Create/Update: fetchS3Model downloads (and verifies) the model, and its precompiled copy when
 *   there is one, into `<MountPath>/.incoming/<random>/`, on the same file system as the model.
 *   Only once both are complete are they renamed to their names under MountPath. A rename within
 *   one file system is atomic, so a function opening a name sees the old file or the new one, never
 *   a partial one, and a failed copy leaves nothing under a final name: no precompiled copy without
 *   its model, for which a Delete may never come (none comes for a failed Update's new names, nor
 *   for a Create that failed in the provider's onEvent). The object is copied every time:
 *   CloudFormation sends Create or Update only when something changed, on a retry or on a
 *   rollback, and an unpinned object may have changed behind the same URI, so a file that merely
 *   has the right size proves nothing.
 * - Update that keeps the model's name (the physical id) but no longer writes the precompiled copy
 *   the old properties named: that copy is removed, as no Delete will come for it. (With a new
 *   name, CloudFormation deletes the old resource, its precompiled copy with it, once the update
 *   succeeds.)
 * - Delete: removes the file the physical id names, if it is a model file directly inside
 *   MountPath. Anything else (the framework's default id after a failed Create) is left alone.
 */
import { randomUUID } from 'node:crypto';
import { readdir, rename, rm, rmdir, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { readS3FetchSettings, type S3FetchSettings } from '../core/config/config';
import { fetchS3Model, ModelFetchError } from '../core/model/s3-model';
import { MODEL_COPY_PROPERTY as P } from '../../contract/model-copy';
import { type CopyJobEvent, type CustomResourceEvent, isCopyJob, requireDirectory, runCopyJob } from './copy-job';
import { parseMountPath, parseProperties, problemWithFileName, type LoaderProperties, type PreviousCopy } from './properties';

// The custom resource's onEvent and isComplete handlers: one bundle, three functions.
export { isComplete, start } from './copy-job';

export type ModelLoaderEvent = CustomResourceEvent;

/** What Lambda passes the handler besides the event, as far as the loader uses it. */
export interface LoaderContext {
  getRemainingTimeInMillis(): number;
}

export interface ModelLoaderResponse {
  readonly PhysicalResourceId: string;
  readonly Data?: {
    readonly ModelPath: string;
    readonly SizeBytes: number;
    /** Where the precompiled model was written, when there is one. */
    readonly PrecompiledPath?: string;
    /** As S3 returns it, quoted. */
    readonly ETag?: string;
  };
}

/** Directory of MountPath where downloads are staged; its name can never be a model file name. */
export const STAGING_DIR_NAME = '.incoming';

/**
 * Staging directories older than this belong to attempts that died (a Lambda function runs at
 * most 15 minutes) and are removed, since EFS bills for every byte they hold.
 */
const STALE_STAGING_MS = 60 * 60 * 1000;

/**
 * How the loader fetches from S3 (MODEL_S3_*, the function's memory), read from the environment
 * once, at the first copy, by the inference handler's own parsing (readS3FetchSettings): a bad
 * value fails that copy, naming the variable, rather than the function's init.
 */
let fetchSettings: S3FetchSettings | undefined;

/**
 * A copy job (invoked asynchronously by the starter: copies and records how it ended in the status
 * file), or a custom resource event (invoked synchronously: a Delete from the starter; a Create or
 * Update copies before it answers).
 */
export async function handler(event: ModelLoaderEvent | CopyJobEvent, context?: LoaderContext): Promise<ModelLoaderResponse | undefined> {
  const started = performance.now();
  const request = isCopyJob(event)
    ? { requestType: event.CopyJob.RequestType, logicalResourceId: event.CopyJob.LogicalResourceId, copyJobId: event.CopyJob.Id }
    : { requestType: event.RequestType, logicalResourceId: event.LogicalResourceId };
  const log = (fields: Record<string, unknown>, failed = false) => {
    const line = JSON.stringify({ ...request, ...fields, durationMs: Math.round(performance.now() - started) });
    if (failed) console.error(line);
    else console.log(line);
  };
  if (isCopyJob(event)) {
    try {
      // Without a context (a test), as long as Lambda's longest invocation.
      await runCopyJob(event, context?.getRemainingTimeInMillis() ?? 15 * 60 * 1000, async (properties, previous) => {
        try {
          return await copyModel(properties, log, previous);
        } catch (error) {
          log({ message: 'model loader failed', error: messageOf(error) }, true);
          throw error;
        }
      });
    } catch (error) {
      log({ message: 'copy job could not run', error: messageOf(error) }, true);
      throw error;
    }
    return undefined;
  }
  try {
    switch (event.RequestType) {
      case 'Create':
        return await copyModel(parseProperties(event.ResourceProperties), log);
      case 'Update':
        return await copyModel(parseProperties(event.ResourceProperties), log, { physicalResourceId: event.PhysicalResourceId, properties: event.OldResourceProperties });
      case 'Delete':
        return await deleteModel(event, log);
      default:
        throw new Error(`Unknown RequestType ${JSON.stringify((event as { RequestType?: unknown }).RequestType)}`);
    }
  } catch (error) {
    log({ message: 'model loader failed', error: messageOf(error) }, true);
    throw error;
  }
}

type Log = (fields: Record<string, unknown>) => void;

async function copyModel(properties: LoaderProperties, log: Log, previous?: PreviousCopy): Promise<ModelLoaderResponse> {
  const { modelS3Uri, versionId, mountPath, modelPath, precompiled } = properties;
  fetchSettings ??= readS3FetchSettings(process.env);
  const settings = fetchSettings;
  await requireDirectory(mountPath);
  const stagingRoot = path.join(mountPath, STAGING_DIR_NAME);
  await removeStaleStaging(stagingRoot);
  // One directory per attempt: concurrent loaders on the same file system (two endpoints, or a
  // retry while a timed-out attempt still runs) must not share fetchS3Model's `.partial` file.
  const stagingDir = path.join(stagingRoot, randomUUID());
  const source = versionId === undefined ? modelS3Uri : `version ${versionId} of ${modelS3Uri}`;
  let precompiledPlaced = false;
  let response: ModelLoaderResponse;
  try {
    // Both files complete and verified before either takes its name: a copy that fails half way
    // leaves the names as they were.
    const fetched = await fetchS3Model({ ...settings, uri: modelS3Uri, versionId, cacheDir: path.join(stagingDir, 'model') });
    const staged = precompiled ? await fetchS3Model({ ...settings, uri: precompiled.s3Uri, cacheDir: path.join(stagingDir, 'precompiled') }) : undefined;
    // The precompiled copy first: by the time the model's name exists, so does the copy a new
    // function version reads instead (an older version reading the model alone is unaffected).
    if (precompiled && staged) {
      await rename(staged.path, precompiled.path);
      precompiledPlaced = true;
      log({ message: 'precompiled model copied', source: precompiled.s3Uri, path: precompiled.path, sizeBytes: staged.sizeBytes });
    }
    await rename(fetched.path, modelPath);
    log({ message: 'model copied', source: modelS3Uri, versionId, modelPath, sizeBytes: fetched.sizeBytes, etag: fetched.etag });
    response = {
      PhysicalResourceId: modelPath,
      Data: {
        ModelPath: modelPath,
        SizeBytes: fetched.sizeBytes,
        ...(fetched.etag ? { ETag: fetched.etag } : {}),
        ...(precompiled ? { PrecompiledPath: precompiled.path } : {}),
      },
    };
  } catch (error) {
    if (precompiled) await removeUnpairedPrecompiled(precompiled.path, modelPath, precompiledPlaced, log);
    const reason = error instanceof ModelFetchError ? `${error.code}: ${error.message}` : messageOf(error);
    throw new Error(`Copying ${source} to ${modelPath} failed. ${reason}`, { cause: error });
  } finally {
    // Also removes fetchS3Model's `.json` records, which only a cache directory needs.
    await rm(stagingDir, { recursive: true, force: true }).catch(() => undefined);
    // Fails while another loader stages a download, which is fine: that one removes it.
    await rmdir(stagingRoot).catch(() => undefined);
  }
  await removeReplacedPrecompiled(properties, previous, log);
  return response;
}

/**
 * After a failed copy, the precompiled file under its final name goes when it has no model to go
 * with: this copy renamed it there but not its model, or an earlier attempt left it without one.
 * Nothing would ever read or delete it. (Beside a model that exists, an earlier copy's file stays.)
 */
async function removeUnpairedPrecompiled(precompiledPath: string, modelPath: string, placedNow: boolean, log: Log): Promise<void> {
  const modelExists = await stat(modelPath).then(
    () => true,
    () => false,
  );
  if (!placedNow && modelExists) return;
  try {
    await unlink(precompiledPath);
    log({ message: 'precompiled model removed', path: precompiledPath, reason: placedNow ? 'its model was not copied' : 'no model beside it' });
  } catch (error) {
    // Best effort: the copy's own failure is what the deploy reports.
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      log({ message: 'precompiled model left in place', path: precompiledPath, error: messageOf(error) });
    }
  }
}

/**
 * An Update that keeps the model's name (its physical id) but no longer writes the precompiled
 * copy the old properties named removes that copy: no Delete will ever come for it. With a new
 * name, CloudFormation deletes the old resource, and its precompiled copy, after the update.
 */
async function removeReplacedPrecompiled(properties: LoaderProperties, previous: PreviousCopy | undefined, log: Log): Promise<void> {
  if (previous?.physicalResourceId !== properties.modelPath) return;
  const old = previous.properties ?? {};
  const name = old[P.PRECOMPILED_FILE_NAME];
  if (typeof name !== 'string' || problemWithFileName(name, '.ort') !== undefined) return;
  let oldMountPath: string;
  try {
    oldMountPath = parseMountPath(old[P.MOUNT_PATH]);
  } catch {
    return;
  }
  const oldPath = path.posix.join(oldMountPath, name);
  if (oldMountPath !== properties.mountPath || oldPath === properties.precompiled?.path) return;
  try {
    await unlink(oldPath);
    log({ message: 'replaced precompiled model deleted', path: oldPath });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new Error(`The model was copied to ${properties.modelPath}, but deleting the precompiled model it replaces, ${oldPath}, failed: ${messageOf(error)}`, {
        cause: error,
      });
    }
  }
}

async function deleteModel(event: ModelLoaderEvent, log: Log): Promise<ModelLoaderResponse> {
  const physicalId = event.PhysicalResourceId ?? '';
  const skip = (reason: string): ModelLoaderResponse => {
    log({ message: 'nothing deleted', physicalResourceId: physicalId, reason });
    return { PhysicalResourceId: physicalId };
  };
  // A Delete that throws blocks the stack's deletion or rollback, so doubt means leaving the file.
  let mountPath: string;
  try {
    mountPath = parseMountPath(event.ResourceProperties?.[P.MOUNT_PATH]);
  } catch (error) {
    return skip(messageOf(error));
  }
  const isModelFile =
    path.posix.isAbsolute(physicalId) &&
    path.posix.normalize(physicalId) === physicalId &&
    path.posix.dirname(physicalId) === mountPath &&
    problemWithFileName(path.posix.basename(physicalId)) === undefined;
  if (!isModelFile) {
    return skip(`not a model file directly inside MountPath ${mountPath}`);
  }
  // The precompiled copy goes with its model; a name that is not one the loader writes is left alone.
  const precompiledName = event.ResourceProperties?.[P.PRECOMPILED_FILE_NAME];
  if (typeof precompiledName === 'string' && problemWithFileName(precompiledName, '.ort') === undefined) {
    const precompiledPath = path.posix.join(mountPath, precompiledName);
    try {
      await unlink(precompiledPath);
      log({ message: 'precompiled model deleted', path: precompiledPath });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new Error(`Deleting ${precompiledPath} failed: ${messageOf(error)}`, { cause: error });
      }
    }
  }
  try {
    await unlink(physicalId);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      return skip('already absent');
    }
    throw new Error(`Deleting ${physicalId} failed: ${messageOf(error)}`, { cause: error });
  }
  log({ message: 'model deleted', modelPath: physicalId });
  return { PhysicalResourceId: physicalId };
}

/** Best effort: a failure here must not fail the copy. */
async function removeStaleStaging(stagingRoot: string): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(stagingRoot);
  } catch {
    return;
  }
  const cutoff = Date.now() - STALE_STAGING_MS;
  await Promise.all(
    entries.map(async (entry) => {
      const entryPath = path.join(stagingRoot, entry);
      try {
        if ((await stat(entryPath)).mtimeMs < cutoff) {
          await rm(entryPath, { recursive: true, force: true });
        }
      } catch {
        // Removed by another loader meanwhile, or unreadable: not this attempt's concern.
      }
    }),
  );
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
