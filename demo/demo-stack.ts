import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type { Construct } from 'constructs';
import {
  BundledModelEndpoint,
  ContainerModelEndpoint,
  EfsModelEndpoint,
  HandlerHooks,
  InferenceCompute,
  LayerModelEndpoint,
  ModelArtifact,
  ModelSource,
  S3ModelEndpoint,
  SageMakerEndpoint,
  SageMakerProxyEndpoint,
} from '../lib';
import { DEMO_FEATURES, DEMO_HOOKS_FILE, DEMO_MODEL_ARCHIVE, DEMO_MODEL_FILE, DEMO_MODEL_NAME } from '../fixtures/demo-model';

/** SageMaker's Triton container in us-east-1; other regions have their own registry account. */
const DEFAULT_TRITON_IMAGE = '785573368785.dkr.ecr.us-east-1.amazonaws.com/sagemaker-tritonserver:24.09-py3';

/** How each demo stack packages the demo model: every endpoint of the library, with its defaults. */
export const DEMO_ENDPOINTS = {
  S3: (scope: Construct) => new S3ModelEndpoint(scope, 'DemoEndpoint', { model: ModelSource.fromAsset(DEMO_MODEL_FILE), modelName: DEMO_MODEL_NAME }),
  Layer: (scope: Construct) => new LayerModelEndpoint(scope, 'DemoEndpoint', { model: ModelSource.fromAsset(DEMO_MODEL_FILE), modelName: DEMO_MODEL_NAME }),
  // With the operations props: alarms, a dashboard, and a canary rollout checked by a sample request.
  Bundled: (scope: Construct) =>
    new BundledModelEndpoint(scope, 'DemoEndpoint', {
      model: ModelSource.fromAsset(DEMO_MODEL_FILE),
      modelName: DEMO_MODEL_NAME,
      monitoring: {},
      rollout: {
        sampleRequest: { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: DEMO_FEATURES }] },
        expectedOutputs: ['probabilities', 'label'],
      },
    }),
  Container: (scope: Construct) => new ContainerModelEndpoint(scope, 'DemoEndpoint', { model: ModelSource.fromAsset(DEMO_MODEL_FILE), modelName: DEMO_MODEL_NAME }),
  Efs: (scope: Construct) => new EfsModelEndpoint(scope, 'DemoEndpoint', { model: ModelSource.fromAsset(DEMO_MODEL_FILE), modelName: DEMO_MODEL_NAME }),
  // Lambda Managed Instances: EC2 capacity in a VPC of its own (isolated subnets in three zones, S3
  // through a gateway endpoint, the function's logs and metrics through a CloudWatch Logs interface
  // endpoint), two workers of one vCPU each, each serving several requests at once.
  ManagedInstances: (scope: Construct) =>
    new S3ModelEndpoint(scope, 'DemoEndpoint', {
      model: ModelSource.fromAsset(DEMO_MODEL_FILE),
      modelName: DEMO_MODEL_NAME,
      memorySize: 4096,
      compute: InferenceCompute.managedInstances({ vpc: managedInstancesVpc(scope) }),
    }),
  // The model in S3 with the demo's hooks (demo/hooks/demo-hooks.ts), bundled at synth: named
  // features in, a class name out, and a log line per prediction after the answer, which the
  // streamed API lets the function write once the caller has it.
  Hooks: (scope: Construct) =>
    new S3ModelEndpoint(scope, 'DemoEndpoint', {
      model: ModelSource.fromAsset(DEMO_MODEL_FILE),
      modelName: DEMO_MODEL_NAME,
      hooks: HandlerHooks.fromEntry(DEMO_HOOKS_FILE),
      api: { responseTransferMode: apigw.ResponseTransferMode.STREAM },
    }),
  // The same API in front of a SageMaker endpoint: NVIDIA Triton, which speaks the same protocol,
  // serving the same model on a CPU instance. The image is SageMaker's Triton container for the
  // stack's region: set it with `-c tritonImage=<uri>` (see docs/endpoints.md).
  SageMaker: (scope: Construct) =>
    new SageMakerProxyEndpoint(scope, 'DemoEndpoint', {
      endpoint: SageMakerEndpoint.provisioned({
        image: scope.node.tryGetContext('tritonImage') ?? DEFAULT_TRITON_IMAGE,
        instanceType: 'ml.m5.large',
        modelData: ModelArtifact.fromAsset(DEMO_MODEL_ARCHIVE),
        environment: { SAGEMAKER_TRITON_DEFAULT_MODEL_NAME: DEMO_MODEL_NAME },
      }),
      modelName: DEMO_MODEL_NAME,
    }),
} satisfies Record<string, (scope: Construct) => { readonly inferUrl: string }>;

export type DemoPackaging = keyof typeof DEMO_ENDPOINTS;

/**
 * Isolated subnets: Managed Instances send the function's logs (and the handler's metrics, which are
 * log lines) from the instances, so CloudWatch Logs needs an interface endpoint, as S3 a gateway one.
 */
function managedInstancesVpc(scope: Construct): ec2.Vpc {
  // A literal range, so that the endpoint's ingress rule names it (cdk-nag cannot read a token).
  const cidr = '10.0.0.0/16';
  const vpc = new ec2.Vpc(scope, 'Vpc', {
    ipAddresses: ec2.IpAddresses.cidr(cidr),
    maxAzs: 3,
    natGateways: 0,
    subnetConfiguration: [{ name: 'instances', subnetType: ec2.SubnetType.PRIVATE_ISOLATED }],
    gatewayEndpoints: { S3: { service: ec2.GatewayVpcEndpointAwsService.S3 } },
    flowLogs: { Rejected: { trafficType: ec2.FlowLogTrafficType.REJECT } },
  });
  const logs = vpc.addInterfaceEndpoint('Logs', { service: ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS, open: false });
  logs.connections.allowDefaultPortFrom(ec2.Peer.ipv4(cidr), 'HTTPS from the instances');
  return vpc;
}

export interface DemoStackProps extends StackProps {
  /**
   * How the demo model is packaged.
   * @default 'S3'
   */
  readonly packaging?: DemoPackaging;
}

/** The demo: the shipped demo model behind one of the library's endpoints, with its defaults. */
export class DemoStack extends Stack {
  public readonly endpoint: { readonly inferUrl: string };

  constructor(scope: Construct, id: string, props: DemoStackProps = {}) {
    super(scope, id, props);
    this.endpoint = DEMO_ENDPOINTS[props.packaging ?? 'S3'](this);
    new CfnOutput(this, 'InferUrl', { value: this.endpoint.inferUrl });
  }
}
