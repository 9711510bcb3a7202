import { Token } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type { Construct } from 'constructs';
import type { InferenceCompute, ManagedInstancesOptions } from './inference-compute';
import type { ModelPackagingConfig } from '../packaging/model-packaging';
import { acknowledge } from '../private/acknowledge';
import { validationError } from '../private/errors';
import { formatBytes } from '../private/lambda-limits';

/** How one execution environment of Managed Instances is used, as the synth decided it. */
/** What sizing reads of the function's props (InferenceFunctionOptions has each, under the same name). */
export interface ManagedInstancesSizingProps {
  readonly compute?: InferenceCompute;
  readonly runtime?: lambda.Runtime;
  readonly intraOpThreads?: number;
  /** Refused: Managed Instances keep their environments up themselves. */
  readonly provisionedConcurrency?: number;
  /** Refused, likewise. */
  readonly provisionedConcurrencyScaling?: unknown;
}

export interface ManagedInstancesSizing {
  readonly options: ManagedInstancesOptions;
  readonly vCpus: number;
  readonly workers: number;
  readonly intraOpThreads: number;
  readonly memoryGiBPerVCpu: number;
  readonly maxConcurrency: number;
}

/** Lambda's limits for a function on Managed Instances. */
const MIN_MEMORY_MIB = 2048;
const MAX_MEMORY_MIB = 32_768;
const MEMORY_GIB_PER_VCPU = [2, 4, 8];
/** Requests one worker takes at a time by default: one runs while the others' inputs are parsed. */
const DEFAULT_CONCURRENCY_PER_WORKER = 4;
/** What Node.js and onnxruntime need per worker besides the model, as for on-demand functions. */
const WORKER_OVERHEAD_MIB = 256;

/**
 * Checks what Managed Instances allow and decides workers and threads: by default one worker per
 * vCPU, each with one onnxruntime thread, so that workers times threads never exceeds the vCPUs
 * (more would make the workers' runs contend for the same cores).
 */
export function sizeManagedInstances(scope: Construct, props: ManagedInstancesSizingProps, memorySize: number): ManagedInstancesSizing {
  const options = props.compute!.managedInstancesOptions!;
  const fail = (message: string) => validationError(scope, `compute: Managed Instances ${message}`);
  if ((options.capacityProvider === undefined) === (options.vpc === undefined)) {
    throw fail('need exactly one of capacityProvider (an existing one) and vpc (for a new one)');
  }
  if (options.capacityProvider && (options.vpcSubnets || options.securityGroups || options.instanceTypes || options.maxVCpuCount !== undefined)) {
    throw fail('take vpcSubnets, securityGroups, instanceTypes and maxVCpuCount for a new capacity provider, not with capacityProvider');
  }
  for (const prop of ['provisionedConcurrency', 'provisionedConcurrencyScaling'] as const) {
    if (props[prop] !== undefined) {
      throw fail(`keep execution environments up themselves: ${prop} does not apply`);
    }
  }
  const runtime = props.runtime ?? lambda.Runtime.NODEJS_24_X;
  if (runtime.family === lambda.RuntimeFamily.NODEJS && /^nodejs(1\d|20)\./.test(runtime.name)) {
    throw fail(`run Node.js 22 or later, got: ${runtime.name}`);
  }
  const ratio = options.memoryGiBPerVCpu ?? 2;
  if (!MEMORY_GIB_PER_VCPU.includes(ratio)) {
    throw fail(`take memoryGiBPerVCpu 2, 4 or 8, got: ${ratio}`);
  }
  if (Token.isUnresolved(memorySize)) {
    throw fail('need memorySize as a number at synth: it decides the vCPUs of an environment');
  }
  const perVCpuMiB = ratio * 1024;
  if (memorySize < MIN_MEMORY_MIB || memorySize > MAX_MEMORY_MIB || memorySize % perVCpuMiB !== 0) {
    throw fail(`need memorySize between ${MIN_MEMORY_MIB} and ${MAX_MEMORY_MIB} MiB in whole vCPUs of ${ratio} GiB (memoryGiBPerVCpu), got: ${memorySize} MiB`);
  }
  const vCpus = memorySize / perVCpuMiB;
  const workers = options.workers ?? vCpus;
  if (!Number.isInteger(workers) || workers < 1 || workers > vCpus) {
    throw fail(`take 1 to ${vCpus} workers (the vCPUs of ${memorySize} MiB at ${ratio} GiB each), got: ${workers}`);
  }
  const intraOpThreads = props.intraOpThreads ?? Math.max(1, Math.floor(vCpus / workers));
  if (workers * intraOpThreads > vCpus) {
    throw fail(`would run ${workers} workers × ${intraOpThreads} intraOpThreads = ${workers * intraOpThreads} threads on ${vCpus} vCPUs: lower one of them`);
  }
  const maxConcurrency = options.maxConcurrencyPerEnvironment ?? workers * DEFAULT_CONCURRENCY_PER_WORKER;
  if (!Number.isInteger(maxConcurrency) || maxConcurrency < workers) {
    throw fail(`take maxConcurrencyPerEnvironment of at least the ${workers} workers, got: ${maxConcurrency}`);
  }
  return { options, vCpus, workers, intraOpThreads, memoryGiBPerVCpu: ratio, maxConcurrency };
}

/**
 * Every worker loads the model: the environment holds workers times the model, plus each worker's
 * runtime. A file system mount would put the function in a VPC of its own, which a capacity
 * provider's functions cannot have.
 */
export function checkManagedInstancesFit(
  scope: Construct,
  sizing: ManagedInstancesSizing,
  memorySize: number,
  modelBytes: number | undefined,
  packaging: ModelPackagingConfig,
): void {
  if (packaging.vpc || packaging.filesystem) {
    throw validationError(scope, 'compute: Managed Instances run in the capacity provider’s network; a model on a file system (EFS) is not supported there');
  }
  if (modelBytes === undefined) return;
  const perWorkerMiB = Math.ceil((modelBytes * 1.5) / (1024 * 1024) + WORKER_OVERHEAD_MIB);
  if (sizing.workers * perWorkerMiB > memorySize) {
    throw validationError(
      scope,
      `compute: Managed Instances load the model once per worker: ${sizing.workers} workers × about ${perWorkerMiB} MiB (a ${formatBytes(modelBytes)} model, 1.5 times ` +
        `for onnxruntime, and ${WORKER_OVERHEAD_MIB} MiB for the runtime) = ${sizing.workers * perWorkerMiB} MiB, over memorySize ${memorySize} MiB: ` +
        'raise memorySize or memoryGiBPerVCpu, or lower workers',
    );
  }
}

/** Puts the function on the given capacity provider, or on a new one in the given VPC. */
export function runOnManagedInstances(scope: Construct, fn: lambda.Function, sizing: ManagedInstancesSizing, architecture: lambda.Architecture): lambda.ICapacityProvider {
  const o = sizing.options;
  const provider = o.capacityProvider ?? createCapacityProvider(scope, o, architecture);
  const functionOptions: lambda.CapacityProviderFunctionOptions = {
    perExecutionEnvironmentMaxConcurrency: sizing.maxConcurrency,
    executionEnvironmentMemoryGiBPerVCpu: sizing.memoryGiBPerVCpu,
    latestPublishedScalingConfig:
      o.minEnvironments !== undefined || o.maxEnvironments !== undefined ? { minExecutionEnvironments: o.minEnvironments, maxExecutionEnvironments: o.maxEnvironments } : undefined,
  };
  if (provider instanceof lambda.CapacityProvider) {
    provider.addFunction(fn, functionOptions);
  } else {
    // An imported provider has no addFunction: the same properties, set on the function.
    const cfn = fn.node.defaultChild as lambda.CfnFunction;
    cfn.capacityProviderConfig = {
      lambdaManagedInstancesCapacityProviderConfig: {
        capacityProviderArn: provider.capacityProviderArn,
        perExecutionEnvironmentMaxConcurrency: functionOptions.perExecutionEnvironmentMaxConcurrency,
        executionEnvironmentMemoryGiBPerVCpu: functionOptions.executionEnvironmentMemoryGiBPerVCpu,
      },
    };
    if (functionOptions.latestPublishedScalingConfig) {
      cfn.functionScalingConfig = functionOptions.latestPublishedScalingConfig;
    }
  }
  return provider;
}

function createCapacityProvider(scope: Construct, o: ManagedInstancesOptions, architecture: lambda.Architecture): lambda.CapacityProvider {
  const vpc = o.vpc!;
  const securityGroups = o.securityGroups ?? [
    (() => {
      const sg = new ec2.SecurityGroup(scope, 'CapacityProviderSecurityGroup', {
        vpc,
        description: 'Managed Instances of the inference function: no inbound, HTTPS out (S3, AWS APIs)',
        allowAllOutbound: false,
      });
      sg.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'HTTPS to S3 and AWS APIs');
      return sg;
    })(),
  ];
  const provider = new lambda.CapacityProvider(scope, 'CapacityProvider', {
    subnets: vpc.selectSubnets(o.vpcSubnets).subnets,
    securityGroups,
    architectures: [architecture],
    instanceTypeFilter: o.instanceTypes ? lambda.InstanceTypeFilter.allow(o.instanceTypes) : undefined,
    maxVCpuCount: o.maxVCpuCount,
  });
  acknowledge(
    provider,
    ['AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AWSLambdaManagedEC2ResourceOperator]'],
    "aws-cdk-lib gives the capacity provider's operator role AWS's managed policy for Lambda to launch and manage the instances; give your own operatorRole through a capacity provider of your own to narrow it.",
  );
  return provider;
}
