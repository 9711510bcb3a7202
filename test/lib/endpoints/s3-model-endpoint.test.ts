import * as fs from 'node:fs';
import * as path from 'node:path';
import { type App, Duration, Size, type Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import { describe, expect, it } from 'vitest';
import { DEMO_MODEL_FILE } from '../../../fixtures/demo-model';
import { GraphOptimizationLevel, InferenceApiAuthorization, ModelSource, OnnxRuntimeLayer, S3ModelEndpoint, type S3ModelEndpointProps } from '../../../lib';
import { multiIoModel, notOnnxBytes, writePaddedModel } from '../../../tools/onnx';
import { tempDir, writeModel } from '../../support/handler';
import { newStack, ref, resourceProps, roleStatements } from '../../support/stacks';

interface Fixture {
  app: App;
  stack: Stack;
  endpoint: S3ModelEndpoint;
  template: Template;
}

function setup(props: Partial<S3ModelEndpointProps> = {}): Fixture {
  const { app, stack } = newStack();
  const endpoint = new S3ModelEndpoint(stack, 'Endpoint', { model: ModelSource.fromAsset(DEMO_MODEL_FILE), ...props });
  return { app, stack, endpoint, template: Template.fromStack(stack) };
}

function fn(f: Fixture): Record<string, any> {
  return resourceProps(f.template, f.endpoint.function);
}

function env(f: Fixture): Record<string, any> {
  return fn(f).Environment.Variables;
}

function s3Statements(f: Fixture): Array<Record<string, any>> {
  return roleStatements(f.template, f.endpoint.role).filter((s) => [s.Action].flat().some((a: string) => a.startsWith('s3:')));
}

describe('S3ModelEndpoint defaults', () => {
  const f = setup();
  const precompiledKey = () => f.endpoint.modelObjectKey.replace(/\.onnx$/, '.ort');

  it('runs the shared inference handler on Node.js 24, arm64, 2 GB, 60 s, with the ONNX Runtime layer', () => {
    expect(fn(f)).toMatchObject({
      Handler: 'index.handler',
      Runtime: 'nodejs24.x',
      Architectures: ['arm64'],
      MemorySize: 2048,
      Timeout: 60,
      Layers: [ref(f.endpoint.onnxRuntimeLayer!)],
      Role: { 'Fn::GetAtt': [ref(f.endpoint.role).Ref, 'Arn'] },
      LoggingConfig: { LogGroup: ref(f.endpoint.logGroup) },
    });
    expect(fn(f).TracingConfig).toBeUndefined();
    expect(fn(f).ReservedConcurrentExecutions).toBeUndefined();
    expect(f.endpoint.onnxRuntimeLayer!.architecture).toBe(lambda.Architecture.ARM_64);
  });

  it('tells the handler where the model is and how to run it', () => {
    const assetHash = (f.endpoint.inferenceFunction.node.findChild('ModelAsset') as s3assets.Asset).assetHash;
    expect(env(f)).toEqual({
      MODEL_NAME: 'model',
      // The model's identity: a new model is a new version in the API.
      MODEL_VERSION: assetHash.slice(0, 16),
      // The key carries the model's hash: a new model is a new key, so a new function version.
      MODEL_S3_URI: { 'Fn::Join': ['', ['s3://', ref(f.endpoint.bucket), `/${f.endpoint.modelObjectKey}`]] },
      // Fetched instead of the .onnx: the model precompiled at synth, beside it.
      MODEL_PRECOMPILED_S3_URI: { 'Fn::Join': ['', ['s3://', ref(f.endpoint.bucket), `/${f.endpoint.modelObjectKey.replace(/\.onnx$/, '.ort')}`]] },
      // 2,048 MiB buys a little more than one vCPU (1,769 MiB each).
      ORT_INTRA_OP_THREADS: '1',
      ORT_GRAPH_OPTIMIZATION_LEVEL: 'all',
      MODEL_INIT_WAIT_MS: '8000',
      ORT_DISABLE_TELEMETRY: '1',
      POWERTOOLS_SERVICE_NAME: expect.stringMatching(/^StackEndpoint/),
      POWERTOOLS_METRICS_NAMESPACE: 'CdkServerlessInference',
    });
    expect(f.endpoint.modelObjectKey).toBe(`models/model/demo-${(f.endpoint.inferenceFunction.node.findChild('ModelAsset') as s3assets.Asset).assetHash.slice(0, 16)}.onnx`);
  });

  it("sizes /tmp at Lambda's minimum for a small model", () => {
    expect(fn(f).EphemeralStorage).toEqual({ Size: 512 });
  });

  it('keeps the model in a versioned, encrypted, TLS-only, private bucket that outlives the stack, with access logs', () => {
    const bucketId = ref(f.endpoint.bucket).Ref;
    const bucket = f.template.toJSON().Resources[bucketId];
    expect(bucket.DeletionPolicy).toBe('Retain');
    expect(bucket.UpdateReplacePolicy).toBe('Retain');
    expect(bucket.Properties).toMatchObject({
      VersioningConfiguration: { Status: 'Enabled' },
      BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
      PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
      LoggingConfiguration: { DestinationBucketName: expect.anything(), LogFilePrefix: 'model-bucket/' },
      // Replaced model versions are kept a month, not forever.
      LifecycleConfiguration: { Rules: [expect.objectContaining({ NoncurrentVersionExpiration: { NoncurrentDays: 30 }, Status: 'Enabled' })] },
    });
    f.template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: bucketId },
      PolicyDocument: {
        Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Action: 's3:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]),
      },
    });
    f.template.resourceCountIs('AWS::S3::Bucket', 2);
  });

  it('grants the function read access to the model object alone', () => {
    const bucketArn = { 'Fn::GetAtt': [ref(f.endpoint.bucket).Ref, 'Arn'] };
    expect(s3Statements(f)).toEqual([
      { Effect: 'Allow', Action: 's3:GetObject', Resource: { 'Fn::Join': ['', [bucketArn, `/${f.endpoint.modelObjectKey}`]] } },
      // Listing the model's own key lets a missing model read as 404, not 403; no other key is listable.
      { Effect: 'Allow', Action: 's3:ListBucket', Resource: bucketArn, Condition: { StringEquals: { 's3:prefix': f.endpoint.modelObjectKey } } },
      // The same for the model precompiled at synth, beside it.
      { Effect: 'Allow', Action: 's3:GetObject', Resource: { 'Fn::Join': ['', [bucketArn, `/${precompiledKey()}`]] } },
      { Effect: 'Allow', Action: 's3:ListBucket', Resource: bucketArn, Condition: { StringEquals: { 's3:prefix': precompiledKey() } } },
    ]);
  });

  it('ships the model precompiled at synth beside it, unless precompileModel is false', () => {
    const copies = Object.values(f.template.findResources('Custom::AWS')).map((c) => JSON.stringify(c.Properties.Create));
    expect(copies.filter((c) => c.includes(precompiledKey()))).toHaveLength(1);
    const { stack } = newStack();
    const plain = new S3ModelEndpoint(stack, 'E', { model: ModelSource.fromAsset(DEMO_MODEL_FILE), precompileModel: false });
    const template = Template.fromStack(stack);
    template.resourceCountIs('Custom::AWS', 1);
    expect(resourceProps(template, plain.function).Environment.Variables.MODEL_PRECOMPILED_S3_URI).toBeUndefined();
  });

  it('gives the function its own role: no managed policy, no wildcard action', () => {
    expect(resourceProps(f.template, f.endpoint.role).ManagedPolicyArns).toBeUndefined();
    const actions = roleStatements(f.template, f.endpoint.role).flatMap((s) => [s.Action].flat());
    expect(actions.filter((a: string) => a.includes('*'))).toEqual([]);
    expect(actions).toEqual(expect.arrayContaining(['logs:CreateLogStream', 'logs:PutLogEvents']));
  });

  it('writes the copy-provider logs to one log group per stack', () => {
    const { stack } = newStack();
    new S3ModelEndpoint(stack, 'A', { model: ModelSource.fromAsset(DEMO_MODEL_FILE), modelName: 'a' });
    new S3ModelEndpoint(stack, 'B', { model: ModelSource.fromAsset(DEMO_MODEL_FILE), modelName: 'b' });
    const template = Template.fromStack(stack);
    const provider = Object.values(template.findResources('AWS::Lambda::Function')).filter((r) =>
      r.Properties.LoggingConfig?.LogGroup?.Ref?.startsWith('CdkServerlessInferenceModelCopyLogs'),
    );
    expect(provider).toHaveLength(1);
    // Every log group in the stack is used by something.
    const used = JSON.stringify(template.toJSON().Resources);
    for (const id of Object.keys(template.findResources('AWS::Logs::LogGroup'))) {
      expect(used.split(`"${id}"`).length - 1).toBeGreaterThan(1);
    }
  });

  it('copies the model asset into the bucket at deploy, again when the file changes', () => {
    const copy = Object.values(f.template.findResources('Custom::AWS')).filter((c) => !JSON.stringify(c.Properties.Create).includes('.ort'));
    expect(copy).toHaveLength(1);
    // The call is a JSON string joined with references: put placeholders in for the references.
    const call = (joined: any) => JSON.parse(joined['Fn::Join'][1].map((p: unknown) => (typeof p === 'string' ? p : 'REF')).join(''));
    const create = call(copy[0].Properties.Create);
    expect(create).toMatchObject({
      service: 'S3',
      action: 'copyObject',
      parameters: { Bucket: 'REF', Key: f.endpoint.modelObjectKey, CopySource: expect.stringMatching(/^cdk-[a-z0-9]+-assets-123456789012-eu-west-1\/[0-9a-f]{64}\.onnx$/) },
    });
    // The key, and so the physical id, carries the model's hash: a changed file is copied to a new key.
    expect(create.physicalResourceId.id).toBe(f.endpoint.modelObjectKey);
    expect(call(copy[0].Properties.Update)).toEqual(create);
    // The function is created after the copy, so its first cold start finds the model.
    expect(f.template.toJSON().Resources[ref(f.endpoint.function).Ref].DependsOn).toEqual(expect.arrayContaining([ref(f.endpoint.modelDeployment!).Ref]));
  });

  it('serves the live alias through the API, with IAM authorization', () => {
    f.template.hasResourceProperties('AWS::Lambda::Alias', { Name: 'live' });
    expect(resourceProps(f.template, f.endpoint.alias).ProvisionedConcurrencyConfig).toBeUndefined();
    const methods = Object.values(f.template.findResources('AWS::ApiGateway::Method'));
    expect(methods.length).toBeGreaterThan(5);
    for (const m of methods) {
      expect(m.Properties.AuthorizationType).toBe('AWS_IAM');
    }
    expect(f.endpoint.inferUrl).toBeDefined();
    expect(f.stack.resolve(f.endpoint.inferUrl)['Fn::Join'][1]).toContain('/v2/models/model/infer');
  });

  it('derives the API request schema from the model signature', () => {
    const model = Object.values(f.template.findResources('AWS::ApiGateway::Model'))[0];
    const items = model.Properties.Schema.properties.inputs.items;
    expect(items.oneOf).toEqual([
      expect.objectContaining({
        properties: expect.objectContaining({
          name: { type: 'string', enum: ['input'] },
          datatype: { type: 'string', enum: ['FP32'] },
          shape: expect.objectContaining({ minItems: 2, maxItems: 2 }),
        }),
      }),
    ]);
  });

  it('warms one instance every 5 minutes', () => {
    expect(f.endpoint.warmer?.concurrency).toBe(1);
    f.template.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(5 minutes)' });
    expect(resourceProps(f.template, f.endpoint.warmer!.function).Environment.Variables.WARMER_TARGET_ARN).toEqual(ref(f.endpoint.alias));
  });

  it('keeps logs for a month', () => {
    expect(resourceProps(f.template, f.endpoint.logGroup).RetentionInDays).toBe(30);
  });

  it('exposes every part', () => {
    expect(f.endpoint.function).toBeInstanceOf(lambda.Function);
    expect(f.endpoint.bucket).toBeInstanceOf(s3.Bucket);
    expect(f.endpoint.onnxRuntimeLayer).toBeInstanceOf(OnnxRuntimeLayer);
    expect(f.endpoint.api.restApi).toBeDefined();
    expect(f.endpoint.modelInfo?.inputs.map((i) => i.name)).toEqual(['input']);
  });
});

describe('S3ModelEndpoint props', () => {
  it('modelName names the routes, the env and the object key', () => {
    const f = setup({ modelName: 'churn', modelVersion: '7' });
    expect(env(f)).toMatchObject({ MODEL_NAME: 'churn', MODEL_VERSION: '7' });
    expect(f.endpoint.modelObjectKey).toMatch(/^models\/churn\/demo-[0-9a-f]{16}\.onnx$/);
    const paths = Object.values(f.template.findResources('AWS::ApiGateway::Resource')).map((r) => r.Properties.PathPart);
    expect(paths).toContain('churn');
    expect(paths).not.toContain('model');
  });

  it('memorySize sets memory and the threads onnxruntime uses, one per vCPU', () => {
    expect(env(setup({ memorySize: 4096 })).ORT_INTRA_OP_THREADS).toBe('2');
    const big = setup({ memorySize: 10_240 });
    expect(fn(big).MemorySize).toBe(10_240);
    expect(env(big).ORT_INTRA_OP_THREADS).toBe('6');
    expect(env(setup({ memorySize: 512 })).ORT_INTRA_OP_THREADS).toBe('1');
  });

  it('intraOpThreads and graphOptimizationLevel override the session options', () => {
    const f = setup({ intraOpThreads: 3, graphOptimizationLevel: GraphOptimizationLevel.BASIC });
    expect(env(f)).toMatchObject({ ORT_INTRA_OP_THREADS: '3', ORT_GRAPH_OPTIMIZATION_LEVEL: 'basic' });
  });

  it('architecture x86_64 uses the x86_64 layer; neither architecture warns', () => {
    const f = setup({ architecture: lambda.Architecture.X86_64 });
    expect(fn(f).Architectures).toEqual(['x86_64']);
    expect(resourceProps(f.template, f.endpoint.onnxRuntimeLayer!).CompatibleArchitectures).toEqual(['x86_64']);
    for (const stack of [f.stack, setup().stack]) {
      expect(Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('onnxruntime'))).toHaveLength(0);
    }
  });

  it('runtime, timeout, reserved concurrency, log retention and environment pass through', () => {
    const f = setup({
      runtime: lambda.Runtime.NODEJS_22_X,
      timeout: Duration.seconds(120),
      reservedConcurrentExecutions: 5,
      logRetention: logs.RetentionDays.ONE_YEAR,
      environment: { POWERTOOLS_LOG_LEVEL: 'DEBUG' },
      modelInitWait: Duration.seconds(3),
    });
    expect(fn(f)).toMatchObject({ Runtime: 'nodejs22.x', Timeout: 120, ReservedConcurrentExecutions: 5 });
    expect(resourceProps(f.template, f.endpoint.logGroup).RetentionInDays).toBe(365);
    expect(env(f)).toMatchObject({ POWERTOOLS_LOG_LEVEL: 'DEBUG', MODEL_INIT_WAIT_MS: '3000', MODEL_NAME: 'model' });
  });

  it('ephemeralStorageSize is used as given when it holds the model', () => {
    expect(fn(setup({ ephemeralStorageSize: Size.gibibytes(2) })).EphemeralStorage).toEqual({ Size: 2048 });
  });

  it('tracing ACTIVE traces the function and the API stage, with the X-Ray grant', () => {
    const f = setup({ tracing: lambda.Tracing.ACTIVE });
    expect(fn(f).TracingConfig).toEqual({ Mode: 'Active' });
    f.template.hasResourceProperties('AWS::ApiGateway::Stage', { TracingEnabled: true });
    const actions = roleStatements(f.template, f.endpoint.role).flatMap((s) => [s.Action].flat());
    expect(actions).toEqual(expect.arrayContaining(['xray:PutTraceSegments', 'xray:PutTelemetryRecords']));
  });

  it('provisionedConcurrency provisions the alias and replaces the warmer', () => {
    const f = setup({ provisionedConcurrency: 2 });
    expect(resourceProps(f.template, f.endpoint.alias).ProvisionedConcurrencyConfig).toEqual({ ProvisionedConcurrentExecutions: 2 });
    expect(f.endpoint.warmer).toBeUndefined();
    f.template.resourceCountIs('AWS::Events::Rule', 0);
    // Both, when asked for.
    expect(setup({ provisionedConcurrency: 2, warmer: true }).endpoint.warmer).toBeDefined();
    expect(setup({ provisionedConcurrency: 2, warmerOptions: { concurrency: 2 } }).endpoint.warmer?.concurrency).toBe(2);
  });

  it('warmerOptions reach the warmer; warmer: false removes it', () => {
    const f = setup({ warmerOptions: { concurrency: 3, schedule: events.Schedule.rate(Duration.minutes(10)) } });
    expect(f.endpoint.warmer?.concurrency).toBe(3);
    f.template.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(10 minutes)' });
    const off = setup({ warmer: false });
    expect(off.endpoint.warmer).toBeUndefined();
    off.template.resourceCountIs('AWS::Events::Rule', 0);
    off.template.resourceCountIs('AWS::Lambda::Function', 2);
    expect(() => setup({ warmer: false, warmerOptions: { concurrency: 2 } })).toThrow('warmerOptions configure the warmer, and warmer is false');
  });

  it('api options reach the API', () => {
    const f = setup({ api: { authorization: InferenceApiAuthorization.none(), throttlingRateLimit: 7 } });
    for (const m of Object.values(f.template.findResources('AWS::ApiGateway::Method'))) {
      expect(m.Properties.AuthorizationType).toBe('NONE');
    }
    f.template.hasResourceProperties('AWS::ApiGateway::Stage', {
      MethodSettings: Match.arrayWith([Match.objectLike({ ThrottlingRateLimit: 7 })]),
    });
  });

  it('bucket puts a fromAsset model into the given bucket, creating none', () => {
    const { stack } = newStack();
    const own = new s3.Bucket(stack, 'Own', { enforceSSL: true });
    const endpoint = new S3ModelEndpoint(stack, 'Endpoint', { model: ModelSource.fromAsset(DEMO_MODEL_FILE), bucket: own });
    const template = Template.fromStack(stack);
    expect(endpoint.bucket).toBe(own);
    template.resourceCountIs('AWS::S3::Bucket', 1);
    expect(JSON.stringify(template.findResources('Custom::AWS'))).toContain(ref(own).Ref);
  });

  it('serverAccessLogsBucket receives the new bucket’s access logs', () => {
    const { stack } = newStack();
    const logsBucket = new s3.Bucket(stack, 'Logs');
    const endpoint = new S3ModelEndpoint(stack, 'Endpoint', { model: ModelSource.fromAsset(DEMO_MODEL_FILE), serverAccessLogsBucket: logsBucket });
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::S3::Bucket', 2);
    expect(resourceProps(template, endpoint.bucket).LoggingConfiguration.DestinationBucketName).toEqual(ref(logsBucket));
  });

  it('grantInvoke lets a principal call the API', () => {
    const { stack } = newStack();
    const endpoint = new S3ModelEndpoint(stack, 'Endpoint', { model: ModelSource.fromAsset(DEMO_MODEL_FILE) });
    const caller = new iam.Role(stack, 'Caller', { assumedBy: new iam.AccountRootPrincipal() });
    endpoint.grantInvoke(caller);
    const statements = roleStatements(Template.fromStack(stack), caller);
    expect(statements).toEqual([expect.objectContaining({ Action: 'execute-api:Invoke', Effect: 'Allow' })]);
  });

  it('shares one ONNX Runtime layer and one copy provider between endpoints of a stack', () => {
    const { stack } = newStack();
    const a = new S3ModelEndpoint(stack, 'A', { model: ModelSource.fromAsset(DEMO_MODEL_FILE), modelName: 'a' });
    const b = new S3ModelEndpoint(stack, 'B', { model: ModelSource.fromAsset(DEMO_MODEL_FILE), modelName: 'b' });
    const template = Template.fromStack(stack);
    expect(a.onnxRuntimeLayer).toBe(b.onnxRuntimeLayer);
    template.resourceCountIs('AWS::Lambda::LayerVersion', 1);
    // The model and its precompiled copy, per endpoint.
    template.resourceCountIs('Custom::AWS', 4);
    // Inference x2, warmer x2, the AwsCustomResource provider x1.
    template.resourceCountIs('AWS::Lambda::Function', 5);
  });
});

describe('S3ModelEndpoint with ModelSource.fromBucket', () => {
  function fromBucket(options: Parameters<typeof ModelSource.fromBucket>[2] = {}, bucketProps: s3.BucketProps | ((stack: Stack) => s3.BucketProps) = {}) {
    const { app, stack } = newStack();
    const bucket = new s3.Bucket(stack, 'Models', typeof bucketProps === 'function' ? bucketProps(stack) : bucketProps);
    const endpoint = new S3ModelEndpoint(stack, 'Endpoint', { model: ModelSource.fromBucket(bucket, 'team/model.onnx', options) });
    return { app, stack, bucket, endpoint, template: Template.fromStack(stack) };
  }

  it('reads the object where it is: no bucket, no copy, no signature', () => {
    const f = fromBucket();
    f.template.resourceCountIs('AWS::S3::Bucket', 1);
    f.template.resourceCountIs('Custom::AWS', 0);
    expect(f.endpoint.bucket).toBe(f.bucket);
    expect(f.endpoint.modelDeployment).toBeUndefined();
    expect(f.endpoint.modelInfo).toBeUndefined();
    expect(env(f)).toMatchObject({ MODEL_S3_URI: { 'Fn::Join': ['', ['s3://', ref(f.bucket), '/team/model.onnx']] } });
    expect(env(f).MODEL_S3_VERSION_ID).toBeUndefined();
    // Without a signature, the API validates the generic request form.
    const model = Object.values(f.template.findResources('AWS::ApiGateway::Model'))[0];
    expect(model.Properties.Schema.properties.inputs.items.properties.name).toEqual({ type: 'string', minLength: 1 });
  });

  it('grants GetObject on the key alone: no listing of a bucket that is not only models', () => {
    const f = fromBucket();
    const bucketArn = { 'Fn::GetAtt': [ref(f.bucket).Ref, 'Arn'] };
    expect(s3Statements(f)).toEqual([{ Effect: 'Allow', Action: 's3:GetObject', Resource: { 'Fn::Join': ['', [bucketArn, '/team/model.onnx']] } }]);
  });

  it('pins a version: the handler asks for it and may read it', () => {
    const f = fromBucket({ version: 'v3' });
    expect(env(f).MODEL_S3_VERSION_ID).toBe('v3');
    expect(s3Statements(f)[0].Action).toEqual(['s3:GetObject', 's3:GetObjectVersion']);
  });

  it('sizes /tmp from a given size', () => {
    // 3 GiB * 1.2 + 256 MiB = 3,942.4 MiB, rounded up to 64 MiB: 3,968 MiB.
    expect(fn(fromBucket({ size: Size.gibibytes(3) })).EphemeralStorage).toEqual({ Size: 3968 });
    expect(fn(fromBucket()).EphemeralStorage).toBeUndefined();
  });

  it('warns when a given size needs more memory than the function has, as for a local model', () => {
    const memoryWarnings = (f: { stack: Stack }) => Annotations.fromStack(f.stack).findWarning('*', Match.stringLikeRegexp('raise memorySize'));
    expect(memoryWarnings(fromBucket({ size: Size.gibibytes(3) }))).toHaveLength(1);
    expect(memoryWarnings(fromBucket({ size: Size.mebibytes(100) }))).toHaveLength(0);
    expect(memoryWarnings(fromBucket())).toHaveLength(0);
  });

  it("may decrypt with a KMS bucket's key", () => {
    const f = fromBucket({}, (stack) => ({ encryptionKey: new kms.Key(stack, 'Key') }));
    const actions = roleStatements(f.template, f.endpoint.role).flatMap((s) => [s.Action].flat());
    expect(actions).toContain('kms:Decrypt');
  });
});

describe('S3ModelEndpoint synth errors name the prop and the limit', () => {
  const model = () => ModelSource.fromAsset(DEMO_MODEL_FILE);
  const cases: Array<[string, Partial<S3ModelEndpointProps>, RegExp]> = [
    ['memory below 128 MiB', { memorySize: 64 }, /memorySize must be a whole number of MiB between 128 and 10240 \(Lambda's limits\), got: 64/],
    ['memory above 10 GiB', { memorySize: 20_000 }, /memorySize .* between 128 and 10240 .* got: 20000/],
    ['fractional memory', { memorySize: 1536.5 }, /memorySize must be a whole number/],
    ['ephemeral storage over 10 GiB', { ephemeralStorageSize: Size.gibibytes(11) }, /ephemeralStorageSize must be between 512 and 10240 MiB \(Lambda's limits\), got: 11264 MiB/],
    ['ephemeral storage under 512 MiB', { ephemeralStorageSize: Size.mebibytes(256) }, /ephemeralStorageSize must be between 512 and 10240 MiB/],
    ['timeout over 15 minutes', { timeout: Duration.minutes(16) }, /timeout must be at most 15 minutes \(Lambda's limit\), got: 16 minutes/],
    ['negative reserved concurrency', { reservedConcurrentExecutions: -1 }, /reservedConcurrentExecutions must be a whole number of at least 0, got: -1/],
    ['zero provisioned concurrency', { provisionedConcurrency: 0 }, /provisionedConcurrency must be a whole number of at least 1, got: 0/],
    ['zero threads', { intraOpThreads: 0 }, /intraOpThreads must be a whole number of at least 1, got: 0/],
    [
      'provisioned concurrency over the reservation',
      { reservedConcurrentExecutions: 2, provisionedConcurrency: 3 },
      /provisionedConcurrency \(3\) must not exceed reservedConcurrentExecutions \(2\)/,
    ],
    [
      'scaling past the reservation',
      { reservedConcurrentExecutions: 4, provisionedConcurrency: 2, provisionedConcurrencyScaling: { minCapacity: 1, maxCapacity: 5 } },
      /provisionedConcurrencyScaling.maxCapacity \(5\) must not exceed reservedConcurrentExecutions \(4\)/,
    ],
    [
      'warm-ups that take every reserved instance',
      { reservedConcurrentExecutions: 2, warmerOptions: { concurrency: 2 } },
      /warmerOptions.concurrency \(2\) must stay below reservedConcurrentExecutions \(2\)/,
    ],
    ['the default warmer on a reservation of one', { reservedConcurrentExecutions: 1 }, /warmerOptions.concurrency \(1\) must stay below reservedConcurrentExecutions \(1\)/],
  ];
  it.each(cases)('%s', (_name, props, message) => {
    const { stack } = newStack();
    expect(() => new S3ModelEndpoint(stack, 'Endpoint', { model: model(), ...props })).toThrow(message);
  });

  it('a fromBucket model with bucket or serverAccessLogsBucket', () => {
    const { stack } = newStack();
    const bucket = new s3.Bucket(stack, 'B');
    const source = ModelSource.fromBucket(bucket, 'm.onnx');
    expect(() => new S3ModelEndpoint(stack, 'E1', { model: source, bucket })).toThrow(/bucket applies to a ModelSource.fromAsset model/);
    expect(() => new S3ModelEndpoint(stack, 'E2', { model: source, serverAccessLogsBucket: bucket })).toThrow(/serverAccessLogsBucket applies to the bucket the endpoint creates/);
  });

  it('serverAccessLogsBucket with an own bucket', () => {
    const { stack } = newStack();
    const bucket = new s3.Bucket(stack, 'B');
    expect(() => new S3ModelEndpoint(stack, 'E', { model: model(), bucket, serverAccessLogsBucket: bucket })).toThrow(
      /serverAccessLogsBucket applies to the bucket the endpoint creates; give it to your own bucket instead/,
    );
  });

  it('a file that is not an ONNX model, naming the file', () => {
    const file = writeModel(notOnnxBytes(), 'weights.onnx');
    expect(() => ModelSource.fromAsset(file)).toThrow(new RegExp(file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')));
  });

  it('a missing model file', () => {
    expect(() => ModelSource.fromAsset('/nonexistent/model.onnx')).toThrow('ModelSource.fromAsset: /nonexistent/model.onnx is not a file');
  });

  it('a fromBucket key with a leading slash', () => {
    const { stack } = newStack();
    expect(() => ModelSource.fromBucket(new s3.Bucket(stack, 'B'), '/m.onnx')).toThrow(/key must be an object key without a leading '\/', got: '\/m.onnx'/);
  });

  it('ephemeralStorageSize too small for the model', () => {
    const { stack } = newStack();
    const model = ModelSource.fromBucket(new s3.Bucket(stack, 'B'), 'm.onnx', { size: Size.gibibytes(2) });
    expect(() => new S3ModelEndpoint(stack, 'E', { model, ephemeralStorageSize: Size.gibibytes(1) })).toThrow(
      /ephemeralStorageSize is 1024 MiB, too small for the 2.00 GiB model fetched into \/tmp: it needs at least 2752 MiB/,
    );
  });

  it('a model larger than /tmp can hold', () => {
    const { stack } = newStack();
    const model = ModelSource.fromBucket(new s3.Bucket(stack, 'B'), 'm.onnx', { size: Size.gibibytes(9) });
    expect(() => new S3ModelEndpoint(stack, 'E', { model })).toThrow(
      /model is 9.00 GiB, more than Lambda's largest \/tmp \(10240 MiB\) can hold with headroom .*EfsModelEndpoint.*ContainerModelEndpoint/,
    );
  });

  it('a fromAsset model over the 5 GB of one S3 copy', () => {
    // A sparse file: a real ONNX header, 6 GiB long, taking no disk.
    const file = writePaddedModel(path.join(tempDir(), 'huge.onnx'), 6 * 1024 ** 3, { sparse: true }).path;
    const { stack } = newStack();
    expect(() => new S3ModelEndpoint(stack, 'E', { model: ModelSource.fromAsset(file) })).toThrow(
      /huge\.onnx is 6.00 GiB; a fromAsset model is copied into the bucket with one S3 CopyObject, which takes at most 5.00 GiB: upload it yourself and use ModelSource.fromBucket/,
    );
    fs.rmSync(file);
  });
});

describe('S3ModelEndpoint metrics', () => {
  it("reads the handler's embedded metrics by its service and model dimensions", () => {
    const f = setup({ modelName: 'churn' });
    const service = env(f).POWERTOOLS_SERVICE_NAME;
    for (const [metric, name] of [
      [f.endpoint.metricColdStarts(), 'ColdStart'],
      [f.endpoint.metricModelLoadTime(), 'ModelLoadMs'],
      [f.endpoint.metricInferenceTime(), 'InferenceMs'],
      [f.endpoint.metricModelLoadFailures(), 'ModelLoadFailed'],
      [f.endpoint.metricAfterResponseFailures(), 'AfterResponseFailed'],
    ] as const) {
      expect(metric.namespace).toBe(env(f).POWERTOOLS_METRICS_NAMESPACE);
      expect(metric.metricName).toBe(name);
      expect(metric.dimensions).toEqual({ service, model: 'churn' });
    }
    expect(f.endpoint.metricErrors().dimensions).toEqual({ FunctionName: expect.anything(), Resource: expect.anything() });
    expect(f.endpoint.metricLatency().statistic).toBe('p99');
  });
});

describe('a model with several inputs', () => {
  it('pins each input of its signature in the request schema', () => {
    const { stack } = newStack();
    new S3ModelEndpoint(stack, 'E', { model: ModelSource.fromAsset(writeModel(multiIoModel().bytes)) });
    const model = Object.values(Template.fromStack(stack).findResources('AWS::ApiGateway::Model'))[0];
    const names = model.Properties.Schema.properties.inputs.items.oneOf.map((o: any) => o.properties.name.enum[0]);
    expect(names).toEqual(multiIoModel().spec.inputs.map((i) => i.name));
  });
});
