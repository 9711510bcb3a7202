import type { BatchingSettings } from '../config/config';
import type { TensorData } from '../protocol/datatypes';
import type { ModelSignature, OutputResult } from '../protocol/protocol';
import type { TensorInit } from '../protocol/tensors';

/** One run of the model: what the batcher calls for a merged batch, or for a request alone. */
export type ModelRun = (feeds: ReadonlyMap<string, TensorInit>, outputs: readonly string[]) => Promise<ReadonlyMap<string, OutputResult>>;

/** A request, checked against the model's signature already: its tensors and the outputs it asks for. */
export interface BatchRequest {
  readonly feeds: ReadonlyMap<string, TensorInit>;
  readonly outputs: readonly string[];
}

/** A request's own answer, and the run it came from. */
export interface BatchAnswer {
  /** The request's outputs only, its rows only. */
  readonly results: ReadonlyMap<string, OutputResult>;
  /** Time of the run that answered it (merged or alone), in milliseconds, without the wait before it. */
  readonly runMs: number;
  /** Requests that run answered: 1 when the request ran alone. */
  readonly requests: number;
}

interface Waiting {
  readonly request: BatchRequest;
  readonly rows: number;
  resolve(answer: BatchAnswer): void;
  reject(error: unknown): void;
}

/** Requests of one key, waiting for the batch to be full or for the delay to end. */
interface OpenBatch {
  readonly key: string;
  readonly items: Waiting[];
  rows: number;
  timer?: NodeJS.Timeout | NodeJS.Immediate;
}

/**
 * The dimension along which a model's requests can be stacked: the symbolic first dimension that
 * every input shares (`batch` in `[batch, 100]`), and the outputs whose first dimension is that
 * same symbol, whose rows belong to the inputs' rows. None when an input has a fixed first
 * dimension, no dimension, or a first dimension of another name or unknown.
 */
export interface BatchDimension {
  readonly symbol: string;
  /** The outputs that come in rows of the batch dimension. */
  readonly rowOutputs: ReadonlySet<string>;
}

export function batchDimensionOf(signature: ModelSignature): BatchDimension | undefined {
  if (signature.inputs.length === 0) return undefined;
  const first = signature.inputs[0].shape[0];
  if (typeof first !== 'string') return undefined;
  if (!signature.inputs.every((i) => i.shape[0] === first)) return undefined;
  return { symbol: first, rowOutputs: new Set(signature.outputs.filter((o) => o.shape[0] === first).map((o) => o.name)) };
}

/**
 * Merges requests for one model (one session) into one run, stacked along the model's batch
 * dimension, and gives each caller its own rows of the outputs, in order. Requests merge when they
 * agree on every input's other dimensions (the model fixes the datatypes); a batch holds up to
 * `maxBatchSize` rows. A request runs alone when the model has no batch dimension, when it asks for
 * an output that does not come in rows of it, when it has no rows or alone fills a batch.
 *
 * One merged run at a time, as a model instance of Triton's runs one batch at a time: while it
 * runs, the requests that arrive wait and form the next batch, which starts as soon as the run
 * ends. Only when no run is under way does the first request of a batch wait `maxQueueDelayMs` for
 * others. So a batch grows with the load by itself: one request alone waits the delay at most, and
 * under load the batches fill while the model works, with no delay added. (Measured: a fixed delay
 * alone, at 2 ms, gave batches of 1 to 16 requests, mostly small, on a contended machine where
 * requests reach the worker more than 2 ms apart.)
 *
 * Each request was checked against the model before it reached the batcher, so a malformed one
 * never joins a batch. A run can still fail on the values of one request (an index outside a
 * Gather's table): then each request of the batch runs again alone, so that the failure is that
 * request's own and every other gets its answer.
 *
 * The model's rows must be independent (the answer for a row does not depend on the other rows of
 * the batch), as for any dynamic batcher: true of models exported with a dynamic batch axis.
 */
export class DynamicBatcher {
  /** Batches still taking requests, one per key. */
  private readonly open = new Map<string, OpenBatch>();
  /** Batches closed (full, past their delay, or held while a run went on), in order, waiting for the run to end. */
  private readonly ready: OpenBatch[] = [];
  /** Whether a merged run is under way. */
  private running = false;

  constructor(
    private readonly settings: BatchingSettings,
    private readonly dimension: BatchDimension | undefined,
    private readonly run: ModelRun,
  ) {}

  /** The request's answer: from a merged run, or from a run of its own where it cannot merge. */
  submit(request: BatchRequest): Promise<BatchAnswer> {
    const key = this.keyOf(request);
    if (key === undefined) return this.alone(request);
    const rows = firstDimension(request);
    if (rows === 0 || rows >= this.settings.maxBatchSize) return this.alone(request);
    return new Promise<BatchAnswer>((resolve, reject) => {
      let batch = this.open.get(key);
      if (batch && batch.rows + rows > this.settings.maxBatchSize) {
        this.close(batch);
        batch = undefined;
      }
      if (!batch) {
        batch = { key, items: [], rows: 0 };
        this.open.set(key, batch);
        // While a run is under way, the batch is closed when it ends: no delay of its own.
        if (!this.running) {
          const b = batch;
          batch.timer = this.settings.maxQueueDelayMs > 0 ? setTimeout(() => this.close(b), this.settings.maxQueueDelayMs) : setImmediate(() => this.close(b));
        }
      }
      batch.items.push({ request, rows, resolve, reject });
      batch.rows += rows;
      if (batch.rows >= this.settings.maxBatchSize) this.close(batch);
    });
  }

  /**
   * What requests must agree on to merge: each input's dimensions after the first (its datatype is
   * the model's). Undefined for a request that cannot merge with any.
   */
  private keyOf(request: BatchRequest): string | undefined {
    const dim = this.dimension;
    if (!dim || !request.outputs.every((o) => dim.rowOutputs.has(o))) return undefined;
    let key = '';
    let rows: number | undefined;
    // By name: two requests may list the same inputs in another order.
    for (const [name, t] of [...request.feeds].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      if (t.shape.length === 0) return undefined;
      // Inputs sharing the batch symbol were checked to agree on it; kept as a guard.
      if (rows !== undefined && t.shape[0] !== rows) return undefined;
      rows = t.shape[0];
      key += `${name}:${t.datatype}[${t.shape.slice(1).join(',')}];`;
    }
    return key;
  }

  /** Takes no more requests into `batch`: it runs next, once no run is under way. */
  private close(batch: OpenBatch): void {
    if (this.open.get(batch.key) !== batch) return;
    this.open.delete(batch.key);
    if (batch.timer !== undefined) {
      clearTimeout(batch.timer as NodeJS.Timeout);
      clearImmediate(batch.timer as NodeJS.Immediate);
    }
    this.ready.push(batch);
    this.next();
  }

  /** Starts the next closed batch unless a run is under way; when none is closed, the open ones close now. */
  private next(): void {
    if (this.running) return;
    if (this.ready.length === 0) {
      // What gathered while the last run went on has waited long enough.
      for (const b of [...this.open.values()]) {
        if (b.timer === undefined) this.close(b);
      }
      return;
    }
    const batch = this.ready.shift()!;
    this.running = true;
    void this.runBatch(batch.items).finally(() => {
      this.running = false;
      this.next();
    });
  }

  private async runBatch(items: readonly Waiting[]): Promise<void> {
    if (items.length === 1) {
      await this.alone(items[0].request).then(items[0].resolve, items[0].reject);
      return;
    }
    const outputs = [...new Set(items.flatMap((i) => i.request.outputs))];
    const total = items.reduce((n, i) => n + i.rows, 0);
    let results: ReadonlyMap<string, OutputResult>;
    let runMs: number;
    try {
      const started = performance.now();
      results = await this.run(stack(items), outputs);
      runMs = performance.now() - started;
      if (!outputs.every((o) => results.get(o)?.dims[0] === total)) throw new Error('an output does not come in the rows of the batch');
    } catch {
      // One request's values may have failed the run (or its outputs could not be split): each
      // runs again alone, so that a failure is answered to its own request only.
      await Promise.all(items.map((item) => this.alone(item.request).then(item.resolve, item.reject)));
      return;
    }
    let offset = 0;
    for (const item of items) {
      const own = new Map<string, OutputResult>();
      for (const name of item.request.outputs) own.set(name, rowsOf(results.get(name)!, offset, item.rows));
      offset += item.rows;
      item.resolve({ results: own, runMs, requests: items.length });
    }
  }

  private async alone(request: BatchRequest): Promise<BatchAnswer> {
    const started = performance.now();
    const results = await this.run(request.feeds, request.outputs);
    return { results, runMs: performance.now() - started, requests: 1 };
  }
}

/**
 * One batcher per session: a model (and version) has its queues, and requests for different
 * models never merge. Keyed weakly, so that a session that is dropped (a model unloaded) takes its
 * batcher with it.
 */
export class BatchQueues {
  private readonly batchers = new WeakMap<object, DynamicBatcher>();

  constructor(private readonly settings: BatchingSettings) {}

  /** The batcher of `session`; `run` runs that session, `signature` is its model's. */
  of(session: object, signature: ModelSignature, run: ModelRun): DynamicBatcher {
    let batcher = this.batchers.get(session);
    if (!batcher) {
      batcher = new DynamicBatcher(this.settings, batchDimensionOf(signature), run);
      this.batchers.set(session, batcher);
    }
    return batcher;
  }
}

/** A request's rows: the first dimension its inputs share. */
function firstDimension(request: BatchRequest): number {
  for (const t of request.feeds.values()) return t.shape[0];
  return 0;
}

/** The batch's inputs: each request's tensors one after the other along the first dimension. */
function stack(items: readonly Waiting[]): Map<string, TensorInit> {
  const feeds = new Map<string, TensorInit>();
  const total = items.reduce((n, i) => n + i.rows, 0);
  for (const [name, first] of items[0].request.feeds) {
    const parts = items.map((i) => i.request.feeds.get(name)!.data);
    feeds.set(name, { datatype: first.datatype, shape: [total, ...first.shape.slice(1)], data: concat(parts) });
  }
  return feeds;
}

function concat(parts: readonly TensorData[]): TensorData {
  if (Array.isArray(parts[0])) return (parts as string[][]).flat();
  const typed = parts as Exclude<TensorData, string[]>[];
  const length = typed.reduce((n, p) => n + p.length, 0);
  const out = new (typed[0].constructor as new (n: number) => Exclude<TensorData, string[]>)(length);
  let at = 0;
  for (const p of typed) {
    (out as { set(a: ArrayLike<number | bigint>, o: number): void }).set(p, at);
    at += p.length;
  }
  return out;
}

/** Rows `[offset, offset + rows)` of an output, copied out of the batch's. */
function rowsOf(result: OutputResult, offset: number, rows: number): OutputResult {
  const perRow = result.dims.slice(1).reduce((a, b) => a * b, 1);
  const data = result.data as { slice(start: number, end: number): unknown };
  return { dims: [rows, ...result.dims.slice(1)], data: data.slice(offset * perRow, (offset + rows) * perRow) };
}
