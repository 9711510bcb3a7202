/**
 * The synthesized state machine run locally by an ASL interpreter (aws-local-stepfunctions), its
 * tasks pointed at the real handler bundle, its S3 side on the local S3 stand-in. The interpreter
 * runs Pass, Choice, Fail, Map and Task states with the definition's own payload templates and
 * intrinsic functions, but not a Distributed Map's S3 parts (ItemReader, ItemBatcher, ResultWriter):
 * the `Score` state is run by `distributedMap` below, which reads the same fields of the same state
 * and does what the Distributed Map documentation says of them, then runs the map's ItemProcessor
 * with the interpreter.
 */
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { StateMachine } from 'aws-local-stepfunctions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoModel } from '../../../fixtures/demo-model';
import { BatchInference, ModelSource, S3ModelEndpoint } from '../../../lib';
import { type LocalS3, startLocalS3 } from '../../../tools/local-s3';
import { type Handler, handlerForModel } from '../../support/handler';
import { ref } from '../../support/stacks';

// aws-local-stepfunctions 3 is written for Node.js 22 (Promise.withResolvers); the project runs on 20.
const P = Promise as unknown as { withResolvers?: () => unknown };
P.withResolvers ??= () => {
  let resolve: unknown;
  let reject: unknown;
  const promise = new Promise((a, b) => {
    resolve = a;
    reject = b;
  });
  return { promise, resolve, reject };
};

const BUCKET = 'batch-data';
const FUNCTION_ARN = 'arn:aws:lambda:us-east-1:123456789012:function:inference:live';
type Json = any;

/** The synthesized definition, the data bucket's name and the partition filled in, every other reference the function's ARN. */
function synthesizedDefinition(itemsPerBatch: number, toleratedFailurePercentage?: number): Json {
  const app = new App();
  const stack = new Stack(app, 'Stack');
  const endpoint = new S3ModelEndpoint(stack, 'Endpoint', { model: ModelSource.fromAsset(`${__dirname}/../../../demo/model/demo.onnx`), modelName: 'demo' });
  const data = new s3.Bucket(stack, 'Data');
  new BatchInference(stack, 'Batch', { inferenceFunction: endpoint.inferenceFunction, inputBucket: data, inputKey: 'rows.jsonl', itemsPerBatch, toleratedFailurePercentage });
  const template = Template.fromStack(stack);
  const body = Object.values(template.findResources('AWS::StepFunctions::StateMachine'))[0].Properties.DefinitionString;
  const dataRef = ref(data).Ref;
  const parts: unknown[] = body['Fn::Join'][1];
  return JSON.parse(
    parts
      .map((p) => {
        if (typeof p === 'string') return p;
        const r = (p as { Ref?: string }).Ref;
        return r === 'AWS::Partition' ? 'aws' : r === dataRef ? BUCKET : FUNCTION_ARN;
      })
      .join(''),
  );
}

/** A JSONPath of the `$.a.b` kind, as the definition uses them. */
function at(value: Json, path: string): Json {
  return path
    .replace(/^\$\.?/, '')
    .split('.')
    .filter(Boolean)
    .reduce((v, k) => v?.[k], value);
}

/**
 * What a Distributed Map does with the `Score` state's fields (Developer Guide: ItemReader,
 * ItemSelector, ItemBatcher, ResultWriter): read the JSONL object its reader names, select each
 * item as its ItemSelector says, batch them with BatchInput (its paths read from the state's input),
 * run a child execution of the ItemProcessor per batch, and export the failed ones with the
 * ResultWriter (manifest.json and FAILED_0.json); the state's result is the map's output.
 */
function distributedMap(state: Json, client: S3Client, runChild: (input: Json) => Promise<Json>) {
  return async (input: Json): Promise<Json> => {
    const reader = state.ItemReader;
    expect(reader.Resource).toBe('arn:aws:states:::s3:getObject');
    expect(reader.ReaderConfig.InputType).toBe('JSONL');
    const bucket = reader.Parameters.Bucket;
    const key = at(input, reader.Parameters['Key.$']);
    const text = await (await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body!.transformToString();
    const values = text
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l));
    expect(state.ItemSelector).toEqual({ 'index.$': '$$.Map.Item.Index', 'value.$': '$$.Map.Item.Value' });
    const items = values.map((value, index) => ({ index, value }));
    const batcher = state.ItemBatcher;
    const batchInput = Object.fromEntries(Object.entries(batcher.BatchInput).map(([k, v]) => (k.endsWith('.$') ? [k.slice(0, -2), at(input, v as string)] : [k, v])));
    const failed: Json[] = [];
    for (let first = 0; first < items.length; first += batcher.MaxItemsPerBatch) {
      const child = { BatchInput: batchInput, Items: items.slice(first, first + batcher.MaxItemsPerBatch) };
      expect(Buffer.byteLength(JSON.stringify(child.Items))).toBeLessThanOrEqual(batcher.MaxInputBytesPerBatch);
      try {
        await runChild(child);
      } catch (e) {
        const cause = (e as { cause?: Error }).cause ?? (e as Error);
        failed.push({
          Input: JSON.stringify(child),
          InputDetails: { Included: true },
          Status: 'FAILED',
          Error: cause.name,
          Cause: JSON.stringify({ errorMessage: cause.message }),
        });
      }
    }
    const writer = state.ResultWriter;
    const prefix = `${writer.Parameters.Prefix}/run-1/`;
    const put = (k: string, body: unknown) => client.send(new PutObjectCommand({ Bucket: writer.Parameters.Bucket, Key: k, Body: JSON.stringify(body) }));
    await put(`${prefix}FAILED_0.json`, failed);
    await put(`${prefix}manifest.json`, { ResultFiles: { FAILED: failed.length ? [{ Key: `${prefix}FAILED_0.json` }] : [], PENDING: [], SUCCEEDED: [] } });
    if (failed.length / Math.ceil(items.length / batcher.MaxItemsPerBatch) > state.ToleratedFailurePercentage / 100) {
      throw Object.assign(new Error('the tolerated failure threshold was exceeded'), { name: 'States.ExceedToleratedFailureThreshold' });
    }
    return {
      MapRunArn: 'arn:aws:states:us-east-1:123456789012:mapRun:Batch/Score:run-1',
      ResultWriterDetails: { Bucket: writer.Parameters.Bucket, Key: `${prefix}manifest.json` },
    };
  };
}

describe('the batch state machine, run by an ASL interpreter against the handler bundle and the local S3', () => {
  const model = demoModel();
  let s3Server: LocalS3;
  let client: S3Client;
  let handler: Handler;
  const saved = { ...process.env };

  beforeAll(async () => {
    s3Server = await startLocalS3();
    Object.assign(process.env, s3Server.env());
    await s3Server.createBucket(BUCKET);
    client = s3Server.client();
    handler = await handlerForModel(model.bytes, { MODEL_NAME: 'demo' });
  });
  afterAll(async () => {
    process.env = saved;
    await s3Server.stop();
  });

  /** Runs the definition as a Standard execution named `name`, every Lambda task on the handler bundle. */
  async function execute(definition: Json, input: Json, name: string, fn: Handler = handler): Promise<Json> {
    const { Score, ...others } = definition.States;
    const processor = Score.ItemProcessor;
    expect(processor.ProcessorConfig).toEqual({ Mode: 'DISTRIBUTED', ExecutionType: 'EXPRESS' });
    const invoke = (state: string) => async (payload: Json) => {
      expect(definition.States[state]?.Resource ?? processor.States[state].Resource).toBe(FUNCTION_ARN);
      return fn(payload, { awsRequestId: `${name}-${state}` });
    };
    const child = new StateMachine({ StartAt: processor.StartAt, States: processor.States });
    const runChild = (childInput: Json) =>
      child.run(childInput, { overrides: { taskResourceLocalHandlers: { [processor.StartAt]: invoke(processor.StartAt) }, retryIntervalOverrides: { [processor.StartAt]: 0 } } })
        .result;
    // The Distributed Map as a Task of the same place in the flow, run by distributedMap.
    const parent = new StateMachine({
      StartAt: definition.StartAt,
      States: { ...others, Score: { Type: 'Task', Resource: 'arn:aws:lambda:us-east-1:123456789012:function:distributed-map', ResultPath: Score.ResultPath, Next: Score.Next } },
    });
    const execution = parent.run(input, {
      overrides: { taskResourceLocalHandlers: { Score: distributedMap(Score, client, runChild), Assemble: invoke('Assemble') } },
      context: {
        Execution: { Id: `arn:aws:states:us-east-1:123456789012:execution:Batch:${name}`, Name: name, StartTime: new Date(Date.now() - 1000).toISOString(), Input: input },
      },
    });
    return execution.result;
  }

  const read = async (key: string) => (await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))).Body!.transformToString();

  it('scores the input file into results in order, failures and a manifest, under the execution’s folder', async () => {
    const rows = Array.from({ length: 57 }, (_, k) => [k / 10, -k / 20, Math.sin(k), Math.cos(k)]);
    const lines = rows.map((r) => JSON.stringify(r));
    lines[13] = JSON.stringify([1, 2]);
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'rows.jsonl', Body: `${lines.join('\n')}\n` }));
    const manifest = await execute(synthesizedDefinition(10), {}, 'nightly-1');
    expect(manifest).toMatchObject({ items: 57, succeeded: 56, failed: 1, failedInBatches: 0, input: { bucket: BUCKET, key: 'rows.jsonl' } });
    const results = (await read('batch-output/nightly-1/results.jsonl'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(results.map((r) => r.index)).toEqual(rows.map((_, k) => k));
    const labels = model.predictLabels(rows);
    for (const [k, r] of results.entries()) if (k !== 13) expect(r.outputs.find((o: Json) => o.name === 'label').data, `line ${k}`).toEqual([labels[k]]);
    expect(JSON.parse((await read('batch-output/nightly-1/failures.jsonl')).trim())).toMatchObject({ index: 13, status: 400 });
    expect(JSON.parse(await read('batch-output/nightly-1/manifest.json'))).toEqual(manifest);
  }, 60_000);

  it('retries a batch whose invocation fails, then counts it against the tolerated failures', async () => {
    const rows = Array.from({ length: 30 }, (_, k) => [k, -k, k / 2, 1]);
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'rows.jsonl', Body: `${rows.map((r) => JSON.stringify(r)).join('\n')}\n` }));
    // The function fails as it does when its model cannot load (an InferenceServerError), for the batch holding item 12.
    let attempts = 0;
    const failing: Handler = async (event, context) => {
      if ((event as Json).Items?.some((i: Json) => i.index === 12)) {
        attempts++;
        throw Object.assign(new Error("[503] model 'demo' is not available"), { name: 'InferenceServerError' });
      }
      return handler(event, context);
    };
    // One batch in three fails: over the default 5 %, the job fails; within 40 %, it goes on.
    await expect(execute(synthesizedDefinition(10), {}, 'strict-1', failing)).rejects.toThrow(/tolerated failure threshold/);
    expect(attempts).toBe(4); // the first call and the 3 retries of InferenceServerError
    const manifest = await execute(synthesizedDefinition(10, 40), {}, 'tolerant-1', failing);
    expect(manifest).toMatchObject({ items: 30, succeeded: 20, failed: 10, failedInBatches: 10 });
    const failures = (await read('batch-output/tolerant-1/failures.jsonl'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(failures.map((f) => f.index)).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
    expect(failures[0]).toMatchObject({ status: 500, error: "the batch's invocation failed: InferenceServerError: [503] model 'demo' is not available" });
  }, 60_000);

  it('reads the input key and output prefix from the execution’s input, and refuses a prefix outside its own', async () => {
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'other.jsonl', Body: `${JSON.stringify([0.5, -1.2, 3.3, 0.7])}\n` }));
    const manifest = await execute(synthesizedDefinition(500), { inputKey: 'other.jsonl', outputPrefix: 'batch-output/rerun/' }, 'rerun-1');
    expect(manifest).toMatchObject({ items: 1, succeeded: 1, output: { results: 'batch-output/rerun/results.jsonl' } });
    await expect(execute(synthesizedDefinition(500), { outputPrefix: 'elsewhere/' }, 'bad-1')).rejects.toThrow(/outputPrefix must start with 'batch-output\/'/);
  }, 60_000);
});
