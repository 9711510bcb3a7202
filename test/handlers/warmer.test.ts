import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { AwsSolutionsChecks } from 'cdk-nag';
import * as esbuild from 'esbuild';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { Warmer, type WarmerProps } from '../../lib/operations/warmer';
import { type LocalFunction, startLocalFunction } from '../../tools/local-function';
import { type LocalLambda, lambdaServiceError, startLocalLambda } from '../../tools/local-lambda';
import { type LocalS3, startLocalS3 } from '../../tools/local-s3';
import { mlpModel } from '../../tools/onnx';
import { type ThrottleProxy, startThrottleProxy } from '../../tools/throttle-proxy';
import { handlerForModel, tempDir, writeModel } from '../support/handler';
import { captureLogs } from '../support/logs';

const ROOT = path.resolve(__dirname, '../..');
const BUNDLE = path.join(ROOT, 'assets', 'handlers', 'warmer', 'index.mjs');
const ACCOUNT = '123456789012';
const REGION = 'eu-west-1';
const TARGET_ARN = `arn:aws:lambda:${REGION}:${ACCOUNT}:function:inference:live`;

beforeAll(async () => {
  // The package build bundles every handler; build this one alone when it has not run yet.
  if (fs.existsSync(BUNDLE)) return;
  await esbuild.build({
    entryPoints: [path.join(ROOT, 'handlers', 'warmer', 'index.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node22',
    outfile: BUNDLE,
    banner: { js: "import{createRequire}from'module';const require=createRequire(import.meta.url);" },
    logLevel: 'warning',
  });
});

interface Fixture {
  app: App;
  stack: Stack;
  target: lambda.Function;
  warmer: Warmer;
  template: Template;
}

function newStack(targetProps: Partial<lambda.FunctionProps> = {}): { app: App; stack: Stack; target: lambda.Function } {
  const app = new App();
  const stack = new Stack(app, 'Stack', { env: { account: ACCOUNT, region: REGION } });
  const target = new lambda.Function(stack, 'Target', {
    runtime: lambda.Runtime.NODEJS_24_X,
    handler: 'index.handler',
    code: lambda.Code.fromInline('exports.handler = async () => ({ warmed: true });'),
    // No AWS managed policy: its IAM4 finding cannot be acknowledged with cdk-nag 3 on aws-cdk-lib 2.257.
    role: new iam.Role(stack, 'TargetRole', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') }),
    ...targetProps,
  });
  return { app, stack, target };
}

function setup(props: Partial<WarmerProps> = {}): Fixture {
  const { app, stack, target } = newStack();
  const warmer = new Warmer(stack, 'Warmer', { target, ...props });
  return { app, stack, target, warmer, template: Template.fromStack(stack) };
}

function resourcesOf(template: Template, type: string): Array<[string, any]> {
  return Object.entries(template.toJSON().Resources as Record<string, any>).filter(([, r]) => r.Type === type);
}

function fanOut(fixture: Fixture): any {
  const id = fixture.stack.getLogicalId(fixture.warmer.function.node.defaultChild as lambda.CfnFunction);
  return fixture.template.toJSON().Resources[id];
}

/** Every statement of every policy attached to the fan-out's role. */
function fanOutStatements(fixture: Fixture): any[] {
  const roleId = fixture.stack.getLogicalId(fixture.warmer.function.role!.node.defaultChild as iam.CfnRole);
  const role = fixture.template.toJSON().Resources[roleId];
  const inline = (role.Properties.Policies ?? []).flatMap((p: any) => p.PolicyDocument.Statement);
  const attached = resourcesOf(fixture.template, 'AWS::IAM::Policy')
    .filter(([, p]) => JSON.stringify(p.Properties.Roles) === JSON.stringify([{ Ref: roleId }]))
    .flatMap(([, p]) => p.Properties.PolicyDocument.Statement);
  expect(role.Properties.ManagedPolicyArns).toBeUndefined();
  return [...inline, ...attached];
}

describe('Warmer schedule', () => {
  it('runs every 5 minutes by default, without retries', () => {
    const fixture = setup();
    const fnId = fixture.stack.getLogicalId(fixture.warmer.function.node.defaultChild as lambda.CfnFunction);
    fixture.template.resourceCountIs('AWS::Events::Rule', 1);
    fixture.template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(5 minutes)',
      State: 'ENABLED',
      Targets: [{ Arn: { 'Fn::GetAtt': [fnId, 'Arn'] }, Id: 'Target0', RetryPolicy: { MaximumRetryAttempts: 0 } }],
    });
    fixture.template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: fnId },
      MaximumRetryAttempts: 0,
    });
  });

  it('uses the given schedule', () => {
    setup({ schedule: events.Schedule.rate(Duration.minutes(1)) }).template.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(1 minute)' });
    setup({ schedule: events.Schedule.cron({ minute: '*/3', hour: '8-18' }) }).template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'cron(*/3 8-18 * * ? *)',
    });
  });

  it('creates no rule when not scheduled, but keeps the fan-out function', () => {
    const fixture = setup({ scheduled: false });
    fixture.template.resourceCountIs('AWS::Events::Rule', 0);
    expect(fixture.warmer.rule).toBeUndefined();
    expect(fanOut(fixture).Type).toBe('AWS::Lambda::Function');
  });
});

describe('Warmer fan-out function', () => {
  it('is a small arm64 nodejs24.x function from the built bundle', () => {
    const fn = fanOut(setup());
    expect(fn.Properties).toMatchObject({
      Runtime: 'nodejs24.x',
      Architectures: ['arm64'],
      Handler: 'index.handler',
      MemorySize: 128,
    });
  });

  it("waits as long as the target's timeout, an init phase and the hold", () => {
    // The target has Lambda's default timeout (3 s): 3 + 15 s of headroom.
    expect(fanOut(setup()).Properties.Timeout).toBe(18);
    expect(fanOut(setup({ concurrency: 4, holdTime: Duration.millis(1500) })).Properties.Timeout).toBe(20);
  });

  it('reads the timeout of the function behind an alias or a version', () => {
    const targets = [(fn: lambda.Function) => fn.currentVersion, (fn: lambda.Function) => new lambda.Alias(fn, 'Live', { aliasName: 'live', version: fn.currentVersion })];
    for (const make of targets) {
      const { app, stack, target } = newStack({ timeout: Duration.minutes(5) });
      const warmer = new Warmer(stack, 'Warmer', { target: make(target) });
      expect(fanOut({ app, stack, target, warmer, template: Template.fromStack(stack) }).Properties.Timeout).toBe(315);
    }
  });

  it('takes targetTimeout for a target it cannot see into, and 15 minutes when nothing says', () => {
    const { app, stack, target } = newStack();
    const imported = lambda.Function.fromFunctionArn(stack, 'Imported', TARGET_ARN);
    const given = new Warmer(stack, 'Given', { target: imported, targetTimeout: Duration.minutes(2) });
    const unknown = new Warmer(stack, 'Unknown', { target: imported });
    const capped = new Warmer(stack, 'Capped', { target: imported, targetTimeout: Duration.minutes(15) });
    const template = Template.fromStack(stack);
    const timeout = (warmer: Warmer) => fanOut({ app, stack, target, warmer, template }).Properties.Timeout;
    expect([timeout(given), timeout(unknown), timeout(capped)]).toEqual([135, 900, 900]);
  });

  it('tells the handler the target, the concurrency and the hold', () => {
    const one = setup();
    const targetId = one.stack.getLogicalId(one.target.node.defaultChild as lambda.CfnFunction);
    expect(fanOut(one).Properties.Environment.Variables).toEqual({
      WARMER_TARGET_ARN: { 'Fn::GetAtt': [targetId, 'Arn'] },
      WARMER_CONCURRENCY: '1',
      WARMER_HOLD_MS: '0',
    });
    expect(fanOut(setup({ concurrency: 5 })).Properties.Environment.Variables).toMatchObject({
      WARMER_CONCURRENCY: '5',
      WARMER_HOLD_MS: '100',
    });
    expect(fanOut(setup({ concurrency: 5, holdTime: Duration.millis(250) })).Properties.Environment.Variables).toMatchObject({
      WARMER_HOLD_MS: '250',
    });
  });

  it('writes to its own log group kept one week and deleted with the stack', () => {
    const fixture = setup();
    const logGroupId = fixture.stack.getLogicalId(fixture.warmer.logGroup.node.defaultChild as any);
    expect(fanOut(fixture).Properties.LoggingConfig).toEqual({ LogGroup: { Ref: logGroupId } });
    fixture.template.hasResource('AWS::Logs::LogGroup', { DeletionPolicy: 'Delete', Properties: { RetentionInDays: 7 } });
  });
});

describe('Warmer metrics', () => {
  it("reads the summary line's metrics, by the ARN the fan-out invokes", () => {
    const { stack, target, warmer } = setup();
    const metrics = [warmer.metricSucceeded(), warmer.metricFailed(), warmer.metricModelNotReady({ period: Duration.hours(1) })];
    expect(metrics.map((m) => [m.namespace, m.metricName, m.statistic, m.period.toMinutes()])).toEqual([
      ['CdkServerlessInference', 'WarmupSucceeded', 'Sum', 5],
      ['CdkServerlessInference', 'WarmupFailed', 'Sum', 5],
      ['CdkServerlessInference', 'WarmupModelNotReady', 'Sum', 60],
    ]);
    for (const m of metrics) expect(stack.resolve(m.dimensions)).toEqual({ WarmerTarget: stack.resolve(target.functionArn) });
  });
});

describe('Warmer permissions', () => {
  it('may invoke exactly the target function ARN and write its own log group, nothing else', () => {
    const fixture = setup();
    const targetId = fixture.stack.getLogicalId(fixture.target.node.defaultChild as lambda.CfnFunction);
    const logGroupId = fixture.stack.getLogicalId(fixture.warmer.logGroup.node.defaultChild as any);
    expect(fanOutStatements(fixture)).toEqual([
      {
        Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        Effect: 'Allow',
        Resource: { 'Fn::GetAtt': [logGroupId, 'Arn'] },
      },
      { Action: 'lambda:InvokeFunction', Effect: 'Allow', Resource: { 'Fn::GetAtt': [targetId, 'Arn'] } },
    ]);
  });

  it('scopes the grant to an alias ARN when the target is an alias', () => {
    const { stack, target } = newStack();
    const alias = new lambda.Alias(stack, 'Live', { aliasName: 'live', version: target.currentVersion });
    const warmer = new Warmer(stack, 'Warmer', { target: alias, concurrency: 2 });
    const template = Template.fromStack(stack);
    const aliasId = stack.getLogicalId(alias.node.defaultChild as lambda.CfnAlias);
    const fixture = { app: stack.node.root as App, stack, target, warmer, template };
    const invoke = fanOutStatements(fixture).filter((s) => s.Action === 'lambda:InvokeFunction');
    expect(invoke).toEqual([{ Action: 'lambda:InvokeFunction', Effect: 'Allow', Resource: { Ref: aliasId } }]);
    expect(fanOut(fixture).Properties.Environment.Variables.WARMER_TARGET_ARN).toEqual({ Ref: aliasId });
  });

  it('has no cdk-nag AwsSolutions findings', () => {
    const { app } = setup({ concurrency: 3 });
    const report = new AwsSolutionsChecks(app).validateScope(app);
    expect(report.violations.map((v) => v.ruleName)).toEqual([]);
  });
});

describe('Warmer errors', () => {
  const cases: Array<[string, Partial<WarmerProps>, RegExp]> = [
    ['concurrency 0', { concurrency: 0 }, /Warmer: concurrency must be a whole number between 1 and 100, got: 0/],
    ['concurrency 101', { concurrency: 101 }, /concurrency must be a whole number between 1 and 100, got: 101/],
    ['fractional concurrency', { concurrency: 2.5 }, /concurrency must be a whole number between 1 and 100, got: 2.5/],
    ['a hold of 6 s', { holdTime: Duration.seconds(6) }, /Warmer: holdTime must be at most 5 seconds, got: 6 seconds/],
    ['a hold of 0.5 ms', { holdTime: Duration.millis(0.5) }, /Warmer: holdTime must be a whole number of milliseconds, got: 0.5 milliseconds/],
    [
      'a target timeout of 16 minutes',
      { targetTimeout: Duration.minutes(16) },
      /Warmer: targetTimeout must be more than 0 and at most 15 minutes \(Lambda's limit\), got: 16 minutes/,
    ],
  ];
  for (const [name, props, message] of cases) {
    it(`rejects ${name}`, () => {
      expect(() => setup(props)).toThrow(message);
    });
  }
});

// ---- The fan-out handler, run for real against the real inference handler ----
//
// The Lambda Invoke API is the local stand-in (tools/local-lambda.ts); behind it, the inference
// handler bundle runs as Lambda runs it (tools/local-function.ts): one process per execution
// environment, so N concurrent calls reach N environments, each loading its model at cold start.

type WarmerHandler = (
  event?: unknown,
  context?: { getRemainingTimeInMillis(): number },
) => Promise<{
  target: string;
  requested: number;
  succeeded: number;
  failed: number;
  modelNotReady: number;
  unanswered: number;
  distinctInstances: number;
  coldStarts: number;
  errors: string[];
}>;

const INFERENCE_BUNDLE = path.join(ROOT, 'assets', 'handlers', 'inference');
const MODEL = mlpModel({ inputs: 4, hidden: 8, classes: 3, seed: 5 });

describe('warmer handler against the real inference handler', () => {
  const savedEnv = { ...process.env };
  let api: LocalLambda;
  let handler: WarmerHandler;
  const functions: LocalFunction[] = [];

  /** The fan-out's environment exactly as the construct writes it, for a target with a literal ARN. */
  function constructEnvironment(props: Partial<WarmerProps>): Record<string, string> {
    const app = new App();
    const stack = new Stack(app, 'Stack', { env: { account: ACCOUNT, region: REGION } });
    const target = lambda.Function.fromFunctionArn(stack, 'Target', TARGET_ARN);
    const warmer = new Warmer(stack, 'Warmer', { target, ...props });
    const id = stack.getLogicalId(warmer.function.node.defaultChild as lambda.CfnFunction);
    return Template.fromStack(stack).toJSON().Resources[id].Properties.Environment.Variables;
  }

  /** The inference function behind the stand-in, with `environment` (a model, or none that loads). */
  function serveInference(environment: Record<string, string>, timeoutMs?: number): LocalFunction {
    const fn = startLocalFunction({ codeDir: INFERENCE_BUNDLE, environment: { MODEL_NAME: 'iris', MODEL_LOAD_RETRY_MS: '0', ...environment }, timeoutMs });
    functions.push(fn);
    api.respondWith((invocation) => fn.invoke(invocation));
    return fn;
  }

  /** Runs the fan-out, returning its summary and its log lines. */
  async function runWarmer(context?: { getRemainingTimeInMillis(): number }) {
    const logs = captureLogs();
    try {
      const summary = await handler(undefined, context);
      return { summary, logs: logs.lines().filter((l) => l.message === 'warm-up run') };
    } finally {
      logs.stop();
    }
  }

  beforeAll(async () => {
    api = await startLocalLambda();
    Object.assign(process.env, api.env());
    delete process.env.AWS_PROFILE;
    delete process.env.AWS_SESSION_TOKEN;
    ({ handler } = (await import(pathToFileURL(BUNDLE).href)) as { handler: WarmerHandler });
  });

  afterEach(async () => {
    await Promise.all(functions.splice(0).map((f) => f.stop()));
  });

  afterAll(async () => {
    await api.stop();
    for (const key of Object.keys(process.env)) if (!(key in savedEnv)) delete process.env[key];
    Object.assign(process.env, savedEnv);
  });

  it('invokes the exact target 5 times at once and counts 5 instances, cold then warm', async () => {
    const env = constructEnvironment({ concurrency: 5 });
    expect(env).toEqual({ WARMER_TARGET_ARN: TARGET_ARN, WARMER_CONCURRENCY: '5', WARMER_HOLD_MS: '100' });
    Object.assign(process.env, env);
    const fn = serveInference({ MODEL_PATH: writeModel(MODEL.bytes) });

    const cold = await runWarmer();

    expect(api.invocations).toHaveLength(5);
    for (const call of api.invocations) {
      expect(call.functionName).toBe(TARGET_ARN);
      expect(JSON.parse(call.text)).toEqual({ source: 'cdk-serverless-inference.warmer', holdMs: 100 });
      expect(call.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIALOCALLAMBDA00000\/\d{8}\/eu-west-1\/lambda\//);
    }
    expect(fn.started).toBe(5);
    expect(cold.summary).toMatchObject({ target: TARGET_ARN, requested: 5, succeeded: 5, failed: 0, modelNotReady: 0, distinctInstances: 5, coldStarts: 5, errors: [] });

    const warm = await runWarmer();
    expect(fn.started).toBe(5);
    expect(warm.summary).toMatchObject({ succeeded: 5, distinctInstances: 5, coldStarts: 0 });
    expect(warm.logs).toHaveLength(1);
    expect(warm.logs[0]).toMatchObject({ WarmerTarget: TARGET_ARN, WarmupSucceeded: 5, WarmupFailed: 0, WarmupModelNotReady: 0 });
  });

  it('never counts an instance whose model did not load as warmed: the summary and the metric say so', async () => {
    Object.assign(process.env, constructEnvironment({ concurrency: 2 }));
    serveInference({ MODEL_PATH: '/nonexistent/model.onnx' });

    const { summary, logs } = await runWarmer();

    expect(summary).toMatchObject({ requested: 2, succeeded: 0, failed: 2, modelNotReady: 2, unanswered: 0, distinctInstances: 0 });
    expect(summary.errors).toHaveLength(2);
    expect(summary.errors).toEqual(Array(2).fill('model not ready: the model file does not exist or cannot be read; the next request retries the load'));
    // The log line is a CloudWatch embedded-metric document: these fields become the metrics.
    expect(logs).toHaveLength(1);
    expect(logs[0]).toMatchObject({ WarmupSucceeded: 0, WarmupFailed: 2, WarmupModelNotReady: 2, WarmerTarget: TARGET_ARN });
    expect(logs[0]._aws.CloudWatchMetrics).toEqual([
      {
        Namespace: 'CdkServerlessInference',
        Dimensions: [['WarmerTarget']],
        Metrics: [
          { Name: 'WarmupSucceeded', Unit: 'Count' },
          { Name: 'WarmupFailed', Unit: 'Count' },
          { Name: 'WarmupModelNotReady', Unit: 'Count' },
        ],
      },
    ]);
  });

  it('counts a throttled call and a timed-out instance as failed while the other calls warm', async () => {
    Object.assign(process.env, constructEnvironment({ concurrency: 4, holdTime: Duration.millis(300) }));
    const fn = startLocalFunction({ codeDir: INFERENCE_BUNDLE, environment: { MODEL_PATH: writeModel(MODEL.bytes) } });
    // The same bundle with a timeout shorter than the hold: Lambda ends that invocation.
    const short = startLocalFunction({ codeDir: INFERENCE_BUNDLE, environment: { MODEL_PATH: writeModel(MODEL.bytes) }, timeoutMs: 150 });
    functions.push(fn, short);
    api.respondWith((invocation, attempt) => {
      if (attempt === 1) return lambdaServiceError('TooManyRequestsException', 429, 'Rate Exceeded.');
      return attempt === 3 ? short.invoke(invocation) : fn.invoke(invocation);
    });

    const { summary } = await runWarmer();

    // No retries: exactly one request per call.
    expect(api.invocations).toHaveLength(4);
    expect(summary).toMatchObject({ requested: 4, succeeded: 2, failed: 2, modelNotReady: 0, distinctInstances: 2 });
    expect(summary.errors.join('\n')).toContain('TooManyRequestsException');
    expect(summary.errors.join('\n')).toMatch(/function error \(Unhandled\): .*Task timed out after 0.15 seconds/);
  });

  it('keeps 60 calls in flight at once, beyond the SDK default of 50 sockets', async () => {
    Object.assign(process.env, constructEnvironment({ concurrency: 60, holdTime: Duration.millis(300) }));
    // One instance of the bundle, loaded here, answering every call: 60 processes would be too many for a test.
    const inference = await handlerForModel(MODEL.bytes);
    let inFlight = 0;
    let maxInFlight = 0;
    api.respondWith(async (invocation) => {
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      try {
        return { payload: await inference(JSON.parse(invocation.text)) };
      } finally {
        inFlight--;
      }
    });

    const { summary } = await runWarmer();

    expect(api.invocations).toHaveLength(60);
    expect(maxInFlight).toBe(60);
    expect(summary).toMatchObject({ requested: 60, succeeded: 60, failed: 0 });
  });

  describe('when a cold start outlasts the time the fan-out has', () => {
    let s3: LocalS3;
    let slowS3: ThrottleProxy;

    beforeAll(async () => {
      s3 = await startLocalS3();
      await s3.createBucket('models');
      await s3.putObject('models', 'iris.onnx', Buffer.from(MODEL.bytes));
      // S3 taking 3 s to answer: every cold start's model download waits that long.
      slowS3 = await startThrottleProxy({ targetPort: s3.port, bytesPerSecond: 100 * 1024 * 1024, firstByteLatencyMs: 3_000 });
    });

    afterAll(async () => {
      await slowS3?.close();
      await s3?.stop();
    });

    it('gives up the call at its deadline and still logs a summary of the others, in time', async () => {
      const environment = { ...s3.env(), AWS_ENDPOINT_URL_S3: slowS3.endpoint, MODEL_S3_URI: 's3://models/iris.onnx', MODEL_CACHE_DIR: tempDir() };
      Object.assign(process.env, constructEnvironment({ concurrency: 2 }));
      const fn = serveInference(environment);
      // Two instances warmed with all the time they need.
      expect((await runWarmer()).summary).toMatchObject({ succeeded: 2, coldStarts: 2 });

      // Three calls with 2.5 s left: two reach the warm instances, the third a cold one that needs 3 s or more.
      Object.assign(process.env, constructEnvironment({ concurrency: 3 }));
      const deadline = Date.now() + 2_500;
      const { summary, logs } = await runWarmer({ getRemainingTimeInMillis: () => deadline - Date.now() });

      expect(Date.now()).toBeLessThan(deadline);
      expect(fn.started).toBe(3);
      expect(summary).toMatchObject({ requested: 3, succeeded: 2, failed: 1, unanswered: 1, distinctInstances: 2 });
      expect(summary.errors).toEqual([expect.stringMatching(/^no answer within \d+ ms, the time the fan-out function had left$/)]);
      expect(logs).toHaveLength(1);
      expect(logs[0]).toMatchObject({ WarmupSucceeded: 2, WarmupFailed: 1, unanswered: 1 });
      await vi.waitFor(() => expect(api.invocations.filter((i) => i.abandoned)).toHaveLength(1));
    });
  });

  it('fails with the variable name when the target is not configured', async () => {
    delete process.env.WARMER_TARGET_ARN;
    api.respondWith(() => ({ payload: {} }));
    await expect(handler()).rejects.toThrow(/WARMER_TARGET_ARN is not set/);
    expect(api.invocations).toHaveLength(0);
  });

  it('rejects a concurrency outside 1..100 before calling anything', async () => {
    Object.assign(process.env, { WARMER_TARGET_ARN: TARGET_ARN, WARMER_CONCURRENCY: '500' });
    api.respondWith(() => ({ payload: {} }));
    await expect(handler()).rejects.toThrow(/WARMER_CONCURRENCY must be between 1 and 100, got: 500/);
    expect(api.invocations).toHaveLength(0);
  });
});
