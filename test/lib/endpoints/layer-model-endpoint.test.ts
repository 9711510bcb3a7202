import * as path from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { describe, expect, it } from 'vitest';
import { DEMO_MODEL_FILE } from '../../../fixtures/demo-model';
import { LayerModelEndpoint, ModelLayer, ModelSource, OnnxRuntimeLayer } from '../../../lib';
import { inferenceHandlerDir } from '../../../lib/private/package-paths';
import { treeSize } from '../../../lib/private/staging';
import { modelOfSize } from '../../support/models';
import { newStack, ref, resourceProps } from '../../support/stacks';

const demo = () => ModelSource.fromAsset(DEMO_MODEL_FILE);
const MiB = 1024 * 1024;

describe('LayerModelEndpoint', () => {
  it('serves the model from a layer at /opt/models, beside the ONNX Runtime layer', () => {
    const { stack } = newStack();
    const endpoint = new LayerModelEndpoint(stack, 'E', { model: demo() });
    const template = Template.fromStack(stack);
    const fn = resourceProps(template, endpoint.function);
    expect(fn.Layers).toEqual([ref(endpoint.onnxRuntimeLayer!), ref(endpoint.modelLayer)]);
    expect(fn.Environment.Variables.MODEL_PATH).toBe('/opt/models/demo.onnx');
    expect(fn.Environment.Variables.MODEL_S3_URI).toBeUndefined();
    expect(endpoint.modelLayer.modelPath).toBe('/opt/models/demo.onnx');
    // No download: no /tmp sizing, no bucket, no S3 grant.
    expect(fn.EphemeralStorage).toBeUndefined();
    template.resourceCountIs('AWS::S3::Bucket', 0);
    expect(JSON.stringify(template.findResources('AWS::IAM::Policy'))).not.toContain('s3:');
    expect(endpoint.modelInfo?.inputs.map((i) => i.name)).toEqual(['input']);
  });

  it('uses a shared ModelLayer given as modelLayer', () => {
    const { stack } = newStack();
    const layer = new ModelLayer(stack, 'Shared', { model: demo() });
    const a = new LayerModelEndpoint(stack, 'A', { modelLayer: layer, modelName: 'a' });
    const b = new LayerModelEndpoint(stack, 'B', { modelLayer: layer, modelName: 'b' });
    expect(a.modelLayer).toBe(layer);
    expect(b.modelLayer).toBe(layer);
    // One model layer and one ONNX Runtime layer for both.
    Template.fromStack(stack).resourceCountIs('AWS::Lambda::LayerVersion', 2);
  });

  it('adds more layers and warns that their size is unknown at synth', () => {
    const { stack } = newStack();
    const extra = new lambda.LayerVersion(stack, 'Extra', { code: lambda.Code.fromAsset(path.dirname(DEMO_MODEL_FILE)) });
    const endpoint = new LayerModelEndpoint(stack, 'E', { model: demo(), layers: [extra] });
    expect(resourceProps(Template.fromStack(stack), endpoint.function).Layers).toHaveLength(3);
    expect(Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('not known at synth'))).toHaveLength(1);
  });

  it('needs exactly one of model and modelLayer', () => {
    const { stack } = newStack();
    expect(() => new LayerModelEndpoint(stack, 'E', {})).toThrow('LayerModelPackaging: give exactly one of model (a model file) and modelLayer (a ModelLayer)');
    const layer = new ModelLayer(stack, 'L', { model: demo() });
    expect(() => new LayerModelEndpoint(stack, 'E2', { model: demo(), modelLayer: layer })).toThrow(/exactly one of model/);
  });

  it('needs a local model file for the layer', () => {
    const { stack } = newStack();
    const fromBucket = ModelSource.fromBucket(new s3.Bucket(stack, 'B'), 'm.onnx');
    expect(() => new LayerModelEndpoint(stack, 'E', { model: fromBucket })).toThrow('ModelLayer: model must be a local file (ModelSource.fromAsset): it is packaged at synth');
  });

  it('refuses more than 5 layers', () => {
    const { stack } = newStack();
    const layers = [1, 2, 3, 4].map((i) => new ModelLayer(stack, `L${i}`, { model: demo() }));
    expect(() => new LayerModelEndpoint(stack, 'E', { model: demo(), layers })).toThrow('a function can have at most 5 layers, got: 6');
  });

  describe("Lambda's 250 MB of code and layers, unzipped", () => {
    // What the model may take: 250 MiB less the handler and the ONNX Runtime layer.
    const room = () => 250 * MiB - treeSize(inferenceHandlerDir()) - OnnxRuntimeLayer.forArchitecture(newStack().stack, lambda.Architecture.ARM_64).unzippedSizeBytes;
    // Asset staging would copy a 200 MB model into the cloud assembly; its fingerprint is enough here.
    const stackWithoutStaging = () => new Stack(new App({ context: { 'aws:cdk:disable-asset-staging': true } }), 'S');

    it('accepts a model just under the limit', () => {
      const model = modelOfSize(room() - 64 * 1024);
      expect(() => new LayerModelEndpoint(stackWithoutStaging(), 'E', { model: ModelSource.fromAsset(model.path) })).not.toThrow();
    }, 60_000);

    it('refuses a model just over it, listing each part', () => {
      const model = modelOfSize(room() + 64 * 1024);
      expect(() => new LayerModelEndpoint(stackWithoutStaging(), 'E', { model: ModelSource.fromAsset(model.path) })).toThrow(
        /the function's code and layers are 250\.\d MiB unzipped, over Lambda's limit of 250 MiB \(inference handler .*, model layer 2\d\d\.\d MiB, ONNX Runtime layer \d+\.\d MiB\)/,
      );
    }, 60_000);
  });
});
