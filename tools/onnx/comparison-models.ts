/**
 * Models for comparing two versions of a classifier (shadow testing, variants): the same input
 * gives answers that agree exactly, within a float tolerance, by argmax only, or not at all,
 * depending on one number, each with a plain-JS reference.
 */
import { attr, buildOnnxModel, type OnnxModelSpec } from './model-builder';

export interface TemperatureSoftmaxModel {
  readonly bytes: Uint8Array;
  readonly spec: OnnxModelSpec;
  readonly classes: number;
  readonly temperature: number;
  /** softmax(row * temperature) for each row, in plain JS. */
  predict(rows: readonly (readonly number[])[]): number[][];
}

/**
 * `probabilities = Softmax(scores * temperature)` over [batch, classes] FP32 scores: models with
 * two positive temperatures give different probabilities with the same argmax in every row; a
 * negative one reverses the order, so the argmax moves (for rows without ties); equal temperatures
 * give the same answer.
 */
export function temperatureSoftmaxModel(options: { temperature?: number; classes?: number } = {}): TemperatureSoftmaxModel {
  const classes = options.classes ?? 3;
  const temperature = Math.fround(options.temperature ?? 1);
  const spec: OnnxModelSpec = {
    graphName: 'temperature_softmax',
    inputs: [{ name: 'scores', elemType: 'float32', shape: ['batch', classes] }],
    outputs: [{ name: 'probabilities', elemType: 'float32', shape: ['batch', classes] }],
    initializers: [{ name: 'temperature', elemType: 'float32', dims: [], values: [temperature] }],
    nodes: [
      { opType: 'Mul', inputs: ['scores', 'temperature'], outputs: ['scaled'] },
      { opType: 'Softmax', inputs: ['scaled'], outputs: ['probabilities'], attributes: { axis: attr.int(1) } },
    ],
  };
  return {
    bytes: buildOnnxModel(spec),
    spec,
    classes,
    temperature,
    predict: (rows) =>
      rows.map((row) => {
        const scaled = row.map((x) => Math.fround(x) * temperature);
        const max = Math.max(...scaled);
        const exps = scaled.map((s) => Math.exp(s - max));
        const total = exps.reduce((a, b) => a + b, 0);
        return exps.map((e) => e / total);
      }),
  };
}
