/**
 * Models that each exercise one family of ONNX Runtime CPU kernels (FP32 GEMM, int8 GEMM, convolution,
 * string operators), with a plain-JS reference for each, so that a runtime build can be checked on an
 * architecture where it cannot be trusted yet (say, the arm64 layer under emulation).
 */
import * as fs from 'node:fs';
import { attr, buildOnnxModel, buildOnnxModelPrefix, type OnnxModelSpec } from './model-builder';
import { mulberry32, randomFloat32s } from './models';

/** A row-major matrix. */
export interface Matrix {
  readonly rows: number;
  readonly cols: number;
  readonly values: readonly number[];
}

function randomInts(random: () => number, count: number, min: number, max: number): number[] {
  return Array.from({ length: count }, () => min + Math.floor(random() * (max - min + 1)));
}

/** `a · b` accumulated in float64 (the references' rounding is then the runtime's only error). */
function matMul(a: Matrix, b: Matrix): number[] {
  if (a.cols !== b.rows) {
    throw new Error(`matMul: [${a.rows}, ${a.cols}] · [${b.rows}, ${b.cols}]`);
  }
  const out = new Array<number>(a.rows * b.cols).fill(0);
  for (let i = 0; i < a.rows; i++) {
    for (let k = 0; k < a.cols; k++) {
      const x = a.values[i * a.cols + k];
      for (let j = 0; j < b.cols; j++) {
        out[i * b.cols + j] += x * b.values[k * b.cols + j];
      }
    }
  }
  return out;
}

export interface MatMulFp32Model {
  readonly bytes: Uint8Array;
  readonly spec: OnnxModelSpec;
  /** Row-major [k][n]. */
  readonly weights: Matrix;
  /** A deterministic input of `rows` rows. */
  sampleInput(rows: number, seed?: number): Matrix;
  /** `input · weights` for a row-major [rows][k] input, in float64. */
  predict(input: Matrix): number[];
}

/**
 * `y = x · W`, FP32, W a [k, n] initializer: ONNX Runtime prepacks W and runs its SGEMM kernel. Sizes
 * that are not multiples of the kernels' block sizes also exercise their edge handling.
 */
export function matMulFp32Model(options: { k?: number; n?: number; seed?: number } = {}): MatMulFp32Model {
  const k = options.k ?? 131;
  const n = options.n ?? 67;
  const random = mulberry32(options.seed ?? 11);
  const weights: Matrix = { rows: k, cols: n, values: randomFloat32s(random, k * n, 1 / Math.sqrt(k)) };
  const spec: OnnxModelSpec = {
    graphName: 'matmul_fp32',
    inputs: [{ name: 'x', elemType: 'float32', shape: ['batch', k] }],
    outputs: [{ name: 'y', elemType: 'float32', shape: ['batch', n] }],
    initializers: [{ name: 'w', elemType: 'float32', dims: [k, n], values: weights.values }],
    nodes: [{ opType: 'MatMul', inputs: ['x', 'w'], outputs: ['y'] }],
  };
  return {
    bytes: buildOnnxModel(spec),
    spec,
    weights,
    sampleInput: (rows, seed = 12) => ({ rows, cols: k, values: randomFloat32s(mulberry32(seed), rows * k, 1) }),
    predict: (input) => matMul(input, weights),
  };
}

export interface MatMulIntegerModel {
  readonly bytes: Uint8Array;
  readonly spec: OnnxModelSpec;
  /** Row-major [k][n] int8 weights. */
  readonly weights: Matrix;
  readonly weightsZeroPoint: number;
  /** Zero point of `a_u8` (uint8). */
  readonly unsignedZeroPoint: number;
  /** Zero point of `a_s8` (int8). */
  readonly signedZeroPoint: number;
  /** Deterministic inputs: `unsigned` in [0, 255], `signed` in [-128, 127]. */
  sampleInputs(rows: number, seed?: number): { unsigned: Matrix; signed: Matrix };
  /** `(a - aZeroPoint) · (W - wZeroPoint)`, exact. */
  predict(a: Matrix, aZeroPoint: number): number[];
}

/**
 * Two int8 GEMMs on the same int8 weights: `y_u8s8 = MatMulInteger(a_u8, W)` (uint8 activations, ONNX
 * Runtime's U8S8 path) and `y_s8s8 = MatMulInteger(a_s8, W)` (S8S8). Integer results, exact on every
 * kernel (NEON, dot product, i8mm, AVX2, VNNI).
 */
export function matMulIntegerModel(options: { k?: number; n?: number; seed?: number } = {}): MatMulIntegerModel {
  const k = options.k ?? 97;
  const n = options.n ?? 41;
  const random = mulberry32(options.seed ?? 21);
  const weights: Matrix = { rows: k, cols: n, values: randomInts(random, k * n, -128, 127) };
  const weightsZeroPoint = 3;
  const unsignedZeroPoint = 128;
  const signedZeroPoint = -5;
  const spec: OnnxModelSpec = {
    graphName: 'matmul_integer',
    inputs: [
      { name: 'a_u8', elemType: 'uint8', shape: ['batch', k] },
      { name: 'a_s8', elemType: 'int8', shape: ['batch', k] },
    ],
    outputs: [
      { name: 'y_u8s8', elemType: 'int32', shape: ['batch', n] },
      { name: 'y_s8s8', elemType: 'int32', shape: ['batch', n] },
    ],
    initializers: [
      { name: 'w', elemType: 'int8', dims: [k, n], values: weights.values },
      { name: 'w_zero_point', elemType: 'int8', dims: [], values: [weightsZeroPoint] },
      { name: 'a_u8_zero_point', elemType: 'uint8', dims: [], values: [unsignedZeroPoint] },
      { name: 'a_s8_zero_point', elemType: 'int8', dims: [], values: [signedZeroPoint] },
    ],
    nodes: [
      { opType: 'MatMulInteger', inputs: ['a_u8', 'w', 'a_u8_zero_point', 'w_zero_point'], outputs: ['y_u8s8'] },
      { opType: 'MatMulInteger', inputs: ['a_s8', 'w', 'a_s8_zero_point', 'w_zero_point'], outputs: ['y_s8s8'] },
    ],
  };
  const centredWeights: Matrix = { ...weights, values: weights.values.map((w) => w - weightsZeroPoint) };
  return {
    bytes: buildOnnxModel(spec),
    spec,
    weights,
    weightsZeroPoint,
    unsignedZeroPoint,
    signedZeroPoint,
    sampleInputs: (rows, seed = 22) => {
      const r = mulberry32(seed);
      return {
        unsigned: { rows, cols: k, values: randomInts(r, rows * k, 0, 255) },
        signed: { rows, cols: k, values: randomInts(r, rows * k, -128, 127) },
      };
    },
    predict: (a, aZeroPoint) => matMul({ ...a, values: a.values.map((x) => x - aZeroPoint) }, centredWeights),
  };
}

export interface DynamicQuantMatMulModel {
  readonly bytes: Uint8Array;
  readonly spec: OnnxModelSpec;
  /** Row-major [k][n] int8 weights, symmetric (zero point 0). */
  readonly weights: Matrix;
  readonly weightsScale: number;
  sampleInput(rows: number, seed?: number): Matrix;
  /**
   * The float product the quantized model approximates, `x · (W × weightsScale)`, and for each output the
   * most quantizing `x` to uint8 may move it: half a quantization step per input, `Σ_k |W_kn| × weightsScale × scale / 2`.
   */
  predict(input: Matrix): { values: number[]; bounds: number[] };
}

/**
 * What dynamic quantization (`onnxruntime.quantization.quantize_dynamic`) makes of a MatMul: the float
 * input quantized to uint8 at run time (DynamicQuantizeLinear), an int8 GEMM against int8 weights
 * (MatMulInteger), and the result scaled back to float. ONNX Runtime fuses the chain into its
 * DynamicQuantizeMatMul kernel.
 */
export function dynamicQuantMatMulModel(options: { k?: number; n?: number; seed?: number } = {}): DynamicQuantMatMulModel {
  const k = options.k ?? 160;
  const n = options.n ?? 48;
  const random = mulberry32(options.seed ?? 31);
  const weights: Matrix = { rows: k, cols: n, values: randomInts(random, k * n, -127, 127) };
  const weightsScale = Math.fround(1 / (127 * Math.sqrt(k)));
  const spec: OnnxModelSpec = {
    graphName: 'dynamic_quant_matmul',
    inputs: [{ name: 'x', elemType: 'float32', shape: ['batch', k] }],
    outputs: [{ name: 'y', elemType: 'float32', shape: ['batch', n] }],
    initializers: [
      { name: 'w', elemType: 'int8', dims: [k, n], values: weights.values },
      { name: 'w_zero_point', elemType: 'int8', dims: [], values: [0] },
      { name: 'w_scale', elemType: 'float32', dims: [], values: [weightsScale] },
    ],
    nodes: [
      { opType: 'DynamicQuantizeLinear', inputs: ['x'], outputs: ['x_q', 'x_scale', 'x_zero_point'] },
      { opType: 'MatMulInteger', inputs: ['x_q', 'w', 'x_zero_point', 'w_zero_point'], outputs: ['y_int'] },
      { opType: 'Cast', inputs: ['y_int'], outputs: ['y_float'], attributes: { to: attr.int(1) } },
      { opType: 'Mul', inputs: ['x_scale', 'w_scale'], outputs: ['y_scale'] },
      { opType: 'Mul', inputs: ['y_float', 'y_scale'], outputs: ['y'] },
    ],
  };
  return {
    bytes: buildOnnxModel(spec),
    spec,
    weights,
    weightsScale,
    sampleInput: (rows, seed = 32) => ({ rows, cols: k, values: randomFloat32s(mulberry32(seed), rows * k, 2) }),
    predict: (input) => {
      const values = matMul(input, { ...weights, values: weights.values.map((w) => w * weightsScale) });
      // DynamicQuantizeLinear: one scale for the whole tensor, over a range that includes 0.
      const scale = (Math.max(0, ...input.values) - Math.min(0, ...input.values)) / 255;
      const columnWeight = Array.from({ length: n }, (_, j) => {
        let sum = 0;
        for (let kk = 0; kk < k; kk++) sum += Math.abs(weights.values[kk * n + j]);
        return sum * weightsScale;
      });
      const bounds = values.map((_, idx) => (columnWeight[idx % n] * scale) / 2);
      return { values, bounds };
    },
  };
}

export interface ConvModel {
  readonly bytes: Uint8Array;
  readonly spec: OnnxModelSpec;
  readonly channels: number;
  readonly features: number;
  readonly size: number;
  sampleInput(seed?: number): number[];
  /** The model's output for a [1, channels, size, size] input, NCHW, in float64. */
  predict(input: readonly number[]): number[];
}

/**
 * Two convolutions: a 3×3 Conv (`channels` → `features`, padding 1) with bias and Relu, then a 3×3
 * depthwise Conv (group = features) with bias. ONNX Runtime runs them through its NCHWc or im2col +
 * SGEMM convolution kernels, depending on the platform.
 */
export function convModel(options: { channels?: number; features?: number; size?: number; seed?: number } = {}): ConvModel {
  const channels = options.channels ?? 3;
  const features = options.features ?? 8;
  const size = options.size ?? 13;
  const random = mulberry32(options.seed ?? 41);
  const w1 = randomFloat32s(random, features * channels * 9, 1 / Math.sqrt(channels * 9));
  const b1 = randomFloat32s(random, features, 0.1);
  const w2 = randomFloat32s(random, features * 9, 1 / 3);
  const b2 = randomFloat32s(random, features, 0.1);
  const spec: OnnxModelSpec = {
    graphName: 'conv',
    inputs: [{ name: 'image', elemType: 'float32', shape: [1, channels, size, size] }],
    outputs: [{ name: 'features', elemType: 'float32', shape: [1, features, size, size] }],
    initializers: [
      { name: 'w1', elemType: 'float32', dims: [features, channels, 3, 3], values: w1 },
      { name: 'b1', elemType: 'float32', dims: [features], values: b1 },
      { name: 'w2', elemType: 'float32', dims: [features, 1, 3, 3], values: w2 },
      { name: 'b2', elemType: 'float32', dims: [features], values: b2 },
    ],
    nodes: [
      { opType: 'Conv', inputs: ['image', 'w1', 'b1'], outputs: ['conv1'], attributes: { kernel_shape: attr.ints([3, 3]), pads: attr.ints([1, 1, 1, 1]) } },
      { opType: 'Relu', inputs: ['conv1'], outputs: ['relu1'] },
      {
        opType: 'Conv',
        inputs: ['relu1', 'w2', 'b2'],
        outputs: ['features'],
        attributes: { kernel_shape: attr.ints([3, 3]), pads: attr.ints([1, 1, 1, 1]), group: attr.int(features) },
      },
    ],
  };
  // out[o][y][x] = bias[o] + Σ_c Σ_dy Σ_dx in[c][y+dy-1][x+dx-1] × w[o][c][dy][dx], zero outside the image.
  const conv3x3 = (input: readonly number[], inChannels: number, weights: readonly number[], bias: readonly number[], grouped: boolean): number[] => {
    const out = new Array<number>(features * size * size).fill(0);
    for (let o = 0; o < features; o++) {
      const cs = grouped ? [o] : Array.from({ length: inChannels }, (_, c) => c);
      for (let y = 0; y < size; y++) {
        for (let x = 0; x < size; x++) {
          let sum = bias[o];
          for (const [ci, c] of cs.entries()) {
            for (let dy = 0; dy < 3; dy++) {
              for (let dx = 0; dx < 3; dx++) {
                const yy = y + dy - 1;
                const xx = x + dx - 1;
                if (yy >= 0 && yy < size && xx >= 0 && xx < size) {
                  sum += input[(c * size + yy) * size + xx] * weights[((o * cs.length + ci) * 3 + dy) * 3 + dx];
                }
              }
            }
          }
          out[(o * size + y) * size + x] = sum;
        }
      }
    }
    return out;
  };
  return {
    bytes: buildOnnxModel(spec),
    spec,
    channels,
    features,
    size,
    sampleInput: (seed = 42) => randomFloat32s(mulberry32(seed), channels * size * size, 1),
    predict: (input) =>
      conv3x3(
        conv3x3(input, channels, w1, b1, false).map((v) => Math.max(0, v)),
        features,
        w2,
        b2,
        true,
      ),
  };
}

export interface StringOpsModel {
  readonly bytes: Uint8Array;
  readonly spec: OnnxModelSpec;
  /** The vocabulary `ids` looks words up in; others map to -1. */
  readonly vocabulary: readonly string[];
  readonly suffix: string;
  readonly pattern: string;
  /** The outputs for a batch of words, computed in plain JS. */
  predict(words: readonly string[]): { ids: number[]; tagged: string[]; matches: boolean[]; same: boolean[] };
}

/**
 * String tensors in and out through string kernels: a vocabulary lookup (ai.onnx.ml LabelEncoder, a
 * hash table), concatenation (StringConcat), a regular expression (RegexFullMatch, RE2) and equality
 * (Equal). Input `words` string [batch].
 */
export function stringOpsModel(): StringOpsModel {
  const vocabulary = ['graviton', 'lambda', 'onnx', 'runtime', 'ümlaut', '模型'];
  const suffix = '|arm64';
  const pattern = '[a-z]+[0-9]*';
  const probe = 'onnx';
  const spec: OnnxModelSpec = {
    graphName: 'string_ops',
    opset: 20,
    extraOpsets: [{ domain: 'ai.onnx.ml', version: 2 }],
    inputs: [{ name: 'words', elemType: 'string', shape: ['batch'] }],
    outputs: [
      { name: 'ids', elemType: 'int64', shape: ['batch'] },
      { name: 'tagged', elemType: 'string', shape: ['batch'] },
      { name: 'matches', elemType: 'bool', shape: ['batch'] },
      { name: 'same', elemType: 'bool', shape: ['batch'] },
    ],
    initializers: [
      { name: 'suffix', elemType: 'string', dims: [], values: [suffix] },
      { name: 'probe', elemType: 'string', dims: [], values: [probe] },
    ],
    nodes: [
      {
        opType: 'LabelEncoder',
        domain: 'ai.onnx.ml',
        inputs: ['words'],
        outputs: ['ids'],
        attributes: { keys_strings: attr.strings(vocabulary), values_int64s: attr.ints(vocabulary.map((_, i) => i * 10 + 1)), default_int64: attr.int(-1) },
      },
      { opType: 'StringConcat', inputs: ['words', 'suffix'], outputs: ['tagged'] },
      { opType: 'RegexFullMatch', inputs: ['words'], outputs: ['matches'], attributes: { pattern: attr.string(pattern) } },
      { opType: 'Equal', inputs: ['words', 'probe'], outputs: ['same'] },
    ],
  };
  const regex = new RegExp(`^(?:${pattern})$`, 'u');
  return {
    bytes: buildOnnxModel(spec),
    spec,
    vocabulary,
    suffix,
    pattern,
    predict: (words) => ({
      ids: words.map((w) => (vocabulary.includes(w) ? vocabulary.indexOf(w) * 10 + 1 : -1)),
      tagged: words.map((w) => w + suffix),
      matches: words.map((w) => regex.test(w)),
      same: words.map((w) => w === probe),
    }),
  };
}

export interface MatMulModelFile {
  readonly path: string;
  readonly sizeBytes: number;
  /** `W` is [k, n] FP32. */
  readonly k: number;
  readonly n: number;
  /** The input {@link writeMatMulModel} computed `expected` for: [1, k]. */
  readonly input: readonly number[];
  /** `input · W`, accumulated in float64 while the weights were written. */
  readonly expected: readonly number[];
}

/**
 * Writes `y = x · W` (x [batch, k], W a square [k, k] FP32 initializer) of about `sizeBytes`, the
 * weights streamed in chunks so that a model of hundreds of MB is never held in memory. Unlike a
 * padded model, onnxruntime reads every weight: it loads W, prepacks it for its SGEMM kernel and
 * multiplies by all of it, and nothing can be folded away (W meets a graph input). The weights are
 * deterministic for a size.
 */
export function writeMatMulModel(filePath: string, sizeBytes: number, options: { seed?: number } = {}): MatMulModelFile {
  const k = Math.max(1, Math.round(Math.sqrt(sizeBytes / 4)));
  const n = k;
  const spec: OnnxModelSpec = {
    graphName: 'matmul_streamed',
    inputs: [{ name: 'x', elemType: 'float32', shape: ['batch', k] }],
    outputs: [{ name: 'y', elemType: 'float32', shape: ['batch', n] }],
    nodes: [{ opType: 'MatMul', inputs: ['x', 'w'], outputs: ['y'] }],
  };
  const { prefix } = buildOnnxModelPrefix(spec, { name: 'w', rawDataLength: k * n * 4, elemType: 'float32', dims: [k, n] });
  const input = randomFloat32s(mulberry32((options.seed ?? 51) + 1), k, 1);
  const expected = new Float64Array(n);
  const random = mulberry32(options.seed ?? 51);
  const scale = 1 / Math.sqrt(k);
  // Whole rows per chunk, about 4 MiB.
  const rowsPerChunk = Math.max(1, Math.floor((4 * 1024 * 1024) / (n * 4)));
  const chunk = new Float32Array(rowsPerChunk * n);
  const fd = fs.openSync(filePath, 'w');
  try {
    fs.writeSync(fd, prefix);
    for (let row = 0; row < k; row += rowsPerChunk) {
      const rows = Math.min(rowsPerChunk, k - row);
      for (let r = 0; r < rows; r++) {
        const x = input[row + r];
        for (let j = 0; j < n; j++) {
          const w = Math.fround((random() * 2 - 1) * scale);
          chunk[r * n + j] = w;
          expected[j] += x * w;
        }
      }
      // ONNX raw data is little-endian, as every platform these run on.
      fs.writeSync(fd, new Uint8Array(chunk.buffer, 0, rows * n * 4));
    }
  } finally {
    fs.closeSync(fd);
  }
  return { path: filePath, sizeBytes: fs.statSync(filePath).size, k, n, input, expected: Array.from(expected) };
}
