import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { AwsSolutionsChecks } from 'cdk-nag';
import * as esbuild from 'esbuild';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Warmer, type WarmerProps } from '../../lib/operations/warmer';

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

function newStack(): { app: App; stack: Stack; target: lambda.Function } {
  const app = new App();
  const stack = new Stack(app, 'Stack', { env: { account: ACCOUNT, region: REGION } });
  const target = new lambda.Function(stack, 'Target', {
    runtime: lambda.Runtime.NODEJS_24_X,
    handler: 'index.handler',
    code: lambda.Code.fromInline('exports.handler = async () => ({ warmed: true });'),
    // No AWS managed policy: its IAM4 finding cannot be acknowledged with cdk-nag 3 on aws-cdk-lib 2.257.
    role: new iam.Role(stack, 'TargetRole', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') }),
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
      Timeout: 45,
    });
  });

  it('waits long enough for the hold on top of a cold start', () => {
    expect(fanOut(setup({ concurrency: 4, holdTime: Duration.millis(1500) })).Properties.Timeout).toBe(47);
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
  ];
  for (const [name, props, message] of cases) {
    it(`rejects ${name}`, () => {
      expect(() => setup(props)).toThrow(message);
    });
  }
});

// ---- The fan-out handler, run for real against a local stand-in of the Lambda Invoke API ----

interface Invocation {
  functionName: string;
  payload: unknown;
  contentType: string | undefined;
  authorization: string | undefined;
}

interface FakeAnswer {
  status: number;
  headers?: Record<string, string>;
  body: string;
}

type Behaviour = (n: number) => FakeAnswer;

/** Speaks `POST /2015-03-31/functions/{name}/invocations`, holding each call for `holdMs`. */
class FakeLambda {
  public readonly invocations: Invocation[] = [];
  public maxInFlight = 0;
  public behaviour: Behaviour = (n) => ({
    status: 200,
    body: JSON.stringify({ warmed: true, instanceId: `instance-${n}`, coldStart: n % 2 === 0 }),
  });
  private inFlight = 0;
  private readonly server = http.createServer((req, res) => this.handle(req, res));

  public async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  public async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  public reset(): void {
    this.invocations.length = 0;
    this.maxInFlight = 0;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const match = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/.exec(req.url ?? '');
    if (req.method !== 'POST' || !match) {
      res.writeHead(404).end();
      return;
    }
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const payload = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      const n = this.invocations.length;
      this.invocations.push({
        functionName: decodeURIComponent(match[1]),
        payload,
        contentType: req.headers['content-type'],
        authorization: req.headers.authorization,
      });
      const holdMs = typeof payload?.holdMs === 'number' ? payload.holdMs : 0;
      setTimeout(() => {
        const out = this.behaviour(n);
        this.inFlight--;
        res.writeHead(out.status, { 'content-type': 'application/json', ...out.headers }).end(out.body);
      }, holdMs);
    });
  }
}

type WarmerHandler = () => Promise<{
  target: string;
  requested: number;
  succeeded: number;
  failed: number;
  distinctInstances: number;
  coldStarts: number;
  errors: string[];
}>;

describe('warmer handler against a local Lambda endpoint', () => {
  const fake = new FakeLambda();
  const savedEnv = { ...process.env };
  let handler: WarmerHandler;

  /** The fan-out's environment exactly as the construct writes it, for a target with a literal ARN. */
  function constructEnvironment(props: Partial<WarmerProps>): Record<string, string> {
    const app = new App();
    const stack = new Stack(app, 'Stack', { env: { account: ACCOUNT, region: REGION } });
    const target = lambda.Function.fromFunctionArn(stack, 'Target', TARGET_ARN);
    const warmer = new Warmer(stack, 'Warmer', { target, ...props });
    const id = stack.getLogicalId(warmer.function.node.defaultChild as lambda.CfnFunction);
    return Template.fromStack(stack).toJSON().Resources[id].Properties.Environment.Variables;
  }

  beforeAll(async () => {
    const endpoint = await fake.start();
    Object.assign(process.env, {
      AWS_ENDPOINT_URL_LAMBDA: endpoint,
      AWS_REGION: REGION,
      AWS_ACCESS_KEY_ID: 'AKIDLOCALTEST',
      AWS_SECRET_ACCESS_KEY: 'local-test-secret',
    });
    delete process.env.AWS_PROFILE;
    delete process.env.AWS_SESSION_TOKEN;
    ({ handler } = (await import(pathToFileURL(BUNDLE).href)) as { handler: WarmerHandler });
  });

  afterEach(() => fake.reset());

  afterAll(async () => {
    await fake.stop();
    for (const key of Object.keys(process.env)) if (!(key in savedEnv)) delete process.env[key];
    Object.assign(process.env, savedEnv);
  });

  it('invokes the exact target 5 times at once with the warm-up event and counts the instances', async () => {
    const env = constructEnvironment({ concurrency: 5 });
    expect(env).toEqual({ WARMER_TARGET_ARN: TARGET_ARN, WARMER_CONCURRENCY: '5', WARMER_HOLD_MS: '100' });
    Object.assign(process.env, env);

    const summary = await handler();

    expect(fake.invocations).toHaveLength(5);
    expect(fake.maxInFlight).toBe(5);
    for (const call of fake.invocations) {
      expect(call.functionName).toBe(TARGET_ARN);
      expect(call.payload).toEqual({ source: 'cdk-serverless-inference.warmer', holdMs: 100 });
      expect(call.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDLOCALTEST\/\d{8}\/eu-west-1\/lambda\//);
    }
    expect(summary).toMatchObject({
      target: TARGET_ARN,
      requested: 5,
      succeeded: 5,
      failed: 0,
      distinctInstances: 5,
      coldStarts: 3, // instances 0, 2 and 4 of the fake report a cold start
      errors: [],
    });
  });

  it('counts a function error and a throttled call as failed while the other calls succeed', async () => {
    Object.assign(process.env, constructEnvironment({ concurrency: 5 }));
    fake.behaviour = (n): FakeAnswer => {
      if (n === 1) {
        return {
          status: 200,
          headers: { 'x-amz-function-error': 'Unhandled' },
          body: JSON.stringify({ errorType: 'Error', errorMessage: 'model failed to load' }),
        };
      }
      if (n === 3) {
        return {
          status: 429,
          headers: { 'x-amzn-errortype': 'TooManyRequestsException' },
          body: JSON.stringify({ message: 'Rate Exceeded.', Reason: 'ReservedFunctionConcurrentInvocationLimitExceeded' }),
        };
      }
      // A proxy-style answer: the warm-up response is the JSON body.
      return {
        status: 200,
        body: JSON.stringify({ statusCode: 200, body: JSON.stringify({ warmed: true, instanceId: 'shared', coldStart: false }) }),
      };
    };

    const summary = await handler();

    // No retries: exactly one request per call.
    expect(fake.invocations).toHaveLength(5);
    expect(summary).toMatchObject({ requested: 5, succeeded: 3, failed: 2, distinctInstances: 1, coldStarts: 0 });
    expect(summary.errors).toHaveLength(2);
    expect(summary.errors.join('\n')).toContain('model failed to load');
    expect(summary.errors.join('\n')).toContain('TooManyRequestsException');
  });

  it('counts an instance that answers warmed: false as failed, with its reason', async () => {
    Object.assign(process.env, constructEnvironment({ concurrency: 2 }));
    fake.behaviour = (n) => ({
      status: 200,
      body: JSON.stringify(n === 0 ? { warmed: false, instanceId: 'a', coldStart: true, error: 'model file not found' } : { warmed: true, instanceId: 'b', coldStart: true }),
    });

    const summary = await handler();

    expect(summary).toMatchObject({ requested: 2, succeeded: 1, failed: 1, distinctInstances: 1, coldStarts: 1 });
    expect(summary.errors).toEqual(['not warmed: model file not found']);
  });

  it('keeps 60 calls in flight at once, beyond the SDK default of 50 sockets', async () => {
    Object.assign(process.env, constructEnvironment({ concurrency: 60, holdTime: Duration.millis(300) }));
    fake.behaviour = (n) => ({ status: 200, body: JSON.stringify({ warmed: true, instanceId: `i-${n}` }) });

    const summary = await handler();

    expect(fake.invocations).toHaveLength(60);
    expect(fake.maxInFlight).toBe(60);
    expect(summary).toMatchObject({ requested: 60, succeeded: 60, distinctInstances: 60 });
  });

  it('fails with the variable name when the target is not configured', async () => {
    delete process.env.WARMER_TARGET_ARN;
    await expect(handler()).rejects.toThrow(/WARMER_TARGET_ARN is not set/);
    expect(fake.invocations).toHaveLength(0);
  });

  it('rejects a concurrency outside 1..100 before calling anything', async () => {
    Object.assign(process.env, { WARMER_TARGET_ARN: TARGET_ARN, WARMER_CONCURRENCY: '500' });
    await expect(handler()).rejects.toThrow(/WARMER_CONCURRENCY must be between 1 and 100, got: 500/);
    expect(fake.invocations).toHaveLength(0);
  });
});
