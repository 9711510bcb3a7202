import * as fs from 'node:fs';
import * as path from 'node:path';
import { Duration } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as appscaling from 'aws-cdk-lib/aws-applicationautoscaling';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as codedeploy from 'aws-cdk-lib/aws-codedeploy';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import { describe, expect, it } from 'vitest';
import { DEMO_MODEL_FILE } from '../../../fixtures/demo-model';
import { BundledModelEndpoint, LayerModelEndpoint, ModelSource, S3ModelEndpoint, type S3ModelEndpointProps } from '../../../lib';
import { logisticRegressionModel } from '../../../tools/onnx';
import { writeModel } from '../../support/handler';
import { assetFolder, nagFindings, newStack, ref, resourceProps, roleStatements, thrown } from '../../support/stacks';

function setup(props: Partial<S3ModelEndpointProps> = {}) {
  const { app, stack } = newStack();
  const endpoint = new S3ModelEndpoint(stack, 'E', { model: ModelSource.fromAsset(DEMO_MODEL_FILE), ...props });
  return { app, stack, endpoint, template: Template.fromStack(stack) };
}

describe('monitoring: {}', () => {
  const f = setup({ monitoring: {} });
  const alarms = () => f.endpoint.monitoring!.alarms;

  it('creates the five alarms with their default thresholds', () => {
    expect(Object.keys(alarms()).sort()).toEqual(['ColdStartRate', 'FunctionErrors', 'LatencyP99', 'ServerErrorRate', 'Throttles']);
    const props = (name: string) => resourceProps(f.template, alarms()[name]);
    expect(props('ServerErrorRate')).toMatchObject({ Threshold: 1, EvaluationPeriods: 3, DatapointsToAlarm: 2, TreatMissingData: 'notBreaching' });
    expect(props('ServerErrorRate').Metrics.find((m: any) => m.ReturnData !== false).Expression).toBe('IF(requests > 0, 100 * served / requests, 0)');
    const errors = props('ServerErrorRate').Metrics.find((m: any) => m.Id === 'errors').MetricStat;
    expect(errors).toMatchObject({ Metric: { Namespace: 'AWS/ApiGateway', MetricName: '5XXError' }, Stat: 'Sum', Period: 300 });
    expect(props('LatencyP99')).toMatchObject({ Threshold: 5000, ExtendedStatistic: 'p99', MetricName: 'Latency', Namespace: 'AWS/ApiGateway' });
    expect(props('Throttles')).toMatchObject({ Threshold: 1, MetricName: 'Throttles', Namespace: 'AWS/Lambda', Statistic: 'Sum' });
    expect(props('FunctionErrors')).toMatchObject({ Threshold: 1, MetricName: 'Errors', Namespace: 'AWS/Lambda' });
    const cold = props('ColdStartRate').Metrics.find((m: any) => m.Id === 'cold').MetricStat;
    expect(cold).toMatchObject({ Metric: { Namespace: 'CdkServerlessInference', MetricName: 'ColdStart' }, Period: 900 });
    expect(props('ColdStartRate').Threshold).toBe(20);
  });

  it("gives each alarm the threshold its prop's @default documents", () => {
    // The documentation as every language's package shows it (the jsii assembly), against the template.
    const assembly = JSON.parse(fs.readFileSync(path.resolve(__dirname, '../../../.jsii'), 'utf8'));
    const documented: Record<string, string> = Object.fromEntries(
      (assembly.types['cdk-serverless-inference.EndpointAlarmThresholds'].properties as any[]).map((p) => [p.name, p.docs.default as string]),
    );
    const asThreshold = (text: string) => {
      const seconds = /^Duration\.seconds\((\d+)\)$/.exec(text);
      return seconds ? Number(seconds[1]) * 1000 : Number(text);
    };
    const alarmOf: Record<string, string> = {
      serverErrorRatePercent: 'ServerErrorRate',
      latencyP99: 'LatencyP99',
      throttles: 'Throttles',
      coldStartRatePercent: 'ColdStartRate',
      functionErrors: 'FunctionErrors',
    };
    expect(Object.keys(documented).sort()).toEqual(Object.keys(alarmOf).sort());
    for (const [prop, text] of Object.entries(documented)) {
      expect(resourceProps(f.template, alarms()[alarmOf[prop]]).Threshold, `${prop}: @default ${text}`).toBe(asThreshold(text));
    }
  });

  it("leaves the function's throttles (answered 503) out of the 5xx rate: they have their own alarm", () => {
    const metrics = resourceProps(f.template, alarms().ServerErrorRate).Metrics as any[];
    const byId = Object.fromEntries(metrics.map((m) => [m.Id, m]));
    expect(byId.unthrottled.Expression).toBe('errors - FILL(throttles, 0)');
    expect(byId.served.Expression).toBe('IF(unthrottled > 0, unthrottled, 0)');
    // Throttles of the live alias, which the API invokes.
    expect(byId.throttles.MetricStat).toMatchObject({ Metric: { Namespace: 'AWS/Lambda', MetricName: 'Throttles' }, Stat: 'Sum', Period: 300 });
    expect(byId.throttles.MetricStat.Metric.Dimensions).toContainEqual({ Name: 'Resource', Value: { 'Fn::Join': ['', [ref(f.endpoint.function), ':live']] } });
    expect(metrics.filter((m) => m.ReturnData !== false)).toHaveLength(1);
  });

  it('sends alarms and their end to a new encrypted, TLS-only topic', () => {
    const topic = f.endpoint.monitoring!.alarmTopic!;
    const key = f.endpoint.monitoring!.alarmTopicKey!;
    // SNS's AWS-managed key cannot be used by CloudWatch: the topic's key must be one whose policy lets it.
    expect(resourceProps(f.template, topic).KmsMasterKeyId).toEqual({ 'Fn::GetAtt': [ref(key).Ref, 'Arn'] });
    const keyProps = resourceProps(f.template, key);
    expect(keyProps.EnableKeyRotation).toBe(true);
    expect(keyProps.KeyPolicy.Statement).toContainEqual(
      expect.objectContaining({ Effect: 'Allow', Principal: { Service: 'cloudwatch.amazonaws.com' }, Action: ['kms:Decrypt', 'kms:GenerateDataKey*'] }),
    );
    f.template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) },
    });
    for (const a of Object.values(alarms())) {
      const p = resourceProps(f.template, a);
      expect(p.AlarmActions).toEqual([ref(topic)]);
      expect(p.OKActions).toEqual([ref(topic)]);
    }
  });

  it("lets CloudWatch publish the endpoint's alarms to the topic, which the TLS-only policy alone would refuse", () => {
    const topic = f.endpoint.monitoring!.alarmTopic!;
    // The topic policy replaces SNS's default one: what it does not allow, nobody may do.
    const policies = Object.values(f.template.findResources('AWS::SNS::TopicPolicy'));
    expect(policies).toHaveLength(1);
    expect(policies[0].Properties.Topics).toEqual([ref(topic)]);
    const allows = policies[0].Properties.PolicyDocument.Statement.filter((s: any) => s.Effect === 'Allow');
    expect(allows).toEqual([
      {
        Sid: 'CloudWatchAlarmsPublish',
        Effect: 'Allow',
        Principal: { Service: 'cloudwatch.amazonaws.com' },
        Action: 'sns:Publish',
        Resource: ref(topic),
        Condition: {
          StringEquals: { 'aws:SourceAccount': '123456789012' },
          ArnLike: { 'aws:SourceArn': Object.values(alarms()).map((a) => ({ 'Fn::GetAtt': [ref(a).Ref, 'Arn'] })) },
        },
      },
    ]);
  });

  it('draws a dashboard of the API, the function, cold starts, inference time and the alarms', () => {
    const body = JSON.stringify(f.stack.resolve(resourceProps(f.template, f.endpoint.monitoring!.dashboard!).DashboardBody));
    for (const title of ['Requests at the API', 'Latency at the API (ms)', 'Invocations', 'Function duration (ms)', 'Cold starts', 'Inference time (ms)', 'Alarms']) {
      expect(body).toContain(title);
    }
    expect(body).toContain('ModelLoadMs');
    expect(body).toContain('InferenceMs');
    expect(resourceProps(f.template, f.endpoint.monitoring!.dashboard!).DashboardName).toBeUndefined();
  });

  it('stays cdk-nag clean', () => {
    expect(nagFindings(f.app)).toEqual([]);
  });
});

describe('monitoring options', () => {
  it('thresholds, own actions instead of a topic, no dashboard', () => {
    const { stack } = newStack();
    const endpoint = new S3ModelEndpoint(stack, 'E', {
      model: ModelSource.fromAsset(DEMO_MODEL_FILE),
      monitoring: {
        thresholds: { latencyP99: Duration.seconds(2), serverErrorRatePercent: 5 },
        alarmActions: [{ bind: () => ({ alarmActionArn: 'arn:aws:sns:eu-west-1:123456789012:pager' }) }],
        dashboard: false,
      },
    });
    const template = Template.fromStack(stack);
    expect(endpoint.monitoring!.alarmTopic).toBeUndefined();
    expect(endpoint.monitoring!.dashboard).toBeUndefined();
    template.resourceCountIs('AWS::CloudWatch::Dashboard', 0);
    expect(resourceProps(template, endpoint.monitoring!.alarms.LatencyP99)).toMatchObject({ Threshold: 2000, AlarmActions: ['arn:aws:sns:eu-west-1:123456789012:pager'] });
    expect(resourceProps(template, endpoint.monitoring!.alarms.ServerErrorRate).Threshold).toBe(5);
  });

  it('an existing topic; alarms off leaves the dashboard alone', () => {
    const { stack } = newStack();
    const topic = new sns.Topic(stack, 'Ops');
    const withTopic = new S3ModelEndpoint(stack, 'A', { model: ModelSource.fromAsset(DEMO_MODEL_FILE), modelName: 'a', monitoring: { alarmTopic: topic } });
    expect(withTopic.monitoring!.alarmTopic).toBe(topic);
    const noAlarms = new S3ModelEndpoint(stack, 'B', { model: ModelSource.fromAsset(DEMO_MODEL_FILE), modelName: 'b', monitoring: { alarms: false } });
    expect(noAlarms.monitoring!.alarms).toEqual({});
    expect(noAlarms.monitoring!.dashboard).toBeDefined();
  });

  it('none without the prop', () => {
    const f = setup();
    expect(f.endpoint.monitoring).toBeUndefined();
    f.template.resourceCountIs('AWS::CloudWatch::Alarm', 0);
  });
});

describe('rollout', () => {
  it('shifts each new version with a CodeDeploy canary, rolled back by the endpoint alarms', () => {
    const f = setup({ rollout: {} });
    f.template.hasResourceProperties('AWS::CodeDeploy::DeploymentGroup', {
      DeploymentConfigName: 'CodeDeployDefault.LambdaCanary10Percent5Minutes',
      AutoRollbackConfiguration: { Enabled: true, Events: Match.arrayWith(['DEPLOYMENT_FAILURE', 'DEPLOYMENT_STOP_ON_REQUEST', 'DEPLOYMENT_STOP_ON_ALARM']) },
      AlarmConfiguration: { Enabled: true, Alarms: Match.anyValue() },
    });
    const group = Object.values(f.template.findResources('AWS::CodeDeploy::DeploymentGroup'))[0];
    const canary = f.endpoint.rollout!.canaryAlarms;
    expect(group.Properties.AlarmConfiguration.Alarms).toEqual(canary.map((a) => ({ Name: ref(a) })));
    // CloudFormation leaves the alias to CodeDeploy.
    const alias = f.template.toJSON().Resources[ref(f.endpoint.alias).Ref];
    expect(alias.UpdatePolicy.CodeDeployLambdaAliasUpdate).toBeDefined();
    expect(f.endpoint.monitoring).toBeUndefined();
    expect(f.endpoint.rollout!.preTrafficCheck).toBeUndefined();
    expect(nagFindings(f.app)).toEqual([]);
  });

  it('rolls back on one-minute alarms that can go off inside the canary window', () => {
    const f = setup({ rollout: {} });
    const [errors, serverErrorRate] = f.endpoint.rollout!.canaryAlarms.map((a) => resourceProps(f.template, a));
    // Invocations through the alias are reported by the version that ran them.
    const [versionId] = Object.keys(f.template.findResources('AWS::Lambda::Version'));
    expect(errors).toMatchObject({ MetricName: 'Errors', Namespace: 'AWS/Lambda', Period: 60, Statistic: 'Sum', Threshold: 1, EvaluationPeriods: 1 });
    expect(errors.Dimensions).toContainEqual({ Name: 'ExecutedVersion', Value: { 'Fn::GetAtt': [versionId, 'Version'] } });
    expect(errors.Dimensions).toContainEqual({ Name: 'Resource', Value: { 'Fn::Join': ['', [{ Ref: ref(f.endpoint.function).Ref }, ':live']] } });
    expect(serverErrorRate).toMatchObject({ Threshold: 1, EvaluationPeriods: 2, DatapointsToAlarm: 2 });
    const apiErrors = serverErrorRate.Metrics.find((m: any) => m.Id === 'errors').MetricStat;
    expect(apiErrors).toMatchObject({ Metric: { Namespace: 'AWS/ApiGateway', MetricName: '5XXError' }, Period: 60, Stat: 'Sum' });
    // Throttles are not the new version's doing: a rollout starts new instances.
    const throttles = serverErrorRate.Metrics.find((m: any) => m.Id === 'throttles').MetricStat;
    expect(throttles).toMatchObject({ Metric: { Namespace: 'AWS/Lambda', MetricName: 'Throttles' }, Period: 60, Stat: 'Sum' });
    expect(serverErrorRate.Metrics.find((m: any) => m.Id === 'unthrottled').Expression).toBe('errors - FILL(throttles, 0)');
    // Each canary period is shorter than the default canary's 5 minutes with room to spare.
    for (const a of [errors, serverErrorRate]) expect(a.Period ?? a.Metrics.find((m: any) => m.MetricStat).MetricStat.Period).toBe(60);
    // The alias, whose update starts the deployment, waits for the alarms to watch the new version.
    expect(f.template.toJSON().Resources[ref(f.endpoint.alias).Ref].DependsOn).toContain(ref(f.endpoint.rollout!.canaryAlarms[0]).Ref);
  });

  it("rolls back on the canary alarms only, the endpoint's alarms when asked, and warns without a sample request", () => {
    const groupAlarms = (f: ReturnType<typeof setup>) => Object.values(f.template.findResources('AWS::CodeDeploy::DeploymentGroup'))[0].Properties.AlarmConfiguration.Alarms;
    // The endpoint's alarms (cold-start rate, p99 latency, throttles...) go off on what every new
    // version does: by default they do not stop a rollout.
    const f = setup({ rollout: {}, monitoring: {} });
    expect(groupAlarms(f)).toEqual(f.endpoint.rollout!.canaryAlarms.map((a) => ({ Name: ref(a) })));
    const opted = setup({ rollout: { rollbackOnEndpointAlarms: true }, monitoring: {} });
    const endpointAlarms = Object.values(opted.endpoint.monitoring!.alarms);
    expect(endpointAlarms).toHaveLength(5);
    expect(groupAlarms(opted)).toEqual([...opted.endpoint.rollout!.canaryAlarms, ...endpointAlarms].map((a) => ({ Name: ref(a) })));
    const error = thrown(() => setup({ rollout: { rollbackOnEndpointAlarms: true } }));
    expect(error.message).toMatch(/rollout\.rollbackOnEndpointAlarms needs the endpoint's alarms, and it has none: set monitoring/);
    expect(error.constructPath).toBe('Stack/E/Rollout');
    // CodeDeploy takes at most 10 alarms per deployment group.
    const { stack } = newStack();
    const own = Array.from(
      { length: 4 },
      (_, i) => new cloudwatch.Alarm(stack, `Own${i}`, { metric: new cloudwatch.Metric({ namespace: 'N', metricName: `M${i}` }), threshold: 1, evaluationPeriods: 1 }),
    );
    const tooMany = thrown(
      () => new S3ModelEndpoint(stack, 'E', { model: ModelSource.fromAsset(DEMO_MODEL_FILE), monitoring: {}, rollout: { rollbackOnEndpointAlarms: true, alarms: own } }),
    );
    expect(tooMany.message).toMatch(/at most 10 alarms per deployment group, got: 11 \(2 canary alarms, 5 of the endpoint's with rollbackOnEndpointAlarms, 4 in rollout\.alarms\)/);
    const warnings = Annotations.fromStack(f.stack).findWarning('*', Match.stringLikeRegexp('rollout has no sampleRequest'));
    expect(warnings).toHaveLength(1);
    const checked = setup({ rollout: { sampleRequest: { inputs: [] } } });
    expect(Annotations.fromStack(checked.stack).findWarning('*', Match.stringLikeRegexp('rollout has no sampleRequest'))).toHaveLength(0);
  });

  it('checks a sample request against the new version before any traffic', () => {
    const sample = { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [0.5, -1.2, 3.3, 0.7] }] };
    const f = setup({
      rollout: { deploymentConfig: codedeploy.LambdaDeploymentConfig.LINEAR_10PERCENT_EVERY_1MINUTE, sampleRequest: sample, expectedOutputs: ['probabilities', 'label'] },
    });
    const check = f.endpoint.rollout!.preTrafficCheck!;
    const env = resourceProps(f.template, check).Environment.Variables;
    // The version's logical id carries its hash, given at synth: find it in the template.
    const [versionId] = Object.keys(f.template.findResources('AWS::Lambda::Version'));
    expect(env.TARGET_VERSION_ARN).toEqual({ Ref: versionId });
    // The sample ships beside the check's code, not in its variables (4 KB for all of them).
    expect(env.SAMPLE_REQUEST).toBeUndefined();
    const code = assetFolder(f.app, resourceProps(f.template, check).Code.S3Key);
    expect(JSON.parse(fs.readFileSync(path.join(code, env.SAMPLE_REQUEST_FILE), 'utf8'))).toEqual(sample);
    expect(fs.existsSync(path.join(code, 'index.mjs'))).toBe(true);
    expect(JSON.parse(env.EXPECTED_OUTPUTS)).toEqual(['probabilities', 'label']);
    expect(env.EXPECTED_ANSWER_FILE).toBeUndefined();
    f.template.hasResourceProperties('AWS::CodeDeploy::DeploymentGroup', { DeploymentConfigName: 'CodeDeployDefault.LambdaLinear10PercentEvery1Minute' });
    const alias = f.template.toJSON().Resources[ref(f.endpoint.alias).Ref];
    expect(alias.UpdatePolicy.CodeDeployLambdaAliasUpdate.BeforeAllowTrafficHook).toEqual({ Ref: ref(check).Ref });
    const actions = roleStatements(f.template, check.role!).flatMap((s) => [s.Action].flat());
    expect(actions).toEqual(expect.arrayContaining(['lambda:InvokeFunction', 'codedeploy:PutLifecycleEventHookExecutionStatus']));
    expect(nagFindings(f.app)).toEqual([]);
  });
});

describe('the pre-traffic check', () => {
  const sample = { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [0.5, -1.2, 3.3, 0.7] }] };

  it('ships the expected answer beside the code, with its tolerance in a variable', () => {
    const expectedAnswer = { outputs: [{ name: 'label', datatype: 'INT64', data: ['9007199254740993'] }] };
    const f = setup({ rollout: { sampleRequest: sample, expectedAnswer, answerTolerance: 0.01 } });
    const props = resourceProps(f.template, f.endpoint.rollout!.preTrafficCheck!);
    const env = props.Environment.Variables;
    expect(env).toMatchObject({ SAMPLE_REQUEST_FILE: 'sample-request.json', EXPECTED_ANSWER_FILE: 'expected-answer.json', ANSWER_TOLERANCE: '0.01' });
    const code = assetFolder(f.app, props.Code.S3Key);
    expect(JSON.parse(fs.readFileSync(path.join(code, env.EXPECTED_ANSWER_FILE), 'utf8'))).toEqual(expectedAnswer);
  });

  it('refuses a sample over the 6 MiB Lambda takes in one invocation, naming the construct, the prop and the limit', () => {
    const big = { inputs: [{ name: 'image', shape: [1, 3, 640, 640], datatype: 'FP32', data: new Array(3 * 640 * 640).fill(0.123456) }] };
    const error = thrown(() => setup({ rollout: { sampleRequest: big } }));
    expect(error.message).toMatch(/^rollout\.sampleRequest is \d+ bytes as JSON, over Lambda's limit of 6291456 bytes \(6 MiB\) for an invocation's payload/);
    expect(error.constructPath).toBe('Stack/E/Rollout');
  });

  it('refuses a token, an expected answer of the wrong form or without a sample, and a negative tolerance', () => {
    const { stack } = newStack();
    const bucket = new s3.Bucket(stack, 'B');
    const cases: Array<[Partial<S3ModelEndpointProps>['rollout'], RegExp]> = [
      [{ sampleRequest: { inputs: [{ name: bucket.bucketName }] } }, /rollout\.sampleRequest must be plain JSON known at synth .*, got a token at inputs\[0\]\.name/],
      [
        { sampleRequest: sample, expectedAnswer: { predictions: [1] } },
        /rollout\.expectedAnswer must have 'outputs', the answer to a sampleRequest with 'inputs', got keys: \["predictions"\]/,
      ],
      [{ expectedAnswer: { outputs: [] } }, /rollout\.expectedAnswer applies to the answer to sampleRequest, which is not set/],
      [{ sampleRequest: sample, expectedAnswer: { outputs: [] }, answerTolerance: -1 }, /rollout\.answerTolerance must be a number >= 0, got: -1/],
    ];
    for (const [rollout, message] of cases) {
      expect(() => setup({ rollout })).toThrow(message);
    }
  });
});

describe('the warmer', () => {
  it("gives its fan-out more time than the function's cold start may take (its timeout, 60 s by default)", () => {
    const timeoutOf = (f: ReturnType<typeof setup>) => resourceProps(f.template, f.endpoint.warmer!.function).Timeout;
    expect(timeoutOf(setup())).toBe(75);
    expect(timeoutOf(setup({ timeout: Duration.minutes(3), warmerOptions: { concurrency: 2 } }))).toBe(196);
  });
});

describe('provisioned concurrency scaling', () => {
  it('scales on utilisation and on a schedule', () => {
    const f = setup({
      provisionedConcurrency: 2,
      provisionedConcurrencyScaling: {
        minCapacity: 1,
        maxCapacity: 10,
        utilizationTarget: 0.7,
        schedules: [{ name: 'BusyHours', schedule: appscaling.Schedule.cron({ hour: '8', minute: '0' }), minCapacity: 5 }],
      },
    });
    f.template.hasResourceProperties('AWS::ApplicationAutoScaling::ScalableTarget', {
      MinCapacity: 1,
      MaxCapacity: 10,
      ScalableDimension: 'lambda:function:ProvisionedConcurrency',
      ScheduledActions: [Match.objectLike({ ScheduledActionName: 'BusyHours', Schedule: 'cron(0 8 * * ? *)', ScalableTargetAction: { MinCapacity: 5 } })],
    });
    f.template.hasResourceProperties('AWS::ApplicationAutoScaling::ScalingPolicy', {
      TargetTrackingScalingPolicyConfiguration: Match.objectLike({
        TargetValue: 0.7,
        PredefinedMetricSpecification: { PredefinedMetricType: 'LambdaProvisionedConcurrencyUtilization' },
      }),
    });
    expect(f.endpoint.metricProvisionedConcurrencyUtilization().metricName).toBe('ProvisionedConcurrencyUtilization');
  });

  it('names what is missing or out of range', () => {
    expect(() => setup({ provisionedConcurrencyScaling: { minCapacity: 1, maxCapacity: 2 } })).toThrow(/set provisionedConcurrency too/);
    expect(() => setup({ provisionedConcurrency: 1, provisionedConcurrencyScaling: { minCapacity: 3, maxCapacity: 2 } })).toThrow(
      /provisionedConcurrencyScaling.maxCapacity must be a whole number of at least 3, got: 2/,
    );
    expect(() => setup({ provisionedConcurrency: 1, provisionedConcurrencyScaling: { minCapacity: 1, maxCapacity: 2, utilizationTarget: 0.95 } })).toThrow(
      /utilizationTarget must be between 0.1 and 0.9, got: 0.95/,
    );
  });
});

describe("the model's identity in versions", () => {
  it('is the default model version and is recorded by each function version', () => {
    const { stack } = newStack();
    const demo = new BundledModelEndpoint(stack, 'Demo', { model: ModelSource.fromAsset(DEMO_MODEL_FILE), modelName: 'demo' });
    const other = new BundledModelEndpoint(stack, 'Other', { model: ModelSource.fromAsset(writeModel(logisticRegressionModel().bytes)), modelName: 'other' });
    const template = Template.fromStack(stack);
    expect(demo.modelVersion).toMatch(/^[0-9a-f]{16}$/);
    expect(other.modelVersion).not.toBe(demo.modelVersion);
    expect(resourceProps(template, demo.function).Environment.Variables.MODEL_VERSION).toBe(demo.modelVersion);
    const version = Object.values(template.findResources('AWS::Lambda::Version')).find((v) => v.Properties.FunctionName.Ref === ref(demo.function).Ref)!.Properties;
    expect(version.Description).toMatch(new RegExp(`^model demo ${demo.modelVersion}[0-9a-f]{48}$`));
  });

  it('is the same for a layer and a bundled endpoint of the same file, and modelVersion overrides it', () => {
    const { stack } = newStack();
    const bundled = new BundledModelEndpoint(stack, 'B', { model: ModelSource.fromAsset(DEMO_MODEL_FILE) });
    const layer = new LayerModelEndpoint(stack, 'L', { model: ModelSource.fromAsset(DEMO_MODEL_FILE), modelName: 'l' });
    expect(layer.modelVersion).toBe(bundled.modelVersion);
    expect(new BundledModelEndpoint(stack, 'Named', { model: ModelSource.fromAsset(DEMO_MODEL_FILE), modelName: 'n', modelVersion: '7' }).modelVersion).toBe('7');
  });

  it('is the pinned S3 version of a fromBucket model, else 1', () => {
    const { stack } = newStack();
    const bucket = new s3.Bucket(stack, 'B');
    expect(new S3ModelEndpoint(stack, 'P', { model: ModelSource.fromBucket(bucket, 'm.onnx', { version: 'v3abc' }), modelName: 'p' }).modelVersion).toBe('v3abc');
    expect(new S3ModelEndpoint(stack, 'U', { model: ModelSource.fromBucket(bucket, 'm.onnx'), modelName: 'u' }).modelVersion).toBe('1');
  });
});

describe('metric helpers', () => {
  it('cover the API and the function', () => {
    const f = setup();
    expect(f.endpoint.metricApiServerErrors()).toMatchObject({ namespace: 'AWS/ApiGateway', metricName: '5XXError', statistic: 'Sum' });
    expect(f.endpoint.metricApiClientErrors().metricName).toBe('4XXError');
    expect(f.endpoint.metricApiRequests().metricName).toBe('Count');
    expect(f.endpoint.metricDuration({ statistic: 'p50' }).statistic).toBe('p50');
    expect(f.endpoint.metricDuration()).toBeInstanceOf(cloudwatch.Metric);
  });
});
