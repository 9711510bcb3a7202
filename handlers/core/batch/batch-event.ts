/**
 * The batch events beside the API's: a Distributed Map batch (ItemBatcher's `{BatchInput, Items}`
 * whose BatchInput is the library's) and the job's assembling step. Anything else is not a batch
 * event, and the handler reads it as it always has.
 */
import { BATCH_ASSEMBLE_KIND, BATCH_KIND, type BatchAnswer, type BatchAssembleEvent, type BatchInput, type BatchManifest } from '../../../contract/batch';
import { badRequest } from '../protocol/errors';
import { assembleOutput, writePart } from './batch-output';
import { type BatchInference, readItems, runBatch } from './batch-runner';

export type BatchEventKind =
  | { readonly kind: 'batch'; readonly input: BatchInput; readonly items: unknown }
  | { readonly kind: 'batch-assemble'; readonly event: BatchAssembleEvent };

/** The batch event `event` is, or undefined for any other event. */
export function readBatchEvent(event: unknown): BatchEventKind | undefined {
  if (typeof event !== 'object' || event === null || Array.isArray(event)) return undefined;
  const e = event as Record<string, unknown>;
  const input = e.BatchInput as Record<string, unknown> | undefined;
  if (typeof input === 'object' && input !== null && input.kind === BATCH_KIND && 'Items' in e) {
    return { kind: 'batch', input: input as unknown as BatchInput, items: e.Items };
  }
  if (e.kind === BATCH_ASSEMBLE_KIND) return { kind: 'batch-assemble', event: e as unknown as BatchAssembleEvent };
  return undefined;
}

/**
 * Answers a batch event. A malformed event is an InferenceError 400; an item's failure is in its
 * line; what fails the function (the model, S3) is thrown as it is.
 */
export async function handleBatchEvent(batch: BatchEventKind, inference: () => Promise<BatchInference>): Promise<BatchAnswer | BatchManifest> {
  if (batch.kind === 'batch-assemble') {
    const e = batch.event;
    if (typeof e.outputBucket !== 'string' || typeof e.outputPrefix !== 'string') throw badRequest("the assembling step needs 'outputBucket' and 'outputPrefix'");
    return assembleOutput(e);
  }
  const items = readItems(batch.items);
  const { outputBucket, outputPrefix } = batch.input;
  if (outputBucket !== undefined && (typeof outputBucket !== 'string' || typeof outputPrefix !== 'string')) {
    throw badRequest("a batch's BatchInput names 'outputBucket' with 'outputPrefix' (both strings)");
  }
  const run = await runBatch(items, await inference(), batch.input.joinInput === true);
  const counts = { items: items.length, failed: run.failed, runs: run.runs };
  if (outputBucket === undefined) return { ...counts, lines: run.lines.map((l) => l.json) };
  return { part: await writePart(outputBucket, outputPrefix!, run.lines), ...counts };
}
