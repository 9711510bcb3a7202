/**
 * Models for load tests of a server: real work per request (dense matrix products that keep a core
 * busy for milliseconds) and a size of tens of MB, with a plain-JS reference cheap enough to check
 * every answer of a load test.
 */
import { attr, buildOnnxModel, type OnnxNodeSpec, type OnnxModelSpec } from './model-builder';
import { mulberry32 } from './models';

export interface EmbeddingStackModel {
  readonly bytes: Uint8Array;
  readonly spec: OnnxModelSpec;
  /** Rows of the `table` initializer: valid ids are 0 to vocabulary - 1. */
  readonly vocabulary: number;
  /** Width of every hidden layer. */
  readonly width: number;
  readonly layers: number;
  /** Columns of `scores`. */
  readonly outputs: number;
  /** Multiply-adds onnxruntime performs per id (the dense products, whatever the weights hold). */
  readonly macsPerRow: number;
  /** `scores` ([ids.length][outputs]) for the given ids, computed in plain JS. */
  predict(ids: readonly number[]): number[][];
}

export interface EmbeddingStackModelOptions {
  /** @default 20480 (with the default width, a table of 40 MiB) */
  readonly vocabulary?: number;
  /** @default 512 */
  readonly width?: number;
  /** @default 4 */
  readonly layers?: number;
  /** @default 4 */
  readonly outputs?: number;
  readonly seed?: number;
}

/**
 * `scores` float32 ['rows', outputs] for `ids` int64 ['rows']: each id picks a row of an embedding
 * table (Gather: the table is the bulk of the file, and every session holds it in memory), then
 * `layers` times `h = Relu(Gemm(h, W, b))` with W [width, width], then `h · head + headBias`.
 *
 * Each hidden W is stored dense, so onnxruntime runs a full width × width product per row, but it
 * holds a permutation (one 1 per row and per column): the reference computes the same layer by
 * moving values, in width steps instead of width², and exactly (each output is one input plus 0s).
 * Only the small head is a dense product in the reference. The table's ids come from the request, so
 * no optimizer can fold it away.
 */
export function embeddingStackModel(options: EmbeddingStackModelOptions = {}): EmbeddingStackModel {
  const vocabulary = options.vocabulary ?? 20_480;
  const width = options.width ?? 512;
  const layers = options.layers ?? 4;
  const outputs = options.outputs ?? 4;
  const random = mulberry32(options.seed ?? 5);
  const uniform = (count: number, scale: number) => {
    const values = new Float32Array(count);
    for (let i = 0; i < count; i++) values[i] = (random() * 2 - 1) * scale;
    return values;
  };
  const table = uniform(vocabulary * width, 1);
  // permutations[l][i]: the column that input i of layer l moves to.
  const permutations = Array.from({ length: layers }, () => shuffled(width, random));
  const biases = Array.from({ length: layers }, () => uniform(width, 0.25));
  const head = uniform(width * outputs, 1 / Math.sqrt(width));
  const headBias = uniform(outputs, 0.5);

  const bytesOf = (values: Float32Array) => new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const nodes: OnnxNodeSpec[] = [{ opType: 'Gather', inputs: ['table', 'ids'], outputs: ['h0'], attributes: { axis: attr.int(0) } }];
  for (let l = 0; l < layers; l++) {
    nodes.push(
      {
        opType: 'Gemm',
        inputs: [`h${l}`, `w${l}`, `b${l}`],
        outputs: [`linear${l}`],
        attributes: { alpha: attr.float(1), beta: attr.float(1), transA: attr.int(0), transB: attr.int(0) },
      },
      { opType: 'Relu', inputs: [`linear${l}`], outputs: [`h${l + 1}`] },
    );
  }
  nodes.push({ opType: 'MatMul', inputs: [`h${layers}`, 'head'], outputs: ['head_product'] }, { opType: 'Add', inputs: ['head_product', 'head_bias'], outputs: ['scores'] });
  const spec: OnnxModelSpec = {
    graphName: 'embedding_stack',
    inputs: [{ name: 'ids', elemType: 'int64', shape: ['rows'] }],
    outputs: [{ name: 'scores', elemType: 'float32', shape: ['rows', outputs] }],
    initializers: [
      { name: 'table', elemType: 'float32', dims: [vocabulary, width], values: bytesOf(table) },
      ...permutations.flatMap((perm, l) => {
        const w = new Float32Array(width * width);
        for (let i = 0; i < width; i++) w[i * width + perm[i]] = 1;
        return [
          { name: `w${l}`, elemType: 'float32' as const, dims: [width, width], values: bytesOf(w) },
          { name: `b${l}`, elemType: 'float32' as const, dims: [width], values: bytesOf(biases[l]) },
        ];
      }),
      { name: 'head', elemType: 'float32', dims: [width, outputs], values: bytesOf(head) },
      { name: 'head_bias', elemType: 'float32', dims: [outputs], values: bytesOf(headBias) },
    ],
    nodes,
  };
  return {
    bytes: buildOnnxModel(spec),
    spec,
    vocabulary,
    width,
    layers,
    outputs,
    macsPerRow: layers * width * width + width * outputs,
    predict(ids) {
      return ids.map((id) => {
        if (!Number.isInteger(id) || id < 0 || id >= vocabulary) throw new Error(`embeddingStackModel.predict: id ${id} is not in 0..${vocabulary - 1}`);
        let h = table.subarray(id * width, (id + 1) * width);
        for (let l = 0; l < layers; l++) {
          const next = new Float32Array(width);
          const perm = permutations[l];
          // Float32Array stores the float32 rounding of each sum, as onnxruntime computes it.
          for (let i = 0; i < width; i++) next[perm[i]] = h[i];
          for (let j = 0; j < width; j++) next[j] = Math.max(0, next[j] + biases[l][j]);
          h = next;
        }
        return Array.from({ length: outputs }, (_, k) => {
          let sum = headBias[k];
          for (let j = 0; j < width; j++) sum += h[j] * head[j * outputs + k];
          return sum;
        });
      });
    },
  };
}

/** 0..n-1 in a random order (Fisher–Yates). */
function shuffled(n: number, random: () => number): number[] {
  const out = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}
