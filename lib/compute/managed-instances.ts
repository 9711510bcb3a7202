import { Annotations, Aspects, Stack, Token } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type { Construct } from 'constructs';
import { DEFAULT_MAX_BATCH_SIZE, type DynamicBatchingOptions } from './dynamic-batching';
import type { InferenceCompute, ManagedInstancesOptions } from './inference-compute';
import type { ModelPackagingConfig } from '../packaging/model-packaging';
import { acknowledge } from '../private/acknowledge';
import { validationError } from '../private/errors';
import { formatBytes } from '../private/lambda-limits';
import { defaultNodeRuntime } from '../private/node-runtime';

/** What sizing reads of the function's props (InferenceFunctionOptions has each, under the same name). */
export interface ManagedInstancesSizingProps {
  readonly compute?: InferenceCompute;
  readonly runtime?: lambda.Runtime;
  readonly intraOpThreads?: number;
  /** Refused: Managed Instances keep their environments up themselves. */
  readonly provisionedConcurrency?: number;
  /** Refused, likewise. */
  readonly provisionedConcurrencyScaling?: unknown;
  /** With active or pass-through tracing, traces leave the VPC too. */
  readonly tracing?: lambda.Tracing;
  /** With dynamic batching, a worker takes a batch's worth of requests at a time by default. */
  readonly batching?: DynamicBatchingOptions;
}

/** How one execution environment of Managed Instances is used, as the synth decided it. */
export interface ManagedInstancesSizing {
  readonly options: ManagedInstancesOptions;
  readonly vCpus: number;
  readonly workers: number;
  readonly intraOpThreads: number;
  readonly memoryGiBPerVCpu: number;
  readonly maxConcurrency: number;
  /** The function sends X-Ray traces (active or pass-through tracing). */
  readonly tracing: boolean;
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
  const runtime = props.runtime ?? defaultNodeRuntime();
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
  // A batch can only merge the requests a worker has in flight: with batching, a batch's worth each.
  const perWorker = props.batching ? Math.max(DEFAULT_CONCURRENCY_PER_WORKER, props.batching.maxBatchSize ?? DEFAULT_MAX_BATCH_SIZE) : DEFAULT_CONCURRENCY_PER_WORKER;
  const maxConcurrency = options.maxConcurrencyPerEnvironment ?? workers * perWorker;
  if (!Number.isInteger(maxConcurrency) || maxConcurrency < workers) {
    throw fail(`take maxConcurrencyPerEnvironment of at least the ${workers} workers, got: ${maxConcurrency}`);
  }
  const tracing = props.tracing === lambda.Tracing.ACTIVE || props.tracing === lambda.Tracing.PASS_THROUGH;
  return { options, vCpus, workers, intraOpThreads, memoryGiBPerVCpu: ratio, maxConcurrency, tracing };
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
  const provider = o.capacityProvider ?? createCapacityProvider(scope, o, architecture, sizing.tracing);
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

function createCapacityProvider(scope: Construct, o: ManagedInstancesOptions, architecture: lambda.Architecture, tracing: boolean): lambda.CapacityProvider {
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
  // Once the app is complete: endpoints are often added to the VPC after the endpoint is made.
  Aspects.of(provider).add({
    visit: (node) => {
      if (node === provider) warnIfTelemetryCannotLeave(scope, vpc, o.vpcSubnets, tracing);
    },
  });
  acknowledge(
    provider,
    ['AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AWSLambdaManagedEC2ResourceOperator]'],
    "aws-cdk-lib gives the capacity provider's operator role AWS's managed policy for Lambda to launch and manage the instances; give your own operatorRole through a capacity provider of your own to narrow it.",
  );
  return provider;
}

/** What the instances send out through their own network interfaces, by interface endpoint service. */
const TELEMETRY_ENDPOINTS = {
  logs: "CloudWatch Logs (the function's logs, and the handler's metrics, which are log lines)",
  xray: 'X-Ray (traces, with tracing on)',
} as const;

/**
 * Managed Instances send the function's logs (and traces) from the instances, through the capacity
 * provider's subnets, not through Lambda's own network as on-demand functions do. From isolated
 * subnets (no NAT, no internet gateway) they reach CloudWatch only through interface endpoints in
 * the VPC; without one, logs and the handler's metrics are lost without an error anywhere. The
 * synth sees subnets and endpoints made in this app only (not a transit gateway, nor endpoints
 * made elsewhere), so it warns, naming the warning id to acknowledge where another path exists.
 */
function warnIfTelemetryCannotLeave(scope: Construct, vpc: ec2.IVpc, selection: ec2.SubnetSelection | undefined, tracing: boolean): void {
  const isolated = new Set(vpc.isolatedSubnets.map((s) => s.subnetId));
  const chosen = vpc.selectSubnets(selection).subnets;
  if (!chosen.some((s) => isolated.has(s.subnetId))) return;
  const services: Array<keyof typeof TELEMETRY_ENDPOINTS> = tracing ? ['logs', 'xray'] : ['logs'];
  const missing = services.filter((service) => !hasInterfaceEndpoint(vpc, service));
  if (missing.length === 0) return;
  Annotations.of(scope).addWarningV2(
    MANAGED_INSTANCES_TELEMETRY_WARNING,
    `compute: Managed Instances in isolated subnets (no NAT or internet route) send the function's telemetry from the instances, and the VPC has no interface endpoint ` +
      `(with private DNS) for ${missing.map((m) => TELEMETRY_ENDPOINTS[m]).join(' or ')}: it would be lost. Add one (vpc.addInterfaceEndpoint(..., { service: ` +
      `${missing.map((m) => `ec2.InterfaceVpcEndpointAwsService.${m === 'logs' ? 'CLOUDWATCH_LOGS' : 'XRAY'}`).join(' / ')} })), choose subnets with a NAT route (vpcSubnets), ` +
      `or acknowledge ${MANAGED_INSTANCES_TELEMETRY_WARNING} if another path exists (a transit gateway, endpoints made outside this app)`,
  );
}

/** The id of the warning above, to acknowledge with `Annotations.of(scope).acknowledgeWarning`. */
const MANAGED_INSTANCES_TELEMETRY_WARNING = 'cdk-serverless-inference:managed-instances-telemetry';

/** An interface endpoint of `service` (`logs`, `xray`) in `vpc`, with private DNS, anywhere in the app. */
function hasInterfaceEndpoint(vpc: ec2.IVpc, service: string): boolean {
  return vpc.node.root.node.findAll().some(
    (c) =>
      c instanceof ec2.CfnVPCEndpoint &&
      c.vpcId === vpc.vpcId &&
      c.vpcEndpointType === 'Interface' &&
      c.privateDnsEnabled !== false &&
      // `com.amazonaws.{region}.{service}`, made of tokens (the region, a suffix) until resolved.
      JSON.stringify(Stack.of(c).resolve(c.serviceName) ?? '').includes(`.${service}"`),
  );
}
