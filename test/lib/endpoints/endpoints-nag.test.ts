import type { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { describe, expect, it } from 'vitest';
import { DEMO_MODEL_FILE } from '../../../fixtures/demo-model';
import {
  BundledModelEndpoint,
  ContainerModelEndpoint,
  EfsModelEndpoint,
  LayerModelEndpoint,
  TemplateMasking,
  ModelSource,
  SageMakerEndpoint,
  SageMakerIntegration,
  SageMakerProxyEndpoint,
} from '../../../lib';
import { nagFindings, newStack } from '../../support/stacks';

const model = () => ModelSource.fromAsset(DEMO_MODEL_FILE);

/** Each packaging with its defaults (the S3 one has its own file). */
const endpoints: Record<string, (stack: Stack) => void> = {
  LayerModelEndpoint: (stack) => new LayerModelEndpoint(stack, 'Endpoint', { model: model() }),
  BundledModelEndpoint: (stack) => new BundledModelEndpoint(stack, 'Endpoint', { model: model() }),
  ContainerModelEndpoint: (stack) => new ContainerModelEndpoint(stack, 'Endpoint', { model: model() }),
  EfsModelEndpoint: (stack) => new EfsModelEndpoint(stack, 'Endpoint', { model: model() }),
  SageMakerProxyEndpoint: (stack) => new SageMakerProxyEndpoint(stack, 'Endpoint', { endpoint: SageMakerEndpoint.fromEndpointName('team-endpoint') }),
  'SageMakerProxyEndpoint, direct, serverless': (stack) =>
    new SageMakerProxyEndpoint(stack, 'Endpoint', {
      endpoint: SageMakerEndpoint.serverless({ image: '763104351884.dkr.ecr.eu-west-1.amazonaws.com/pytorch-inference:2.1-cpu-py310' }),
      integration: SageMakerIntegration.DIRECT,
    }),
  'EfsModelEndpoint from a bucket': (stack) =>
    new EfsModelEndpoint(stack, 'Endpoint', { model: ModelSource.fromBucket(s3.Bucket.fromBucketName(stack, 'Models', 'team-models'), 'ranker/model.onnx', { version: 'v1' }) }),
};

describe('cdk-nag (AwsSolutions and Serverless packs) on each endpoint', () => {
  it.each(Object.entries(endpoints))('%s: no unacknowledged finding', (_name, make) => {
    const { app, stack } = newStack();
    make(stack);
    expect(nagFindings(app)).toEqual([]);
  });
});

describe('snapshots of each endpoint, asset hashes masked', () => {
  it.each(Object.entries(endpoints).filter(([name]) => !name.includes(' ')))('%s', (_name, make) => {
    const { stack } = newStack();
    make(stack);
    expect(TemplateMasking.maskAssetHashes(Template.fromStack(stack).toJSON())).toMatchSnapshot();
  });
});
