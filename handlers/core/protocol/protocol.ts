import { BinarySection, binaryOutput, encodeBinaryTensor } from './binary-data';
import { type Datatype, type JsonValue, type OipTensor, encodeValues } from './datatypes';
import { badRequest, describeJson } from './errors';
import { type TensorInit, type TensorSpec, checkShapeAgainstModel, decodeInputTensor, encodeOutputTensor, flatten } from './tensors';

/** The model's inputs and outputs, read from the loaded session. */
export interface ModelSignature {
  readonly inputs: readonly TensorSpec[];
  readonly outputs: readonly TensorSpec[];
}

/** A request checked against the model: what to feed onnxruntime and what to send back. */
export interface InferPlan {
  /** `oip`: `{"inputs": [...]}` (Open Inference Protocol); `instances`: `{"instances": [...]}` (TF Serving / SageMaker style). */
  readonly form: 'oip' | 'instances';
  readonly id?: string;
  readonly parameters?: Record<string, unknown>;
  readonly feeds: ReadonlyMap<string, TensorInit>;
  readonly outputs: readonly TensorSpec[];
  /** Number of instances, for the `instances` form. */
  readonly instanceCount?: number;
  /** The size the request gives each symbolic dimension of the model's inputs (`batch` → 2). */
  readonly symbols: ReadonlyMap<string, number>;
  /** The outputs to answer as binary tensor data rather than JSON. */
  readonly binaryOutputs: ReadonlySet<string>;
}

/** What onnxruntime returned for one output. */
export interface OutputResult {
  readonly dims: readonly number[];
  readonly data: unknown;
}

/** The Open Inference Protocol's infer response. */
export interface InferResponse {
  readonly model_name: string;
  readonly model_version?: string;
  readonly id?: string;
  readonly parameters?: Record<string, unknown>;
  readonly outputs: OipTensor[];
}

const SHAPE_HINT = 'send {"inputs": [{"name", "shape", "datatype", "data"}]} (Open Inference Protocol) or {"instances": [...]}';

/**
 * Checks a parsed request body against the model and plans the inference. Throws 400s that say what
 * is wrong. `binary` is what followed the JSON header in a body of the binary tensor data extension.
 */
export function planInference(body: unknown, signature: ModelSignature, binary?: Buffer): InferPlan {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw badRequest(`the request body must be a JSON object: ${SHAPE_HINT}`);
  }
  const req = body as Record<string, unknown>;
  if ('inputs' in req && 'instances' in req) {
    throw badRequest(`the request has both 'inputs' and 'instances': ${SHAPE_HINT}`);
  }
  if ('instances' in req) {
    if (binary) throw badRequest("binary tensor data goes with 'inputs' (Open Inference Protocol), not 'instances'");
    return planInstances(req.instances, signature);
  }
  if (!('inputs' in req)) {
    throw badRequest(`the request has no 'inputs': ${SHAPE_HINT}`);
  }
  if (req.id !== undefined && typeof req.id !== 'string') {
    throw badRequest(`'id' must be a string, got: ${typeof req.id}`);
  }
  if (req.parameters !== undefined && !isPlainObject(req.parameters)) {
    throw badRequest("'parameters' must be an object");
  }
  const symbols = new Map<string, number>();
  const section = binary ? new BinarySection(binary) : undefined;
  const feeds = readInputs(req.inputs, signature, symbols, section);
  section?.checkConsumed();
  const outputs = readRequestedOutputs(req.outputs, signature);
  return {
    form: 'oip',
    id: req.id as string | undefined,
    parameters: req.parameters as Record<string, unknown> | undefined,
    feeds,
    outputs,
    symbols,
    binaryOutputs: readBinaryOutputs(req, outputs),
  };
}

/**
 * The outputs to answer in binary: every one with `"binary_data_output": true` in the request's
 * parameters, unless an output's own `"binary_data"` says otherwise (binary tensor data extension).
 */
function readBinaryOutputs(req: Record<string, unknown>, outputs: readonly TensorSpec[]): Set<string> {
  const all = (req.parameters as Record<string, unknown> | undefined)?.binary_data_output;
  if (all !== undefined && typeof all !== 'boolean') {
    throw badRequest(`parameters.binary_data_output must be true or false, got: ${describeJson(all)}`);
  }
  const own = new Map<string, boolean>();
  if (Array.isArray(req.outputs)) {
    for (const o of req.outputs as Record<string, unknown>[]) {
      if (o.parameters === undefined) continue;
      if (!isPlainObject(o.parameters)) throw badRequest(`output '${o.name}': 'parameters' must be an object`);
      const flag = o.parameters.binary_data;
      if (flag === undefined) continue;
      if (typeof flag !== 'boolean') throw badRequest(`output '${o.name}': parameters.binary_data must be true or false, got: ${describeJson(flag)}`);
      own.set(o.name as string, flag);
    }
  }
  return new Set(outputs.filter((o) => own.get(o.name) ?? all === true).map((o) => o.name));
}

function readInputs(raw: unknown, signature: ModelSignature, symbols: Map<string, number>, binary: BinarySection | undefined): Map<string, TensorInit> {
  // A model without inputs (a constant graph) is called with `"inputs": []`.
  if (!Array.isArray(raw) || (raw.length === 0 && signature.inputs.length > 0)) {
    throw badRequest(
      signature.inputs.length > 0
        ? `'inputs' must be a non-empty array of tensors, one per model input (${names(signature.inputs)})`
        : "'inputs' must be an array: [] for this model, which takes no inputs",
    );
  }
  const feeds = new Map<string, TensorInit>();
  raw.forEach((t, i) => {
    if (!isPlainObject(t) || typeof t.name !== 'string') {
      throw badRequest(`inputs[${i}] must be an object with a string 'name', 'shape', 'datatype' and 'data'`);
    }
    const spec = signature.inputs.find((s) => s.name === t.name);
    if (!spec) {
      throw badRequest(
        signature.inputs.length > 0 ? `unknown input '${t.name}'; the model's inputs are ${names(signature.inputs)}` : `unknown input '${t.name}'; the model takes no inputs`,
      );
    }
    if (feeds.has(spec.name)) {
      throw badRequest(`input '${spec.name}' is given more than once`);
    }
    feeds.set(spec.name, decodeInputTensor(t, spec, symbols, binary));
  });
  const missing = signature.inputs.filter((s) => !feeds.has(s.name));
  if (missing.length > 0) {
    throw badRequest(`missing input ${missing.map((s) => `'${s.name}'`).join(', ')}; the model's inputs are ${names(signature.inputs)}`);
  }
  return feeds;
}

function readRequestedOutputs(raw: unknown, signature: ModelSignature): TensorSpec[] {
  if (raw === undefined || (Array.isArray(raw) && raw.length === 0)) {
    return [...signature.outputs];
  }
  if (!Array.isArray(raw)) {
    throw badRequest('\'outputs\' must be an array of {"name": ...}');
  }
  const chosen: TensorSpec[] = [];
  raw.forEach((o, i) => {
    if (!isPlainObject(o) || typeof o.name !== 'string') {
      throw badRequest(`outputs[${i}] must be an object with a string 'name'`);
    }
    const spec = signature.outputs.find((s) => s.name === o.name);
    if (!spec) {
      throw badRequest(`unknown output '${o.name}'; the model's outputs are ${names(signature.outputs)}`);
    }
    if (!chosen.includes(spec)) chosen.push(spec);
  });
  return chosen;
}

/**
 * `{"instances": [row, row, ...]}` for a single-input model: the rows are stacked into one tensor of
 * shape [n, ...row shape] with the model's datatype.
 */
function planInstances(raw: unknown, signature: ModelSignature): InferPlan {
  if (signature.inputs.length !== 1) {
    throw badRequest(
      `the 'instances' form needs a model with one input; this one has ${signature.inputs.length} (${names(signature.inputs)}): use 'inputs' (Open Inference Protocol)`,
    );
  }
  if (!Array.isArray(raw) || raw.length === 0) {
    throw badRequest("'instances' must be a non-empty array, one entry per instance");
  }
  const spec = signature.inputs[0];
  const rowShape = shapeOf(raw[0]);
  const shape = [raw.length, ...rowShape];
  const symbols = new Map<string, number>();
  checkShapeAgainstModel(shape, spec, symbols);
  const values = flatten(
    raw.map((r) => (Array.isArray(r) ? r : [r])),
    "'instances'",
  );
  const expected = shape.reduce((a, b) => a * b, 1);
  // The count alone would let ragged rows through, stacked out of line.
  if (values.length !== expected || !raw.every((r) => hasShape(r, rowShape))) {
    throw badRequest(`'instances' must all have the shape of the first one, [${rowShape.join(',')}]`);
  }
  return {
    form: 'instances',
    feeds: new Map([[spec.name, { datatype: spec.datatype, data: encodeValues(values, spec.datatype, spec.name), shape }]]),
    outputs: [...signature.outputs],
    instanceCount: raw.length,
    symbols,
    binaryOutputs: new Set(),
  };
}

function shapeOf(v: unknown): number[] {
  const shape: number[] = [];
  let cur = v;
  while (Array.isArray(cur)) {
    if (shape.length > 32) throw badRequest("'instances' are nested too deeply");
    shape.push(cur.length);
    cur = cur[0];
  }
  return shape;
}

/** Whether `v` is nested exactly as `shape` says: a scalar for an empty shape. */
function hasShape(v: unknown, shape: readonly number[], dim = 0): boolean {
  if (dim === shape.length) return !Array.isArray(v);
  return Array.isArray(v) && v.length === shape[dim] && v.every((x) => hasShape(x, shape, dim + 1));
}

/** The response for a plan, in the form the request came in. */
export function buildInferResponse(
  plan: InferPlan,
  results: ReadonlyMap<string, OutputResult>,
  model: { readonly name: string; readonly version: string },
): InferResponse | { predictions: unknown[] } {
  const outputs = plan.outputs.map((spec): OipTensor => {
    const r = results.get(spec.name)!;
    if (plan.binaryOutputs.has(spec.name)) {
      const bytes = encodeBinaryTensor(r.data, spec.datatype);
      return binaryOutput({ name: spec.name, datatype: spec.datatype, shape: [...r.dims], parameters: { binary_data_size: bytes.length } }, bytes);
    }
    return encodeOutputTensor(spec.name, spec.datatype, r.dims, r.data);
  });
  if (plan.form === 'instances') {
    return { predictions: toPredictions(outputs, plan.instanceCount!) };
  }
  return {
    model_name: model.name,
    model_version: model.version,
    ...(plan.id !== undefined ? { id: plan.id } : {}),
    outputs,
  };
}

/** Deeper than any prediction row: `nest` recurses once per dimension. */
const MAX_PREDICTION_RANK = 32;

/**
 * One prediction per instance: the row of the single output, or an object of every output's row.
 * An output that does not come in rows of the instances (a model whose output shape comes from
 * the values sent) cannot be answered in this form: the request is refused, as for a model with
 * several inputs.
 */
function toPredictions(outputs: OipTensor[], n: number): unknown[] {
  const rows = outputs.map((o) => {
    if (o.shape[0] !== n || o.shape.length > MAX_PREDICTION_RANK) {
      throw badRequest(`output '${o.name}' has shape [${o.shape.join(',')}], which cannot be split into ${n} predictions: use 'inputs' (Open Inference Protocol)`);
    }
    return splitRows(o.data, o.shape);
  });
  if (outputs.length === 1) {
    return rows[0];
  }
  return Array.from({ length: n }, (_, i) => Object.fromEntries(outputs.map((o, j) => [o.name, rows[j][i]])));
}

function splitRows(data: readonly JsonValue[], shape: readonly number[]): unknown[] {
  const rest = shape.slice(1);
  const size = rest.reduce((a, b) => a * b, 1);
  return Array.from({ length: shape[0] }, (_, i) => nest(data.slice(i * size, (i + 1) * size), rest));
}

function nest(flat: readonly JsonValue[], shape: readonly number[]): unknown {
  if (shape.length === 0) return flat[0];
  if (shape.length === 1) return [...flat];
  const size = shape.slice(1).reduce((a, b) => a * b, 1);
  return Array.from({ length: shape[0] }, (_, i) => nest(flat.slice(i * size, (i + 1) * size), shape.slice(1)));
}

function names(specs: readonly TensorSpec[]): string {
  return specs.map((s) => `'${s.name}'`).join(', ');
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The fewest bytes `count` values of a datatype take in a JSON answer: one digit (or `true`, or
 * `""`) and a comma each. An answer whose minimum is over the response limit can be refused
 * before any of it is built.
 */
export function minJsonBytes(datatype: Datatype, count: number): number {
  return count * (datatype === 'BOOL' ? 5 : datatype === 'BYTES' ? 3 : 2);
}

/** An output's shape before the model runs, where the model's declared shape and the request's symbols fix it. */
export function expectedOutputShape(spec: TensorSpec, symbols: ReadonlyMap<string, number>): number[] | undefined {
  const dims: number[] = [];
  for (const d of spec.shape) {
    const size = typeof d === 'number' ? (d >= 0 ? d : undefined) : symbols.get(d);
    if (size === undefined) return undefined;
    dims.push(size);
  }
  return dims;
}
