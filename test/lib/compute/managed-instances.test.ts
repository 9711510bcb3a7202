import { Annotations as CdkAnnotations, Errors, Size, type Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { describe, expect, it } from 'vitest';
import { DEMO_MODEL_FILE } from '../../../fixtures/demo-model';
import { BundledModelEndpoint, EfsModelEndpoint, InferenceCompute, type ManagedInstancesOptions, ModelSource, S3ModelEndpoint, type S3ModelEndpointProps } from '../../../lib';
import { nagFindings, newStack, resourceProps, thrown } from '../../support/stacks';

const model = () => ModelSource.fromAsset(DEMO_MODEL_FILE);

function vpcIn(stack: Stack): ec2.Vpc {
  return new ec2.Vpc(stack, 'Vpc', {
    maxAzs: 3,
    natGateways: 0,
    subnetConfiguration: [{ name: 'instances', subnetType: ec2.SubnetType.PRIVATE_ISOLATED }],
    gatewayEndpoints: { S3: { service: ec2.GatewayVpcEndpointAwsService.S3 } },
    flowLogs: { Rejected: { trafficType: ec2.FlowLogTrafficType.REJECT } },
  });
}

function setup(managed: (stack: Stack) => ManagedInstancesOptions, props: Partial<S3ModelEndpointProps> = {}) {
  const { app, stack } = newStack();
  const endpoint = new S3ModelEndpoint(stack, 'E', { model: model(), compute: InferenceCompute.managedInstances(managed(stack)), ...props });
  return { app, stack, endpoint, template: Template.fromStack(stack) };
}

describe('an endpoint on Lambda Managed Instances', () => {
  const f = setup((stack) => ({ vpc: vpcIn(stack) }), { memorySize: 8192 });
  const fn = () => resourceProps(f.template, f.endpoint.function);

  it('creates a capacity provider in the VPC, for the function’s architecture, and runs the function on it', () => {
    expect(f.endpoint.inferenceFunction.capacityProvider).toBeInstanceOf(lambda.CapacityProvider);
    f.template.resourceCountIs('AWS::Lambda::CapacityProvider', 1);
    f.template.hasResourceProperties('AWS::Lambda::CapacityProvider', {
      InstanceRequirements: Match.objectLike({ Architectures: ['arm64'] }),
      VpcConfig: { SubnetIds: Match.anyValue(), SecurityGroupIds: [Match.anyValue()] },
    });
    const [providerId] = Object.keys(f.template.findResources('AWS::Lambda::CapacityProvider'));
    expect(fn().CapacityProviderConfig).toEqual({
      LambdaManagedInstancesCapacityProviderConfig: {
        CapacityProviderArn: { 'Fn::GetAtt': [providerId, 'Arn'] },
        PerExecutionEnvironmentMaxConcurrency: 16,
        ExecutionEnvironmentMemoryGiBPerVCpu: 2,
      },
    });
  });

  it('runs one worker per vCPU with one onnxruntime thread each: 8 GiB at 2 GiB per vCPU is 4 of each', () => {
    expect(fn().Environment.Variables).toMatchObject({ AWS_LAMBDA_NODEJS_WORKER_COUNT: '4', ORT_INTRA_OP_THREADS: '1' });
  });

  it('has no warmer, no provisioned concurrency, and no cold-start alarm', () => {
    expect(f.endpoint.warmer).toBeUndefined();
    f.template.resourceCountIs('AWS::Events::Rule', 0);
    expect(resourceProps(f.template, f.endpoint.alias).ProvisionedConcurrencyConfig).toBeUndefined();
    const monitored = setup((stack) => ({ vpc: vpcIn(stack) }), { memorySize: 8192, monitoring: {} });
    expect(Object.keys(monitored.endpoint.monitoring!.alarms).sort()).toEqual(['FunctionErrors', 'LatencyP99', 'ServerErrorRate', 'Throttles']);
  });

  it('stays cdk-nag clean', () => {
    expect(nagFindings(f.app)).toEqual([]);
  });

  it('takes workers, threads, concurrency and the memory ratio', () => {
    const g = setup((stack) => ({ vpc: vpcIn(stack), workers: 2, memoryGiBPerVCpu: 4, maxConcurrencyPerEnvironment: 6, minEnvironments: 1, maxEnvironments: 5 }), {
      memorySize: 16_384,
      intraOpThreads: 2,
    });
    const props = resourceProps(g.template, g.endpoint.function);
    expect(props.Environment.Variables).toMatchObject({ AWS_LAMBDA_NODEJS_WORKER_COUNT: '2', ORT_INTRA_OP_THREADS: '2' });
    expect(props.CapacityProviderConfig.LambdaManagedInstancesCapacityProviderConfig).toMatchObject({
      PerExecutionEnvironmentMaxConcurrency: 6,
      ExecutionEnvironmentMemoryGiBPerVCpu: 4,
    });
    expect(props.FunctionScalingConfig).toEqual({ MinExecutionEnvironments: 1, MaxExecutionEnvironments: 5 });
  });

  it('runs on an existing capacity provider, creating none', () => {
    const { stack } = newStack();
    const existing = lambda.CapacityProvider.fromCapacityProviderName(stack, 'Shared', 'team-inference');
    const endpoint = new BundledModelEndpoint(stack, 'E', { model: model(), compute: InferenceCompute.managedInstances({ capacityProvider: existing }) });
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::Lambda::CapacityProvider', 0);
    expect(resourceProps(template, endpoint.function).CapacityProviderConfig.LambdaManagedInstancesCapacityProviderConfig.CapacityProviderArn).toEqual(
      stack.resolve(existing.capacityProviderArn),
    );
  });

  it('on-demand Lambda is the default, as before', () => {
    const { stack } = newStack();
    const endpoint = new S3ModelEndpoint(stack, 'E', { model: model(), compute: InferenceCompute.onDemand() });
    expect(resourceProps(Template.fromStack(stack), endpoint.function).CapacityProviderConfig).toBeUndefined();
    expect(endpoint.warmer).toBeDefined();
    expect(Annotations.fromStack(stack).findError('*', Match.anyValue())).toHaveLength(0);
  });
});

describe("a VPC whose chosen subnets cannot send the instances' telemetry out", () => {
  const WARNING = 'cdk-serverless-inference:managed-instances-telemetry';
  const telemetryWarnings = (stack: Stack) => Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp(WARNING));

  it('warns for isolated subnets with no CloudWatch Logs interface endpoint: logs and metrics would be lost', () => {
    const f = setup((stack) => ({ vpc: vpcIn(stack) }), { memorySize: 4096 });
    const warnings = telemetryWarnings(f.stack);
    expect(warnings).toHaveLength(1);
    expect(warnings[0].id).toBe('/Stack/E/Default');
    const message = String(warnings[0].entry.data);
    expect(message).toMatch(/isolated subnets .* no interface endpoint \(with private DNS\) for CloudWatch Logs/);
    expect(message).toContain('ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS');
    expect(message).not.toContain('X-Ray');
  });

  it('is satisfied by a CloudWatch Logs endpoint added to the VPC, even after the endpoint was made', () => {
    const { stack } = newStack();
    const vpc = vpcIn(stack);
    new S3ModelEndpoint(stack, 'E', { model: model(), memorySize: 4096, compute: InferenceCompute.managedInstances({ vpc }) });
    vpc.addInterfaceEndpoint('Logs', { service: ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS });
    expect(telemetryWarnings(stack)).toHaveLength(0);
  });

  it('does not count an endpoint without private DNS, which the SDKs would not use', () => {
    const { stack } = newStack();
    const vpc = vpcIn(stack);
    vpc.addInterfaceEndpoint('Logs', { service: ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS, privateDnsEnabled: false });
    new S3ModelEndpoint(stack, 'E', { model: model(), memorySize: 4096, compute: InferenceCompute.managedInstances({ vpc }) });
    expect(telemetryWarnings(stack)).toHaveLength(1);
  });

  it('asks for X-Ray too when the function traces', () => {
    const traced = (services: ec2.InterfaceVpcEndpointAwsService[]) => {
      const { stack } = newStack();
      const vpc = vpcIn(stack);
      for (const service of services) vpc.addInterfaceEndpoint(service.shortName, { service });
      new S3ModelEndpoint(stack, 'E', { model: model(), memorySize: 4096, tracing: lambda.Tracing.ACTIVE, compute: InferenceCompute.managedInstances({ vpc }) });
      return telemetryWarnings(stack);
    };
    const warnings = traced([ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS]);
    expect(warnings).toHaveLength(1);
    expect(String(warnings[0].entry.data)).toMatch(/no interface endpoint \(with private DNS\) for X-Ray/);
    expect(traced([ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS, ec2.InterfaceVpcEndpointAwsService.XRAY])).toHaveLength(0);
  });

  it('can be acknowledged where another path exists (a transit gateway, endpoints made elsewhere)', () => {
    const { stack } = newStack();
    const endpoint = new S3ModelEndpoint(stack, 'E', { model: model(), memorySize: 4096, compute: InferenceCompute.managedInstances({ vpc: vpcIn(stack) }) });
    CdkAnnotations.of(endpoint).acknowledgeWarning(WARNING, 'logs leave through the transit gateway to the shared endpoints');
    expect(telemetryWarnings(stack)).toHaveLength(0);
  });

  it('stays quiet for subnets with a NAT route, and for a capacity provider it did not create', () => {
    const { stack } = newStack();
    const vpc = new ec2.Vpc(stack, 'Nat', { maxAzs: 2, natGateways: 1 });
    new S3ModelEndpoint(stack, 'E', { model: model(), memorySize: 4096, compute: InferenceCompute.managedInstances({ vpc }) });
    const shared = lambda.CapacityProvider.fromCapacityProviderName(stack, 'Shared', 'team-inference');
    new BundledModelEndpoint(stack, 'B', { model: model(), compute: InferenceCompute.managedInstances({ capacityProvider: shared }) });
    expect(telemetryWarnings(stack)).toHaveLength(0);
  });
});

describe('combinations Managed Instances refuse, naming the prop and the limit', () => {
  const vpc = (stack: Stack) => ({ vpc: vpcIn(stack) });
  it.each([
    ['neither a VPC nor a provider', () => ({}), {}, /need exactly one of capacityProvider \(an existing one\) and vpc/],
    ['provisioned concurrency', vpc, { provisionedConcurrency: 2 }, /provisionedConcurrency does not apply/],
    ['a warmer', vpc, { warmer: true }, /warmer does not apply on Managed Instances/],
    ['warmer options', vpc, { warmerOptions: { concurrency: 2 } }, /warmerOptions does not apply on Managed Instances/],
    ['memory under 2 GiB', vpc, { memorySize: 1024 }, /need memorySize between 2048 and 32768 MiB in whole vCPUs of 2 GiB \(memoryGiBPerVCpu\), got: 1024 MiB/],
    ['memory not in whole vCPUs', (s: Stack) => ({ vpc: vpcIn(s), memoryGiBPerVCpu: 4 }), { memorySize: 6144 }, /in whole vCPUs of 4 GiB .* got: 6144 MiB/],
    ['a memory ratio Lambda lacks', (s: Stack) => ({ vpc: vpcIn(s), memoryGiBPerVCpu: 3 }), {}, /take memoryGiBPerVCpu 2, 4 or 8, got: 3/],
    ['more workers than vCPUs', (s: Stack) => ({ vpc: vpcIn(s), workers: 3 }), { memorySize: 4096 }, /take 1 to 2 workers .* got: 3/],
    ['threads past the vCPUs', (s: Stack) => ({ vpc: vpcIn(s), workers: 2 }), { memorySize: 4096, intraOpThreads: 2 }, /2 workers × 2 intraOpThreads = 4 threads on 2 vCPUs/],
    ['Node.js 20', vpc, { runtime: lambda.Runtime.NODEJS_20_X }, /run Node.js 22 or later, got: nodejs20.x/],
  ] as Array<[string, (s: Stack) => ManagedInstancesOptions, Partial<S3ModelEndpointProps>, RegExp]>)('%s', (_what, managed, props, message) => {
    const { stack } = newStack();
    const error = thrown(() => new S3ModelEndpoint(stack, 'Churn', { model: model(), compute: InferenceCompute.managedInstances(managed(stack)), ...props }));
    expect(error.message).toMatch(message);
    expect(Errors.isValidationError(error)).toBe(true);
    expect(error.constructPath).toMatch(/^Stack\/Churn(\/|$)/);
  });

  it('a model that does not fit once per worker', () => {
    const { stack } = newStack();
    const bucket = s3.Bucket.fromBucketName(stack, 'Models', 'team-models');
    const vpc = vpcIn(stack);
    const make = (workers: number) => () =>
      new S3ModelEndpoint(stack, `Churn${workers}`, {
        model: ModelSource.fromBucket(bucket, 'ranker.onnx', { size: Size.gibibytes(2) }),
        memorySize: 8192,
        compute: InferenceCompute.managedInstances({ vpc, workers }),
      });
    const error = thrown(make(4));
    expect(error.message).toMatch(/load the model once per worker: 4 workers × about 3328 MiB .* = 13312 MiB, over memorySize 8192 MiB/);
    // Two workers fit: 6,656 MiB.
    expect(make(2)).not.toThrow();
  });

  it('EFS, whose mount puts the function in a VPC of its own', () => {
    const { stack } = newStack();
    const error = thrown(() => new EfsModelEndpoint(stack, 'Churn', { model: model(), compute: InferenceCompute.managedInstances({ vpc: vpcIn(stack) }), memorySize: 4096 }));
    expect(error.message).toMatch(/a model on a file system \(EFS\) is not supported there/);
  });
});
