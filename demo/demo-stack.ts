import { CfnOutput, Stack, StackProps } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { ModelSource, S3ModelEndpoint } from '../lib';
import { DEMO_MODEL_FILE, DEMO_MODEL_NAME } from './demo-model';

/** The demo: the shipped demo model served from S3, with the library's defaults. */
export class DemoStack extends Stack {
  public readonly endpoint: S3ModelEndpoint;

  constructor(scope: Construct, id: string, props?: StackProps) {
    super(scope, id, props);
    this.endpoint = new S3ModelEndpoint(this, 'DemoEndpoint', {
      model: ModelSource.fromAsset(DEMO_MODEL_FILE),
      modelName: DEMO_MODEL_NAME,
    });
    new CfnOutput(this, 'InferUrl', { value: this.endpoint.inferUrl });
  }
}
