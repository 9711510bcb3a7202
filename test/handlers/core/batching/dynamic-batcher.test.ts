import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { type BatchAnswer, DynamicBatcher, type ModelRun, batchDimensionOf } from '../../../../handlers/core/batching/dynamic-batcher';
import { ORT_TYPE_OF } from '../../../../handlers/core/protocol/datatypes';
import type { OutputResult } from '../../../../handlers/core/protocol/protocol';
import type { TensorInit } from '../../../../handlers/core/protocol/tensors';
import { buildOnnxModel, convModel, gatherModel, mlpModel, mulberry32 } from '../../../../tools/onnx';

/** A real onnxruntime session, run as the handler runs it, that counts its runs and their rows. */
async function sessionRun(bytes: Uint8Array): Promise<{ run: ModelRun; runs: number[]; session: ort.InferenceSession }> {
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, logSeverityLevel: 3 });
  const runs: number[] = [];
  const run: ModelRun = async (feeds, outputs) => {
    const tensors: Record<string, ort.Tensor> = {};
    for (const [name, t] of feeds) tensors[name] = new ort.Tensor(ORT_TYPE_OF[t.datatype] as ort.Tensor.Type, t.data as never, [...t.shape]);
    runs.push([...feeds.values()][0]?.shape[0] ?? 0);
    const out = await session.run(tensors, [...outputs], { logSeverityLevel: 4 });
    return new Map<string, OutputResult>(outputs.map((n) => [n, { dims: out[n].dims, data: out[n].data }]));
  };
  return { run, runs, session };
}

function floats(name: string, rows: number[][]): Map<string, TensorInit> {
  return new Map([[name, { datatype: 'FP32', shape: [rows.length, rows[0]?.length ?? 0], data: Float32Array.from(rows.flat()) }]]);
}

function close(actual: ArrayLike<number>, expected: readonly number[]): boolean {
  return actual.length === expected.length && expected.every((v, i) => Math.abs(actual[i] - v) < 1e-5);
}

describe('DynamicBatcher', () => {
  const mlp = mlpModel({ seed: 3 });
  const random = mulberry32(11);
  const row = () => Array.from({ length: mlp.inputs }, () => Math.fround(random() * 4 - 2));

  it('merges concurrent requests into one run and gives each caller exactly its own rows, in order', async () => {
    const { run, runs, session } = await sessionRun(mlp.bytes);
    const batcher = new DynamicBatcher({ maxBatchSize: 64, maxQueueDelayMs: 20 }, batchDimensionOf(signatureOf(session)), run);
    const requests = Array.from({ length: 12 }, (_, i) => Array.from({ length: 1 + (i % 3) }, row));
    const answers = await Promise.all(requests.map((rows) => batcher.submit({ feeds: floats('input', rows), outputs: ['probabilities'] })));
    expect(runs).toEqual([requests.reduce((n, r) => n + r.length, 0)]);
    answers.forEach((a, i) => {
      expect(a.requests).toBe(12);
      expect(a.results.get('probabilities')!.dims).toEqual([requests[i].length, mlp.classes]);
      expect(close(a.results.get('probabilities')!.data as Float32Array, mlp.predict(requests[i]).flat()), `request ${i}`).toBe(true);
    });
  });

  it('holds at most maxBatchSize rows in a run, and runs alone a request that fills a batch by itself', async () => {
    const { run, runs, session } = await sessionRun(mlp.bytes);
    const batcher = new DynamicBatcher({ maxBatchSize: 4, maxQueueDelayMs: 20 }, batchDimensionOf(signatureOf(session)), run);
    const requests = [[row()], [row(), row()], [row()], [row(), row()], Array.from({ length: 5 }, row), [row()]];
    const answers = await Promise.all(requests.map((rows) => batcher.submit({ feeds: floats('input', rows), outputs: ['probabilities'] })));
    // 1+2+1 fills the first batch; the 2 that follows would pass 4 and starts the next; 5 rows run alone.
    expect([...runs].sort()).toEqual([3, 4, 5].sort());
    for (const [i, a] of answers.entries()) {
      expect(close(a.results.get('probabilities')!.data as Float32Array, mlp.predict(requests[i]).flat()), `request ${i}`).toBe(true);
    }
  });

  it('runs one batch at a time: requests that arrive while it runs form the next batches, which start as it ends, without waiting the delay', async () => {
    const { run, runs, session } = await sessionRun(mlp.bytes);
    let during: Promise<BatchAnswer[]> | undefined;
    const requests = [[row(), row(), row()], [row()], [row()], [row()], [row()], [row()], [row()]];
    // A delay longer than the test's timeout: a batch that waited it would fail the test.
    const batcher = new DynamicBatcher({ maxBatchSize: 4, maxQueueDelayMs: 60_000 }, batchDimensionOf(signatureOf(session)), (feeds, outputs) => {
      // Five requests arrive while the first run is under way.
      during ??= Promise.all(requests.slice(2).map((rows) => batcher.submit({ feeds: floats('input', rows), outputs: ['probabilities'] })));
      return run(feeds, outputs);
    });
    // 3 + 1 rows fill the first batch, which runs at once.
    const first = await Promise.all(requests.slice(0, 2).map((rows) => batcher.submit({ feeds: floats('input', rows), outputs: ['probabilities'] })));
    const answers = [...first, ...(await during!)];
    expect(runs).toEqual([4, 4, 1]);
    for (const [i, a] of answers.entries()) {
      expect(close(a.results.get('probabilities')!.data as Float32Array, mlp.predict(requests[i]).flat()), `request ${i}`).toBe(true);
    }
  });

  it('merges only requests that agree on the dimensions after the first', async () => {
    // y = x + 1, x float32 [batch, n]: requests with another n cannot be stacked.
    const bytes = buildOnnxModel({
      graphName: 'add_one',
      inputs: [{ name: 'x', elemType: 'float32', shape: ['batch', 'n'] }],
      outputs: [{ name: 'y', elemType: 'float32', shape: ['batch', 'n'] }],
      initializers: [{ name: 'one', elemType: 'float32', dims: [1], values: [1] }],
      nodes: [{ opType: 'Add', inputs: ['x', 'one'], outputs: ['y'] }],
    });
    const { run, runs, session } = await sessionRun(bytes);
    const batcher = new DynamicBatcher({ maxBatchSize: 64, maxQueueDelayMs: 20 }, batchDimensionOf(signatureOf(session)), run);
    const requests = [
      [[1, 2]],
      [[3, 4, 5]],
      [[6, 7]],
      [
        [8, 9, 10],
        [11, 12, 13],
      ],
    ];
    const answers = await Promise.all(requests.map((rows) => batcher.submit({ feeds: floats('x', rows), outputs: ['y'] })));
    expect([...runs].sort()).toEqual([2, 3]);
    answers.forEach((a, i) => {
      expect(a.requests).toBe(2);
      expect(a.results.get('y')!.dims).toEqual([requests[i].length, requests[i][0].length]);
      expect(Array.from(a.results.get('y')!.data as Float32Array)).toEqual(requests[i].flat().map((v) => v + 1));
    });
  });

  it('merges requests that list the same inputs in another order', async () => {
    // y = a + b, both float32 [batch, 2].
    const bytes = buildOnnxModel({
      graphName: 'add',
      inputs: [
        { name: 'a', elemType: 'float32', shape: ['batch', 2] },
        { name: 'b', elemType: 'float32', shape: ['batch', 2] },
      ],
      outputs: [{ name: 'y', elemType: 'float32', shape: ['batch', 2] }],
      nodes: [{ opType: 'Add', inputs: ['a', 'b'], outputs: ['y'] }],
    });
    const { run, runs, session } = await sessionRun(bytes);
    const batcher = new DynamicBatcher({ maxBatchSize: 64, maxQueueDelayMs: 20 }, batchDimensionOf(signatureOf(session)), run);
    const t = (values: number[]): TensorInit => ({ datatype: 'FP32', shape: [1, 2], data: Float32Array.from(values) });
    const answers = await Promise.all([
      batcher.submit({
        feeds: new Map([
          ['a', t([1, 2])],
          ['b', t([10, 20])],
        ]),
        outputs: ['y'],
      }),
      batcher.submit({
        feeds: new Map([
          ['b', t([30, 40])],
          ['a', t([3, 4])],
        ]),
        outputs: ['y'],
      }),
    ]);
    expect(runs).toEqual([2]);
    expect(answers.map((a) => Array.from(a.results.get('y')!.data as Float32Array))).toEqual([
      [11, 22],
      [33, 44],
    ]);
  });

  it('runs each request alone where the model has no batch dimension', async () => {
    const conv = convModel({ channels: 2, features: 2, size: 4, seed: 5 });
    const { run, runs, session } = await sessionRun(conv.bytes);
    expect(batchDimensionOf(signatureOf(session))).toBeUndefined();
    const batcher = new DynamicBatcher({ maxBatchSize: 64, maxQueueDelayMs: 20 }, undefined, run);
    const image = () => new Map<string, TensorInit>([['image', { datatype: 'FP32', shape: [1, 2, 4, 4], data: Float32Array.from({ length: 32 }, () => random()) }]]);
    const answers = await Promise.all([0, 1, 2].map(() => batcher.submit({ feeds: image(), outputs: ['features'] })));
    expect(runs).toEqual([1, 1, 1]);
    expect(answers.map((a: BatchAnswer) => a.requests)).toEqual([1, 1, 1]);
  });

  it('answers a run that fails on one request’s values with that request’s failure only: the others run again alone', async () => {
    const gather = gatherModel();
    const { run, runs, session } = await sessionRun(gather.bytes);
    const batcher = new DynamicBatcher({ maxBatchSize: 64, maxQueueDelayMs: 20 }, batchDimensionOf(signatureOf(session)), run);
    const idx = (values: number[]) => new Map<string, TensorInit>([['idx', { datatype: 'INT64', shape: [values.length], data: BigInt64Array.from(values.map(BigInt)) }]]);
    const requests = [[0, 1], [3], [2, 99], [1, 1, 2]];
    const settled = await Promise.allSettled(requests.map((v) => batcher.submit({ feeds: idx(v), outputs: ['out'] })));
    // The merged run of 8 rows fails on index 99; then each of the four runs alone.
    expect(runs).toEqual([8, 2, 1, 2, 3]);
    settled.forEach((s, i) => {
      if (i === 2) {
        expect(s.status).toBe('rejected');
        return;
      }
      expect(s.status, `request ${i}`).toBe('fulfilled');
      const a = (s as PromiseFulfilledResult<BatchAnswer>).value;
      expect(Array.from(a.results.get('out')!.data as Float32Array)).toEqual(requests[i].map((k) => gather.table[k]));
    });
  });

  it('runs alone a request for an output that does not come in rows of the batch dimension', () => {
    const dimension = batchDimensionOf({
      inputs: [{ name: 'x', datatype: 'FP32', shape: ['batch', 4] }],
      outputs: [
        { name: 'rows', datatype: 'FP32', shape: ['batch', 2] },
        { name: 'summary', datatype: 'FP32', shape: [-1] },
      ],
    });
    expect(dimension).toEqual({ symbol: 'batch', rowOutputs: new Set(['rows']) });
    expect(batchDimensionOf({ inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 4] }], outputs: [] })).toBeUndefined();
    expect(
      batchDimensionOf({
        inputs: [
          { name: 'a', datatype: 'FP32', shape: ['batch', 4] },
          { name: 'b', datatype: 'FP32', shape: ['other', 4] },
        ],
        outputs: [],
      }),
    ).toBeUndefined();
  });
});

function signatureOf(session: ort.InferenceSession) {
  const spec = (m: ort.InferenceSession.ValueMetadata) => ({
    name: m.name,
    datatype: 'FP32' as const,
    shape: (m as { shape?: ReadonlyArray<number | string> }).shape?.map((d) => (typeof d === 'string' && d ? d : typeof d === 'number' && d >= 0 ? d : -1)) ?? [],
  });
  return { inputs: session.inputMetadata.map(spec), outputs: session.outputMetadata.map(spec) };
}
