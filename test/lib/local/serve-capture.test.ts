/**
 * `serve --data-capture DIR` and `--shadow-model PATH` over real HTTP, as a user runs them: the
 * capture records land in DIR/yyyy/mm/dd/hh/ once each answer is sent, in the format an endpoint
 * writes to S3, with the shadow's answer beside the live one and how they compared (answers that
 * agree by argmax and answers that do not), checked against the models' plain-JS references.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalFirehose, startLocalFirehose } from '../../../tools/local-firehose';
import { temperatureSoftmaxModel } from '../../../tools/onnx';
import { hourOf, readCaptureDir } from '../../support/capture';
import { tempDir, writeModel } from '../../support/handler';
import { postJson } from '../../support/http';
import { type Served, startServe } from '../../support/serve';

const live = temperatureSoftmaxModel({ temperature: 1 });
const agreeing = [
  [1, 2, 0.5],
  [-1, 0, 3],
];
const request = (rows: number[][]) => JSON.stringify({ inputs: [{ name: 'scores', shape: [rows.length, 3], datatype: 'FP32', data: rows.flat() }] });

/** Capture records appear once the answer is sent: wait for `n` of them. */
async function records(dir: string, n: number): Promise<Array<{ folder: string; record: any }>> {
  for (let i = 0; i < 100; i++) {
    const found = readCaptureDir(dir);
    if (found.length >= n) return found;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`fewer than ${n} capture records in ${dir}: ${readCaptureDir(dir).length}`);
}

describe.each([
  ['one process', []],
  ['--workers 2', ['--workers', '2']],
])('serve --data-capture --shadow-model (%s)', (_name, extra) => {
  let server: Served;
  let dir: string;
  beforeAll(async () => {
    dir = tempDir();
    const shadow = writeModel(temperatureSoftmaxModel({ temperature: 2 }).bytes, 'shadow.onnx');
    server = await startServe(
      [
        '--model',
        writeModel(live.bytes, 'live.onnx'),
        '--name',
        'clf',
        '--model-version',
        'live-1',
        '--port',
        '0',
        '--data-capture',
        dir,
        '--shadow-model',
        shadow,
        '--log-level',
        'ERROR',
        ...extra,
      ],
      { env: { ...process.env, SHADOW_AGREEMENT: 'argmax', SHADOW_MODEL_VERSION: 'candidate-2' } },
    );
  }, 40_000);
  afterAll(() => {
    server?.child.kill('SIGTERM');
  });

  it('writes each request, its answer and the shadow’s beside it, and answers the inference id', async () => {
    expect(server.output()).toContain(`Capturing requests and answers to ${dir}/yyyy/mm/dd/hh/`);
    const agree = await postJson(server.url, 'clf', request(agreeing), { 'Content-Type': 'application/json', 'X-Inference-Id': 'agree-1' });
    const second = await postJson(server.url, 'clf', request([[0.1, 0.2, 0.15]]));
    expect(agree.status).toBe(200);
    expect(agree.headers['x-inference-id']).toBe('agree-1');
    const body = agree.body;
    const expected = live.predict(agreeing).flat();
    for (const [i, p] of (body.outputs[0].data as number[]).entries()) expect(p).toBeCloseTo(expected[i], 6);

    const found = await records(dir, 2);
    const byId = Object.fromEntries(found.map((f) => [f.record.eventMetadata.inferenceId, f]));
    const a = byId['agree-1'];
    expect(a.folder).toBe(hourOf(a.record.eventMetadata.inferenceTime));
    expect(a.record.captureData.endpointInput).toEqual({ observedContentType: 'application/json', mode: 'INPUT', data: request(agreeing), encoding: 'JSON' });
    expect(a.record.captureData.endpointOutput.data).toBe(agree.text);
    expect(a.record.eventMetadata).toMatchObject({ modelName: 'clf', modelVersion: 'live-1', shadow: { modelVersion: 'candidate-2', agreed: true } });
    const shadowAnswer = JSON.parse(a.record.captureData.shadowOutput.data);
    const sharper = temperatureSoftmaxModel({ temperature: 2 }).predict(agreeing).flat();
    for (const [i, p] of (shadowAnswer.outputs[0].data as number[]).entries()) expect(p).toBeCloseTo(sharper[i], 6);
    // The same classes, other probabilities: agreement by argmax, which the tolerance rule would refuse.
    expect(shadowAnswer.outputs[0].data).not.toEqual(body.outputs[0].data);

    // A request without an inference id gets a new one, answered and recorded.
    expect(second.headers['x-inference-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(byId[second.headers['x-inference-id'] as string].record.eventMetadata.shadow.agreed).toBe(true);
  });
});

describe('serve --shadow-model with a shadow that must disagree', () => {
  let server: Served;
  let dir: string;
  beforeAll(async () => {
    dir = tempDir();
    const reversed = writeModel(temperatureSoftmaxModel({ temperature: -1 }).bytes, 'reversed.onnx');
    server = await startServe(
      ['--model', writeModel(live.bytes, 'live.onnx'), '--name', 'clf', '--port', '0', '--data-capture', dir, '--shadow-model', reversed, '--log-level', 'ERROR'],
      {
        env: { ...process.env, SHADOW_AGREEMENT: 'argmax' },
      },
    );
  }, 40_000);
  afterAll(() => {
    server?.child.kill('SIGTERM');
  });

  it('records the disagreement and the row, and the caller still gets the live answer', async () => {
    const r = await postJson(server.url, 'clf', request(agreeing));
    expect(r.status).toBe(200);
    const [{ record }] = await records(dir, 1);
    expect(record.eventMetadata.shadow).toMatchObject({ agreed: false, detail: "output 'probabilities' row 0: the largest value is at 1, the shadow's at 2" });
    expect(record.captureData.endpointOutput.data).toBe(r.text);
  });
});

describe("capture to Firehose, off the caller's path (serve, streamed as deployed)", () => {
  let server: Served;
  let firehose: LocalFirehose;
  beforeAll(async () => {
    firehose = await startLocalFirehose();
    // Firehose takes a second and a half to take each record.
    firehose.respondWith(() => ({ delayMs: 1_500 }));
    server = await startServe(['--model', writeModel(live.bytes, 'live.onnx'), '--name', 'clf', '--port', '0', '--log-level', 'ERROR'], {
      env: { ...process.env, ...firehose.env(), DATA_CAPTURE_FIREHOSE_STREAM: 'clf-capture', RESPONSE_STREAMING: '1' },
    });
  }, 40_000);
  afterAll(async () => {
    server?.child.kill('SIGTERM');
    await firehose?.stop();
  });

  it('answers before the record reaches Firehose', async () => {
    const r = await postJson(server.url, 'clf', request(agreeing));
    expect(r.status).toBe(200);
    // The answer came while the record was still on its way: Firehose had not taken it yet.
    expect(firehose.records.get('clf-capture') ?? []).toHaveLength(0);
    // ...and the put was under way.
    for (let i = 0; i < 100 && firehose.requests.length === 0; i++) await new Promise((res) => setTimeout(res, 20));
    expect(firehose.requests.map((q) => q.operation)).toEqual(['PutRecord']);
    for (let i = 0; i < 100 && (firehose.records.get('clf-capture') ?? []).length === 0; i++) await new Promise((res) => setTimeout(res, 50));
    const [line] = firehose.records.get('clf-capture')!;
    const record = JSON.parse(line.toString('utf8'));
    expect(record.eventMetadata.inferenceId).toBe(r.headers['x-inference-id']);
    expect(record.captureData.endpointOutput.data).toBe(r.text);
  });
});
