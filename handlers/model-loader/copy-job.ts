/**
 * The model copy as an asynchronous job, so that a copy runs in an invocation of its own rather than
 * inside the custom resource provider's synchronous call, and its end is reported rather than
 * waited for:
 *
 * - `start` (the provider's onEvent handler, outside the VPC) checks the properties, invokes the
 *   loader asynchronously with a copy job and answers at once; a Delete it passes to the loader
 *   synchronously (a quick unlink).
 * - The loader (`runCopyJob`) records the job in `<MountPath>/.copies/<job id>.json`: running, with
 *   the time its invocation ends at the latest, then succeeded (with the custom resource's data) or
 *   failed (with the reason).
 * - `isComplete` (the provider's isComplete handler, on the file system, read-only) reads that file
 *   until the job ends, and fails the deploy with the reason, or when the loader stopped at its
 *   timeout, or when the job never started.
 *
 * Lambda drops a job left in its queue past MODEL_COPY_START_WINDOW_SECONDS (the loader's maximum
 * event age) and never retries one (no retry attempts): a job runs once or not at all.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { MODEL_COPY_ENV, MODEL_COPY_PROPERTY as P, MODEL_COPY_START_WINDOW_SECONDS } from '../../contract/model-copy';
import { type LoaderProperties, parseMountPath, parseProperties, type PreviousCopy } from './properties';

/** Directory of MountPath where copy jobs record their state; its name can never be a model file name. */
export const COPY_STATUS_DIR_NAME = '.copies';

/** Status files older than this belong to deploys long finished, and are removed. */
const STALE_STATUS_MS = 24 * 60 * 60 * 1000;

/** Time allowed past a job's deadline for its last status write to land, and past the start window. */
const GRACE_MS = 60 * 1000;

const JOB_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A custom resource event, as the provider framework passes it on. */
export interface CustomResourceEvent {
  readonly RequestType: 'Create' | 'Update' | 'Delete';
  readonly ResourceProperties: Record<string, unknown>;
  readonly OldResourceProperties?: Record<string, unknown>;
  readonly PhysicalResourceId?: string;
  readonly LogicalResourceId?: string;
}

/** What `start` sends the loader, asynchronously. */
export interface CopyJobEvent {
  readonly CopyJob: {
    readonly Id: string;
    readonly RequestType: 'Create' | 'Update';
    readonly LogicalResourceId?: string;
    readonly ResourceProperties: Record<string, unknown>;
    /** With an Update: what it replaces. */
    readonly PhysicalResourceId?: string;
    readonly OldResourceProperties?: Record<string, unknown>;
  };
}

/** What `start` answers: the physical id, and the job `isComplete` follows. */
export interface StartResponse {
  readonly PhysicalResourceId: string;
  readonly Data?: { readonly ModelPath: string; readonly CopyJobId: string; readonly CopyRequestedAt: string };
}

/** The provider framework's isComplete event: the resource event with what `start` answered. */
export interface IsCompleteEvent extends CustomResourceEvent {
  readonly Data?: Record<string, unknown>;
}

export interface IsCompleteResponse {
  readonly IsComplete: boolean;
  readonly Data?: Record<string, unknown>;
}

/** A job's state in its status file. Times in milliseconds since the epoch. */
export interface CopyStatus {
  readonly state: 'running' | 'succeeded' | 'failed';
  readonly startedAt: number;
  /** When the loader's invocation ends at the latest (its timeout): a job running past it died. */
  readonly deadline: number;
  readonly source: string;
  readonly modelPath: string;
  /** With `succeeded`: the custom resource's data. */
  readonly data?: Record<string, unknown>;
  /** With `failed`: why. */
  readonly error?: string;
}

export function isCopyJob(event: unknown): event is CopyJobEvent {
  return typeof event === 'object' && event !== null && 'CopyJob' in event;
}

/** Lambda's client, loaded only by the starter: the loader and the check never call Lambda. */
async function invokeLoader(payload: unknown, asynchronous: boolean): Promise<unknown> {
  const functionArn = process.env[MODEL_COPY_ENV.LOADER_FUNCTION_ARN];
  if (!functionArn) {
    throw new Error(`${MODEL_COPY_ENV.LOADER_FUNCTION_ARN} is not set: the starter needs the loader function's ARN`);
  }
  const { InvokeCommand, LambdaClient } = await import('@aws-sdk/client-lambda');
  const client = new LambdaClient({});
  const out = await client.send(new InvokeCommand({ FunctionName: functionArn, InvocationType: asynchronous ? 'Event' : 'RequestResponse', Payload: JSON.stringify(payload) }));
  if (asynchronous) return undefined;
  const text = Buffer.from(out.Payload ?? new Uint8Array()).toString('utf8');
  const answer = text ? JSON.parse(text) : undefined;
  if (out.FunctionError) {
    throw new Error((answer as { errorMessage?: string } | undefined)?.errorMessage ?? `the model loader failed (${out.FunctionError})`);
  }
  return answer;
}

/** The provider's onEvent handler. */
export async function start(event: CustomResourceEvent): Promise<StartResponse> {
  if (event.RequestType === 'Delete') {
    return (await invokeLoader(event, false)) as StartResponse;
  }
  // Bad properties fail the deploy now, naming the property, before any job exists.
  const properties = parseProperties(event.ResourceProperties);
  const id = randomUUID();
  const replaced = event.RequestType === 'Update' ? { PhysicalResourceId: event.PhysicalResourceId, OldResourceProperties: event.OldResourceProperties } : {};
  const job: CopyJobEvent = {
    CopyJob: { Id: id, RequestType: event.RequestType, LogicalResourceId: event.LogicalResourceId, ResourceProperties: event.ResourceProperties, ...replaced },
  };
  const requestedAt = new Date().toISOString();
  await invokeLoader(job, true);
  console.log(
    JSON.stringify({ requestType: event.RequestType, logicalResourceId: event.LogicalResourceId, message: 'model copy started', copyJobId: id, modelPath: properties.modelPath }),
  );
  return { PhysicalResourceId: properties.modelPath, Data: { ModelPath: properties.modelPath, CopyJobId: id, CopyRequestedAt: requestedAt } };
}

/**
 * The loader's side: runs `copy` once and records how it ended. It never throws for a failed copy
 * (the failure is in the status file, and an asynchronous invocation's error reaches nobody); it
 * throws only when it cannot write there, which the check then reports as a job that never started.
 */
export async function runCopyJob(
  event: CopyJobEvent,
  remainingMs: number,
  copy: (properties: LoaderProperties, previous?: PreviousCopy) => Promise<{ readonly Data?: object }>,
): Promise<void> {
  const job = event.CopyJob;
  const id = parseJobId(job.Id);
  const properties = parseProperties(job.ResourceProperties);
  await requireDirectory(properties.mountPath);
  const statusDir = path.join(properties.mountPath, COPY_STATUS_DIR_NAME);
  await mkdir(statusDir, { recursive: true });
  await removeStaleStatuses(statusDir);
  const source = properties.versionId === undefined ? properties.modelS3Uri : `version ${properties.versionId} of ${properties.modelS3Uri}`;
  const base = { startedAt: Date.now(), deadline: Date.now() + remainingMs, source, modelPath: properties.modelPath };
  await writeStatus(statusDir, id, { ...base, state: 'running' });
  let status: CopyStatus;
  try {
    const previous = job.RequestType === 'Update' ? { physicalResourceId: job.PhysicalResourceId, properties: job.OldResourceProperties } : undefined;
    const response = await copy(properties, previous);
    status = { ...base, state: 'succeeded', data: { ...response.Data } };
  } catch (error) {
    status = { ...base, state: 'failed', error: error instanceof Error ? error.message : String(error) };
  }
  await writeStatus(statusDir, id, status);
}

/** The provider's isComplete handler: reads the job's status file. */
export async function isComplete(event: IsCompleteEvent): Promise<IsCompleteResponse> {
  if (event.RequestType === 'Delete') {
    return { IsComplete: true };
  }
  const mountPath = parseMountPath(event.ResourceProperties?.[P.MOUNT_PATH]);
  const id = parseJobId(event.Data?.CopyJobId);
  await requireDirectory(mountPath);
  const status = await readStatus(path.join(mountPath, COPY_STATUS_DIR_NAME), id);
  const now = Date.now();
  if (status === undefined) {
    const requestedAt = Date.parse(String(event.Data?.CopyRequestedAt));
    if (!(now - requestedAt <= MODEL_COPY_START_WINDOW_SECONDS * 1000 + GRACE_MS)) {
      throw new Error(
        `The model copy ${id} never started: the loader did not record it within ${MODEL_COPY_START_WINDOW_SECONDS} s of ${event.Data?.CopyRequestedAt}, ` +
          "after which Lambda drops the invocation. See the loader's log for why (it could not write to MountPath, or was throttled)",
      );
    }
    return { IsComplete: false };
  }
  switch (status.state) {
    case 'succeeded':
      return { IsComplete: true, Data: status.data };
    case 'failed':
      throw new Error(status.error ?? `Copying ${status.source} to ${status.modelPath} failed`);
    default:
      if (now > status.deadline + GRACE_MS) {
        const minutes = Math.round((status.deadline - status.startedAt) / 60_000);
        throw new Error(
          `Copying ${status.source} to ${status.modelPath} did not finish: the loader stopped at its ${minutes}-minute limit ` +
            `(started ${new Date(status.startedAt).toISOString()}). The model is too big to copy in that time at the file system's throughput: ` +
            'give it more throughput (throughputMode), or a smaller model',
        );
      }
      return { IsComplete: false };
  }
}

/** The mount must exist already: creating it would write to the function's own read-only disk. */
export async function requireDirectory(mountPath: string): Promise<void> {
  let isDirectory: boolean;
  try {
    isDirectory = (await stat(mountPath)).isDirectory();
  } catch (error) {
    throw new Error(
      `MountPath ${mountPath} cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)}): ` +
        "is the file system mounted there (the function's FileSystemConfig LocalMountPath)?",
      { cause: error },
    );
  }
  if (!isDirectory) {
    throw new Error(`MountPath ${mountPath} is not a directory`);
  }
}

function parseJobId(value: unknown): string {
  if (typeof value !== 'string' || !JOB_ID.test(value)) {
    throw new Error(`CopyJobId must be the UUID of a copy job, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** Written to a temporary name and renamed, so that a reader never sees half a file. */
async function writeStatus(statusDir: string, id: string, status: CopyStatus): Promise<void> {
  const file = path.join(statusDir, `${id}.json`);
  const temporary = `${file}.${randomUUID()}.tmp`;
  await writeFile(temporary, JSON.stringify(status));
  await rename(temporary, file);
}

async function readStatus(statusDir: string, id: string): Promise<CopyStatus | undefined> {
  try {
    return JSON.parse(await readFile(path.join(statusDir, `${id}.json`), 'utf8')) as CopyStatus;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** Best effort: a failure here must not fail the copy. */
async function removeStaleStatuses(statusDir: string): Promise<void> {
  const cutoff = Date.now() - STALE_STATUS_MS;
  const entries = await readdir(statusDir).catch(() => [] as string[]);
  await Promise.all(
    entries.map(async (entry) => {
      const file = path.join(statusDir, entry);
      try {
        if ((await stat(file)).mtimeMs < cutoff) await rm(file, { force: true });
      } catch {
        // Removed by another loader meanwhile.
      }
    }),
  );
}
