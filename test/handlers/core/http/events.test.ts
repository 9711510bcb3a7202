import { beforeAll, describe, expect, it } from 'vitest';
import { logisticRegressionModel } from '../../../../tools/onnx';
import { call, functionUrlEvent, httpApiEvent, restEvent } from '../../../../fixtures/events';
import { type Handler, handlerForModel } from '../../../support/handler';

const lr = logisticRegressionModel({ features: 100, seed: 5 });
const row = Array.from({ length: 100 }, (_, i) => Math.fround(Math.sin(i)));
const request = { id: 'e1', inputs: [{ name: 'features', shape: [1, 100], datatype: 'FP32', data: row }] };
const expected = lr.predict([row])[0];

describe('every event shape that reaches the handler', () => {
  let handler: Handler;
  beforeAll(async () => {
    handler = await handlerForModel(lr.bytes, { MODEL_NAME: 'lr' });
  });

  it.each([
    ['API Gateway REST (payload 1.0)', () => restEvent('POST', '/v2/models/lr/infer', request)],
    ['REST with a base64 body', () => restEvent('POST', '/v2/models/lr/infer', request, { base64: true })],
    ['HTTP API (payload 2.0) on $default', () => httpApiEvent('POST', '/v2/models/lr/infer', request)],
    ['HTTP API on a named stage', () => httpApiEvent('POST', '/prod/v2/models/lr/infer', request)],
    ['Function URL', () => functionUrlEvent('POST', '/v2/models/lr/infer', request)],
    ['Function URL with a base64 body', () => functionUrlEvent('POST', '/v2/models/lr/infer', request, { base64: true })],
  ])('%s', async (_what, event) => {
    const r = await call(handler, event());
    expect(r.status, r.text).toBe(200);
    expect(r.headers['Content-Type']).toBe('application/json');
    expect(r.body.id).toBe('e1');
    expect(r.body.outputs[0].data[0]).toBeCloseTo(expected, 5);
  });

  it('answers a direct invocation with the response body itself', async () => {
    const r = await handler(request, { awsRequestId: 'direct-1' });
    expect(r).not.toHaveProperty('statusCode');
    expect(r.model_name).toBe('lr');
    expect(r.outputs[0].data[0]).toBeCloseTo(expected, 5);
  });

  it('answers a direct invocation of the instances form with predictions', async () => {
    const r = await handler({ instances: [row, row] });
    expect(r.predictions).toHaveLength(2);
    expect(r.predictions[1][0]).toBeCloseTo(expected, 5);
  });

  it('fails a bad direct invocation as a function error naming the problem', async () => {
    await expect(handler({ inputs: [{ name: 'nope', shape: [1], datatype: 'FP32', data: [1] }] })).rejects.toMatchObject({
      name: 'InferenceRequestError',
      message: expect.stringMatching(/^\[400\] unknown input 'nope'/),
    });
  });
});

describe('warm-up pings', () => {
  let handler: Handler;
  beforeAll(async () => {
    handler = await handlerForModel(lr.bytes);
  });

  it.each([
    ['this library’s warmer', { source: 'cdk-serverless-inference.warmer' }],
    ['serverless-plugin-warmup', { source: 'serverless-plugin-warmup' }],
    ['lambda-warmer', { warmer: true, concurrency: 1 }],
    ['an EventBridge schedule', { source: 'aws.events', 'detail-type': 'Scheduled Event', detail: {} }],
  ])('short-circuits %s without inference', async (_what, event) => {
    const r = await handler(event);
    expect(r).toMatchObject({ warmed: true, modelReady: true });
    expect(typeof r.instanceId).toBe('string');
    expect(r).not.toHaveProperty('outputs');
  });

  it('reports the first call of an instance as its cold start, and the rest as warm', async () => {
    const fresh = await handlerForModel(lr.bytes);
    const first = await fresh({ source: 'cdk-serverless-inference.warmer' });
    const second = await fresh({ source: 'cdk-serverless-inference.warmer' });
    expect(first.coldStart).toBe(true);
    expect(second.coldStart).toBe(false);
    expect(second.instanceId).toBe(first.instanceId);
  });

  it('holds for the asked time so that concurrent pings land on distinct instances', async () => {
    const started = performance.now();
    await handler({ source: 'cdk-serverless-inference.warmer', holdMs: 150 });
    // A lower bound only: the hold happened. No upper bound, which a busy machine could break.
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
  });
});
