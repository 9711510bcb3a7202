import type { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { describe, expect, it } from 'vitest';
import { DEMO_MODEL_FILE } from '../../../fixtures/demo-model';
import { InferenceApiAuthorization, ModelSource, TemplateMasking, S3ModelEndpoint, type S3ModelEndpointProps } from '../../../lib';
import { nagFindings, newStack } from '../../support/stacks';

function endpointApp(props: Partial<S3ModelEndpointProps> = {}, build?: (stack: Stack) => Partial<S3ModelEndpointProps>) {
  const { app, stack } = newStack();
  new S3ModelEndpoint(stack, 'Endpoint', { model: ModelSource.fromAsset(DEMO_MODEL_FILE), ...props, ...build?.(stack) });
  return { app, stack };
}

function tokenAuthorizer(stack: Stack): apigw.IAuthorizer {
  const handler = new lambda.Function(stack, 'AuthorizerFn', {
    runtime: lambda.Runtime.NODEJS_24_X,
    handler: 'index.handler',
    code: lambda.Code.fromInline('exports.handler = async () => ({})'),
  });
  return new apigw.TokenAuthorizer(stack, 'Authorizer', { handler });
}

describe('S3ModelEndpoint and cdk-nag (AwsSolutions and Serverless packs)', () => {
  it('the rules run: a bare Lambda, REST API and bucket has findings', () => {
    // The setup the issue describes: what the endpoint's defaults fix.
    const { app, stack } = newStack();
    const fn = new lambda.Function(stack, 'Fn', {
      runtime: lambda.Runtime.NODEJS_22_X,
      handler: 'index.handler',
      code: lambda.Code.fromInline('exports.handler = async () => ({})'),
    });
    new apigw.LambdaRestApi(stack, 'Api', { handler: fn });
    new s3.Bucket(stack, 'Bucket');
    const rules = new Set(nagFindings(app).map((f) => f.split(' @ ')[0].replace(/\[.*$/, '')));
    for (const rule of ['AwsSolutions-APIG1', 'AwsSolutions-APIG2', 'AwsSolutions-APIG4', 'AwsSolutions-IAM4', 'AwsSolutions-L1', 'AwsSolutions-S1', 'AwsSolutions-S10']) {
      expect(rules).toContain(rule);
    }
  });

  const variants: Array<[string, Partial<S3ModelEndpointProps>, ((stack: Stack) => Partial<S3ModelEndpointProps>)?]> = [
    ['the defaults', {}],
    ['X-Ray tracing', { tracing: lambda.Tracing.ACTIVE }],
    ['provisioned concurrency', { provisionedConcurrency: 1 }],
    ['a custom authorizer', {}, (stack) => ({ api: { authorization: InferenceApiAuthorization.custom(tokenAuthorizer(stack)) } })],
    ['arm64 and three warm instances', { architecture: lambda.Architecture.ARM_64, warmerOptions: { concurrency: 3 } }],
    ['a model from an existing bucket', {}, (stack) => ({ model: ModelSource.fromBucket(s3.Bucket.fromBucketName(stack, 'Existing', 'team-models'), 'churn/model.onnx') })],
  ];
  it.each(variants)('no unacknowledged finding with %s', (_name, props, build) => {
    // The test's own authorizer function is not the endpoint's to fix.
    const findings = nagFindings(endpointApp(props, build).app).filter((f) => !f.includes(' @ Stack/AuthorizerFn/'));
    expect(findings).toEqual([]);
  });

  it('no unacknowledged finding with two endpoints in one stack', () => {
    const { app, stack } = newStack();
    new S3ModelEndpoint(stack, 'A', { model: ModelSource.fromAsset(DEMO_MODEL_FILE), modelName: 'a' });
    new S3ModelEndpoint(stack, 'B', { model: ModelSource.fromAsset(DEMO_MODEL_FILE), modelName: 'b' });
    expect(nagFindings(app)).toEqual([]);
  });
});

describe('S3ModelEndpoint snapshot', () => {
  it('the default stack, with asset hashes masked', () => {
    const { stack } = endpointApp();
    expect(TemplateMasking.maskAssetHashes(Template.fromStack(stack).toJSON())).toMatchSnapshot();
  });
});
