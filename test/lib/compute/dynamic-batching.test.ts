import { Duration, type Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { describe, expect, it } from 'vitest';
import { DEMO_MODEL_FILE } from '../../../fixtures/demo-model';
import { type DynamicBatchingOptions, InferenceCompute, type ManagedInstancesOptions, ModelSource, S3ModelEndpoint } from '../../../lib';
import { nagFindings, newStack, resourceProps, thrown } from '../../support/stacks';

function vpcIn(stack: Stack): ec2.Vpc {
  return new ec2.Vpc(stack, 'Vpc', {
    maxAzs: 3,
    natGateways: 0,
    subnetConfiguration: [{ name: 'instances', subnetType: ec2.SubnetType.PRIVATE_ISOLATED }],
    gatewayEndpoints: { S3: { service: ec2.GatewayVpcEndpointAwsService.S3 } },
    flowLogs: { Rejected: { trafficType: ec2.FlowLogTrafficType.REJECT } },
  });
}

function managed(batching: DynamicBatchingOptions | undefined, options: Partial<ManagedInstancesOptions> = {}) {
  const { app, stack } = newStack();
  const endpoint = new S3ModelEndpoint(stack, 'E', {
    model: ModelSource.fromAsset(DEMO_MODEL_FILE),
    memorySize: 4096,
    compute: InferenceCompute.managedInstances({ vpc: vpcIn(stack), ...options }),
    batching,
  });
  const template = Template.fromStack(stack);
  const fn = resourceProps(template, endpoint.function);
  return { app, stack, endpoint, fn };
}

const batchingWarnings = (stack: Stack) => Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('batching-concurrency'));

describe('dynamic batching', () => {
  it('sets the handler’s batch size and delay, and a batch’s worth of requests per worker, on Managed Instances', () => {
    const f = managed({ maxBatchSize: 32, maxQueueDelay: Duration.millis(5) });
    expect(f.fn.Environment.Variables).toMatchObject({ BATCH_MAX_SIZE: '32', BATCH_MAX_QUEUE_DELAY_MS: '5', AWS_LAMBDA_NODEJS_WORKER_COUNT: '2' });
    // 4096 MiB at 2 GiB per vCPU: 2 workers, each taking 32 requests at a time.
    expect(f.fn.CapacityProviderConfig.LambdaManagedInstancesCapacityProviderConfig.PerExecutionEnvironmentMaxConcurrency).toBe(64);
    expect(batchingWarnings(f.stack)).toHaveLength(0);
    expect(nagFindings(f.app)).toEqual([]);
  });

  it('defaults to 16 rows and 2 ms, and keeps 4 requests per worker where the batch is smaller', () => {
    const f = managed({});
    expect(f.fn.Environment.Variables).toMatchObject({ BATCH_MAX_SIZE: '16', BATCH_MAX_QUEUE_DELAY_MS: '2' });
    expect(f.fn.CapacityProviderConfig.LambdaManagedInstancesCapacityProviderConfig.PerExecutionEnvironmentMaxConcurrency).toBe(32);
    const small = managed({ maxBatchSize: 2, maxQueueDelay: Duration.millis(0) });
    expect(small.fn.Environment.Variables).toMatchObject({ BATCH_MAX_SIZE: '2', BATCH_MAX_QUEUE_DELAY_MS: '0' });
    expect(small.fn.CapacityProviderConfig.LambdaManagedInstancesCapacityProviderConfig.PerExecutionEnvironmentMaxConcurrency).toBe(8);
  });

  it('leaves the function as it was without the prop', () => {
    const f = managed(undefined);
    expect(Object.keys(f.fn.Environment.Variables).filter((k) => k.startsWith('BATCH_'))).toEqual([]);
    expect(f.fn.CapacityProviderConfig.LambdaManagedInstancesCapacityProviderConfig.PerExecutionEnvironmentMaxConcurrency).toBe(8);
  });

  it('warns when maxConcurrencyPerEnvironment leaves a worker fewer requests than a batch', () => {
    const f = managed({ maxBatchSize: 16 }, { maxConcurrencyPerEnvironment: 2 });
    const warnings = batchingWarnings(f.stack);
    expect(warnings).toHaveLength(1);
    expect(JSON.stringify(warnings[0].entry.data)).toMatch(/at most 1 request.*nothing merges/);
  });

  it('refuses batching on on-demand Lambda, naming the prop and what to do', () => {
    const { stack } = newStack();
    const e = thrown(() => new S3ModelEndpoint(stack, 'E', { model: ModelSource.fromAsset(DEMO_MODEL_FILE), batching: { maxBatchSize: 8 } }));
    expect(e.message).toMatch(/^batching: .*one request at a time.*InferenceCompute\.managedInstances/);
  });

  it('refuses a batch size or delay outside its limits', () => {
    expect(thrown(() => managed({ maxBatchSize: 1 })).message).toMatch(/batching\.maxBatchSize must be a whole number from 2 to 1024, got: 1/);
    expect(thrown(() => managed({ maxBatchSize: 2.5 })).message).toMatch(/got: 2\.5/);
    expect(thrown(() => managed({ maxQueueDelay: Duration.seconds(2) })).message).toMatch(/batching\.maxQueueDelay must be whole milliseconds from 0 to 1000 ms, got: 2 seconds/);
    expect(thrown(() => managed({ maxQueueDelay: Duration.millis(1.5) })).message).toMatch(/batching\.maxQueueDelay/);
  });
});
