import { beforeAll, describe, expect, it } from 'vitest';
import { logisticRegressionModel, mlpModel } from '../../../../tools/onnx';
import { call, infer, restEvent } from '../../../../fixtures/events';
import { type Handler, handlerForModel } from '../../../support/handler';

const lr = logisticRegressionModel({ features: 100, seed: 7 });
const mlp = mlpModel({ inputs: 4, hidden: 16, classes: 3, seed: 3 });

/** Deterministic rows in [-1, 1]. */
function rows(n: number, width: number, seed = 1): number[][] {
  let s = seed;
  const next = () => {
    s = (s * 16807) % 2147483647;
    return (s / 2147483647) * 2 - 1;
  };
  return Array.from({ length: n }, () => Array.from({ length: width }, () => Math.fround(next())));
}

describe('Open Inference Protocol over the bundled handler', () => {
  let lrHandler: Handler;
  let mlpHandler: Handler;

  beforeAll(async () => {
    lrHandler = await handlerForModel(lr.bytes, { MODEL_NAME: 'churn', MODEL_VERSION: '3' });
    mlpHandler = await handlerForModel(mlp.bytes, { MODEL_NAME: 'iris' });
  });

  it('infers a batch of the logistic regression and matches the plain-JS reference', async () => {
    const x = rows(64, 100);
    const r = await infer(lrHandler, { id: 'req-42', inputs: [{ name: 'features', shape: [64, 100], datatype: 'FP32', data: x.flat() }] }, 'churn');
    expect(r.status).toBe(200);
    expect(r.body.model_name).toBe('churn');
    expect(r.body.model_version).toBe('3');
    expect(r.body.id).toBe('req-42');
    expect(r.body.outputs).toHaveLength(1);
    const [out] = r.body.outputs;
    expect(out).toMatchObject({ name: 'probability', datatype: 'FP32', shape: [64, 1] });
    const expected = lr.predict(x);
    for (const [i, p] of out.data.entries()) expect(p).toBeCloseTo(expected[i], 5);
  });

  it('accepts data nested by rows as well as flat', async () => {
    const x = rows(3, 100, 9);
    const flat = await infer(lrHandler, { inputs: [{ name: 'features', shape: [3, 100], datatype: 'FP32', data: x.flat() }] }, 'churn');
    const nested = await infer(lrHandler, { inputs: [{ name: 'features', shape: [3, 100], datatype: 'FP32', data: x }] }, 'churn');
    expect(nested.status).toBe(200);
    expect(nested.body.outputs[0].data).toEqual(flat.body.outputs[0].data);
  });

  it('omits id when the request has none', async () => {
    const r = await infer(lrHandler, { inputs: [{ name: 'features', shape: [1, 100], datatype: 'FP32', data: rows(1, 100)[0] }] }, 'churn');
    expect(r.status).toBe(200);
    expect(r.body).not.toHaveProperty('id');
  });

  it('runs the MLP and matches the reference softmax', async () => {
    const x = rows(5, 4, 3);
    const r = await infer(mlpHandler, { inputs: [{ name: 'input', shape: [5, 4], datatype: 'FP32', data: x.flat() }] }, 'iris');
    expect(r.status).toBe(200);
    const expected = mlp.predict(x).flat();
    expect(r.body.outputs[0].shape).toEqual([5, 3]);
    for (const [i, p] of r.body.outputs[0].data.entries()) expect(p).toBeCloseTo(expected[i], 5);
  });

  it('serves the instances form with predictions per instance', async () => {
    const x = rows(4, 4, 5);
    const r = await infer(mlpHandler, { instances: x }, 'iris');
    expect(r.status).toBe(200);
    expect(Object.keys(r.body)).toEqual(['predictions']);
    const expected = mlp.predict(x);
    expect(r.body.predictions).toHaveLength(4);
    r.body.predictions.forEach((row: number[], i: number) => {
      expect(row).toHaveLength(3);
      for (const [k, p] of row.entries()) expect(p).toBeCloseTo(expected[i][k], 5);
    });
  });

  it('serves the same infer route under a version path', async () => {
    const x = rows(1, 100, 11);
    const r = await call(lrHandler, restEvent('POST', '/v2/models/churn/versions/3/infer', { inputs: [{ name: 'features', shape: [1, 100], datatype: 'FP32', data: x[0] }] }));
    expect(r.status).toBe(200);
    expect(r.body.outputs[0].data[0]).toBeCloseTo(lr.predict(x)[0], 5);
  });

  it('reports the model metadata read from the model', async () => {
    const r = await call(lrHandler, restEvent('GET', '/v2/models/churn'));
    expect(r.status).toBe(200);
    expect(r.body).toEqual({
      name: 'churn',
      versions: ['3'],
      platform: 'onnxruntime_onnx',
      inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, 100] }],
      outputs: [{ name: 'probability', datatype: 'FP32', shape: [-1, 1] }],
    });
  });

  it('answers health, readiness and server metadata', async () => {
    expect(await call(lrHandler, restEvent('GET', '/v2/health/live'))).toMatchObject({ status: 200, body: { live: true } });
    expect(await call(lrHandler, restEvent('GET', '/v2/health/ready'))).toMatchObject({ status: 200, body: { ready: true } });
    expect(await call(lrHandler, restEvent('GET', '/v2/models/churn/ready'))).toMatchObject({
      status: 200,
      body: { name: 'churn', ready: true },
    });
    const server = await call(lrHandler, restEvent('GET', '/v2'));
    expect(server.status).toBe(200);
    expect(server.body.name).toBe('cdk-serverless-inference');
    expect(server.body.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(server.body.extensions).toEqual(['binary_tensor_data']);
  });

  it('returns only the outputs the request selects, in its order', async () => {
    const r = await infer(mlpHandler, { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [0.1, 0.2, 0.3, 0.4] }], outputs: [{ name: 'probabilities' }] }, 'iris');
    expect(r.status).toBe(200);
    expect(r.body.outputs.map((o: any) => o.name)).toEqual(['probabilities']);
  });

  it('answers an output asked for twice once', async () => {
    const r = await infer(
      mlpHandler,
      { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [0.1, 0.2, 0.3, 0.4] }], outputs: [{ name: 'probabilities' }, { name: 'probabilities' }] },
      'iris',
    );
    expect(r.status).toBe(200);
    expect(r.body.outputs.map((o: any) => o.name)).toEqual(['probabilities']);
  });
});
