/** The production-insight demo stack: A/B variants, data capture and a shadow on one endpoint, cdk-nag clean on its own. */
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { ENV } from '../contract/environment';
import { CaptureDemoStack } from '../demo/capture-stack';
import { nagFindings, resourceProps } from './support/stacks';

describe('the capture demo', () => {
  it('synthesizes one function with variants, capture and a shadow, with no unacknowledged cdk-nag finding', () => {
    const app = new App();
    const stack = new CaptureDemoStack(app, 'CaptureDemo');
    expect(nagFindings(app)).toEqual([]);
    const fn = stack.endpoint.inferenceFunction;
    expect(fn.variantNames).toEqual(['control', 'candidate']);
    expect(fn.shadowEnabled).toBe(true);
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::KinesisFirehose::DeliveryStream', 1);
    const env = resourceProps(template, fn.function).Environment.Variables;
    expect(Object.keys(env)).toEqual(
      expect.arrayContaining([ENV.MODEL_VARIANTS, ENV.MODEL_VARIANT_HEADER, ENV.DATA_CAPTURE_FIREHOSE_STREAM, ENV.SHADOW_MODEL_S3_URI, ENV.RESPONSE_STREAMING]),
    );
  });
});
