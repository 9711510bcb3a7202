import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BATCH_FILES } from '../../../../contract/batch';
import { assembleEvent, csvItems, distributedMapBatchEvent, resultWriterFiles } from '../../../../fixtures/batch-events';
import { demoModel } from '../../../../fixtures/demo-model';
import { type LocalS3, startLocalS3 } from '../../../../tools/local-s3';
import { logisticRegressionModel } from '../../../../tools/onnx';
import { createHandler, type Handler, handlerForModel, writeModel } from '../../../support/handler';

const model = demoModel();
let handler: Handler;

beforeAll(async () => {
  handler = await handlerForModel(model.bytes, { MODEL_NAME: 'demo' });
});

const rows = [
  [0.5, -1.2, 3.3, 0.7],
  [1.0, 0.2, -0.4, 2.5],
  [-2.0, 0.1, 0.0, 1.5],
  [0.3, 0.3, -0.3, -0.3],
  [4.0, -4.0, 2.0, -2.0],
];

/** The probabilities of one row's answer line, next to the reference's. */
function expectAnswers(line: { outputs: { name: string; data: number[]; shape: number[] }[] }, expected: readonly (readonly number[])[]) {
  const probs = line.outputs.find((o) => o.name === 'probabilities')!;
  expect(probs.shape).toEqual([expected.length, 3]);
  const reference = model.predict(expected);
  for (const [k, p] of probs.data.entries()) expect(p).toBeCloseTo(reference[Math.floor(k / 3)][k % 3], 5);
  expect(line.outputs.find((o) => o.name === 'label')!.data).toEqual(model.predictLabels(expected));
}

describe('a Distributed Map batch, answered in the event', () => {
  it('answers one line per item, in order, with rows of the same shape in one run', async () => {
    const values = [rows[0], { input: rows[1] }, { id: 'req-7', inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 4], data: [...rows[2], ...rows[3]] }] }, rows[4]];
    const answer = await handler(distributedMapBatchEvent(values, { firstIndex: 100 }));
    expect(answer).toMatchObject({ items: 4, failed: 0, runs: 1 });
    const lines = answer.lines.map((l: string) => JSON.parse(l));
    expect(lines.map((l: { index: number }) => l.index)).toEqual([100, 101, 102, 103]);
    expectAnswers(lines[0], [rows[0]]);
    expectAnswers(lines[1], [rows[1]]);
    expectAnswers(lines[2], [rows[2], rows[3]]);
    expect(lines[2].id).toBe('req-7');
    expectAnswers(lines[3], [rows[4]]);
    expect(lines[0]).toMatchObject({ model_name: 'demo' });
  });

  it("reads CSV rows (the item reader's objects of text), their id column apart", async () => {
    const csv = `id,a,b,c,d\n${rows.map((r, k) => `cust-${k},${r.join(',')}`).join('\n')}`;
    const answer = await handler(distributedMapBatchEvent(csvItems(csv), { joinInput: true }));
    expect(answer).toMatchObject({ items: 5, failed: 0, runs: 1 });
    const lines = answer.lines.map((l: string) => JSON.parse(l));
    lines.forEach((line: { id: string; input: unknown }, k: number) => {
      expect(line.id).toBe(`cust-${k}`);
      expect(line.input).toEqual(csvItems(csv)[k]);
      expectAnswers(line as never, [rows[k]]);
    });
  });

  it('fails only the item the model refuses, with its reason, and answers the others', async () => {
    const values = [rows[0], { a: '0.1', b: 'n/a', c: '1', d: '2' }, [1, 2, 3], 'text', rows[1]];
    const answer = await handler(distributedMapBatchEvent(values));
    expect(answer).toMatchObject({ items: 5, failed: 3 });
    const lines = answer.lines.map((l: string) => JSON.parse(l));
    expectAnswers(lines[0], [rows[0]]);
    expectAnswers(lines[4], [rows[1]]);
    expect(lines[1]).toMatchObject({ index: 1, status: 400 });
    expect(lines[1].error).toMatch(/FP32/);
    expect(lines[2]).toMatchObject({ index: 2, status: 400 });
    expect(lines[2].error).toMatch(/shape|dimension|4/);
    expect(lines[3]).toMatchObject({ index: 3, status: 400, error: expect.stringMatching(/an item must be a JSON object/) });
  });

  it('refuses a batch whose items were not selected as {index, value}, naming the ItemSelector', async () => {
    await expect(handler({ BatchInput: { kind: 'cdk-serverless-inference.batch' }, Items: [rows[0]] })).rejects.toThrow(/\[400\].*ItemSelector/);
  });

  it('stacks the rows of another model too, checked against its own reference', async () => {
    const lr = logisticRegressionModel({ features: 3, seed: 7 });
    const h = await handlerForModel(lr.bytes);
    const data = Array.from({ length: 50 }, (_, k) => [k / 10, -k / 20, 1 - k / 50]);
    const answer = await h(distributedMapBatchEvent(data));
    expect(answer).toMatchObject({ items: 50, failed: 0, runs: 1 });
    const expected = lr.predict(data);
    for (const [k, l] of (answer.lines as string[]).entries()) expect(JSON.parse(l).outputs[0].data[0]).toBeCloseTo(expected[k], 5);
  });

  it('gives a preprocess hook each item as it is, one run each', async () => {
    const h = await createHandler(
      { MODEL_PATH: writeModel(model.bytes) },
      { preprocess: (body: { features: number[] }) => ({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: body.features }] }) },
    );
    const answer = await h(distributedMapBatchEvent(rows.map((features) => ({ features }))));
    expect(answer).toMatchObject({ items: 5, failed: 0, runs: 5 });
    for (const [k, l] of (answer.lines as string[]).entries()) expectAnswers(JSON.parse(l), [rows[k]]);
  });

  it('gives a postprocess hook one answer per item: rows are read, not stacked', async () => {
    const h = await createHandler(
      { MODEL_PATH: writeModel(model.bytes) },
      { postprocess: (response: { outputs: { name: string; data: number[] }[] }) => ({ label: response.outputs.find((o) => o.name === 'label')!.data[0] }) },
    );
    const answer = await h(distributedMapBatchEvent(rows));
    expect(answer).toMatchObject({ items: 5, failed: 0, runs: 5 });
    expect((answer.lines as string[]).map((l) => JSON.parse(l).label)).toEqual(model.predictLabels(rows));
  });

  it('fails the whole batch when the model cannot load, so that Step Functions retries it', async () => {
    const h = await handlerForModel(Buffer.from('not a model'));
    await expect(h(distributedMapBatchEvent([rows[0]]))).rejects.toThrow(/\[503\]/);
  });

  it('leaves other events as they were: an object with Items but no batch kind is a direct invocation', async () => {
    await expect(handler({ Items: [rows[0]] })).rejects.toThrow(/\[400\] the request has no 'inputs'/);
  });
});

describe('a batch job through S3 (the local S3 stand-in)', () => {
  let s3: LocalS3;
  let client: S3Client;
  const bucket = 'batch-output';
  const prefix = 'jobs/nightly/';
  const saved = { ...process.env };

  beforeAll(async () => {
    s3 = await startLocalS3();
    Object.assign(process.env, s3.env());
    await s3.createBucket(bucket);
    client = s3.client();
  });
  afterAll(async () => {
    process.env = saved;
    await s3.stop();
  });

  const read = async (key: string) => (await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body!.transformToString();

  it('writes each batch to a part, then assembles results in order, failures and a manifest', async () => {
    // Three batches: the second answered after the third, the third failed as a whole.
    const first = await handler(distributedMapBatchEvent([rows[0], rows[1]], { outputBucket: bucket, outputPrefix: prefix }));
    const lost = distributedMapBatchEvent([rows[4], { id: 'x', input: rows[0] }], { firstIndex: 4, outputBucket: bucket, outputPrefix: prefix });
    const second = await handler(distributedMapBatchEvent([rows[2], 'bad'], { firstIndex: 2, outputBucket: bucket, outputPrefix: prefix }));
    expect(first).toEqual({ part: `${prefix}parts/000000000000.jsonl`, items: 2, failed: 0, runs: 1 });
    expect(second).toMatchObject({ part: `${prefix}parts/000000000002.jsonl`, items: 2, failed: 1 });
    const rw = resultWriterFiles(bucket, 'map-results/', [{ input: lost, error: 'InferenceServerError', errorMessage: "[503] model 'demo' is not available" }]);
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: rw.manifestKey, Body: JSON.stringify(rw.manifest) }));
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: rw.failedKey, Body: JSON.stringify(rw.failed) }));

    const manifest = await handler(assembleEvent(bucket, prefix, { Bucket: bucket, Key: rw.manifestKey }));
    expect(manifest).toMatchObject({ items: 6, succeeded: 3, failed: 3, failedInBatches: 2, input: { key: 'rows.jsonl' }, executionId: expect.stringContaining('nightly') });
    expect(manifest.seconds).toBeGreaterThan(0);

    const results = (await read(`${prefix}${BATCH_FILES.RESULTS}`))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(results.map((r) => r.index)).toEqual([0, 1, 2, 3, 4, 5]);
    expectAnswers(results[0], [rows[0]]);
    expectAnswers(results[1], [rows[1]]);
    expectAnswers(results[2], [rows[2]]);
    const failures = (await read(`${prefix}${BATCH_FILES.FAILURES}`))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(failures.map((f) => f.index)).toEqual([3, 4, 5]);
    expect(failures[0]).toMatchObject({ status: 400 });
    expect(failures[2]).toMatchObject({ id: 'x', status: 500, error: "the batch's invocation failed: InferenceServerError: [503] model 'demo' is not available" });
    expect(JSON.parse(await read(`${prefix}${BATCH_FILES.MANIFEST}`))).toEqual(manifest);
    const left = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}parts/` }));
    expect(left.Contents ?? []).toEqual([]);
  });
});
