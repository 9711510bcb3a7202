/**
 * The items of a batch as inference requests: each item's value made into an Open Inference
 * Protocol request (a request stays as it is, a plain row becomes a one-row request for the model's
 * inputs), and requests of the same shape stacked along the batch dimension into one request, so
 * that one `session.run` answers them all, then its answer cut back into one answer per item.
 */
import type { BatchItem } from '../../../contract/batch';
import { type InferenceError, badRequest, describeJson } from '../protocol/errors';
import type { ModelSignature } from '../protocol/protocol';
import type { TensorSpec } from '../protocol/tensors';

/** An Open Inference Protocol request tensor, as a batch item carries it. */
interface RequestTensor {
  readonly name: string;
  readonly datatype: string;
  readonly shape: number[];
  readonly data: unknown[];
  readonly parameters?: Record<string, unknown>;
}

/** One item, ready to run: its request, or why it cannot run. */
export interface PreparedItem {
  readonly index: number;
  /** The input's own id: the request's `id`, or a row's `id` field or column. */
  readonly id?: string;
  readonly value: unknown;
  readonly request?: Record<string, unknown>;
  /** The item's rows along the batch dimension, when its request can be stacked with others. */
  readonly rows?: number;
  /** Requests with the same key stack into one. */
  readonly stackKey?: string;
  readonly error?: InferenceError;
}

/** The column or field of a plain row that is its id, not a feature. */
export const ID_FIELD = 'id';

/**
 * Makes an item's value an inference request. `asIs`: a preprocess hook will see the value (and
 * make it a request), so it is passed on untouched and never stacked; without `stack`, the request
 * runs on its own.
 */
export function prepareItem(item: BatchItem, signature: ModelSignature, asIs: boolean, stack = true): PreparedItem {
  const { index, value } = item;
  const id = idOf(value);
  if (asIs) return { index, id, value, request: value as Record<string, unknown> };
  try {
    const request = requestOf(value, signature);
    return { index, id, value, request, ...(stack ? stackingOf(request, signature) : {}) };
  } catch (e) {
    return { index, id, value, error: e as InferenceError };
  }
}

function idOf(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const id = (value as Record<string, unknown>)[ID_FIELD];
  return typeof id === 'string' || typeof id === 'number' ? String(id) : undefined;
}

/**
 * The request an item's value stands for:
 * - an object with `inputs` (or `instances`): an inference request, as it is;
 * - an array: one row of the model's only input (`[0.5, -1.2, 3.3, 0.7]`);
 * - an object whose keys name every input: one row of each (`{"input": [0.5, ...]}`);
 * - any other object (a CSV row, `{"f1": "0.5", "f2": "-1.2", ...}`): its values, in order and
 *   without the `id` column, as one row of the model's only input, text read as numbers.
 */
function requestOf(value: unknown, signature: ModelSignature): Record<string, unknown> {
  if (Array.isArray(value)) return { inputs: [rowTensor(onlyInput(signature, 'an array'), value)] };
  if (typeof value !== 'object' || value === null) {
    throw badRequest(`an item must be a JSON object (an inference request or a row) or an array (a row), got: ${describeJson(value)}`);
  }
  const v = value as Record<string, unknown>;
  if ('inputs' in v || 'instances' in v) return v;
  const id = idOf(v);
  const named = signature.inputs.length > 0 && signature.inputs.every((s) => s.name in v);
  const inputs = named
    ? signature.inputs.map((s) => rowTensor(s, v[s.name]))
    : [
        rowTensor(
          onlyInput(signature, 'a row whose keys are not the input names'),
          Object.entries(v)
            .filter(([k]) => k !== ID_FIELD)
            .map(([k, x]) => cell(k, x)),
        ),
      ];
  return id === undefined ? { inputs } : { id, inputs };
}

function onlyInput(signature: ModelSignature, what: string): TensorSpec {
  if (signature.inputs.length !== 1) {
    throw badRequest(`${what} is read as the model's only input, but it has ${signature.inputs.length} inputs (${signature.inputs.map((s) => s.name).join(', ')}): name them`);
  }
  return signature.inputs[0];
}

/** A CSV cell: text that is a number becomes that number; other text stays (for BYTES and BOOL inputs). */
function cell(column: string, x: unknown): unknown {
  if (typeof x !== 'string') return x;
  const t = x.trim();
  if (t === '') throw badRequest(`column '${column}' is empty`);
  const n = Number(t);
  return Number.isNaN(n) ? x : n;
}

/** One row of an input: the row's values with a batch dimension of 1 in front of its own shape. */
function rowTensor(spec: TensorSpec, row: unknown): RequestTensor {
  const shape = [1, ...shapeOf(row)];
  const data = Array.isArray(row) ? (row.flat(Number.POSITIVE_INFINITY) as unknown[]) : [row];
  const values = spec.datatype === 'BOOL' ? data.map((x) => (x === 'true' ? true : x === 'false' ? false : x)) : data;
  return { name: spec.name, datatype: spec.datatype, shape, data: values };
}

function shapeOf(row: unknown): number[] {
  const shape: number[] = [];
  let level: unknown = row;
  while (Array.isArray(level)) {
    shape.push(level.length);
    level = level[0];
  }
  return shape;
}

/**
 * Whether a request can be stacked with others, and with which: when the model's first dimension
 * of every input is free (a symbolic or unknown batch dimension), the request's inputs agree on
 * their first dimension, carry their values as JSON `data`, and it asks nothing binary. Requests
 * stack when their inputs (names, datatypes, shapes after the first dimension), requested outputs
 * and parameters are the same.
 */
function stackingOf(request: Record<string, unknown>, signature: ModelSignature): { rows?: number; stackKey?: string } {
  const inputs = request.inputs;
  if (!Array.isArray(inputs) || inputs.length === 0 || 'instances' in request) return {};
  if (!signature.inputs.every((s) => s.shape.length > 0 && typeof s.shape[0] !== 'number')) return {};
  if (!signature.inputs.every((s) => s.shape[0] === signature.inputs[0].shape[0] || s.shape[0] === -1)) return {};
  let rows: number | undefined;
  const parts: unknown[] = [];
  for (const t of inputs as RequestTensor[]) {
    if (typeof t !== 'object' || t === null || !Array.isArray(t.shape) || !Array.isArray(t.data) || t.shape.length === 0 || t.parameters !== undefined) return {};
    if (rows === undefined) rows = t.shape[0];
    if (t.shape[0] !== rows || typeof rows !== 'number' || rows < 1) return {};
    parts.push([t.name, t.datatype, t.shape.slice(1)]);
  }
  if (request.parameters !== undefined || (Array.isArray(request.outputs) && request.outputs.some((o) => (o as { parameters?: unknown })?.parameters !== undefined))) return {};
  return { rows, stackKey: JSON.stringify([parts, request.outputs ?? null]) };
}

/** Requests of the same stacking key, stacked along the first dimension: one request for all of them. */
export function stackRequests(items: readonly PreparedItem[]): Record<string, unknown> {
  const first = items[0].request!;
  const tensors = first.inputs as RequestTensor[];
  const total = items.reduce((n, i) => n + i.rows!, 0);
  const inputs = tensors.map((t, k) => ({
    name: t.name,
    datatype: t.datatype,
    shape: [total, ...t.shape.slice(1)],
    data: items.flatMap((i) => ((i.request!.inputs as RequestTensor[])[k].data as unknown[]).flat(Number.POSITIVE_INFINITY)),
  }));
  return first.outputs === undefined ? { inputs } : { inputs, outputs: first.outputs };
}

/** An Open Inference Protocol response, as far as unstacking reads it. */
interface StackedResponse {
  readonly model_name?: string;
  readonly model_version?: string;
  readonly outputs?: ReadonlyArray<{ name: string; datatype: string; shape: number[]; data: unknown[]; parameters?: unknown }>;
}

/**
 * The answer of a stacked request cut back into one answer per item, along the first dimension of
 * each output; undefined when an output is not in rows of the stacked inputs (its first dimension
 * is not their total), which the caller answers by running the items one by one.
 */
export function unstackResponse(response: unknown, items: readonly PreparedItem[]): Record<string, unknown>[] | undefined {
  const r = response as StackedResponse;
  if (!Array.isArray(r?.outputs)) return undefined;
  const total = items.reduce((n, i) => n + i.rows!, 0);
  for (const o of r.outputs) {
    if (!Array.isArray(o.shape) || o.shape[0] !== total || !Array.isArray(o.data) || o.parameters !== undefined) return undefined;
  }
  const answers: Record<string, unknown>[] = [];
  let row = 0;
  for (const item of items) {
    const outputs = r.outputs.map((o) => {
      const per = o.shape.slice(1).reduce((a: number, b: number) => a * b, 1);
      return { name: o.name, datatype: o.datatype, shape: [item.rows!, ...o.shape.slice(1)], data: o.data.slice(row * per, (row + item.rows!) * per) };
    });
    row += item.rows!;
    const id = item.request!.id;
    answers.push({
      model_name: r.model_name,
      ...(r.model_version !== undefined ? { model_version: r.model_version } : {}),
      ...(typeof id === 'string' ? { id } : {}),
      outputs,
    });
  }
  return answers;
}
