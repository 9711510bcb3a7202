/**
 * Asynchronous inference in the bundled handler, end to end with real parts: the demo model in
 * onnxruntime, the real AWS SDK against a local S3 (s3rver) and a local stand-in for SQS, SNS and
 * EventBridge (tools/local-messaging.ts), and the SQS events in the shape the AWS documentation
 * gives them (fixtures/sqs-events.ts). Answers are checked against the model's plain-JS reference.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, beforeEach, describe, expect, it, onTestFinished } from 'vitest';
import { DEMO_MODEL_NAME, demoModel } from '../../../../fixtures/demo-model';
import { call, restEvent } from '../../../../fixtures/events';
import { DOCUMENTED_SQS_EVENT, sqsEvent } from '../../../../fixtures/sqs-events';
import { type LocalMessaging, startLocalMessaging } from '../../../../tools/local-messaging';
import { type LocalS3, startLocalS3 } from '../../../../tools/local-s3';
import { inferenceHandlerDir } from '../../../../lib/private/package-paths';
import { type Handler, createHandler, writeModel } from '../../../support/handler';

const BUCKET = 'async-inference';
const CALLER_BUCKET = 'caller-data';
const OTHER_BUCKET = 'not-allowed';
const MODEL = demoModel();
const ROWS = [
  [0.5, -1.2, 3.3, 0.7],
  [1.0, 0.2, -0.4, 2.5],
];
const REQUEST = { id: 'client-42', inputs: [{ name: 'input', shape: [2, 4], datatype: 'FP32', data: ROWS.flat() }] };
const ASYNC_PATH = `/v2/models/${DEMO_MODEL_NAME}/infer-async`;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let s3: LocalS3;
let messaging: LocalMessaging;
let modelPath: string;
let handler: Handler;

function asyncEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    MODEL_PATH: modelPath,
    MODEL_NAME: DEMO_MODEL_NAME,
    ASYNC_BUCKET: BUCKET,
    ASYNC_QUEUE_URL: `${messaging.url}/123456789012/async-requests`,
    ASYNC_INPUT_BUCKETS: CALLER_BUCKET,
    ASYNC_EVENT_BUS: 'default',
    MODEL_S3_FORCE_PATH_STYLE: 'true',
    ...extra,
  };
}

beforeAll(async () => {
  s3 = await startLocalS3();
  for (const b of [BUCKET, CALLER_BUCKET, OTHER_BUCKET]) await s3.createBucket(b);
  messaging = await startLocalMessaging();
  // The SDK reads its endpoints, region and credentials from the process, as on Lambda.
  Object.assign(process.env, s3.env(), messaging.env());
  modelPath = writeModel(MODEL.bytes);
  handler = await createHandler(asyncEnv());
});

afterAll(async () => {
  await messaging?.stop();
  await s3?.stop();
});

beforeEach(() => messaging.respondWith(() => ({})));

const post = (body: unknown, headers: Record<string, string> = {}) => call(handler, restEvent('POST', ASYNC_PATH, body, { headers }));
const status = (id: string, h: Handler = handler) => call(h, restEvent('GET', `${ASYNC_PATH}/${id}`));

/** The messages sent to the queue since the last respondWith, their bodies parsed. */
const queued = () => messaging.calls('SQS.SendMessage').map((p) => ({ queueUrl: p.QueueUrl as string, body: p.MessageBody as string }));

async function readObject(uri: string): Promise<any> {
  const [, bucket, key] = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri)!;
  const got = await s3.client().send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return JSON.parse(await got.Body!.transformToString());
}

async function exists(uri: string): Promise<boolean> {
  const [, bucket, key] = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri)!;
  return s3
    .client()
    .send(new HeadObjectCommand({ Bucket: bucket, Key: key }))
    .then(
      () => true,
      () => false,
    );
}

/** The result's outputs against the model's plain-JS reference. */
function expectModelAnswer(result: any, rows: number[][] = ROWS) {
  const probabilities = result.outputs.find((o: any) => o.name === 'probabilities');
  const expected = MODEL.predict(rows).flat();
  expect(probabilities.shape).toEqual([rows.length, 3]);
  probabilities.data.forEach((p: number, i: number) => {
    expect(p).toBeCloseTo(expected[i], 5);
  });
  expect(result.outputs.find((o: any) => o.name === 'label').data).toEqual(MODEL.predictLabels(rows));
}

/** Accepts a request and returns its 202 answer and the message it queued. */
async function accept(body: unknown, headers: Record<string, string> = {}) {
  const r = await post(body, headers);
  expect(r.status, r.text).toBe(202);
  const sent = queued();
  expect(sent).toHaveLength(1);
  messaging.respondWith(() => ({}));
  return { answer: r.body, message: sent[0].body, queueUrl: sent[0].queueUrl };
}

describe('accept, queue, process, status', () => {
  it('accepts with 202, stores the request, queues it; the SQS event runs the model and the status turns from pending to done', async () => {
    const { answer, message, queueUrl } = await accept(REQUEST);
    expect(answer.id).toMatch(UUID);
    expect(answer.status).toBe('pending');
    expect(answer.output_location).toBe(`s3://${BUCKET}/results/${answer.id}.json`);
    expect(answer.status_path).toBe(`${ASYNC_PATH}/${answer.id}`);
    expect(queueUrl).toBe(asyncEnv().ASYNC_QUEUE_URL);
    // The stored request is the body as sent.
    expect(await readObject(`s3://${BUCKET}/requests/${answer.id}.json`)).toEqual(REQUEST);
    expect(JSON.parse(message)).toMatchObject({ id: answer.id, model_name: DEMO_MODEL_NAME, input_location: `s3://${BUCKET}/requests/${answer.id}.json` });

    expect((await status(answer.id)).body).toEqual({ id: answer.id, status: 'pending', output_location: answer.output_location });

    const batch = await handler(sqsEvent([{ body: message }]));
    expect(batch).toEqual({ batchItemFailures: [] });

    const done = await status(answer.id);
    expect(done.status).toBe(200);
    expect(done.body).toEqual({ id: answer.id, status: 'done', output_location: answer.output_location });
    const result = await readObject(answer.output_location);
    expect(result.id).toBe('client-42');
    expectModelAnswer(result);

    const events = messaging.calls('EventBridge.PutEvents');
    expect(events).toHaveLength(1);
    const [entry] = events[0].Entries;
    expect(entry).toMatchObject({ EventBusName: 'default', Source: 'cdk-serverless-inference', DetailType: 'Inference Succeeded' });
    expect(JSON.parse(entry.Detail)).toEqual({
      id: answer.id,
      model_name: DEMO_MODEL_NAME,
      status: 'succeeded',
      input_location: `s3://${BUCKET}/requests/${answer.id}.json`,
      output_location: answer.output_location,
    });
  });

  it('records a request the model refuses as failed, with the reason, says so in the status and notifies the failure, without a retry', async () => {
    const { answer, message } = await accept({ inputs: [{ name: 'features', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] });
    expect(await handler(sqsEvent([{ body: message }]))).toEqual({ batchItemFailures: [] });
    const failed = await status(answer.id);
    expect(failed.body).toMatchObject({ id: answer.id, status: 'failed', status_code: 400, failure_location: `s3://${BUCKET}/errors/${answer.id}.json` });
    expect(failed.body.error).toMatch(/features/);
    expect(await exists(answer.output_location)).toBe(false);
    const [entry] = messaging.calls('EventBridge.PutEvents')[0].Entries;
    expect(entry.DetailType).toBe('Inference Failed');
    expect(JSON.parse(entry.Detail)).toMatchObject({ id: answer.id, status: 'failed', error: failed.body.error });
  });

  it('answers a partial batch failure: only the messages to retry or to dead-letter are kept', async () => {
    const good = await accept(REQUEST);
    const refused = await accept({ inputs: [{ name: 'input', shape: [1, 3], datatype: 'FP32', data: [1, 2, 3] }] });
    const unnotified = await accept({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: ROWS[1] }] });
    // The third record's notification is refused (PutEvents answers 200 with a failed entry).
    messaging.respondWith((_, attempt) => (attempt === 2 ? { refuseEntries: true } : {}));
    const event = sqsEvent([
      { body: good.message, messageId: 'good' },
      { body: 'Test message.', messageId: 'not-a-request' },
      { body: refused.message, messageId: 'refused' },
      { body: unnotified.message, messageId: 'unnotified' },
    ]);
    expect(await handler(event)).toEqual({ batchItemFailures: [{ itemIdentifier: 'not-a-request' }, { itemIdentifier: 'unnotified' }] });
    expect((await status(good.answer.id)).body.status).toBe('done');
    expect((await status(refused.answer.id)).body.status).toBe('failed');
    // Its result is written; the retry writes it again and notifies.
    expectModelAnswer(await readObject(unnotified.answer.output_location), [ROWS[1]]);
    messaging.respondWith(() => ({}));
    expect(await handler(sqsEvent([{ body: unnotified.message, messageId: 'unnotified', receiveCount: 2 }]))).toEqual({ batchItemFailures: [] });
    expect(messaging.calls('EventBridge.PutEvents')).toHaveLength(1);
  });

  it('keeps for the dead-letter queue a message that would steer where the function reads or writes, or is for another model', async () => {
    const { message } = await accept(REQUEST);
    const base = JSON.parse(message);
    const forged = [
      { ...base, input_location: `s3://${OTHER_BUCKET}/x.json` },
      { ...base, input_location: `s3://${BUCKET}/results/${base.id}.json` },
      { ...base, output_location: `s3://${BUCKET}/requests/${base.id}.json` },
      { ...base, failure_location: `s3://${CALLER_BUCKET}/x.json` },
      { ...base, model_name: 'other' },
    ];
    const event = sqsEvent(forged.map((m, i) => ({ body: JSON.stringify(m), messageId: `forged-${i}` })));
    expect(await handler(event)).toEqual({ batchItemFailures: forged.map((_, i) => ({ itemIdentifier: `forged-${i}` })) });
    expect(await exists(base.output_location)).toBe(false);
    expect((await status(base.id)).body.status).toBe('pending');
  });

  it('keeps the documented example event\'s messages ("Test message.") for the dead-letter queue: they are not requests', async () => {
    const ids = DOCUMENTED_SQS_EVENT.Records.map((r) => ({ itemIdentifier: r.messageId }));
    expect(await handler(structuredClone(DOCUMENTED_SQS_EVENT))).toEqual({ batchItemFailures: ids });
  });

  it('retries a passing failure (the model cannot be loaded) and records it as failed at the last receive, still for the dead-letter queue', async () => {
    const broken = await createHandler(asyncEnv({ MODEL_PATH: `${modelPath}.missing`, MODEL_LOAD_RETRY_MS: '0', ASYNC_MAX_RECEIVE_COUNT: '3' }));
    const { answer, message } = await accept(REQUEST);
    expect(await broken(sqsEvent([{ body: message, messageId: 'm', receiveCount: 1 }]))).toEqual({ batchItemFailures: [{ itemIdentifier: 'm' }] });
    expect((await status(answer.id, broken)).body.status).toBe('pending');
    expect(messaging.calls('EventBridge.PutEvents')).toHaveLength(0);

    expect(await broken(sqsEvent([{ body: message, messageId: 'm', receiveCount: 3 }]))).toEqual({ batchItemFailures: [{ itemIdentifier: 'm' }] });
    const failed = (await status(answer.id, broken)).body;
    expect(failed).toMatchObject({ status: 'failed', status_code: 503 });
    expect(failed.error).toMatch(/not available.*gave up after 3 attempts/);
    expect(messaging.calls('EventBridge.PutEvents')[0].Entries[0].DetailType).toBe('Inference Failed');
  });

  it('answers 503 and keeps no pending request when the queue refuses the message', async () => {
    messaging.respondWith(() => ({ error: { status: 400, code: 'QueueDoesNotExist', message: 'The specified queue does not exist.' } }));
    const r = await post(REQUEST);
    expect(r.status).toBe(503);
    expect(r.headers['Retry-After']).toBe('1');
    expect(r.body.error).toMatch(/could not be queued/);
    expect(r.text).not.toContain('QueueDoesNotExist');
  });
});

describe('requests by reference', () => {
  it('runs a body the caller put in an allowed bucket (X-Inference-Input-Location), as SageMaker runs InputLocation', async () => {
    const rows = [[2, 0, -1, 0.5]];
    await s3.putObject(CALLER_BUCKET, 'batch/one.json', Buffer.from(JSON.stringify({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: rows.flat() }] })));
    const { answer, message } = await accept(undefined, { 'X-Inference-Input-Location': `s3://${CALLER_BUCKET}/batch/one.json` });
    expect(JSON.parse(message).input_location).toBe(`s3://${CALLER_BUCKET}/batch/one.json`);
    expect((await status(answer.id)).body.status).toBe('pending');
    expect(await handler(sqsEvent([{ body: message }]))).toEqual({ batchItemFailures: [] });
    expectModelAnswer(await readObject(answer.output_location), rows);
  });

  it('hands out a pre-signed upload URL; a body PUT there is then accepted by its location and run', async () => {
    const up = await call(handler, restEvent('POST', `${ASYNC_PATH}/uploads`));
    expect(up.status, up.text).toBe(200);
    expect(up.body.input_location).toMatch(new RegExp(`^s3://${BUCKET}/uploads/[0-9a-f-]{36}\\.json$`));
    expect(up.body.upload_url).toMatch(/X-Amz-Signature=/);
    expect(up.body.upload_url).not.toMatch(/x-amz-checksum/i);
    // The upload: a plain HTTP PUT, no AWS credentials, as a caller's client sends it.
    const put = await fetch(up.body.upload_url, { method: 'PUT', body: JSON.stringify(REQUEST) });
    expect(put.status, await put.text()).toBe(200);
    const { answer, message } = await accept(undefined, { 'X-Inference-Input-Location': up.body.input_location });
    expect(await handler(sqsEvent([{ body: message }]))).toEqual({ batchItemFailures: [] });
    expectModelAnswer(await readObject(answer.output_location));
  });

  it('refuses a location outside the allowed buckets (403), a missing object (400), a body beside a location (400)', async () => {
    const refused = await post(undefined, { 'X-Inference-Input-Location': `s3://${OTHER_BUCKET}/x.json` });
    expect(refused.status).toBe(403);
    expect(refused.body.error).toContain(`s3://${CALLER_BUCKET}/`);
    // The function's own results are not inputs either.
    expect((await post(undefined, { 'X-Inference-Input-Location': `s3://${BUCKET}/results/x.json` })).status).toBe(403);
    const missing = await post(undefined, { 'X-Inference-Input-Location': `s3://${CALLER_BUCKET}/nothing.json` });
    expect(missing.status).toBe(400);
    expect(missing.body.error).toMatch(/does not exist/);
    expect((await post(REQUEST, { 'X-Inference-Input-Location': `s3://${CALLER_BUCKET}/batch/one.json` })).status).toBe(400);
    expect((await post(undefined, { 'X-Inference-Input-Location': 'https://example.com/x' })).status).toBe(400);
    expect(queued()).toHaveLength(0);
  });

  it('refuses a referenced body over ASYNC_MAX_INPUT_BYTES with a 413', async () => {
    const small = await createHandler(asyncEnv({ ASYNC_MAX_INPUT_BYTES: '16' }));
    await s3.putObject(CALLER_BUCKET, 'big.json', Buffer.from(JSON.stringify(REQUEST)));
    const r = await call(small, restEvent('POST', ASYNC_PATH, undefined, { headers: { 'X-Inference-Input-Location': `s3://${CALLER_BUCKET}/big.json` } }));
    expect(r.status).toBe(413);
  });
});

describe('bad requests are 4xx naming what is wrong', () => {
  it('a body that is not JSON, not an object, or binary tensor data', async () => {
    expect((await post('{not json')).status).toBe(400);
    expect((await post([1, 2])).body.error).toMatch(/JSON object/);
    expect((await post(REQUEST, { 'Inference-Header-Content-Length': '10' })).status).toBe(415);
    expect(queued()).toHaveLength(0);
  });

  it('a status id that is not a UUID (400), an unknown one (404), a wrong method (405)', async () => {
    const bad = await status('..%2Fresults%2Fx');
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatch(/UUID/);
    const unknown = await status('00000000-0000-4000-8000-000000000000');
    expect(unknown.status).toBe(404);
    expect((await call(handler, restEvent('GET', ASYNC_PATH))).status).toBe(405);
    expect((await call(handler, restEvent('DELETE', `${ASYNC_PATH}/00000000-0000-4000-8000-000000000000`))).status).toBe(405);
  });
});

describe('SNS notifications', () => {
  it('publishes a success to the success topic and a failure to the error topic, with attributes to filter on', async () => {
    const success = 'arn:aws:sns:us-east-1:123456789012:inference-succeeded';
    const error = 'arn:aws:sns:us-east-1:123456789012:inference-failed';
    const sns = await createHandler(asyncEnv({ ASYNC_EVENT_BUS: '', ASYNC_SUCCESS_TOPIC_ARN: success, ASYNC_ERROR_TOPIC_ARN: error }));
    const ok = await accept(REQUEST);
    const bad = await accept({ inputs: 'none' });
    expect(await sns(sqsEvent([{ body: ok.message }, { body: bad.message }]))).toEqual({ batchItemFailures: [] });
    const published = messaging.calls('SNS.Publish');
    expect(published.map((p) => p.TopicArn)).toEqual([success, error]);
    expect(JSON.parse(published[0].Message)).toMatchObject({ id: ok.answer.id, status: 'succeeded', output_location: ok.answer.output_location });
    expect(JSON.parse(published[1].Message)).toMatchObject({ id: bad.answer.id, status: 'failed' });
    expect(published[0]['MessageAttributes.entry.1.Name']).toBe('status');
    expect(published[0]['MessageAttributes.entry.1.Value.StringValue']).toBe('succeeded');
    expect(messaging.calls('EventBridge.PutEvents')).toHaveLength(0);
  });
});

describe('without asynchronous inference', () => {
  it('leaves the routes 404 and takes an SQS event as a direct invocation, as before', async () => {
    const plain = await createHandler({ MODEL_PATH: modelPath, MODEL_NAME: DEMO_MODEL_NAME });
    expect((await call(plain, restEvent('POST', ASYNC_PATH, REQUEST))).status).toBe(404);
    await expect(plain(sqsEvent([{ body: 'x' }]))).rejects.toThrow(/\[400\]/);
    expect(queued()).toHaveLength(0);
  });
});

describe('a streaming endpoint (RESPONSE_STREAMING=1)', () => {
  it("answers the queue with the partial batch response as the stream's JSON value, as a buffered Invoke returns it", async () => {
    // The prebuilt entry as Lambda imports it, with the runtime's streamifyResponse marking the handler.
    // Inside the repository, so that the entry's require('onnxruntime-node') finds the package.
    const cache = path.resolve(__dirname, '../../../../node_modules/.cache');
    fs.mkdirSync(cache, { recursive: true });
    const dir = fs.mkdtempSync(path.join(cache, 'csi-async-streaming-'));
    onTestFinished(() => fs.rmSync(dir, { recursive: true, force: true }));
    fs.cpSync(inferenceHandlerDir(), dir, { recursive: true });
    (globalThis as { awslambda?: unknown }).awslambda = {
      streamifyResponse: <H extends object>(h: H) => Object.assign(h, { [Symbol.for('aws.lambda.runtime.handler.streaming')]: 'response' }),
      // Only HTTP answers use it; a queue's answer is a plain value.
      HttpResponseStream: {
        from() {
          throw new Error('an SQS event got an HTTP answer');
        },
      },
    };
    const saved = { ...process.env };
    Object.assign(process.env, asyncEnv({ RESPONSE_STREAMING: '1' }));
    let streaming: (event: unknown, stream: Writable) => Promise<void>;
    try {
      const entry = path.join(dir, 'index.mjs');
      streaming = (await import(`${pathToFileURL(entry).href}?async-streaming`)).handler;
    } finally {
      process.env = saved;
      delete (globalThis as { awslambda?: unknown }).awslambda;
    }
    const { answer, message } = await accept(REQUEST);
    const chunks: Buffer[] = [];
    let contentType: string | undefined;
    const stream = Object.assign(
      new Writable({
        write(chunk: Buffer, _e, cb) {
          chunks.push(chunk);
          cb();
        },
      }),
      { setContentType: (t: string) => (contentType = t) },
    );
    await streaming(sqsEvent([{ body: message }]), stream);
    expect(contentType).toBe('application/json');
    expect(JSON.parse(Buffer.concat(chunks).toString('utf8'))).toEqual({ batchItemFailures: [] });
    expectModelAnswer(await readObject(answer.output_location));
  });
});
