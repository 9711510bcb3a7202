/**
 * Small ONNX models for tests, demos and benchmarks, each with what a test needs to compute the
 * expected output on its own (weights and a plain-JS reference).
 */
import * as fs from 'node:fs';
import { attr, buildOnnxModel, buildOnnxModelPrefix, ALL_ELEM_TYPES, type OnnxElemType, type OnnxModelSpec, type OnnxValueSpec } from './model-builder';

/** Deterministic PRNG (mulberry32): same seed, same sequence of numbers in [0, 1). */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `count` float32-representable numbers uniform in [-scale, scale). */
export function randomFloat32s(random: () => number, count: number, scale: number): number[] {
  return Array.from({ length: count }, () => Math.fround((random() * 2 - 1) * scale));
}

function checkRowWidth(rows: readonly (readonly number[])[], width: number, what: string): void {
  rows.forEach((row, i) => {
    if (row.length !== width) {
      throw new Error(`${what}: row ${i} has ${row.length} values, expected ${width}`);
    }
  });
}

export interface LogisticRegressionModel {
  readonly bytes: Uint8Array;
  readonly spec: OnnxModelSpec;
  readonly features: number;
  /** One weight per feature (float32 values). */
  readonly weights: readonly number[];
  readonly bias: number;
  /** sigmoid(row · weights + bias) for each row, computed in plain JS. */
  predict(rows: readonly (readonly number[])[]): number[];
}

/** `probability = sigmoid(features · weights + bias)`: MatMul, Add, Sigmoid. */
export function logisticRegressionModel(options: { features?: number; seed?: number } = {}): LogisticRegressionModel {
  const features = options.features ?? 100;
  const random = mulberry32(options.seed ?? 1);
  // Scaled so that the logits of inputs in [-1, 1] stay away from saturation.
  const weights = randomFloat32s(random, features, 1 / Math.sqrt(features));
  const bias = Math.fround(random() - 0.5);
  const spec: OnnxModelSpec = {
    graphName: 'logistic_regression',
    inputs: [{ name: 'features', elemType: 'float32', shape: ['batch', features] }],
    outputs: [{ name: 'probability', elemType: 'float32', shape: ['batch', 1] }],
    initializers: [
      { name: 'weights', elemType: 'float32', dims: [features, 1], values: weights },
      { name: 'bias', elemType: 'float32', dims: [1], values: [bias] },
    ],
    nodes: [
      { opType: 'MatMul', inputs: ['features', 'weights'], outputs: ['weighted_sum'] },
      { opType: 'Add', inputs: ['weighted_sum', 'bias'], outputs: ['logit'] },
      { opType: 'Sigmoid', inputs: ['logit'], outputs: ['probability'] },
    ],
  };
  return {
    bytes: buildOnnxModel(spec),
    spec,
    features,
    weights,
    bias,
    predict(rows) {
      checkRowWidth(rows, features, 'logisticRegressionModel.predict');
      return rows.map((row) => 1 / (1 + Math.exp(-(row.reduce((sum, x, i) => sum + x * weights[i], 0) + bias))));
    },
  };
}

export interface MlpModel {
  readonly bytes: Uint8Array;
  readonly spec: OnnxModelSpec;
  readonly inputs: number;
  readonly hidden: number;
  readonly classes: number;
  /** Row-major [inputs][hidden]. */
  readonly hiddenWeights: readonly (readonly number[])[];
  readonly hiddenBias: readonly number[];
  /** Row-major [hidden][classes]. */
  readonly outputWeights: readonly (readonly number[])[];
  readonly outputBias: readonly number[];
  /** softmax(relu(row · W1 + b1) · W2 + b2) for each row, computed in plain JS. */
  predict(rows: readonly (readonly number[])[]): number[][];
  /** The most probable class of each row (what the `label` output holds, when it has one). */
  predictLabels(rows: readonly (readonly number[])[]): number[];
}

export interface MlpModelOptions {
  readonly inputs?: number;
  readonly hidden?: number;
  readonly classes?: number;
  readonly seed?: number;
  /** Adds an INT64 `label` output, [batch]: the index of the most probable class (ArgMax). */
  readonly label?: boolean;
}

/**
 * A two-layer perceptron: Gemm, Relu, MatMul, Add, Softmax → `probabilities`, and with `label`
 * also ArgMax → `label`.
 */
export function mlpModel(options: MlpModelOptions = {}): MlpModel {
  const inputs = options.inputs ?? 4;
  const hidden = options.hidden ?? 16;
  const classes = options.classes ?? 3;
  const random = mulberry32(options.seed ?? 2);
  const w1 = randomFloat32s(random, inputs * hidden, 1);
  const b1 = randomFloat32s(random, hidden, 0.5);
  const w2 = randomFloat32s(random, hidden * classes, 1);
  const b2 = randomFloat32s(random, classes, 0.5);
  const hiddenWeights = Array.from({ length: inputs }, (_, i) => w1.slice(i * hidden, (i + 1) * hidden));
  const outputWeights = Array.from({ length: hidden }, (_, i) => w2.slice(i * classes, (i + 1) * classes));
  const spec: OnnxModelSpec = {
    graphName: 'mlp',
    inputs: [{ name: 'input', elemType: 'float32', shape: ['batch', inputs] }],
    outputs: [
      { name: 'probabilities', elemType: 'float32', shape: ['batch', classes] },
      ...(options.label ? [{ name: 'label', elemType: 'int64' as const, shape: ['batch'] }] : []),
    ],
    initializers: [
      { name: 'hidden_weights', elemType: 'float32', dims: [inputs, hidden], values: w1 },
      { name: 'hidden_bias', elemType: 'float32', dims: [hidden], values: b1 },
      { name: 'output_weights', elemType: 'float32', dims: [hidden, classes], values: w2 },
      { name: 'output_bias', elemType: 'float32', dims: [classes], values: b2 },
    ],
    nodes: [
      {
        opType: 'Gemm',
        inputs: ['input', 'hidden_weights', 'hidden_bias'],
        outputs: ['hidden_linear'],
        attributes: { alpha: attr.float(1), beta: attr.float(1), transA: attr.int(0), transB: attr.int(0) },
      },
      { opType: 'Relu', inputs: ['hidden_linear'], outputs: ['hidden_activation'] },
      { opType: 'MatMul', inputs: ['hidden_activation', 'output_weights'], outputs: ['output_product'] },
      { opType: 'Add', inputs: ['output_product', 'output_bias'], outputs: ['logits'] },
      { opType: 'Softmax', inputs: ['logits'], outputs: ['probabilities'], attributes: { axis: attr.int(1) } },
      ...(options.label ? [{ opType: 'ArgMax', inputs: ['probabilities'], outputs: ['label'], attributes: { axis: attr.int(1), keepdims: attr.int(0) } }] : []),
    ],
  };
  const predict = (rows: readonly (readonly number[])[]): number[][] => {
    checkRowWidth(rows, inputs, 'mlpModel.predict');
    return rows.map((row) => {
      const activation = b1.map((bias, j) =>
        Math.max(
          0,
          row.reduce((sum, x, i) => sum + x * hiddenWeights[i][j], bias),
        ),
      );
      const logits = b2.map((bias, k) => activation.reduce((sum, a, j) => sum + a * outputWeights[j][k], bias));
      const max = Math.max(...logits);
      const exps = logits.map((l) => Math.exp(l - max));
      const total = exps.reduce((a, b) => a + b, 0);
      return exps.map((e) => e / total);
    });
  };
  return {
    bytes: buildOnnxModel(spec),
    spec,
    inputs,
    hidden,
    classes,
    hiddenWeights,
    hiddenBias: b1,
    outputWeights,
    outputBias: b2,
    predict,
    predictLabels: (rows) => predict(rows).map((p) => p.indexOf(Math.max(...p))),
  };
}

export interface MultiIoModel {
  readonly bytes: Uint8Array;
  readonly spec: OnnxModelSpec;
  /** What `halves_plus_half` adds to each float16 input value. */
  readonly halvesAddend: number;
  /** What `ids_times_two` multiplies each id by. */
  readonly idsFactor: number;
}

/**
 * Several inputs and outputs of different datatypes, each output a transformation simple enough to
 * compute by hand. Only ops with CPU kernels for these types: Mul (int64), Not (bool), Identity
 * (string), Cast, Add (float32).
 *
 * - `ids` int64 [batch, 4] → `ids_times_two` int64 = ids * 2
 * - `mask` bool [batch, 4] → `mask_inverted` bool = !mask
 * - `text` string [batch] → `text_echo` string = text
 * - `halves` float16 [batch, 2] → `halves_plus_half` float32 = halves + 0.5,
 *   and `halves_plus_half_fp16` float16 = the same, cast back to float16
 */
export function multiIoModel(): MultiIoModel {
  const idsFactor = 2;
  const halvesAddend = 0.5;
  const spec: OnnxModelSpec = {
    graphName: 'multi_io',
    inputs: [
      { name: 'ids', elemType: 'int64', shape: ['batch', 4] },
      { name: 'mask', elemType: 'bool', shape: ['batch', 4] },
      { name: 'text', elemType: 'string', shape: ['batch'] },
      { name: 'halves', elemType: 'float16', shape: ['batch', 2] },
    ],
    outputs: [
      { name: 'ids_times_two', elemType: 'int64', shape: ['batch', 4] },
      { name: 'mask_inverted', elemType: 'bool', shape: ['batch', 4] },
      { name: 'text_echo', elemType: 'string', shape: ['batch'] },
      { name: 'halves_plus_half', elemType: 'float32', shape: ['batch', 2] },
      { name: 'halves_plus_half_fp16', elemType: 'float16', shape: ['batch', 2] },
    ],
    initializers: [
      { name: 'ids_factor', elemType: 'int64', dims: [], values: [BigInt(idsFactor)] },
      { name: 'halves_addend', elemType: 'float32', dims: [], values: [halvesAddend] },
    ],
    nodes: [
      { opType: 'Mul', inputs: ['ids', 'ids_factor'], outputs: ['ids_times_two'] },
      { opType: 'Not', inputs: ['mask'], outputs: ['mask_inverted'] },
      { opType: 'Identity', inputs: ['text'], outputs: ['text_echo'] },
      { opType: 'Cast', inputs: ['halves'], outputs: ['halves_as_float'], attributes: { to: attr.int(1) } },
      { opType: 'Add', inputs: ['halves_as_float', 'halves_addend'], outputs: ['halves_plus_half'] },
      { opType: 'Cast', inputs: ['halves_plus_half'], outputs: ['halves_plus_half_fp16'], attributes: { to: attr.int(10) } },
    ],
  };
  return { bytes: buildOnnxModel(spec), spec, halvesAddend, idsFactor };
}

export interface IdentityAllTypesModel {
  readonly bytes: Uint8Array;
  readonly spec: OnnxModelSpec;
  /** Every datatype the model carries, each as input `x_<type>` and output `y_<type>`. */
  readonly elemTypes: readonly OnnxElemType[];
}

/**
 * One Identity per datatype: `x_<type>` → `y_<type>`, shaped `['n']` or `['batch', 'n']` in turn,
 * so every datatype's encoding can be round-tripped.
 */
export function identityAllTypesModel(): IdentityAllTypesModel {
  const elemTypes = ALL_ELEM_TYPES;
  const shapeOf = (i: number): string[] => (i % 2 === 0 ? ['n'] : ['batch', 'n']);
  const spec: OnnxModelSpec = {
    graphName: 'identity_all_types',
    inputs: elemTypes.map((t, i) => ({ name: `x_${t}`, elemType: t, shape: shapeOf(i) })),
    outputs: elemTypes.map((t, i) => ({ name: `y_${t}`, elemType: t, shape: shapeOf(i) })),
    nodes: elemTypes.map((t) => ({ opType: 'Identity', inputs: [`x_${t}`], outputs: [`y_${t}`] })),
  };
  return { bytes: buildOnnxModel(spec), spec, elemTypes };
}

const PADDING_INITIALIZER = 'padding';
const PADDED_MODEL_ADDEND = 1.5;

function paddedModelSpec(): OnnxModelSpec {
  return {
    graphName: 'padded',
    inputs: [{ name: 'x', elemType: 'float32', shape: ['batch'] }],
    outputs: [{ name: 'y', elemType: 'float32', shape: ['batch'] }],
    initializers: [{ name: 'addend', elemType: 'float32', dims: [1], values: [PADDED_MODEL_ADDEND] }],
    nodes: [{ opType: 'Add', inputs: ['x', 'addend'], outputs: ['y'] }],
  };
}

/** The header bytes and padding length that make a padded model as close to `sizeBytes` as varints allow. */
function paddedModelLayout(sizeBytes: number): { prefix: Uint8Array; paddingBytes: number; sizeBytes: number } {
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes < 0) {
    throw new Error(`Padded model size must be a non-negative integer number of bytes, got ${sizeBytes}`);
  }
  const spec = paddedModelSpec();
  const layoutFor = (paddingBytes: number) => buildOnnxModelPrefix(spec, { name: PADDING_INITIALIZER, rawDataLength: paddingBytes });
  const smallest = layoutFor(0).totalBytes;
  if (sizeBytes < smallest) {
    throw new Error(`Padded model size must be at least ${smallest} bytes (the model without padding), got ${sizeBytes}`);
  }
  // The header grows by a byte whenever a length crosses a varint boundary, so settle in a few steps.
  let paddingBytes = sizeBytes - layoutFor(sizeBytes).prefix.length;
  for (let step = 0; step < 4; step++) {
    const next = Math.max(0, sizeBytes - layoutFor(paddingBytes).prefix.length);
    if (next === paddingBytes) {
      break;
    }
    paddingBytes = next;
  }
  const layout = layoutFor(paddingBytes);
  return { prefix: layout.prefix, paddingBytes, sizeBytes: layout.totalBytes };
}

export interface PaddedModel {
  readonly bytes: Uint8Array;
  /** Exact size of `bytes` (within a few bytes of what was asked). */
  readonly sizeBytes: number;
  /** Size of the unused uint8 initializer `padding`. */
  readonly paddingBytes: number;
  /** The model computes `y = x + addend`. */
  readonly addend: number;
}

/**
 * A valid tiny model (`y = x + 1.5`, input `x` and output `y` float32 ['batch']) carrying an unused
 * zero-filled initializer sized so the file is `sizeBytes`, for size-limit tests. Allocates the file
 * once; for hundreds of MB prefer {@link writePaddedModel}.
 */
export function paddedModel(options: { sizeBytes: number }): PaddedModel {
  const layout = paddedModelLayout(options.sizeBytes);
  const bytes = new Uint8Array(layout.sizeBytes);
  bytes.set(layout.prefix, 0);
  return { bytes, sizeBytes: layout.sizeBytes, paddingBytes: layout.paddingBytes, addend: PADDED_MODEL_ADDEND };
}

export interface PaddedModelFile {
  readonly path: string;
  readonly sizeBytes: number;
  readonly paddingBytes: number;
  readonly addend: number;
}

/**
 * Writes the model of {@link paddedModel} to `filePath` in 1 MiB chunks, never holding it in memory.
 * With `sparse`, the padding is left as a hole that reads as zeros: the same bytes, written at once
 * and taking no disk, for tests of models too big to write (say, over S3's or Lambda's limits).
 */
export function writePaddedModel(filePath: string, sizeBytes: number, options: { sparse?: boolean } = {}): PaddedModelFile {
  const layout = paddedModelLayout(sizeBytes);
  if (options.sparse) {
    fs.writeFileSync(filePath, layout.prefix);
    fs.truncateSync(filePath, layout.sizeBytes);
    return { path: filePath, sizeBytes: layout.sizeBytes, paddingBytes: layout.paddingBytes, addend: PADDED_MODEL_ADDEND };
  }
  const chunk = new Uint8Array(Math.min(1024 * 1024, Math.max(1, layout.paddingBytes)));
  const fd = fs.openSync(filePath, 'w');
  try {
    fs.writeSync(fd, layout.prefix);
    for (let left = layout.paddingBytes; left > 0; left -= chunk.length) {
      fs.writeSync(fd, chunk, 0, Math.min(chunk.length, left));
    }
  } finally {
    fs.closeSync(fd);
  }
  return { path: filePath, sizeBytes: layout.sizeBytes, paddingBytes: layout.paddingBytes, addend: PADDED_MODEL_ADDEND };
}

/** Deterministic random bytes: not protobuf, let alone ONNX. */
export function notOnnxBytes(options: { length?: number; seed?: number } = {}): Uint8Array {
  const random = mulberry32(options.seed ?? 7);
  return Uint8Array.from({ length: options.length ?? 4096 }, () => Math.floor(random() * 256));
}

/** The first half of a valid model (the MLP). */
export function truncatedModel(): Uint8Array {
  const whole = mlpModel().bytes;
  return whole.slice(0, Math.floor(whole.length / 2));
}

/** Well-formed ONNX whose only node is `NoSuchOp`, which no runtime implements. */
export function unknownOpModel(): { bytes: Uint8Array; spec: OnnxModelSpec } {
  const io: OnnxValueSpec = { name: 'x', elemType: 'float32', shape: ['batch'] };
  const spec: OnnxModelSpec = {
    graphName: 'unknown_op',
    inputs: [io],
    outputs: [{ ...io, name: 'y' }],
    nodes: [{ opType: 'NoSuchOp', inputs: ['x'], outputs: ['y'] }],
  };
  return { bytes: buildOnnxModel(spec), spec };
}

export interface ConstantOfShapeModel {
  readonly bytes: Uint8Array;
  readonly spec: OnnxModelSpec;
  /** What every element of `filled` holds. */
  readonly value: number;
}

/**
 * `filled` float32 = ConstantOfShape(`shape`): the int64 values of the input (`shape` int64
 * ['rank']) are the output's dimensions, so the output's size comes from the request's values and
 * is known only once the model has run (its declared shape is left unknown).
 */
export function constantOfShapeModel(options: { value?: number } = {}): ConstantOfShapeModel {
  const value = Math.fround(options.value ?? 1.5);
  const spec: OnnxModelSpec = {
    graphName: 'constant_of_shape',
    inputs: [{ name: 'shape', elemType: 'int64', shape: ['rank'] }],
    outputs: [{ name: 'filled', elemType: 'float32' }],
    nodes: [
      {
        opType: 'ConstantOfShape',
        inputs: ['shape'],
        outputs: ['filled'],
        attributes: { value: attr.tensor({ name: 'value', elemType: 'float32', dims: [1], values: [value] }) },
      },
    ],
  };
  return { bytes: buildOnnxModel(spec), spec, value };
}

export interface ConstantModel {
  readonly bytes: Uint8Array;
  readonly spec: OnnxModelSpec;
  /** The values of `answer`, float32 [values.length]. */
  readonly values: readonly number[];
}

/** A graph with no inputs: one Constant node, `answer` float32 [n]. */
export function constantModel(options: { values?: readonly number[] } = {}): ConstantModel {
  const values = (options.values ?? [4, 2, -0.5]).map(Math.fround);
  const spec: OnnxModelSpec = {
    graphName: 'constant',
    inputs: [],
    outputs: [{ name: 'answer', elemType: 'float32', shape: [values.length] }],
    nodes: [{ opType: 'Constant', inputs: [], outputs: ['answer'], attributes: { value: attr.tensor({ name: 'value', elemType: 'float32', dims: [values.length], values }) } }],
  };
  return { bytes: buildOnnxModel(spec), spec, values };
}

/**
 * `number` float32 = Cast(`text`), both ['n']: onnxruntime parses each string as a number, and
 * refuses one that is not (`"abc"`) while the model runs.
 */
export function castStringModel(): { bytes: Uint8Array; spec: OnnxModelSpec } {
  const spec: OnnxModelSpec = {
    graphName: 'cast_string',
    inputs: [{ name: 'text', elemType: 'string', shape: ['n'] }],
    outputs: [{ name: 'number', elemType: 'float32', shape: ['n'] }],
    nodes: [{ opType: 'Cast', inputs: ['text'], outputs: ['number'], attributes: { to: attr.int(1) } }],
  };
  return { bytes: buildOnnxModel(spec), spec };
}

/**
 * `y` = Reshape(`x` float32 ['n'], `shape` int64 [2]): the target shape is a value of the request,
 * which onnxruntime checks (at most one -1, no other negative, the same element count) while the
 * model runs.
 */
export function reshapeModel(): { bytes: Uint8Array; spec: OnnxModelSpec } {
  const spec: OnnxModelSpec = {
    graphName: 'reshape',
    inputs: [
      { name: 'x', elemType: 'float32', shape: ['n'] },
      { name: 'shape', elemType: 'int64', shape: [2] },
    ],
    outputs: [{ name: 'y', elemType: 'float32' }],
    nodes: [{ opType: 'Reshape', inputs: ['x', 'shape'], outputs: ['y'] }],
  };
  return { bytes: buildOnnxModel(spec), spec };
}

export interface WideningModel {
  readonly bytes: Uint8Array;
  readonly spec: OnnxModelSpec;
  readonly width: number;
}

/**
 * `y` float32 ['batch', width] = `x` float32 ['batch', 1] times a row of `width` ones: each value
 * of the request becomes `width` values of the answer. The output's shape is declared, so its size
 * is known from the request's shape before the model runs.
 */
export function wideningModel(options: { width?: number } = {}): WideningModel {
  const width = options.width ?? 1000;
  const spec: OnnxModelSpec = {
    graphName: 'widening',
    inputs: [{ name: 'x', elemType: 'float32', shape: ['batch', 1] }],
    outputs: [{ name: 'y', elemType: 'float32', shape: ['batch', width] }],
    initializers: [{ name: 'ones', elemType: 'float32', dims: [1, width], values: new Array<number>(width).fill(1) }],
    nodes: [{ opType: 'Mul', inputs: ['x', 'ones'], outputs: ['y'] }],
  };
  return { bytes: buildOnnxModel(spec), spec, width };
}

export interface GatherModel {
  readonly bytes: Uint8Array;
  readonly spec: OnnxModelSpec;
  /** What `out` picks from: `out[i] = table[idx[i]]`. */
  readonly table: readonly number[];
}

/** `out` float32 ['n'] = table[`idx` int64 ['n']]: an index outside the table fails while the model runs. */
export function gatherModel(options: { table?: readonly number[] } = {}): GatherModel {
  const table = (options.table ?? [10, 20, 30, 40]).map(Math.fround);
  const spec: OnnxModelSpec = {
    graphName: 'gather',
    inputs: [{ name: 'idx', elemType: 'int64', shape: ['n'] }],
    outputs: [{ name: 'out', elemType: 'float32', shape: ['n'] }],
    initializers: [{ name: 'table', elemType: 'float32', dims: [table.length], values: table }],
    nodes: [{ opType: 'Gather', inputs: ['table', 'idx'], outputs: ['out'] }],
  };
  return { bytes: buildOnnxModel(spec), spec, table };
}
