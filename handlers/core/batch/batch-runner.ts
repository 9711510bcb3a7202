/**
 * Runs the items of one Distributed Map batch: stacked where they can be (one `session.run` for
 * many rows), one by one where they cannot, and answers one output line per item, in the order of
 * the items. An item the model refuses (a 4xx) becomes a failed line with its reason; a failure of
 * the function itself (a 5xx: the model cannot load, an internal error) fails the whole batch, so
 * that Step Functions retries it.
 */
import type { BatchItem } from '../../../contract/batch';
import { type InferenceError, badRequest, isInferenceError } from '../protocol/errors';
import { stringifyJson } from '../protocol/json';
import type { ModelSignature } from '../protocol/protocol';
import { type PreparedItem, prepareItem, stackRequests, unstackResponse } from './batch-items';

/** What a batch run needs of the handler: the model's signature and an inference. */
export interface BatchInference {
  readonly signature: ModelSignature;
  /** Runs one request as a direct invocation does (hooks included); throws an InferenceError. */
  infer(body: unknown): Promise<unknown>;
  /** A preprocess hook runs: each item goes to it as it is, one by one. */
  readonly asIs: boolean;
  /** Requests of the same shape may be stacked into one run (no postprocess hook, which sees one answer per item). */
  readonly stack: boolean;
}

/** The most rows stacked into one run; past it a stack is split. */
export const MAX_STACKED_ROWS = 1024;

/** One output line, before it is written. */
export interface BatchLine {
  readonly index: number;
  readonly json: string;
  readonly failed: boolean;
}

export interface BatchRun {
  readonly lines: BatchLine[];
  readonly failed: number;
  readonly runs: number;
}

/** Reads the items of a batch event: each must be `{index, value}` as the state machine's ItemSelector makes it. */
export function readItems(items: unknown): BatchItem[] {
  if (!Array.isArray(items)) throw badRequest("a batch's 'Items' must be an array");
  return items.map((item, k) => {
    const i = item as Partial<BatchItem> | null;
    if (typeof i !== 'object' || i === null || !Number.isSafeInteger(i.index) || (i.index as number) < 0 || !('value' in i)) {
      throw badRequest(
        `item ${k} of the batch is not {"index": <its line number, from 0>, "value": <the item>}: select them with ItemSelector {"index.$": "$$.Map.Item.Index", "value.$": "$$.Map.Item.Value"}`,
      );
    }
    return { index: i.index as number, value: i.value };
  });
}

export async function runBatch(items: readonly BatchItem[], inference: BatchInference, joinInput: boolean): Promise<BatchRun> {
  const prepared = items.map((i) => prepareItem(i, inference.signature, inference.asIs, inference.stack));
  const answers = new Map<number, { response?: unknown; error?: InferenceError }>();
  let runs = 0;
  const runOne = async (item: PreparedItem): Promise<void> => {
    runs++;
    try {
      answers.set(item.index, { response: await inference.infer(item.request) });
    } catch (e) {
      if (!isInferenceError(e) || e.status >= 500) throw e;
      answers.set(item.index, { error: e });
    }
  };
  const groups = new Map<string, PreparedItem[]>();
  for (const item of prepared) {
    if (item.error) answers.set(item.index, { error: item.error });
    else if (item.stackKey === undefined) await runOne(item);
    else {
      const group = groups.get(item.stackKey);
      if (group) group.push(item);
      else groups.set(item.stackKey, [item]);
    }
  }
  for (const group of groups.values()) {
    for (const stack of chunks(group)) {
      if (stack.length === 1) {
        await runOne(stack[0]);
        continue;
      }
      runs++;
      let unstacked: Record<string, unknown>[] | undefined;
      try {
        unstacked = unstackResponse(await inference.infer(stackRequests(stack)), stack);
      } catch (e) {
        // One item's values can fail the whole stack (a 4xx): the items run one by one, so that
        // only that item fails, with its own reason.
        if (!isInferenceError(e) || e.status >= 500) throw e;
      }
      if (unstacked) for (const [k, item] of stack.entries()) answers.set(item.index, { response: unstacked[k] });
      else for (const item of stack) await runOne(item);
    }
  }
  let failed = 0;
  const lines = prepared.map((item): BatchLine => {
    const answer = answers.get(item.index)!;
    const head = { index: item.index, ...(item.id !== undefined ? { id: item.id } : {}) };
    const input = joinInput ? { input: item.value } : {};
    if (answer.error) {
      failed++;
      return { index: item.index, failed: true, json: stringifyJson({ ...head, status: answer.error.status, error: answer.error.message, ...input }) };
    }
    const { id: _id, ...response } = answer.response as Record<string, unknown>;
    return { index: item.index, failed: false, json: stringifyJson({ ...head, ...response, ...input }) };
  });
  return { lines, failed, runs };
}

function chunks(items: readonly PreparedItem[]): PreparedItem[][] {
  const out: PreparedItem[][] = [];
  let current: PreparedItem[] = [];
  let rows = 0;
  for (const item of items) {
    if (current.length > 0 && rows + item.rows! > MAX_STACKED_ROWS) {
      out.push(current);
      current = [];
      rows = 0;
    }
    current.push(item);
    rows += item.rows!;
  }
  if (current.length > 0) out.push(current);
  return out;
}
