/**
 * Data capture and the shadow as endpoint props: what they synthesize (the Firehose stream with
 * hourly prefixes into a KMS-encrypted bucket with a lifecycle rule, the Glue table with partition
 * projection, the alarm, the function's environment and grants, the dashboard), what they refuse,
 * and that cdk-nag finds nothing unacknowledged.
 */
import { Duration, Size } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { describe, expect, it } from 'vitest';
import { DEMO_MODEL_FILE } from '../../../fixtures/demo-model';
import { CaptureMode, ModelSource, S3ModelEndpoint, type S3ModelEndpointProps, ShadowAgreement, ShadowMode } from '../../../lib';
import { nagFindings, newStack, ref, resourceProps, roleStatements, thrown } from '../../support/stacks';

const STREAM = { responseTransferMode: apigw.ResponseTransferMode.STREAM };

function endpoint(props: Partial<S3ModelEndpointProps> = {}) {
  const { app, stack } = newStack();
  const e = new S3ModelEndpoint(stack, 'Endpoint', { model: ModelSource.fromAsset(DEMO_MODEL_FILE), modelName: 'demo', api: STREAM, ...props });
  return { app, stack, endpoint: e, template: Template.fromStack(stack) };
}

describe('dataCapture', () => {
  it('puts records through a KMS-encrypted Firehose stream into hourly prefixes of a KMS-encrypted bucket with a lifecycle rule', () => {
    const { endpoint: e, template } = endpoint({ dataCapture: { samplingPercentage: 10, captureMode: CaptureMode.INPUT } });
    const capture = e.inferenceFunction.dataCapture!;
    const key = ref(capture.encryptionKey);
    template.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
    template.hasResourceProperties('AWS::KinesisFirehose::DeliveryStream', {
      DeliveryStreamType: 'DirectPut',
      DeliveryStreamEncryptionConfigurationInput: { KeyType: 'CUSTOMER_MANAGED_CMK', KeyARN: { 'Fn::GetAtt': [key.Ref, 'Arn'] } },
      ExtendedS3DestinationConfiguration: Match.objectLike({
        BucketARN: { 'Fn::GetAtt': [ref(capture.bucket).Ref, 'Arn'] },
        Prefix: 'data-capture/!{timestamp:yyyy/MM/dd/HH}/',
        ErrorOutputPrefix: Match.stringLikeRegexp('^data-capture-errors/'),
        CompressionFormat: 'GZIP',
        BufferingHints: { IntervalInSeconds: 300, SizeInMBs: Match.anyValue() },
        EncryptionConfiguration: { KMSEncryptionConfig: { AWSKMSKeyARN: { 'Fn::GetAtt': [key.Ref, 'Arn'] } } },
      }),
    });
    expect(resourceProps(template, capture.bucket)).toMatchObject({
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [
          { BucketKeyEnabled: true, ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: { 'Fn::GetAtt': [key.Ref, 'Arn'] } } },
        ],
      },
      LifecycleConfiguration: { Rules: [{ ExpirationInDays: 90, AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 }, Status: 'Enabled' }] },
    });
    const env = resourceProps(template, e.function).Environment.Variables;
    expect(env).toMatchObject({ DATA_CAPTURE_FIREHOSE_STREAM: ref(capture.deliveryStream), DATA_CAPTURE_SAMPLING_PERCENT: '10', DATA_CAPTURE_MODE: 'Input' });
    expect(env.SHADOW_MODEL_S3_URI).toBeUndefined();
    const put = roleStatements(template, e.role).find((s) => [s.Action].flat().includes('firehose:PutRecord'));
    expect(put?.Resource).toEqual({ 'Fn::GetAtt': [ref(capture.deliveryStream).Ref, 'Arn'] });
  });

  it('makes a Glue table that Athena projects one partition per hour from the prefix', () => {
    const { endpoint: e, template } = endpoint({ dataCapture: {} });
    const capture = e.inferenceFunction.dataCapture!;
    template.hasResourceProperties('AWS::Glue::Table', {
      DatabaseName: capture.glueDatabaseName,
      TableInput: Match.objectLike({
        Name: 'data_capture',
        PartitionKeys: [{ Name: 'hour', Type: 'string' }],
        Parameters: Match.objectLike({
          'projection.enabled': 'true',
          'projection.hour.type': 'date',
          'projection.hour.format': 'yyyy/MM/dd/HH',
          'projection.hour.interval.unit': 'HOURS',
          'storage.location.template': { 'Fn::Join': ['', ['s3://', ref(capture.bucket), `/data-capture/\${hour}/`]] },
        }),
        StorageDescriptor: Match.objectLike({ SerdeInfo: Match.objectLike({ SerializationLibrary: 'org.openx.data.jsonserde.JsonSerDe' }) }),
      }),
    });
    expect(capture.glueDatabaseName).toMatch(/^[a-z0-9_]+$/);
  });

  it('alarms on capture failures, and the endpoint monitoring sends that alarm where its others go and graphs capture', () => {
    const { endpoint: e, template } = endpoint({ dataCapture: {}, monitoring: {} });
    const alarm = e.inferenceFunction.dataCapture!.failureAlarm;
    expect(resourceProps(template, alarm)).toMatchObject({
      MetricName: 'CaptureFailed',
      Namespace: 'CdkServerlessInference',
      Statistic: 'Sum',
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      AlarmActions: [ref(e.monitoring!.alarmTopic!)],
    });
    expect(e.monitoring!.alarms.CaptureFailures).toBe(alarm);
    const body = JSON.stringify(template.findResources('AWS::CloudWatch::Dashboard'));
    expect(body).toContain('Data capture');
    expect(body).toContain('CaptureFailed');
    expect(body).not.toContain('Shadow');
  });

  it('uses your bucket and key', () => {
    const { stack, app } = newStack();
    const bucket = new s3.Bucket(stack, 'Mine', { enforceSSL: true });
    const encryptionKey = new kms.Key(stack, 'MyKey', { enableKeyRotation: true });
    const e = new S3ModelEndpoint(stack, 'Endpoint', {
      model: ModelSource.fromAsset(DEMO_MODEL_FILE),
      api: STREAM,
      dataCapture: { bucket, encryptionKey, prefix: 'captures/demo/' },
    });
    const template = Template.fromStack(stack);
    expect(e.inferenceFunction.dataCapture!.bucket).toBe(bucket);
    template.resourceCountIs('AWS::KMS::Key', 1);
    template.hasResourceProperties('AWS::KinesisFirehose::DeliveryStream', {
      ExtendedS3DestinationConfiguration: Match.objectLike({ Prefix: 'captures/demo/!{timestamp:yyyy/MM/dd/HH}/' }),
    });
    expect(app).toBeDefined();
  });

  it('refuses what cannot work, naming the prop and the limit', () => {
    const cases: Array<[Partial<S3ModelEndpointProps>, RegExp]> = [
      [{ api: {}, dataCapture: {} }, /dataCapture runs after the answer is sent.*responseTransferMode/],
      [{ api: {}, shadow: { model: ModelSource.fromAsset(DEMO_MODEL_FILE) } }, /shadow runs after the answer is sent/],
      [{ dataCapture: { samplingPercentage: 101 } }, /dataCapture.samplingPercentage must be between 0 and 100, got: 101/],
      [{ dataCapture: { bufferingInterval: Duration.seconds(30) } }, /bufferingInterval must be between 60 and 900 seconds .*got: 30 seconds/],
      [{ dataCapture: { prefix: 'no-slash' } }, /dataCapture.prefix must end with '\/'/],
      [{ shadow: { model: ModelSource.fromAsset(DEMO_MODEL_FILE), samplingPercentage: -1 } }, /shadow.samplingPercentage must be between 0 and 100, got: -1/],
    ];
    for (const [props, message] of cases) {
      const e = thrown(() => endpoint(props));
      expect(e.message).toMatch(message);
      expect(e.constructPath).toMatch(/^Stack\/Endpoint/);
    }
    const { stack } = newStack();
    const bucket = new s3.Bucket(stack, 'Mine');
    expect(
      thrown(() => new S3ModelEndpoint(stack, 'E', { model: ModelSource.fromAsset(DEMO_MODEL_FILE), api: STREAM, dataCapture: { bucket, retention: Duration.days(7) } })).message,
    ).toMatch(/retention is the lifecycle rule of the bucket the endpoint creates/);
  });

  it('changes nothing of an endpoint without it', () => {
    const { template } = endpoint();
    template.resourceCountIs('AWS::KinesisFirehose::DeliveryStream', 0);
    template.resourceCountIs('AWS::Glue::Table', 0);
  });
});

describe('shadow', () => {
  it('uploads the candidate, lets the function read that one object, configures the comparison and captures what it runs on', () => {
    const { endpoint: e, template } = endpoint({
      shadow: { model: ModelSource.fromAsset(DEMO_MODEL_FILE), samplingPercentage: 5, agreement: ShadowAgreement.argmax() },
      monitoring: {},
    });
    const env = resourceProps(template, e.function).Environment.Variables;
    expect(env).toMatchObject({
      SHADOW_MODEL_S3_URI: expect.stringMatching(/^s3:\/\/cdk-[a-z0-9]+-assets-123456789012-eu-west-1\/[0-9a-f]{64}\.onnx$/),
      SHADOW_MODEL_VERSION: e.modelVersion,
      SHADOW_SAMPLING_PERCENT: '5',
      SHADOW_AGREEMENT: 'argmax',
      // Capture of what the shadow runs on only.
      DATA_CAPTURE_SAMPLING_PERCENT: '0',
    });
    const key = env.SHADOW_MODEL_S3_URI.split('/').pop();
    const read = roleStatements(template, e.role).find((s) => JSON.stringify(s.Resource).includes(key));
    expect(read).toMatchObject({ Action: 's3:GetObject', Effect: 'Allow' });
    const body = JSON.stringify(template.findResources('AWS::CloudWatch::Dashboard'));
    for (const metric of ['ShadowAgreement', 'ShadowFailed', 'ShadowLatencyRatio']) expect(body).toContain(metric);
  });

  it('reads a candidate from your bucket, at the pinned version, with the tolerance given', () => {
    const { stack } = newStack();
    const models = s3.Bucket.fromBucketName(stack, 'Models', 'team-models');
    const e = new S3ModelEndpoint(stack, 'Endpoint', {
      model: ModelSource.fromAsset(DEMO_MODEL_FILE),
      api: STREAM,
      shadow: { model: ModelSource.fromBucket(models, 'demo/v2.onnx', { version: 'abc123' }), agreement: ShadowAgreement.tolerance(0.01), modelVersion: 'v2' },
    });
    const template = Template.fromStack(stack);
    expect(resourceProps(template, e.function).Environment.Variables).toMatchObject({
      SHADOW_MODEL_S3_URI: 's3://team-models/demo/v2.onnx',
      SHADOW_MODEL_S3_VERSION_ID: 'abc123',
      SHADOW_MODEL_VERSION: 'v2',
      SHADOW_AGREEMENT: 'tolerance',
      SHADOW_TOLERANCE: '0.01',
    });
  });
});

describe('shadow in a shadow function (ShadowMode.SHADOW_FUNCTION)', () => {
  it('creates the shadow function with the candidate, lets the live function invoke it asynchronously, without retries', () => {
    const { endpoint: e, template } = endpoint({
      shadow: { model: ModelSource.fromAsset(DEMO_MODEL_FILE), mode: ShadowMode.SHADOW_FUNCTION, samplingPercentage: 5, agreement: ShadowAgreement.argmax() },
      monitoring: {},
    });
    const fn = e.inferenceFunction;
    const shadowFn = fn.shadowFunction!;
    const live = resourceProps(template, e.function).Environment.Variables;
    expect(live).toMatchObject({ SHADOW_FUNCTION_NAME: { Ref: expect.stringMatching(/ShadowFunctionLiveAlias/) }, SHADOW_SAMPLING_PERCENT: '5' });
    expect(live.SHADOW_MODEL_S3_URI).toBeUndefined();
    const candidate = resourceProps(template, shadowFn.function).Environment.Variables;
    expect(candidate).toMatchObject({
      SHADOW_CANDIDATE: 'true',
      SHADOW_AGREEMENT: 'argmax',
      DATA_CAPTURE_FIREHOSE_STREAM: ref(fn.dataCapture!.deliveryStream),
      MODEL_NAME: 'demo',
    });
    expect(candidate.MODEL_S3_URI).toBeDefined();
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', { FunctionName: ref(shadowFn.function), MaximumRetryAttempts: 0 });
    const invoke = roleStatements(template, e.role).find((st) => [st.Action].flat().includes('lambda:InvokeFunction'));
    expect(JSON.stringify(invoke?.Resource)).toContain(ref(shadowFn.alias).Ref);
    expect(roleStatements(template, shadowFn.role).some((st) => [st.Action].flat().includes('firehose:PutRecord'))).toBe(true);
    // The dashboard graphs the shadow function's metrics.
    const body = JSON.stringify(template.findResources('AWS::CloudWatch::Dashboard'));
    expect(body).toContain('ShadowAgreement');
    expect(fn.metricShadowAgreement().dimensions).toEqual(shadowFn.metricShadowAgreement().dimensions);
  });

  it('has no unacknowledged cdk-nag finding', () => {
    const { app } = endpoint({ shadow: { model: ModelSource.fromAsset(DEMO_MODEL_FILE), mode: ShadowMode.SHADOW_FUNCTION }, monitoring: {} });
    expect(nagFindings(app)).toEqual([]);
  });
});

describe('shadow sizing', () => {
  it("counts the candidate in the function's /tmp and memory", () => {
    const { stack } = newStack();
    const models = s3.Bucket.fromBucketName(stack, 'Models', 'team-models');
    const without = new S3ModelEndpoint(stack, 'Without', { model: ModelSource.fromAsset(DEMO_MODEL_FILE), api: STREAM });
    const e = new S3ModelEndpoint(stack, 'Endpoint', {
      model: ModelSource.fromAsset(DEMO_MODEL_FILE),
      api: STREAM,
      shadow: { model: ModelSource.fromBucket(models, 'big.onnx', { size: Size.gibibytes(2) }) },
    });
    const template = Template.fromStack(stack);
    const tmp = (endpoint: S3ModelEndpoint) => resourceProps(template, endpoint.function).EphemeralStorage?.Size ?? 512;
    expect(tmp(e)).toBeGreaterThanOrEqual(tmp(without) + 2048);
    const warnings = Annotations.fromStack(stack).findWarning('/Stack/Endpoint/Default', Match.stringLikeRegexp('memorySize is 2048 MiB, but a .* model needs about'));
    expect(warnings).toHaveLength(1);
    expect(Annotations.fromStack(stack).findWarning('/Stack/Without/Default', Match.stringLikeRegexp('memorySize'))).toHaveLength(0);
  });
});

describe('data capture, the shadow and cdk-nag (AwsSolutions and Serverless packs)', () => {
  it('no unacknowledged finding with both, and monitoring', () => {
    const { app } = endpoint({ dataCapture: { samplingPercentage: 10 }, shadow: { model: ModelSource.fromAsset(DEMO_MODEL_FILE) }, monitoring: {} });
    expect(nagFindings(app)).toEqual([]);
  });
});
