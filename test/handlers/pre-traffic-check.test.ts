/**
 * The pre-traffic hook, as bundled, with the real Lambda and CodeDeploy clients talking to local
 * stand-ins (tools/local-lambda.ts, tools/local-codedeploy.ts). The SDK finds them through
 * AWS_ENDPOINT_URL_LAMBDA and AWS_ENDPOINT_URL_CODEDEPLOY; AWS_ENDPOINT_URL points at a closed port,
 * so a client that ignored its service-specific variable would fail every test.
 *
 * Behind the Lambda stand-in, the new version is the real inference handler bundle serving a real
 * model (tools/local-function.ts), except where a test needs an answer no model gives: a malformed
 * one, which a broken version (its hooks, say) could still send.
 */
import * as fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { HOOKS_MODULE_FILE } from '../../contract/hooks';
import { DEMO_MODEL_FILE } from '../../fixtures/demo-model';
import { ModelSource, S3ModelEndpoint } from '../../lib';
import { inferenceHandlerDir } from '../../lib/private/package-paths';
import { startLocalCodeDeploy, type LocalCodeDeploy } from '../../tools/local-codedeploy';
import { type LocalFunction, startLocalFunction } from '../../tools/local-function';
import { functionError, startLocalLambda, type LambdaAnswer, type LocalLambda } from '../../tools/local-lambda';
import { buildOnnxModel, convModel, mlpModel } from '../../tools/onnx';
import { writeModel } from '../support/handler';
import { assetFolder, resourceProps } from '../support/stacks';

const ROOT = path.resolve(__dirname, '../..');
const BUNDLE = path.join(ROOT, 'assets', 'handlers', 'pre-traffic-check', 'index.mjs');
const REGION = 'eu-west-1';
const TARGET = `arn:aws:lambda:${REGION}:123456789012:function:inference:7`;
const EVENT = { DeploymentId: 'd-4X2Y8ABCD', LifecycleEventHookExecutionId: 'eyJlbmNyeXB0ZWREYXRhIjoi-hook-1' };
const CONFIG_VARS = [
  'TARGET_VERSION_ARN',
  'SAMPLE_REQUEST',
  'SAMPLE_REQUEST_FILE',
  'EXPECTED_OUTPUTS',
  'EXPECTED_ANSWER',
  'EXPECTED_ANSWER_FILE',
  'ANSWER_TOLERANCE',
  'CHECK_TIMEOUT_MS',
  'VARIANT_SAMPLE_FILES',
  'LAMBDA_TASK_ROOT',
];

// Odd spacing and an integer past 2^53 survive only if the text is sent as configured, never re-serialised.
const OIP_SAMPLE = '{ "inputs": [ {"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]} ], "id": "r-1", "parameters": {"seed": 9007199254740993} }';
const OIP_ROW = [5.1, 3.5, 1.4, 0.2];
const INSTANCES_SAMPLE = '{"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]}';

type Handler = (event: unknown, context?: { getRemainingTimeInMillis(): number }) => Promise<{ status: string; problems: string[] }>;

interface Run {
  result?: { status: string; problems: string[] };
  error?: Error;
  /** The handler's JSON log lines. */
  log: any[];
  elapsedMs: number;
}

let lambda: LocalLambda;
let codedeploy: LocalCodeDeploy;
let handler: Handler;
const savedEnv = { ...process.env };

/** The model of a good new version: `input` FP32 [batch, 4] → `probabilities` FP32 [batch, 3] and `label` INT64 [batch]. */
const IRIS = mlpModel({ inputs: 4, hidden: 8, classes: 3, seed: 11, label: true });
/** The new version, a good one: the inference handler serving IRIS. */
let good: LocalFunction;
const versions: LocalFunction[] = [];

/** A new version: the inference handler bundle (or a copy in `codeDir`) with `environment`, as Lambda runs it. */
function newVersion(environment: Record<string, string>, codeDir = inferenceHandlerDir()): LocalFunction {
  const fn = startLocalFunction({ codeDir, environment: { MODEL_NAME: 'iris', MODEL_LOAD_RETRY_MS: '0', ...environment } });
  versions.push(fn);
  return fn;
}

async function closedPortUrl(): Promise<string> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

beforeAll(async () => {
  if (!fs.existsSync(BUNDLE)) throw new Error(`${BUNDLE} is missing: run npx tsx scripts/build-assets.ts`);
  [lambda, codedeploy] = await Promise.all([startLocalLambda(), startLocalCodeDeploy()]);
  Object.assign(process.env, lambda.env(), codedeploy.env(), {
    AWS_ENDPOINT_URL: await closedPortUrl(),
    AWS_REGION: REGION,
    AWS_ACCESS_KEY_ID: 'AKIDPRETRAFFICTEST00',
    AWS_SECRET_ACCESS_KEY: 'pre-traffic-test-secret',
  });
  delete process.env.AWS_PROFILE;
  delete process.env.AWS_SESSION_TOKEN;
  ({ handler } = (await import(pathToFileURL(BUNDLE).href)) as { handler: Handler });
  good = newVersion({ MODEL_PATH: writeModel(IRIS.bytes) });
});

beforeEach(() => {
  codedeploy.reset();
  process.env.AWS_ENDPOINT_URL_LAMBDA = lambda.url;
  for (const name of CONFIG_VARS) delete process.env[name];
});

afterEach(() => vi.restoreAllMocks());

afterAll(async () => {
  await Promise.all([lambda?.stop(), codedeploy?.stop(), ...versions.map((v) => v.stop())]);
  for (const key of Object.keys(process.env)) if (!(key in savedEnv)) delete process.env[key];
  Object.assign(process.env, savedEnv);
});

/** Runs the hook once with `env` as its configuration and the function answering `answer`, or being `answer`. */
async function run(env: Record<string, string>, answer: LambdaAnswer | LocalFunction | undefined, event: unknown = EVENT, context?: Parameters<Handler>[1]): Promise<Run> {
  Object.assign(process.env, env);
  lambda.respondWith((invocation) => (answer && 'invoke' in answer ? answer.invoke(invocation) : (answer ?? { payload: { model_name: 'unused', outputs: [] } })));
  const lines: string[] = [];
  for (const level of ['log', 'warn', 'error'] as const) {
    vi.spyOn(console, level).mockImplementation((...args: unknown[]) => void lines.push(args.map(String).join(' ')));
  }
  const started = Date.now();
  const out: Run = { log: [], elapsedMs: 0 };
  try {
    out.result = await handler(event, context);
  } catch (e) {
    out.error = e as Error;
  }
  out.elapsedMs = Date.now() - started;
  vi.restoreAllMocks();
  out.log = lines.flatMap((l) => {
    try {
      const parsed = JSON.parse(l);
      return parsed?.message === 'pre-traffic check' ? [parsed] : [];
    } catch {
      return [];
    }
  });
  return out;
}

/** The reports CodeDeploy accepted, reduced to what it was told. */
function reports(): Array<{ deploymentId?: string; lifecycleEventHookExecutionId?: string; status?: string }> {
  return codedeploy.calls.filter((c) => !c.error).map(({ deploymentId, lifecycleEventHookExecutionId, status }) => ({ deploymentId, lifecycleEventHookExecutionId, status }));
}

function expectOneReport(status: 'Succeeded' | 'Failed'): void {
  expect(reports()).toEqual([{ deploymentId: EVENT.DeploymentId, lifecycleEventHookExecutionId: EVENT.LifecycleEventHookExecutionId, status }]);
}

/** The run failed the deployment for reasons matching every one of `patterns`, each in the result and the log. */
function expectFailedFor(r: Run, ...patterns: RegExp[]): void {
  expect(r.error).toBeUndefined();
  expect(r.result?.status).toBe('Failed');
  expectOneReport('Failed');
  expect(r.log).toHaveLength(1);
  expect(r.log[0]).toMatchObject({ status: 'Failed', reported: true, deploymentId: EVENT.DeploymentId });
  expect(r.log[0].problems).toEqual(r.result!.problems);
  for (const p of patterns) expect(r.result!.problems.join('\n')).toMatch(p);
}

const tensor = (name: string, datatype: string, shape: number[], data: unknown[]) => ({ name, datatype, shape, data });

describe('a good version', () => {
  it('reports Succeeded once, after invoking exactly the new version with the sample request as configured', async () => {
    const r = await run({ TARGET_VERSION_ARN: TARGET, SAMPLE_REQUEST: OIP_SAMPLE }, good);

    expect(r.error).toBeUndefined();
    expect(r.result).toEqual({ status: 'Succeeded', problems: [] });
    expectOneReport('Succeeded');
    const report = codedeploy.calls[0];
    expect(report.operation).toBe('PutLifecycleEventHookExecutionStatus');
    expect(report.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDPRETRAFFICTEST00\/\d{8}\/eu-west-1\/codedeploy\//);

    expect(lambda.invocations).toHaveLength(1);
    const call = lambda.invocations[0];
    expect(call.functionName).toBe(TARGET);
    expect(call.qualifier).toBeUndefined();
    expect(call.headers['x-amz-invocation-type']).toBe('RequestResponse');
    expect(call.text).toBe(OIP_SAMPLE);
    expect(call.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDPRETRAFFICTEST00\/\d{8}\/eu-west-1\/lambda\//);

    expect(r.log).toHaveLength(1);
    expect(r.log[0]).toMatchObject({
      status: 'Succeeded',
      problems: [],
      deploymentId: EVENT.DeploymentId,
      lifecycleEventHookExecutionId: EVENT.LifecycleEventHookExecutionId,
      checked: { target: TARGET, request: { form: 'inputs' }, expectedAnswer: false },
      answer: {
        outputs: [
          { name: 'probabilities', datatype: 'FP32', shape: [1, 3], elements: 3 },
          { name: 'label', datatype: 'INT64', shape: [1], elements: 1 },
        ],
      },
      reported: true,
    });
  });

  it('passes with the expected outputs and the expected answer, within the tolerance', async () => {
    const [probabilities] = IRIS.predict([OIP_ROW]);
    const expected = {
      outputs: [
        { name: 'probabilities', datatype: 'FP32', shape: [1, 3], data: probabilities },
        { name: 'label', data: [String(IRIS.predictLabels([OIP_ROW])[0])] },
      ],
    };
    const r = await run(
      { TARGET_VERSION_ARN: TARGET, SAMPLE_REQUEST: OIP_SAMPLE, EXPECTED_OUTPUTS: '["label", "probabilities"]', EXPECTED_ANSWER: JSON.stringify(expected) },
      good,
    );
    expect(r.result).toEqual({ status: 'Succeeded', problems: [] });
    expect(r.log[0].checked).toMatchObject({ expectedAnswer: true, tolerance: 0.0001 });
    expectOneReport('Succeeded');
  });

  it('accepts one prediction per instance, and the expected predictions', async () => {
    const rows = JSON.parse(INSTANCES_SAMPLE).instances as number[][];
    const r = await run({ TARGET_VERSION_ARN: TARGET, SAMPLE_REQUEST: INSTANCES_SAMPLE }, good);
    expect(r.result).toEqual({ status: 'Succeeded', problems: [] });
    expectOneReport('Succeeded');
    expect(lambda.invocations[0].text).toBe(INSTANCES_SAMPLE);
    expect(r.log[0].checked.request).toEqual({ form: 'instances', instanceCount: 3 });

    // Computed apart from the model, in float64: the answer is float32.
    codedeploy.reset();
    const predictions = IRIS.predict(rows).map((probabilities, i) => ({ probabilities, label: IRIS.predictLabels(rows)[i] }));
    const withExpected = await run({ TARGET_VERSION_ARN: TARGET, SAMPLE_REQUEST: INSTANCES_SAMPLE, EXPECTED_ANSWER: JSON.stringify({ predictions }) }, good);
    expect(withExpected.result).toEqual({ status: 'Succeeded', problems: [] });

    codedeploy.reset();
    predictions[1].label = (predictions[1].label + 1) % 3;
    const wrong = await run({ TARGET_VERSION_ARN: TARGET, SAMPLE_REQUEST: INSTANCES_SAMPLE, EXPECTED_ANSWER: JSON.stringify({ predictions }) }, good);
    expectFailedFor(wrong, new RegExp(`'predictions' differs from the expected answer at 1 place\\(s\\): predictions\\[1\\]\\.label is 2, expected ${predictions[1].label}`));
  });

  it('accepts the expected outputs in any order, BYTES data, a scalar and an empty tensor', async () => {
    const r = await run(
      { TARGET_VERSION_ARN: TARGET, SAMPLE_REQUEST: OIP_SAMPLE, EXPECTED_OUTPUTS: '["label", "probabilities", "score", "empty"]' },
      {
        payload: {
          model_name: 'iris',
          outputs: [
            tensor('probabilities', 'FP32', [1, 3], [0.9, 0.07, 0.03]),
            tensor('label', 'BYTES', [1, 2], ['setosa', 'versicolor']),
            tensor('score', 'FP64', [], [0.9]),
            tensor('empty', 'INT64', [0, 2], []),
          ],
        },
      },
    );
    expect(r.result).toEqual({ status: 'Succeeded', problems: [] });
    expectOneReport('Succeeded');
  });
});

describe('a broken version fails the deployment, against the real handler', () => {
  /** `scores` FP32 [batch, 4] = `input` × NaN: a model that answers only NaN. */
  const NAN_MODEL = buildOnnxModel({
    graphName: 'nan',
    inputs: [{ name: 'input', elemType: 'float32', shape: ['batch', 4] }],
    outputs: [{ name: 'scores', elemType: 'float32', shape: ['batch', 4] }],
    initializers: [{ name: 'nan', elemType: 'float32', dims: [1], values: [Number.NaN] }],
    nodes: [{ opType: 'Mul', inputs: ['input', 'nan'], outputs: ['scores'] }],
  });
  /** `ids` INT64 = Identity(`x` INT64). */
  const INT64_MODEL = buildOnnxModel({
    graphName: 'ids',
    inputs: [{ name: 'x', elemType: 'int64', shape: ['n'] }],
    outputs: [{ name: 'ids', elemType: 'int64', shape: ['n'] }],
    nodes: [{ opType: 'Identity', inputs: ['x'], outputs: ['ids'] }],
  });
  const INT64_SAMPLE = '{"inputs": [{"name": "x", "shape": [2], "datatype": "INT64", "data": ["9007199254740993", 7]}]}';

  it('when its model answers only NaN', async () => {
    const r = await run({ TARGET_VERSION_ARN: TARGET, SAMPLE_REQUEST: OIP_SAMPLE }, newVersion({ MODEL_PATH: writeModel(NAN_MODEL) }));
    expectFailedFor(r, /output 0 \('scores'\): 4 of 4 values are NaN or infinite, e\.g\. \[0\] NaN, \[1\] NaN, \[2\] NaN/);
  });

  it('unless the expected answer says NaN', async () => {
    const expected = { outputs: [{ name: 'scores', data: ['NaN', 'NaN', 'NaN', 'NaN'] }] };
    const r = await run({ TARGET_VERSION_ARN: TARGET, SAMPLE_REQUEST: OIP_SAMPLE, EXPECTED_ANSWER: JSON.stringify(expected) }, newVersion({ MODEL_PATH: writeModel(NAN_MODEL) }));
    expect(r.result).toEqual({ status: 'Succeeded', problems: [] });
    expectOneReport('Succeeded');
  });

  it('when it serves another model than the expected answer was made with', async () => {
    const other = newVersion({ MODEL_PATH: writeModel(mlpModel({ inputs: 4, hidden: 8, classes: 3, seed: 12, label: true }).bytes) });
    const expected = { outputs: [{ name: 'probabilities', data: IRIS.predict([OIP_ROW])[0] }] };
    const r = await run({ TARGET_VERSION_ARN: TARGET, SAMPLE_REQUEST: OIP_SAMPLE, EXPECTED_ANSWER: JSON.stringify(expected) }, other);
    expectFailedFor(r, /output 0 \('probabilities'\): \d of 3 values differ from the expected answer \(tolerance 0\.0001\): \[\d\] [\d.e-]+, expected [\d.e-]+/);
  });

  it('when an INT64 past 2^53 is one off, compared with every digit', async () => {
    const ids = newVersion({ MODEL_PATH: writeModel(INT64_MODEL) });
    const answer = (data: unknown[]) => JSON.stringify({ outputs: [{ name: 'ids', datatype: 'INT64', data }] });
    const right = await run({ TARGET_VERSION_ARN: TARGET, SAMPLE_REQUEST: INT64_SAMPLE, EXPECTED_ANSWER: answer(['9007199254740993', 7]) }, ids);
    expect(right.result).toEqual({ status: 'Succeeded', problems: [] });

    codedeploy.reset();
    const wrong = await run({ TARGET_VERSION_ARN: TARGET, SAMPLE_REQUEST: INT64_SAMPLE, EXPECTED_ANSWER: answer(['9007199254740992', 7]) }, ids);
    expectFailedFor(wrong, /output 0 \('ids'\): 1 of 2 values differ from the expected answer \(tolerance 0\.0001\): \[0\] 9007199254740993, expected "9007199254740992"/);
  });

  it('when it cannot load its model', async () => {
    const r = await run({ TARGET_VERSION_ARN: TARGET, SAMPLE_REQUEST: OIP_SAMPLE }, newVersion({ MODEL_PATH: '/nonexistent/model.onnx' }));
    expectFailedFor(r, /the function failed \(Unhandled\): InferenceServerError: \[503\] model 'iris' is not available: the model file does not exist or cannot be read/);
  });

  describe('with A/B variants, the sample goes to each variant, as the construct writes it', () => {
    /** The samples beside the check's code, each naming its variant, and the version serving both variants. */
    function variants(second: Uint8Array): { env: Record<string, string>; version: LocalFunction } {
      const code = fs.mkdtempSync(path.join(process.env.CSI_TEST_TMP ?? ROOT, 'csi-variant-samples-'));
      const files: Record<string, string> = {};
      for (const name of ['iris', 'other']) {
        const sample = JSON.parse(OIP_SAMPLE);
        files[name] = `sample-${name}.json`;
        fs.writeFileSync(path.join(code, files[name]), JSON.stringify({ ...sample, parameters: { ...sample.parameters, variant: name } }));
      }
      const version = newVersion({
        MODEL_PATH: writeModel(IRIS.bytes),
        MODEL_VARIANTS: JSON.stringify([
          { name: 'iris', weight: 99 },
          { name: 'other', weight: 1, env: { MODEL_PATH: writeModel(second) } },
        ]),
      });
      return { env: { TARGET_VERSION_ARN: TARGET, SAMPLE_REQUEST: OIP_SAMPLE, VARIANT_SAMPLE_FILES: JSON.stringify(files), LAMBDA_TASK_ROOT: code }, version };
    }

    it('fails the deployment for the variant that answers only NaN, whatever its share, and names it', async () => {
      const { env, version } = variants(NAN_MODEL);
      const r = await run(env, version);
      expectFailedFor(r, /^variant 'other': output 0 \('scores'\): 4 of 4 values are NaN or infinite/);
      expect(r.result!.problems.some((p) => p.startsWith("variant 'iris'"))).toBe(false);
    });

    it('passes when every variant answers well', async () => {
      const { env, version } = variants(mlpModel({ inputs: 4, hidden: 8, classes: 3, seed: 12, label: true }).bytes);
      const r = await run({ ...env, EXPECTED_OUTPUTS: '["probabilities","label"]' }, version);
      expect(r.result).toEqual({ status: 'Succeeded', problems: [] });
      expectOneReport('Succeeded');
    });
  });

  describe('when its hook answers 200 with', () => {
    const dirs: string[] = [];
    afterAll(() => {
      for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
    });

    /** The handler bundle with a hooks module whose postprocess returns `answer`, as the constructs bundle one. */
    function withPostprocess(answer: unknown): LocalFunction {
      fs.mkdirSync(path.join(ROOT, 'node_modules', '.cache'), { recursive: true });
      // Inside the repository, so that the handler's require('onnxruntime-node') finds the installed package.
      const dir = fs.mkdtempSync(path.join(ROOT, 'node_modules', '.cache', 'csi-pre-traffic-'));
      dirs.push(dir);
      fs.cpSync(inferenceHandlerDir(), dir, { recursive: true });
      fs.writeFileSync(path.join(dir, HOOKS_MODULE_FILE), `export function postprocess() { return ${JSON.stringify(answer)}; }\n`);
      return newVersion({ MODEL_PATH: writeModel(IRIS.bytes), INFERENCE_HOOKS_MODULE: HOOKS_MODULE_FILE }, dir);
    }

    it('an error body', async () => {
      const r = await run({ TARGET_VERSION_ARN: TARGET, SAMPLE_REQUEST: OIP_SAMPLE }, withPostprocess({ error: 'the feature store timed out' }));
      expectFailedFor(r, /the answer is an error, not an infer response: the feature store timed out/);
    });

    it('values its datatypes cannot hold', async () => {
      const nonsense = {
        outputs: [
          { name: 'probabilities', datatype: 'FP32', shape: [1, 3], data: ['high', 0.1, 1e39] },
          { name: 'label', datatype: 'INT64', shape: [1], data: [1.5] },
          { name: 'flag', datatype: 'BOOL', shape: [1], data: [1] },
          { name: 'odd', datatype: 'FLOAT', shape: [1], data: [1] },
        ],
      };
      const r = await run({ TARGET_VERSION_ARN: TARGET, SAMPLE_REQUEST: OIP_SAMPLE }, withPostprocess(nonsense));
      expectFailedFor(
        r,
        /output 0 \('probabilities'\): 2 of 3 values are not FP32 values, e\.g\. \[0\] "high", \[2\] 1e\+39/,
        /output 1 \('label'\): 1 of 1 values are not INT64 values, e\.g\. \[0\] 1\.5/,
        /output 2 \('flag'\): 1 of 1 values are not BOOL values/,
        /output 3 \('odd'\): 'datatype' "FLOAT" is not one of the protocol's/,
      );
      expect(r.result!.problems).toHaveLength(4);
    });
  });
});

describe("an image model's sample, as the construct ships it", () => {
  it('fits: the 3×32×32 FP32 sample and the expected answer ship beside the code, the variables stay under 4 KB, and the check passes', async () => {
    const model = convModel({ channels: 3, size: 32, features: 4 });
    const input = model.sampleInput();
    const sampleRequest = { inputs: [{ name: 'image', shape: [1, 3, 32, 32], datatype: 'FP32', data: input }] };
    const expectedAnswer = { outputs: [{ name: 'features', shape: [1, 4, 32, 32], data: model.predict(input) }] };
    const app = new App();
    const stack = new Stack(app, 'Stack', { env: { account: '123456789012', region: REGION } });
    const endpoint = new S3ModelEndpoint(stack, 'E', { model: ModelSource.fromAsset(DEMO_MODEL_FILE), rollout: { sampleRequest, expectedAnswer } });
    const props = resourceProps(Template.fromStack(stack), endpoint.rollout!.preTrafficCheck!);
    const variables = props.Environment.Variables as Record<string, unknown>;

    expect(JSON.stringify(sampleRequest).length).toBeGreaterThan(20_000);
    // Lambda's limit: 4 KB for all the variables together.
    expect(Buffer.byteLength(JSON.stringify(variables))).toBeLessThan(4096);
    expect(variables.SAMPLE_REQUEST).toBeUndefined();
    const code = assetFolder(app, props.Code.S3Key);
    expect(JSON.parse(fs.readFileSync(path.join(code, String(variables.SAMPLE_REQUEST_FILE)), 'utf8'))).toEqual(sampleRequest);

    // The hook as Lambda runs it: its code folder as the task root, its variables, the version's ARN resolved.
    const env = { ...(variables as Record<string, string>), TARGET_VERSION_ARN: TARGET, LAMBDA_TASK_ROOT: code };
    const r = await run(env, newVersion({ MODEL_PATH: writeModel(model.bytes) }));
    expect(r.result).toEqual({ status: 'Succeeded', problems: [] });
    expect(lambda.invocations[0].text).toBe(JSON.stringify(sampleRequest));
    expect(r.log[0].checked).toMatchObject({ expectedAnswer: true });

    // The same sample against a model with other weights fails on the expected answer.
    codedeploy.reset();
    const other = newVersion({ MODEL_PATH: writeModel(convModel({ channels: 3, size: 32, features: 4, seed: 7 }).bytes) });
    expectFailedFor(await run(env, other), /output 0 \('features'\): \d+ of 4096 values differ from the expected answer/);
  });
});

describe('a malformed answer fails the deployment', () => {
  const probabilities = tensor('probabilities', 'FP32', [1, 3], [0.9, 0.07, 0.03]);
  const cases: Array<[string, Record<string, string>, unknown, RegExp]> = [
    ['no outputs', {}, { model_name: 'iris' }, /'outputs' must be a non-empty array/],
    ['empty outputs', {}, { model_name: 'iris', outputs: [] }, /'outputs' must be a non-empty array/],
    ['data shorter than the shape', {}, { outputs: [tensor('p', 'FP32', [2, 3], [1, 2, 3, 4, 5])] }, /output 0 \('p'\): 'data' has 5 elements, shape \[2,3\] needs 6/],
    ['BYTES data longer than the shape', {}, { outputs: [tensor('l', 'BYTES', [1], ['a', 'b'])] }, /'data' has 2 elements, shape \[1\] needs 1/],
    ['a negative dimension', {}, { outputs: [tensor('p', 'FP32', [1, -3], [1, 2, 3])] }, /'shape' must be an array of non-negative integers, got: \[1,-3\]/],
    ['a fractional dimension', {}, { outputs: [tensor('p', 'FP32', [1.5, 2], [1, 2, 3])] }, /'shape' must be an array of non-negative integers/],
    ['data that is not an array', {}, { outputs: [{ name: 'p', datatype: 'FP32', shape: [1], data: 'x' }] }, /'data' must be an array/],
    ['an output without a name', {}, { outputs: [{ datatype: 'FP32', shape: [1], data: [1] }] }, /output 0: 'name' must be a non-empty string/],
    ['an output without a datatype', {}, { outputs: [{ name: 'p', shape: [1], data: [1] }] }, /output 0 \('p'\): 'datatype' must be a non-empty string/],
    ['a missing expected output', { EXPECTED_OUTPUTS: '["probabilities","label"]' }, { outputs: [probabilities] }, /expected output\(s\) missing: label/],
    [
      'an output beyond the expected ones',
      { EXPECTED_OUTPUTS: '["probabilities"]' },
      { outputs: [probabilities, tensor('label', 'BYTES', [1], ['a'])] },
      /unexpected output\(s\): label/,
    ],
    ['an expected output named twice', { EXPECTED_OUTPUTS: '["probabilities"]' }, { outputs: [probabilities, probabilities] }, /named more than once: probabilities/],
    ['an answer that is not JSON', {}, 'Task timed out', /the answer is not JSON: Task timed out/],
    ['fewer predictions than instances', { SAMPLE_REQUEST: INSTANCES_SAMPLE }, { predictions: [[1], [2]] }, /'predictions' has 2 items for 3 instances/],
    ['more predictions than instances', { SAMPLE_REQUEST: INSTANCES_SAMPLE }, { predictions: [[1], [2], [3], [4]] }, /'predictions' has 4 items for 3 instances/],
    ['outputs instead of predictions', { SAMPLE_REQUEST: INSTANCES_SAMPLE }, { outputs: [probabilities] }, /'predictions' must be an array, got: keys \["outputs"\]/],
  ];
  for (const [name, env, payload, problem] of cases) {
    it(`for ${name}`, async () => {
      const r = await run({ TARGET_VERSION_ARN: TARGET, SAMPLE_REQUEST: OIP_SAMPLE, ...env }, { payload });
      expectFailedFor(r, problem);
    });
  }

  it('names every problem of the answer in one verdict', async () => {
    const r = await run(
      { TARGET_VERSION_ARN: TARGET, SAMPLE_REQUEST: OIP_SAMPLE, EXPECTED_OUTPUTS: '["probabilities","label"]' },
      { payload: { outputs: [tensor('probabilities', 'FP32', [1, 3], [1, 2]), tensor('extra', 'FP32', [-1], [])] } },
    );
    expectFailedFor(r, /needs 3/, /non-negative integers/, /missing: label/, /unexpected output\(s\): extra/);
    expect(r.result!.problems).toHaveLength(4);
  });
});

describe('a failed invocation fails the deployment and is still reported', () => {
  it('names the function error', async () => {
    const message = "[400] input 'input' has shape [1,3], the model expects [-1,4]";
    const r = await run({ TARGET_VERSION_ARN: TARGET, SAMPLE_REQUEST: OIP_SAMPLE }, functionError('InferenceRequestError', message));
    expectFailedFor(r, /Unhandled/, /InferenceRequestError/);
    expect(r.result!.problems.join('\n')).toContain(message);
    expect(r.log[0].answer).toEqual({ functionError: 'Unhandled' });
  });

  it('on a dropped connection, after one retry', async () => {
    const r = await run({ TARGET_VERSION_ARN: TARGET, SAMPLE_REQUEST: OIP_SAMPLE }, { hangUp: true });
    expectFailedFor(r, new RegExp(`the invocation of ${TARGET} failed`));
    expect(lambda.invocations).toHaveLength(2);
    expect(lambda.invocations.map((i) => i.text)).toEqual([OIP_SAMPLE, OIP_SAMPLE]);
  });

  it('when nothing listens at the Lambda endpoint', async () => {
    process.env.AWS_ENDPOINT_URL_LAMBDA = await closedPortUrl();
    const r = await run({ TARGET_VERSION_ARN: TARGET, SAMPLE_REQUEST: OIP_SAMPLE }, undefined);
    expectFailedFor(r, /ECONNREFUSED/);
  });

  it('when the function does not answer within CHECK_TIMEOUT_MS', async () => {
    const r = await run({ TARGET_VERSION_ARN: TARGET, SAMPLE_REQUEST: OIP_SAMPLE, CHECK_TIMEOUT_MS: '400' }, { delayMs: 20_000, payload: {} });
    expectFailedFor(r, /no answer within 400 ms/);
    expect(r.elapsedMs).toBeGreaterThanOrEqual(400);
    expect(r.elapsedMs).toBeLessThan(5_000);
    expect(lambda.invocations).toHaveLength(1);
    await vi.waitFor(() => expect(lambda.invocations[0].abandoned).toBe(true));
  });

  it('before its own Lambda timeout would cut the report off, whatever CHECK_TIMEOUT_MS says', async () => {
    const deadline = Date.now() + 13_000;
    const context = { getRemainingTimeInMillis: () => deadline - Date.now() };
    const r = await run({ TARGET_VERSION_ARN: TARGET, SAMPLE_REQUEST: OIP_SAMPLE, CHECK_TIMEOUT_MS: '60000' }, { delayMs: 30_000, payload: {} }, EVENT, context);
    expectFailedFor(r, /no answer within/);
    expect(r.log[0].checked.timeoutMs).toBeLessThan(13_000);
    expect(Date.now()).toBeLessThan(deadline);
  });
});

describe('reporting to CodeDeploy', () => {
  it('throws when CodeDeploy refuses the report, after logging the verdict', async () => {
    codedeploy.failNext({ code: 'DeploymentDoesNotExistException', status: 400, message: 'The deployment d-4X2Y8ABCD does not exist.' });
    const r = await run({ TARGET_VERSION_ARN: TARGET, SAMPLE_REQUEST: OIP_SAMPLE }, good);
    expect(r.result).toBeUndefined();
    expect(r.error?.message).toMatch(/could not report Succeeded to CodeDeploy for deployment d-4X2Y8ABCD: DeploymentDoesNotExistException/);
    // A 400 is final: no retry, and nothing was accepted.
    expect(codedeploy.calls.map((c) => c.error)).toEqual(['DeploymentDoesNotExistException']);
    expect(reports()).toEqual([]);
    expect(r.log).toHaveLength(1);
    expect(r.log[0]).toMatchObject({ status: 'Succeeded', reported: false, reportError: expect.stringContaining('does not exist') });
  });

  it('retries a server error and then reports', async () => {
    codedeploy.failNext({ code: 'InternalFailure', status: 500, message: 'try again' });
    const r = await run({ TARGET_VERSION_ARN: TARGET, SAMPLE_REQUEST: OIP_SAMPLE }, good);
    expect(r.result?.status).toBe('Succeeded');
    expect(codedeploy.calls).toHaveLength(2);
    expectOneReport('Succeeded');
  });

  it("counts the verdict as reported when CodeDeploy's answer was lost and the retry finds it recorded", async () => {
    codedeploy.loseNextAnswer();
    const r = await run({ TARGET_VERSION_ARN: TARGET, SAMPLE_REQUEST: OIP_SAMPLE }, newVersion({ MODEL_PATH: '/nonexistent/model.onnx' }));
    expect(r.error).toBeUndefined();
    expect(r.result?.status).toBe('Failed');
    // The first report was recorded, its answer lost; the SDK's retry was refused as a second one.
    expect(codedeploy.calls.map((c) => [c.status, c.answerLost ?? false, c.error])).toEqual([
      ['Failed', true, undefined],
      ['Failed', false, 'LifecycleEventAlreadyCompletedException'],
    ]);
    expectOneReport('Failed');
    expect(r.log).toHaveLength(1);
    expect(r.log[0]).toMatchObject({ status: 'Failed', reported: true, alreadyCompleted: expect.stringContaining('already recorded') });
    expect(r.log[0].reportError).toBeUndefined();
  });

  it('throws, reporting nothing and invoking nothing, when the event carries no hook ids', async () => {
    const r = await run({ TARGET_VERSION_ARN: TARGET, SAMPLE_REQUEST: OIP_SAMPLE }, undefined, { DeploymentId: 'd-1' });
    expect(r.error?.message).toMatch(/not a CodeDeploy lifecycle hook event: expected DeploymentId and LifecycleEventHookExecutionId/);
    expect(codedeploy.calls).toEqual([]);
    expect(lambda.invocations).toEqual([]);
  });
});

describe('an invalid configuration fails the deployment without invoking the function', () => {
  const cases: Array<[string, Record<string, string>, RegExp]> = [
    ['a missing TARGET_VERSION_ARN', { SAMPLE_REQUEST: OIP_SAMPLE }, /TARGET_VERSION_ARN is not set/],
    [
      'an unqualified TARGET_VERSION_ARN',
      { TARGET_VERSION_ARN: TARGET.replace(/:7$/, ''), SAMPLE_REQUEST: OIP_SAMPLE },
      /TARGET_VERSION_ARN must be a function ARN qualified with a version number/,
    ],
    ['an alias as TARGET_VERSION_ARN', { TARGET_VERSION_ARN: TARGET.replace(/:7$/, ':live'), SAMPLE_REQUEST: OIP_SAMPLE }, /TARGET_VERSION_ARN must be .*, got: .*:live/],
    ['a missing SAMPLE_REQUEST', { TARGET_VERSION_ARN: TARGET }, /SAMPLE_REQUEST is not set/],
    ['a SAMPLE_REQUEST that is not JSON', { TARGET_VERSION_ARN: TARGET, SAMPLE_REQUEST: '{inputs: [1, 2]}' }, /SAMPLE_REQUEST is not valid JSON/],
    [
      'a SAMPLE_REQUEST with neither inputs nor instances',
      { TARGET_VERSION_ARN: TARGET, SAMPLE_REQUEST: '{"data": [1]}' },
      /SAMPLE_REQUEST must have exactly one of 'inputs' and 'instances'/,
    ],
    ['a SAMPLE_REQUEST with empty instances', { TARGET_VERSION_ARN: TARGET, SAMPLE_REQUEST: '{"instances": []}' }, /SAMPLE_REQUEST: 'instances' must be a non-empty array/],
    [
      'EXPECTED_OUTPUTS that is not a list of names',
      { TARGET_VERSION_ARN: TARGET, SAMPLE_REQUEST: OIP_SAMPLE, EXPECTED_OUTPUTS: 'probabilities' },
      /EXPECTED_OUTPUTS must be a JSON array of output names/,
    ],
    [
      'a CHECK_TIMEOUT_MS that is not a number',
      { TARGET_VERSION_ARN: TARGET, SAMPLE_REQUEST: OIP_SAMPLE, CHECK_TIMEOUT_MS: '1m' },
      /CHECK_TIMEOUT_MS must be a whole number of milliseconds/,
    ],
  ];
  for (const [name, env, problem] of cases) {
    it(`for ${name}`, async () => {
      const r = await run(env, undefined);
      expectFailedFor(r, problem);
      expect(lambda.invocations).toEqual([]);
    });
  }

  it('names every bad variable in one verdict', async () => {
    const r = await run({ SAMPLE_REQUEST: 'not json', CHECK_TIMEOUT_MS: '-5' }, undefined);
    expectFailedFor(r, /TARGET_VERSION_ARN/, /SAMPLE_REQUEST/, /CHECK_TIMEOUT_MS/);
    expect(r.result!.problems).toHaveLength(3);
  });
});
