import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { DEMO_CANDIDATE_MODEL_FILE, DEMO_FEATURES, DEMO_MODEL_FILE, DEMO_MODEL_NAME } from '../fixtures/demo-model';
import { LayerModelEndpoint, LayerModelPackaging, ModelSource } from '../lib';

/**
 * A/B variants: the demo model (`control`, 90 % of users) and a candidate with other weights (10 %),
 * each in a layer of its own, served by one function; a user (the `X-User-Id` header) keeps one
 * variant. With the dashboard's variant row, alarms, and a canary rollout of the pair checked by a
 * sample request.
 */
export class VariantsDemoStack extends Stack {
  public readonly endpoint: LayerModelEndpoint;

  constructor(scope: Construct, id: string, props: StackProps = {}) {
    super(scope, id, props);
    this.endpoint = new LayerModelEndpoint(this, 'DemoEndpoint', {
      model: ModelSource.fromAsset(DEMO_MODEL_FILE),
      modelName: DEMO_MODEL_NAME,
      variants: {
        primaryName: 'control',
        primaryWeight: 90,
        variants: [{ name: 'candidate', weight: 10, packaging: new LayerModelPackaging({ model: ModelSource.fromAsset(DEMO_CANDIDATE_MODEL_FILE) }) }],
        stickyHeader: 'X-User-Id',
      },
      monitoring: {},
      rollout: {
        sampleRequest: { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: DEMO_FEATURES }] },
        expectedOutputs: ['probabilities', 'label'],
      },
    });
    new CfnOutput(this, 'InferUrl', { value: this.endpoint.inferUrl });
  }
}
