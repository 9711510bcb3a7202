// An app with every packaging of the library, run by test/reproducible-synth.test.ts in a child
// process: `CSI_MODEL` is the .onnx it serves, `CDK_OUTDIR` where it writes its cloud assembly.
// The demo app covers each packaging with its defaults; this one adds what changes the assets: a
// model of more operators (more entries in its precompiled copy's resolver), arm64, hooks, and a
// model layer shared by two functions.
import { App, Stack } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { DEMO_HOOKS_FILE, DEMO_MODEL_ARCHIVE } from '../../fixtures/demo-model';
import {
  BundledModelEndpoint,
  ContainerModelEndpoint,
  EfsModelEndpoint,
  HandlerHooks,
  InferenceCompute,
  LayerModelEndpoint,
  ModelArtifact,
  ModelLayer,
  ModelSource,
  S3ModelEndpoint,
  SageMakerEndpoint,
  SageMakerProxyEndpoint,
} from '../../lib';

const modelFile = process.env.CSI_MODEL;
if (!modelFile) throw new Error('CSI_MODEL must name the model file');
const model = () => ModelSource.fromAsset(modelFile);
const app = new App();
// The demo hooks write a log line after the answer, which needs a streamed API.
const hooks = { hooks: HandlerHooks.fromEntry(DEMO_HOOKS_FILE), api: { responseTransferMode: apigw.ResponseTransferMode.STREAM } };
const stack = (id: string) => new Stack(app, id, { env: { account: '123456789012', region: 'eu-west-1' } });

new S3ModelEndpoint(stack('S3'), 'Endpoint', { model: model(), architecture: lambda.Architecture.ARM_64 });
const layerStack = stack('Layer');
const modelLayer = new ModelLayer(layerStack, 'Model', { model: model() });
new LayerModelEndpoint(layerStack, 'X86', { modelLayer });
new LayerModelEndpoint(layerStack, 'Arm', { modelLayer, architecture: lambda.Architecture.ARM_64 });
new BundledModelEndpoint(stack('Bundled'), 'Endpoint', { model: model(), ...hooks });
new ContainerModelEndpoint(stack('Container'), 'Endpoint', { model: model(), architecture: lambda.Architecture.ARM_64, ...hooks });
new EfsModelEndpoint(stack('Efs'), 'Endpoint', { model: model() });
const managed = stack('ManagedInstances');
new S3ModelEndpoint(managed, 'Endpoint', {
  model: model(),
  memorySize: 4096,
  compute: InferenceCompute.managedInstances({
    vpc: new ec2.Vpc(managed, 'Vpc', { natGateways: 0, subnetConfiguration: [{ name: 'instances', subnetType: ec2.SubnetType.PRIVATE_ISOLATED }] }),
  }),
});
new SageMakerProxyEndpoint(stack('SageMaker'), 'Endpoint', {
  endpoint: SageMakerEndpoint.provisioned({
    image: '785573368785.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-tritonserver:24.09-py3',
    instanceType: 'ml.m5.large',
    modelData: ModelArtifact.fromAsset(DEMO_MODEL_ARCHIVE),
  }),
  modelName: 'demo',
});
app.synth();
