/**
 * The S3 side of a batch job: each batch's lines go to a part file keyed by its first item's index;
 * the last step puts the parts together, in the input's order, into the job's results, its failures
 * and its manifest. The batches that failed as a whole (their invocation failed after its retries,
 * within the Distributed Map's tolerated failures) are read from the Map's ResultWriter files,
 * whose failed executions carry their input: their items are failures too, with the batch's error.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { BATCH_FILES, type BatchAssembleEvent, type BatchManifest, batchPartKey } from '../../../contract/batch';
import { stringifyJson } from '../protocol/json';
import { createS3Client } from '../model/s3-client';
import type { BatchLine } from './batch-runner';

type S3Sdk = typeof import('@aws-sdk/client-s3');

async function sdk(): Promise<S3Sdk> {
  const loaded = (await import('@aws-sdk/client-s3')) as S3Sdk & { default?: S3Sdk };
  return typeof loaded.S3Client === 'function' ? loaded : loaded.default!;
}

let client: S3Client | undefined;

/**
 * One client for the instance. An S3-compatible endpoint (AWS_ENDPOINT_URL_S3, which the SDK reads
 * itself) is addressed path-style, as such servers need.
 */
async function s3(): Promise<S3Client> {
  client ??= await createS3Client(Boolean(process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL), 30_000);
  return client;
}

/** Writes a batch's lines to its part file; returns its key. */
export async function writePart(bucket: string, outputPrefix: string, lines: readonly BatchLine[]): Promise<string> {
  const { PutObjectCommand } = await sdk();
  const first = Math.min(...lines.map((l) => l.index));
  const key = batchPartKey(outputPrefix, Number.isFinite(first) ? first : 0);
  await (await s3()).send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: lines.map((l) => `${l.json}\n`).join(''), ContentType: 'application/x-ndjson' }));
  return key;
}

async function readText(bucket: string, key: string): Promise<string> {
  const { GetObjectCommand } = await sdk();
  const response = await (await s3()).send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return response.Body!.transformToString('utf8');
}

async function listKeys(bucket: string, prefix: string): Promise<string[]> {
  const { ListObjectsV2Command } = await sdk();
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await (await s3()).send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) if (o.Key) keys.push(o.Key);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys.sort();
}

/** A failed child execution, as the ResultWriter writes it (Transformation NONE). */
interface FailedExecution {
  readonly Input?: string;
  readonly Error?: string;
  readonly Cause?: string;
}

/** The items of the batches that failed as a whole, with the reason, from the ResultWriter's files. */
async function failedBatches(resultWriter: BatchAssembleEvent['resultWriter']): Promise<Map<number, { id?: string; reason: string }>> {
  const failed = new Map<number, { id?: string; reason: string }>();
  if (!resultWriter?.Bucket || !resultWriter.Key) return failed;
  const manifest = JSON.parse(await readText(resultWriter.Bucket, resultWriter.Key)) as { ResultFiles?: { FAILED?: { Key: string }[] } };
  for (const file of manifest.ResultFiles?.FAILED ?? []) {
    const executions = JSON.parse(await readText(resultWriter.Bucket, file.Key)) as FailedExecution[];
    for (const e of executions) {
      const reason = `the batch's invocation failed: ${e.Error ?? 'unknown error'}${e.Cause ? `: ${causeOf(e.Cause)}` : ''}`;
      let input: { Items?: { index?: unknown; value?: { id?: unknown } }[] } | undefined;
      try {
        input = e.Input ? JSON.parse(e.Input) : undefined;
      } catch {
        input = undefined;
      }
      for (const item of input?.Items ?? []) {
        if (typeof item.index === 'number') failed.set(item.index, { id: item.value?.id === undefined ? undefined : String(item.value.id), reason });
      }
    }
  }
  return failed;
}

/** A Lambda failure's cause is its error as JSON (`{"errorMessage": ...}`): its message, when it is. */
function causeOf(cause: string): string {
  try {
    const parsed = JSON.parse(cause) as { errorMessage?: unknown };
    if (typeof parsed.errorMessage === 'string') return parsed.errorMessage;
  } catch {
    // not JSON: the cause as it is
  }
  return cause;
}

/**
 * Puts the job's output together: `results.jsonl` (one line per input line, in order), the failed
 * lines in `failures.jsonl`, and `manifest.json`; then removes the parts.
 */
export async function assembleOutput(event: BatchAssembleEvent, now: Date = new Date()): Promise<BatchManifest> {
  const { outputBucket: bucket, outputPrefix: prefix } = event;
  const parts = await listKeys(bucket, `${prefix}${BATCH_FILES.PARTS}`);
  const lines = new Map<number, string>();
  const failures: string[] = [];
  for (const key of parts) {
    for (const line of (await readText(bucket, key)).split('\n')) {
      if (line === '') continue;
      const parsed = JSON.parse(line) as { index: number; error?: unknown; status?: unknown; id?: unknown };
      lines.set(parsed.index, line);
      if (parsed.error !== undefined)
        failures.push(stringifyJson({ index: parsed.index, ...(parsed.id !== undefined ? { id: parsed.id } : {}), status: parsed.status, error: parsed.error }));
    }
  }
  let failedInBatches = 0;
  for (const [index, f] of await failedBatches(event.resultWriter)) {
    if (lines.has(index)) continue;
    failedInBatches++;
    const line = stringifyJson({ index, ...(f.id !== undefined ? { id: f.id } : {}), status: 500, error: f.reason });
    lines.set(index, line);
    failures.push(line);
  }
  const count = lines.size === 0 ? 0 : Math.max(...lines.keys()) + 1;
  const results: string[] = [];
  for (let i = 0; i < count; i++) {
    let line = lines.get(i);
    if (line === undefined) {
      line = stringifyJson({ index: i, status: 500, error: 'no batch answered this item' });
      failures.push(line);
    }
    results.push(line);
  }
  failures.sort((a, b) => indexOf(a) - indexOf(b));
  const { PutObjectCommand, DeleteObjectsCommand } = await sdk();
  const put = (name: string, body: string, type: string) =>
    s3().then((c) => c.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}${name}`, Body: body, ContentType: type })));
  await put(BATCH_FILES.RESULTS, results.map((l) => `${l}\n`).join(''), 'application/x-ndjson');
  await put(BATCH_FILES.FAILURES, failures.map((l) => `${l}\n`).join(''), 'application/x-ndjson');
  const started = event.startedAt ? Date.parse(event.startedAt) : Number.NaN;
  const manifest: BatchManifest = {
    ...(event.input ? { input: event.input } : {}),
    output: { bucket, results: `${prefix}${BATCH_FILES.RESULTS}`, failures: `${prefix}${BATCH_FILES.FAILURES}` },
    items: count,
    succeeded: count - failures.length,
    failed: failures.length,
    failedInBatches,
    ...(event.startedAt ? { startedAt: event.startedAt } : {}),
    finishedAt: now.toISOString(),
    ...(Number.isFinite(started) ? { seconds: (now.getTime() - started) / 1000 } : {}),
    ...(event.executionId ? { executionId: event.executionId } : {}),
  };
  await put(BATCH_FILES.MANIFEST, `${JSON.stringify(manifest, null, 2)}\n`, 'application/json');
  for (let i = 0; i < parts.length; i += 1000) {
    await (await s3()).send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: parts.slice(i, i + 1000).map((Key) => ({ Key })), Quiet: true } }));
  }
  return manifest;
}

function indexOf(line: string): number {
  return (JSON.parse(line) as { index: number }).index;
}
