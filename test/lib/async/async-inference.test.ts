import { Duration, Size, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import { describe, expect, it } from 'vitest';
import { DEMO_MODEL_FILE } from '../../../fixtures/demo-model';
import { AsyncInference, type AsyncInferenceProps, AsyncNotifications, ModelSource, S3ModelEndpoint } from '../../../lib';
import { nagFindings, newStack, roleStatements, thrown } from '../../support/stacks';

function asyncApp(props: Partial<AsyncInferenceProps> = {}, build?: (stack: Stack) => Partial<AsyncInferenceProps>) {
  const { app, stack } = newStack();
  const endpoint = new S3ModelEndpoint(stack, 'Endpoint', { model: ModelSource.fromAsset(DEMO_MODEL_FILE), modelName: 'demo' });
  const asyncInference = new AsyncInference(stack, 'Async', { endpoint, ...props, ...build?.(stack) });
  return { app, stack, endpoint, asyncInference, template: () => Template.fromStack(stack) };
}

const envOf = (template: Template, endpoint: S3ModelEndpoint) => {
  const fn = template.toJSON().Resources[Stack.of(endpoint).getLogicalId(endpoint.function.node.defaultChild as never)];
  return fn.Properties.Environment.Variables as Record<string, unknown>;
};

describe('AsyncInference', () => {
  it('feeds the live alias from a queue with partial batch failures and a maximum concurrency, a dead-letter queue and its alarm', () => {
    const { template, asyncInference, stack } = asyncApp();
    const t = template();
    // The alias `live`, not the function: a rollout moves the queue's traffic with the API's.
    const [mapping] = Object.values(t.findResources('AWS::Lambda::EventSourceMapping'));
    expect(JSON.stringify(mapping.Properties.FunctionName)).toContain(':live');
    t.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      BatchSize: 1,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: 10 },
    });
    t.hasResourceProperties('AWS::SQS::Queue', {
      // Six times the function's 60 s timeout.
      VisibilityTimeout: 360,
      SqsManagedSseEnabled: true,
      RedrivePolicy: { deadLetterTargetArn: stack.resolve(asyncInference.deadLetterQueue.queueArn), maxReceiveCount: 3 },
    });
    t.hasResourceProperties('AWS::SQS::Queue', { MessageRetentionPeriod: 14 * 24 * 3600 });
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: stack.resolve(asyncInference.deadLetterQueue.queueName) }],
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
    });
  });

  it('expires what the bucket holds, and tells the function where everything is', () => {
    const { template, endpoint, asyncInference, stack } = asyncApp({ expiration: Duration.days(7), maxInputSize: Size.mebibytes(64), uploadUrlExpiration: Duration.minutes(5) });
    const t = template();
    t.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: { Rules: [Match.objectLike({ ExpirationInDays: 7, AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 }, Status: 'Enabled' })] },
      PublicAccessBlockConfiguration: Match.objectLike({ BlockPublicAcls: true, RestrictPublicBuckets: true }),
    });
    expect(envOf(t, endpoint)).toMatchObject({
      ASYNC_BUCKET: stack.resolve(asyncInference.bucket.bucketName),
      ASYNC_QUEUE_URL: stack.resolve(asyncInference.queue.queueUrl),
      ASYNC_MAX_RECEIVE_COUNT: '3',
      ASYNC_MAX_INPUT_BYTES: String(64 * 1024 * 1024),
      ASYNC_UPLOAD_URL_EXPIRES_S: '300',
      ASYNC_EVENT_BUS: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':events:eu-west-1:123456789012:event-bus/default']] },
    });
  });

  it('adds the accept, upload and status routes to the endpoint API, with its IAM authorization, and grants them', () => {
    const { template, asyncInference, stack } = asyncApp();
    const caller = new iam.Role(stack, 'Caller', { assumedBy: new iam.AccountRootPrincipal() });
    asyncInference.grantInvoke(caller);
    const t = template();
    const methods = Object.values(t.findResources('AWS::ApiGateway::Method')) as Array<{ Properties: Record<string, any> }>;
    const async = methods.filter((m) => JSON.stringify(m.Properties.ResourceId).includes('inferasync') || JSON.stringify(m).includes('infer-async'));
    expect(async.length).toBeGreaterThanOrEqual(3);
    for (const m of async) expect(m.Properties.AuthorizationType).toBe('AWS_IAM');
    t.hasResourceProperties('AWS::ApiGateway::Resource', { PathPart: 'infer-async' });
    t.hasResourceProperties('AWS::ApiGateway::Resource', { PathPart: 'uploads' });
    t.hasResourceProperties('AWS::ApiGateway::Resource', { PathPart: '{id}' });
    t.hasResourceProperties('AWS::ApiGateway::Method', { HttpMethod: 'GET', RequestParameters: { 'method.request.path.id': true } });

    const statements = roleStatements(t, caller);
    const arns = JSON.stringify(statements.flatMap((s) => s.Resource));
    expect(arns).toContain('/POST/v2/models/demo/infer-async"');
    expect(arns).toContain('/POST/v2/models/demo/infer-async/uploads');
    // An id is not known at deploy: the status route is granted for any id, and for nothing else.
    expect(arns).toContain('/GET/v2/models/demo/infer-async/*"');
    expect(arns.match(/\*/g)).toHaveLength(1);
  });

  it('grants the function its prefixes of the bucket, the queue, the default event bus and the input buckets, nothing wider', () => {
    const { template, endpoint, stack } = asyncApp({}, (s) => ({ inputBuckets: [s3.Bucket.fromBucketName(s, 'Data', 'caller-data')] }));
    const t = template();
    const statements = roleStatements(t, endpoint.role);
    const resources = JSON.stringify(statements.flatMap((s) => s.Resource));
    for (const prefix of ['requests/*', 'uploads/*', 'results/*', 'errors/*']) expect(resources).toContain(`/${prefix}`);
    expect(resources).toContain(':s3:::caller-data/*"');
    expect(statements.some((s) => [s.Action].flat().includes('sqs:SendMessage'))).toBe(true);
    expect(statements.some((s) => [s.Action].flat().includes('events:PutEvents'))).toBe(true);
    expect(envOf(t, endpoint).ASYNC_INPUT_BUCKETS).toBe('caller-data');
    void stack;
  });

  it('notifies SNS topics instead, when asked, and nothing with none()', () => {
    const sn = asyncApp({}, (s) => ({
      notifications: AsyncNotifications.snsTopics({ success: new sns.Topic(s, 'Ok', { enforceSSL: true }), failure: new sns.Topic(s, 'Failed', { enforceSSL: true }) }),
    }));
    const env = envOf(sn.template(), sn.endpoint);
    expect(env.ASYNC_SUCCESS_TOPIC_ARN).toEqual({ Ref: expect.stringMatching(/^Ok/) });
    expect(env.ASYNC_ERROR_TOPIC_ARN).toEqual({ Ref: expect.stringMatching(/^Failed/) });
    expect(env.ASYNC_EVENT_BUS).toBeUndefined();
    expect(roleStatements(sn.template(), sn.endpoint.role).some((s) => [s.Action].flat().includes('sns:Publish'))).toBe(true);

    const none = asyncApp({ notifications: AsyncNotifications.none() });
    const env2 = envOf(none.template(), none.endpoint);
    expect(Object.keys(env2).filter((k) => /TOPIC|EVENT_BUS/.test(k))).toEqual([]);

    const bus = asyncApp({}, (s) => ({ notifications: AsyncNotifications.eventBridge(new events.EventBus(s, 'Bus')) }));
    expect(envOf(bus.template(), bus.endpoint).ASYNC_EVENT_BUS).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^Bus/), 'Arn'] });
  });

  it('sends the dead-letter alarm to the endpoint alarm topic when it has monitoring', () => {
    const { app, stack } = newStack();
    const endpoint = new S3ModelEndpoint(stack, 'Endpoint', { model: ModelSource.fromAsset(DEMO_MODEL_FILE), monitoring: {} });
    const a = new AsyncInference(stack, 'Async', { endpoint });
    const alarm = Template.fromStack(stack).toJSON().Resources[stack.getLogicalId(a.deadLetterAlarm.node.defaultChild as never)];
    expect(alarm.Properties.AlarmActions).toEqual([stack.resolve(endpoint.monitoring!.alarmTopic!.topicArn)]);
    void app;
  });

  it('has no unacknowledged cdk-nag finding (AwsSolutions and Serverless packs), with input buckets and SNS topics too', () => {
    expect(nagFindings(asyncApp().app)).toEqual([]);
    const withAll = asyncApp({}, (s) => ({
      inputBuckets: [s3.Bucket.fromBucketName(s, 'Data', 'caller-data')],
      notifications: AsyncNotifications.snsTopics({ failure: sns.Topic.fromTopicArn(s, 'Failed', 'arn:aws:sns:eu-west-1:123456789012:failed') }),
    }));
    expect(nagFindings(withAll.app)).toEqual([]);
  });

  it.each([
    [{ maxConcurrency: 1 }, /maxConcurrency must be a whole number from 2 to 1000.*got: 1/],
    [{ batchSize: 11 }, /batchSize must be a whole number from 1 to 10.*got: 11/],
    [{ maxReceiveCount: 0 }, /maxReceiveCount must be a whole number from 1 to 1000.*got: 0/],
    [{ uploadUrlExpiration: Duration.days(8) }, /uploadUrlExpiration must be from 1 second to 7 days/],
    [{ maxInputSize: Size.gibibytes(2) }, /maxInputSize must be from 1 byte to 1 GiB/],
    [{ expiration: Duration.hours(12) }, /expiration must be a whole number of days/],
  ] as Array<[Partial<AsyncInferenceProps>, RegExp]>)('refuses %o at synth, naming the construct, the prop and the limit', (props, message) => {
    const e = thrown(() => asyncApp(props));
    expect(e.message).toMatch(/^AsyncInference: /);
    expect(e.message).toMatch(message);
    expect(e.name).toBe('ValidationError');
  });

  it("warns when maxConcurrency passes the function's reserved concurrency", () => {
    const { app, stack } = newStack();
    const endpoint = new S3ModelEndpoint(stack, 'Endpoint', { model: ModelSource.fromAsset(DEMO_MODEL_FILE), reservedConcurrentExecutions: 5 });
    new AsyncInference(stack, 'Async', { endpoint });
    new AsyncInference(stack, 'Fits', {
      endpoint: new S3ModelEndpoint(stack, 'Other', { model: ModelSource.fromAsset(DEMO_MODEL_FILE), reservedConcurrentExecutions: 5 }),
      maxConcurrency: 5,
    });
    const warnings = Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('maxConcurrency is 10, more than the function.s reservedConcurrentExecutions \\(5\\)'));
    expect(warnings.map((w) => w.id)).toEqual(['/Stack/Async']);
    void app;
  });

  it('refuses expiration with a bucket of your own', () => {
    const e = thrown(() => asyncApp({ expiration: Duration.days(3) }, (s) => ({ bucket: s3.Bucket.fromBucketName(s, 'Own', 'own-bucket') })));
    expect(e.message).toMatch(/expiration applies to the bucket the construct creates/);
  });
});
