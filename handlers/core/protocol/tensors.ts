import { type Datatype, type OipTensor, type TensorData, decodeValues, encodeValues, isDatatype } from './datatypes';
import { type BinarySection, decodeBinaryTensor } from './binary-data';
import { badRequest, describeJson } from './errors';

/**
 * One of the model's inputs or outputs as onnxruntime reports it. A dimension is a number when the
 * model fixes it, a string when it is symbolic (e.g. `batch`), and -1 when it is unknown.
 */
export interface TensorSpec {
  readonly name: string;
  readonly datatype: Datatype;
  readonly shape: ReadonlyArray<number | string>;
}

/** What onnxruntime's Tensor constructor takes. */
export interface TensorInit {
  readonly datatype: Datatype;
  readonly data: TensorData;
  readonly shape: readonly number[];
}

/** Deeper than any real tensor: refuses nesting meant to exhaust the stack. */
const MAX_NESTING = 32;
/** Dimensions past 2^31 are not allocatable anyway; the element count is checked against the data. */
const MAX_DIM = 2 ** 31 - 1;

/**
 * Checks one request tensor against the model's input and turns it into onnxruntime's form. Every
 * check runs before anything is allocated for the tensor: a claimed shape of 10^9 elements whose
 * data does not match is refused on the count alone.
 */
export function decodeInputTensor(raw: unknown, spec: TensorSpec, symbols: Map<string, number>, binary?: BinarySection): TensorInit {
  const t = raw as Record<string, unknown>;
  const name = spec.name;
  if (!isDatatype(t.datatype)) {
    throw badRequest(`input '${name}': datatype must be one of the protocol's datatypes, got: ${describeJson(t.datatype) ?? 'nothing'}`);
  }
  if (t.datatype !== spec.datatype) {
    throw badRequest(`input '${name}': the model expects datatype ${spec.datatype}, got: ${t.datatype}`);
  }
  const shape = readShape(t.shape, `input '${name}'`);
  checkShapeAgainstModel(shape, spec, symbols);

  const binarySize = readBinaryDataSize(t, name);
  if (binarySize !== undefined) {
    if (t.data !== undefined) {
      throw badRequest(`input '${name}' has both 'data' and parameters.binary_data_size: send its values in one place`);
    }
    if (!binary) {
      throw badRequest(
        `input '${name}' has parameters.binary_data_size but the request has no binary data: send the JSON header's length in the Inference-Header-Content-Length header and the tensor bytes after it`,
      );
    }
    return { datatype: spec.datatype, data: decodeBinaryTensor(binary.take(binarySize, name), spec.datatype, shape, name), shape };
  }

  const values = flatten(t.data, `input '${name}'`);
  const expected = shape.reduce((a, b) => a * b, 1);
  if (values.length !== expected) {
    throw badRequest(`input '${name}': shape [${shape.join(',')}] holds ${expected} elements but data has ${values.length}`);
  }
  return { datatype: spec.datatype, data: encodeValues(values, spec.datatype, name), shape };
}

/** The input's `parameters.binary_data_size` (binary tensor data extension), if it has one. */
function readBinaryDataSize(t: Record<string, unknown>, name: string): number | undefined {
  if (t.parameters === undefined) return undefined;
  if (typeof t.parameters !== 'object' || t.parameters === null || Array.isArray(t.parameters)) {
    throw badRequest(`input '${name}': 'parameters' must be an object`);
  }
  const size = (t.parameters as Record<string, unknown>).binary_data_size;
  if (size === undefined) return undefined;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw badRequest(`input '${name}': parameters.binary_data_size must be a non-negative integer, got: ${describeJson(size)}`);
  }
  return size;
}

/** An output tensor of onnxruntime in the protocol's JSON form. */
export function encodeOutputTensor(name: string, datatype: Datatype, dims: readonly number[], data: unknown): OipTensor {
  return { name, datatype, shape: [...dims], data: decodeValues(data, datatype) };
}

export function readShape(raw: unknown, what: string): number[] {
  if (!Array.isArray(raw)) {
    throw badRequest(`${what}: shape must be an array of non-negative integers, got: ${describeJson(raw) ?? 'nothing'}`);
  }
  for (const d of raw) {
    if (typeof d !== 'number' || !Number.isInteger(d) || d < 0 || d > MAX_DIM) {
      throw badRequest(`${what}: shape must be an array of non-negative integers up to ${MAX_DIM}, got: ${describeJson(raw)}`);
    }
  }
  return raw as number[];
}

/**
 * The request's shape must have the model's rank, match every fixed dimension, and give one value
 * to each symbolic dimension across all inputs (two inputs sharing `batch` must agree on it).
 */
export function checkShapeAgainstModel(shape: readonly number[], spec: TensorSpec, symbols: Map<string, number>): void {
  const model = spec.shape;
  if (shape.length !== model.length) {
    throw badRequest(`input '${spec.name}': the model expects shape ${describeShape(model)} (rank ${model.length}), got: [${shape.join(',')}]`);
  }
  // A plain loop, no closures: the bundle keeps function names, which costs a call per closure made.
  for (let i = 0; i < model.length; i++) {
    const dim = model[i];
    if (typeof dim === 'number') {
      if (dim >= 0 && dim !== shape[i]) {
        throw badRequest(`input '${spec.name}': the model expects shape ${describeShape(model)}, got: [${shape.join(',')}] (dimension ${i})`);
      }
      continue;
    }
    const bound = symbols.get(dim);
    if (bound === undefined) {
      symbols.set(dim, shape[i]);
    } else if (bound !== shape[i]) {
      throw badRequest(`input '${spec.name}': dimension '${dim}' is ${shape[i]} here but ${bound} in another input`);
    }
  }
}

function describeShape(model: TensorSpec['shape']): string {
  return `[${model.map((d) => (typeof d === 'string' ? d : d < 0 ? '?' : d)).join(',')}]`;
}

/**
 * The protocol sends data flat in row-major order; nested arrays (as many clients send) are
 * flattened in the same order.
 */
export function flatten(data: unknown, what: string): unknown[] {
  if (!Array.isArray(data)) {
    throw badRequest(`${what}: data must be an array, got: ${data === undefined ? 'nothing' : typeof data}`);
  }
  if (!data.some(Array.isArray)) {
    return data;
  }
  const out: unknown[] = [];
  const walk = (a: unknown[], depth: number): void => {
    if (depth > MAX_NESTING) {
      throw badRequest(`${what}: data is nested deeper than ${MAX_NESTING} levels`);
    }
    for (const v of a) {
      if (Array.isArray(v)) walk(v, depth + 1);
      else out.push(v);
    }
  };
  walk(data, 1);
  return out;
}
