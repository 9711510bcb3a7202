/**
 * Data capture through the handler bundle, with real models: the record of each sampled request in
 * SageMaker Data Capture's format (checked against what the caller sent and got, and the model's
 * plain-JS reference), binary tensor data in base64, the inference id header, sampling, the modes,
 * and failures that are counted and dropped while the answer stays what it is without capture.
 * Firehose is reached with the real AWS SDK, on a local stand-in.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { infer, restEvent } from '../../../../fixtures/events';
import { startLocalFirehose, type LocalFirehose } from '../../../../tools/local-firehose';
import { mlpModel } from '../../../../tools/onnx';
import { setEnvironment } from '../../../support/environment';
import { hourOf, readCaptureDir } from '../../../support/capture';
import { type Handler, createHandler, tempDir, writeModel } from '../../../support/handler';
import { logged, withLogLevel } from '../../../support/logs';

const mlp = mlpModel({ inputs: 4, hidden: 8, classes: 3, seed: 25, label: true });
const MODEL = writeModel(mlp.bytes);
const rows = [
  [0.5, -1.2, 3.3, 0.7],
  [1.0, 0.2, -0.4, 2.5],
];
const request = { id: 'r1', inputs: [{ name: 'input', shape: [2, 4], datatype: 'FP32', data: rows.flat() }] };

/** The handler with capture as `env` says; its log at WARN, so that failures can be read. */
async function capturingHandler(env: Record<string, string>): Promise<Handler> {
  return withLogLevel(() => createHandler({ MODEL_PATH: MODEL, MODEL_NAME: 'iris', MODEL_VERSION: 'v7', ...env }), 'WARN');
}

/** A binary tensor data request: the JSON header, then the input's bytes. */
function binaryRequest(): { body: Buffer; headerLength: number } {
  const header = Buffer.from(
    JSON.stringify({
      inputs: [{ name: 'input', shape: [2, 4], datatype: 'FP32', parameters: { binary_data_size: 32 } }],
      outputs: [{ name: 'probabilities', parameters: { binary_data: true } }],
    }),
  );
  return { body: Buffer.concat([header, Buffer.from(Float32Array.from(rows.flat()).buffer)]), headerLength: header.length };
}

describe('data capture to a folder', () => {
  it('writes one SageMaker-format line per request: the input and output as sent, the inference id answered, the model, latency and time', async () => {
    const dir = tempDir();
    const handler = await capturingHandler({ DATA_CAPTURE_DIR: dir });
    const before = Date.now();
    const r = await infer(handler, request, 'iris');
    expect(r.status).toBe(200);
    const expected = mlp.predict(rows.map((row) => row.map(Math.fround)));
    for (const [i, p] of (r.body.outputs[0].data as number[]).entries()) expect(p).toBeCloseTo(expected[Math.floor(i / 3)][i % 3], 5);

    const records = readCaptureDir(dir);
    expect(records).toHaveLength(1);
    const { folder, record } = records[0];
    expect(record.eventVersion).toBe('0');
    expect(record.captureData.endpointInput).toEqual({ observedContentType: 'application/json', mode: 'INPUT', data: JSON.stringify(request), encoding: 'JSON' });
    expect(record.captureData.endpointOutput).toEqual({ observedContentType: 'application/json', mode: 'OUTPUT', data: r.text, encoding: 'JSON' });
    const meta = record.eventMetadata;
    expect(meta.inferenceId).toBe(r.headers['X-Inference-Id']);
    expect(meta.eventId).toMatch(/^[0-9a-f-]{36}$/);
    expect(meta.eventId).not.toBe(meta.inferenceId);
    expect(meta).toMatchObject({ requestId: 'rest-request-id', modelName: 'iris', modelVersion: 'v7' });
    expect(meta.variant).toBeUndefined();
    expect(meta.latencyMs).toBeGreaterThanOrEqual(meta.inferenceMs);
    expect(meta.inferenceMs).toBeGreaterThan(0);
    const time = Date.parse(meta.inferenceTime);
    expect(time).toBeGreaterThanOrEqual(before - 1);
    expect(time).toBeLessThanOrEqual(Date.now());
    expect(folder).toBe(hourOf(meta.inferenceTime));
  });

  it('captures binary tensor data in base64, byte for byte, both ways', async () => {
    const dir = tempDir();
    const handler = await capturingHandler({ DATA_CAPTURE_DIR: dir });
    const { body, headerLength } = binaryRequest();
    const event = restEvent('POST', '/v2/models/iris/infer', undefined, {
      headers: { 'Content-Type': 'application/octet-stream', 'Inference-Header-Content-Length': String(headerLength) },
    });
    // The body in base64, as the REST API sends every body (its binary media types are */*).
    const raw = await handler({ ...event, body: body.toString('base64'), isBase64Encoded: true });
    expect(raw.statusCode, raw.body).toBe(200);
    const [{ record }] = readCaptureDir(dir);
    const input = record.captureData.endpointInput;
    expect(input).toMatchObject({ observedContentType: 'application/octet-stream', mode: 'INPUT', encoding: 'BASE64' });
    expect(Buffer.from(input.data, 'base64').equals(body)).toBe(true);
    const output = record.captureData.endpointOutput;
    expect(output.encoding).toBe('BASE64');
    expect(output.data).toBe(raw.body);
    // The output's bytes are the model's probabilities, as float32.
    const answer = Buffer.from(output.data, 'base64');
    const jsonLength = Number(raw.headers['Inference-Header-Content-Length']);
    const tail = answer.subarray(jsonLength);
    const probabilities = new Float32Array(tail.buffer.slice(tail.byteOffset, tail.byteOffset + tail.length));
    const expected = mlp.predict(rows.map((row) => row.map(Math.fround))).flat();
    for (const [i, p] of probabilities.entries()) expect(p).toBeCloseTo(expected[i], 5);
  });

  it("keeps the caller's inference id, and replaces one SageMaker would refuse", async () => {
    const dir = tempDir();
    const handler = await capturingHandler({ DATA_CAPTURE_DIR: dir });
    const mine = await infer(handler, request, 'iris', { headers: { 'X-Inference-Id': 'user-42/req-7' } });
    const tooLong = await infer(handler, request, 'iris', { headers: { 'X-Inference-Id': 'x'.repeat(65) } });
    expect(mine.headers['X-Inference-Id']).toBe('user-42/req-7');
    expect(tooLong.headers['X-Inference-Id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(
      readCaptureDir(dir)
        .map((r) => r.record.eventMetadata.inferenceId)
        .sort(),
    ).toEqual([mine.headers['X-Inference-Id'], tooLong.headers['X-Inference-Id']].sort());
  });

  it('captures the sampled share only, and answers the inference id on every request', async () => {
    const none = tempDir();
    const off = await capturingHandler({ DATA_CAPTURE_DIR: none, DATA_CAPTURE_SAMPLING_PERCENT: '0' });
    const r = await infer(off, request, 'iris');
    expect(r.headers['X-Inference-Id']).toBeDefined();
    expect(readCaptureDir(none)).toHaveLength(0);

    const some = tempDir();
    const half = await capturingHandler({ DATA_CAPTURE_DIR: some, DATA_CAPTURE_SAMPLING_PERCENT: '30' });
    const n = 200;
    for (let i = 0; i < n; i++) await infer(half, request, 'iris');
    const captured = readCaptureDir(some).length;
    // 30 % of 200: the binomial's standard deviation is about 6.5; 5 of them either side.
    expect(captured).toBeGreaterThan(60 - 33);
    expect(captured).toBeLessThan(60 + 33);
  });

  it('captures the input only, or the output only, as DATA_CAPTURE_MODE says', async () => {
    for (const [mode, has, hasNot] of [
      ['Input', 'endpointInput', 'endpointOutput'],
      ['Output', 'endpointOutput', 'endpointInput'],
    ] as const) {
      const dir = tempDir();
      const handler = await capturingHandler({ DATA_CAPTURE_DIR: dir, DATA_CAPTURE_MODE: mode });
      await infer(handler, request, 'iris');
      const [{ record }] = readCaptureDir(dir);
      expect(record.captureData[has]).toBeDefined();
      expect(record.captureData[hasNot]).toBeUndefined();
    }
  });

  it('captures nothing but infer answers: not errors, not the other routes', async () => {
    const dir = tempDir();
    const handler = await capturingHandler({ DATA_CAPTURE_DIR: dir });
    expect((await infer(handler, { inputs: [{ name: 'nope', shape: [1], datatype: 'FP32', data: [1] }] }, 'iris')).status).toBe(400);
    expect((await handler(restEvent('GET', '/v2/models/iris'))).statusCode).toBe(200);
    expect(readCaptureDir(dir)).toHaveLength(0);
  });

  it('leaves a handler without capture as it was: no inference id header', async () => {
    const handler = await capturingHandler({});
    const r = await infer(handler, request, 'iris');
    expect(r.status).toBe(200);
    expect(r.headers['X-Inference-Id']).toBeUndefined();
  });

  it('refuses a bad setting as a misconfiguration naming the variable', async () => {
    for (const [env, named] of [
      [{ DATA_CAPTURE_DIR: tempDir(), DATA_CAPTURE_SAMPLING_PERCENT: '150' }, 'DATA_CAPTURE_SAMPLING_PERCENT'],
      [{ DATA_CAPTURE_DIR: tempDir(), DATA_CAPTURE_MODE: 'Both' }, 'DATA_CAPTURE_MODE'],
      [{ DATA_CAPTURE_DIR: tempDir(), DATA_CAPTURE_FIREHOSE_STREAM: 's' }, 'DATA_CAPTURE_FIREHOSE_STREAM'],
    ] as const) {
      const { result, text } = await logged(async () => infer(await capturingHandler(env), request, 'iris'));
      expect(result.status).toBe(500);
      expect(text).toContain(named);
    }
  });
});

describe('data capture to Firehose (the real AWS SDK, a local stand-in)', () => {
  let firehose: LocalFirehose;
  let restoreEnvironment: () => void;

  beforeAll(async () => {
    firehose = await startLocalFirehose();
    restoreEnvironment = setEnvironment(firehose.env());
  });
  afterAll(async () => {
    restoreEnvironment();
    await firehose.stop();
  });

  it('puts one record per request, a JSON line with its newline, on the named stream', async () => {
    const handler = await capturingHandler({ DATA_CAPTURE_FIREHOSE_STREAM: 'iris-capture' });
    const answers = [await infer(handler, request, 'iris'), await infer(handler, request, 'iris')];
    const records = firehose.records.get('iris-capture')!;
    expect(records).toHaveLength(2);
    expect(firehose.requests.every((r) => r.operation === 'PutRecord')).toBe(true);
    records.forEach((data, i) => {
      const text = data.toString('utf8');
      expect(text.endsWith('\n')).toBe(true);
      expect(text.slice(0, -1)).not.toContain('\n');
      const record = JSON.parse(text);
      expect(record.eventMetadata.inferenceId).toBe(answers[i].headers['X-Inference-Id']);
      expect(record.captureData.endpointOutput.data).toBe(answers[i].text);
    });
  });

  it('never changes the answer when Firehose fails: the record is dropped, logged and counted', async () => {
    const plain = await capturingHandler({});
    const expected = await infer(plain, request, 'iris');
    for (const error of ['ResourceNotFoundException', 'ServiceUnavailableException']) {
      firehose.respondWith(() => ({ error }));
      const savedMetrics = process.env.POWERTOOLS_METRICS_DISABLED;
      process.env.POWERTOOLS_METRICS_DISABLED = 'false';
      const handler = await capturingHandler({ DATA_CAPTURE_FIREHOSE_STREAM: 'missing' }).finally(() => {
        process.env.POWERTOOLS_METRICS_DISABLED = savedMetrics;
      });
      const { result, logs } = await logged(() => infer(handler, request, 'iris'));
      expect(result.status).toBe(200);
      expect(result.text).toBe(expected.text);
      expect(firehose.requests.length).toBeGreaterThan(0);
      expect(logs.find((l) => l.message?.startsWith('data capture failed'))?.error).toMatch(new RegExp(error === 'ResourceNotFoundException' ? error : '.'));
      const emf = logs.filter((l) => l._aws?.CloudWatchMetrics);
      expect(emf.some((l) => l.CaptureFailed === 1)).toBe(true);
      expect(emf.some((l) => l.Captured !== undefined)).toBe(false);
    }
    firehose.respondWith(() => ({}));
  });

  it("drops a record over Firehose's 1,000 KiB limit without sending it, and still answers", async () => {
    firehose.respondWith(() => ({}));
    const handler = await capturingHandler({ DATA_CAPTURE_FIREHOSE_STREAM: 'iris-big' });
    const n = 20_000;
    const big = { inputs: [{ name: 'input', shape: [n, 4], datatype: 'FP32', data: Array.from({ length: n * 4 }, (_, i) => (i % 7) / 7 - 0.5) }] };
    const { result, logs } = await logged(() => infer(handler, big, 'iris'));
    expect(result.status).toBe(200);
    expect(result.body.outputs[0].shape).toEqual([n, 3]);
    expect(firehose.requests).toHaveLength(0);
    expect(logs.find((l) => l.message?.startsWith('data capture failed'))?.error).toContain("over Firehose's limit");
  });
});
