/**
 * The shadow through the handler bundle, with real models: a candidate that runs on a copy of the
 * request once the live answer is decided, whose answer is recorded beside the live one and
 * compared with it (answers that must agree, within a tolerance or by argmax, and answers that must
 * not), and whose failures never reach the caller.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { infer, restEvent } from '../../../../fixtures/events';
import { type LocalLambda, lambdaServiceError, startLocalLambda } from '../../../../tools/local-lambda';
import { temperatureSoftmaxModel } from '../../../../tools/onnx';
import { setEnvironment } from '../../../support/environment';
import { readCaptureDir } from '../../../support/capture';
import { type Handler, createHandler, tempDir, writeModel } from '../../../support/handler';
import { logged, withLogLevel } from '../../../support/logs';

const live = temperatureSoftmaxModel({ temperature: 1 });
const LIVE = writeModel(live.bytes, 'live.onnx');
const rows = [
  [1, 2, 0.5],
  [-1, 0, 3],
  [0.3, -0.2, 0.1],
];
const request = { inputs: [{ name: 'scores', shape: [3, 3], datatype: 'FP32', data: rows.flat() }] };

/** The live model with a shadow of `temperature` (or the shadow file given), capturing to a folder; metrics on, log at WARN. */
async function shadowed(shadow: { temperature?: number; path?: string }, env: Record<string, string> = {}): Promise<{ handler: Handler; dir: string }> {
  const dir = tempDir();
  const shadowPath = shadow.path ?? writeModel(temperatureSoftmaxModel({ temperature: shadow.temperature }).bytes, 'shadow.onnx');
  const saved = process.env.POWERTOOLS_METRICS_DISABLED;
  process.env.POWERTOOLS_METRICS_DISABLED = 'false';
  try {
    const handler = await withLogLevel(
      () =>
        createHandler({
          MODEL_PATH: LIVE,
          MODEL_NAME: 'clf',
          MODEL_VERSION: 'live-1',
          DATA_CAPTURE_DIR: dir,
          SHADOW_MODEL_PATH: shadowPath,
          SHADOW_MODEL_VERSION: 'candidate-2',
          ...env,
        }),
      'WARN',
    );
    return { handler, dir };
  } finally {
    process.env.POWERTOOLS_METRICS_DISABLED = saved;
  }
}

/** One request through `handler`: the answer, the capture record and the metrics line. */
async function once(handler: Handler, dir: string) {
  const { result, logs } = await logged(() => infer(handler, request, 'clf'));
  const records = readCaptureDir(dir);
  expect(records).toHaveLength(1);
  const metrics = logs.filter((l) => l._aws?.CloudWatchMetrics);
  return { answer: result, record: records[0].record, metrics: Object.assign({}, ...metrics), logs };
}

/** The answer the live model gives, checked against its plain-JS reference. */
function expectLiveAnswer(answer: { status: number; body: any }) {
  expect(answer.status).toBe(200);
  const expected = live.predict(rows).flat();
  for (const [i, p] of (answer.body.outputs[0].data as number[]).entries()) expect(p).toBeCloseTo(expected[i], 6);
}

describe('a shadow model', () => {
  it('agrees when it is the same model: its answer is recorded beside the live one, with both latencies', async () => {
    const { handler, dir } = await shadowed({ temperature: 1 });
    const { answer, record, metrics } = await once(handler, dir);
    expectLiveAnswer(answer);
    expect(record.eventMetadata.modelVersion).toBe('live-1');
    expect(record.eventMetadata.shadow).toMatchObject({ modelVersion: 'candidate-2', agreed: true });
    expect(record.eventMetadata.shadow.inferenceMs).toBeGreaterThan(0);
    expect(record.eventMetadata.shadow.latencyRatio).toBeCloseTo(record.eventMetadata.shadow.inferenceMs / record.eventMetadata.inferenceMs, 2);
    const shadowAnswer = JSON.parse(record.captureData.shadowOutput.data);
    expect(shadowAnswer.outputs[0].data).toEqual(answer.body.outputs[0].data);
    expect(metrics.ShadowAgreement).toBe(1);
    expect(typeof metrics.ShadowLatencyRatio).toBe('number');
    expect(typeof metrics.ShadowInferenceMs).toBe('number');
    expect(metrics.Captured).toBe(1);
  });

  it('agrees within the tolerance, and not past it', async () => {
    // softmax(1.00002 x) moves these probabilities by about 1e-5: inside 1e-4, outside 1e-6.
    const near = temperatureSoftmaxModel({ temperature: 1.00002 });
    const moved = Math.max(
      ...near
        .predict(rows)
        .flat()
        .map((p, i) => Math.abs(p - live.predict(rows).flat()[i])),
    );
    expect(moved).toBeGreaterThan(1e-6);
    expect(moved).toBeLessThan(1e-4);
    const within = await shadowed({ temperature: 1.00002 });
    expect((await once(within.handler, within.dir)).record.eventMetadata.shadow.agreed).toBe(true);
    const strict = await shadowed({ temperature: 1.00002 }, { SHADOW_TOLERANCE: '0.000001' });
    const r = await once(strict.handler, strict.dir);
    expect(r.record.eventMetadata.shadow.agreed).toBe(false);
    expect(r.record.eventMetadata.shadow.detail).toMatch(/^output 'probabilities' value \d: /);
    expect(r.metrics.ShadowAgreement).toBe(0);
  });

  it('disagrees on other probabilities under the tolerance rule, and agrees by argmax when the classes are the same', async () => {
    const sharper = temperatureSoftmaxModel({ temperature: 2 });
    // The reference: every row's most probable class is the same, its probabilities are not.
    for (const [i, p] of sharper.predict(rows).entries()) expect(p.indexOf(Math.max(...p))).toBe(live.predict(rows)[i].indexOf(Math.max(...live.predict(rows)[i])));
    const tolerance = await shadowed({ temperature: 2 });
    expect((await once(tolerance.handler, tolerance.dir)).record.eventMetadata.shadow.agreed).toBe(false);
    const argmax = await shadowed({ temperature: 2 }, { SHADOW_AGREEMENT: 'argmax' });
    const r = await once(argmax.handler, argmax.dir);
    expect(r.record.eventMetadata.shadow.agreed).toBe(true);
    expect(r.metrics.ShadowAgreement).toBe(1);
  });

  it('disagrees by argmax when the classes move, and says which row', async () => {
    const reversed = temperatureSoftmaxModel({ temperature: -1 });
    expect(reversed.predict(rows)[0].indexOf(Math.max(...reversed.predict(rows)[0]))).not.toBe(1);
    const { handler, dir } = await shadowed({ temperature: -1 }, { SHADOW_AGREEMENT: 'argmax' });
    const r = await once(handler, dir);
    expectLiveAnswer(r.answer);
    expect(r.record.eventMetadata.shadow).toMatchObject({ agreed: false, detail: "output 'probabilities' row 0: the largest value is at 1, the shadow's at 2" });
    expect(r.metrics.ShadowAgreement).toBe(0);
  });

  it('never reaches the caller when it fails: a shadow model that does not load, or one that refuses the request', async () => {
    const other = writeModel(temperatureSoftmaxModel({ classes: 4 }).bytes, 'four.onnx');
    for (const shadow of [{ path: '/nonexistent/shadow.onnx' }, { path: other }]) {
      const { handler, dir } = await shadowed(shadow);
      const r = await once(handler, dir);
      expectLiveAnswer(r.answer);
      expect(r.record.eventMetadata.shadow).toMatchObject({ modelVersion: 'candidate-2', failed: true });
      expect(r.record.captureData.shadowOutput).toBeUndefined();
      expect(r.record.captureData.endpointOutput.data).toBe(r.answer.text);
      expect(r.metrics.ShadowFailed).toBe(1);
      expect(r.metrics.ShadowAgreement).toBeUndefined();
      expect(r.logs.find((l) => l.message === 'the shadow model failed; the caller had the live answer')).toBeDefined();
    }
  });

  it('runs on the sampled share only, and captures every request it runs on', async () => {
    const none = await shadowed({ temperature: 1 }, { SHADOW_SAMPLING_PERCENT: '0', DATA_CAPTURE_SAMPLING_PERCENT: '0' });
    const { logs } = await logged(() => infer(none.handler, request, 'clf'));
    expect(readCaptureDir(none.dir)).toHaveLength(0);
    expect(logs.some((l) => l.ShadowAgreement !== undefined)).toBe(false);
    const all = await shadowed({ temperature: 1 }, { SHADOW_SAMPLING_PERCENT: '100', DATA_CAPTURE_SAMPLING_PERCENT: '0' });
    await infer(all.handler, request, 'clf');
    await infer(all.handler, request, 'clf');
    expect(readCaptureDir(all.dir).map((r) => r.record.eventMetadata.shadow.agreed)).toEqual([true, true]);
  });

  it('compares the answer of the instances form too', async () => {
    const { handler, dir } = await shadowed({ temperature: 2 }, { SHADOW_AGREEMENT: 'argmax' });
    const { result } = await logged(() => infer(handler, { instances: rows }, 'clf'));
    expect(result.status).toBe(200);
    expect(result.body.predictions).toHaveLength(3);
    expect(readCaptureDir(dir)[0].record.eventMetadata.shadow.agreed).toBe(true);
  });

  it('compares outputs answered as binary tensor data, by their values', async () => {
    const binary = { ...request, outputs: [{ name: 'probabilities', parameters: { binary_data: true } }] };
    for (const [temperature, agreed] of [
      [2, true],
      [-1, false],
    ] as const) {
      const { handler, dir } = await shadowed({ temperature }, { SHADOW_AGREEMENT: 'argmax' });
      const { result } = await logged(() => handler(restEvent('POST', '/v2/models/clf/infer', binary)));
      expect(result.statusCode).toBe(200);
      expect(result.isBase64Encoded).toBe(true);
      const [{ record }] = readCaptureDir(dir);
      expect(record.captureData.endpointOutput).toMatchObject({ encoding: 'BASE64', data: result.body });
      expect(record.eventMetadata.shadow.agreed).toBe(agreed);
    }
  });
});

describe('a shadow function (ShadowMode.SHADOW_FUNCTION), invoked asynchronously with the real AWS SDK on a local Lambda stand-in', () => {
  let lambda: LocalLambda;
  let restoreEnvironment: () => void;
  beforeAll(async () => {
    lambda = await startLocalLambda();
    restoreEnvironment = setEnvironment(lambda.env());
  });
  afterAll(async () => {
    restoreEnvironment();
    await lambda.stop();
  });

  /** The live function, which invokes `shadow-fn`, and the shadow function with the candidate of `temperature`. */
  async function pair(temperature: number) {
    const liveDir = tempDir();
    const shadowDir = tempDir();
    const liveHandler = await withLogLevel(
      () =>
        createHandler({
          MODEL_PATH: LIVE,
          MODEL_NAME: 'clf',
          MODEL_VERSION: 'live-1',
          DATA_CAPTURE_DIR: liveDir,
          DATA_CAPTURE_SAMPLING_PERCENT: '0',
          SHADOW_FUNCTION_NAME: 'shadow-fn',
        }),
      'WARN',
    );
    const saved = process.env.POWERTOOLS_METRICS_DISABLED;
    process.env.POWERTOOLS_METRICS_DISABLED = 'false';
    const shadowHandler = await withLogLevel(
      () =>
        createHandler({
          MODEL_PATH: writeModel(temperatureSoftmaxModel({ temperature }).bytes, 'candidate.onnx'),
          MODEL_NAME: 'clf',
          MODEL_VERSION: 'candidate-2',
          DATA_CAPTURE_DIR: shadowDir,
          SHADOW_CANDIDATE: 'true',
          SHADOW_AGREEMENT: 'argmax',
        }),
      'WARN',
    ).finally(() => {
      process.env.POWERTOOLS_METRICS_DISABLED = saved;
    });
    return { liveHandler, shadowHandler, liveDir, shadowDir };
  }

  it('sends the request and the live answer; the shadow function compares, counts and writes the record', async () => {
    for (const [temperature, agreed] of [
      [2, true],
      [-1, false],
    ] as const) {
      lambda.respondWith(() => ({ status: 202 }));
      const { liveHandler, shadowHandler, liveDir, shadowDir } = await pair(temperature);
      const answer = await infer(liveHandler, request, 'clf', { headers: { 'X-Inference-Id': `t-${temperature}` } });
      expectLiveAnswer(answer);
      expect(lambda.invocations).toHaveLength(1);
      const invocation = lambda.invocations[0];
      expect(invocation.functionName).toBe('shadow-fn');
      expect(invocation.headers['x-amz-invocation-type']).toBe('Event');
      // The live function writes nothing itself: the record goes to the shadow function.
      expect(readCaptureDir(liveDir)).toHaveLength(0);

      const { logs } = await logged(() => shadowHandler(JSON.parse(invocation.text)));
      const [{ record }] = readCaptureDir(shadowDir);
      expect(record.eventMetadata).toMatchObject({ inferenceId: `t-${temperature}`, modelVersion: 'live-1', shadow: { modelVersion: 'candidate-2', agreed } });
      expect(record.captureData.endpointOutput.data).toBe(answer.text);
      const shadowAnswer = JSON.parse(record.captureData.shadowOutput.data);
      const expected = temperatureSoftmaxModel({ temperature }).predict(rows).flat();
      for (const [i, p] of (shadowAnswer.outputs[0].data as number[]).entries()) expect(p).toBeCloseTo(expected[i], 6);
      const metrics = Object.assign({}, ...logs.filter((l) => l._aws?.CloudWatchMetrics));
      expect(metrics.ShadowAgreement).toBe(agreed ? 1 : 0);
      expect(metrics.Captured).toBe(1);
    }
  });

  it('counts a shadow function that cannot be invoked, and captures the request with the failure', async () => {
    lambda.respondWith(() => lambdaServiceError('ResourceNotFoundException', 404, 'Function not found: shadow-fn'));
    const { liveHandler, liveDir } = await pair(2);
    const { result } = await logged(() => infer(liveHandler, request, 'clf'));
    expectLiveAnswer(result);
    const [{ record }] = readCaptureDir(liveDir);
    expect(record.eventMetadata.shadow).toMatchObject({ failed: true });
    expect(record.captureData.endpointOutput.data).toBe(result.text);
  });
});
