import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { AsyncInference, ModelSource, S3ModelEndpoint } from '../lib';
import { DEMO_MODEL_FILE, DEMO_MODEL_NAME } from '../fixtures/demo-model';

/**
 * The demo model with asynchronous inference: `POST /v2/models/demo/infer-async` answers 202 with an
 * id, an SQS queue runs the request on the same function, the result lands in S3 and an event on
 * the default EventBridge bus says so; `GET .../infer-async/{id}` answers its status.
 */
export class AsyncDemoStack extends Stack {
  public readonly endpoint: S3ModelEndpoint;
  public readonly asyncInference: AsyncInference;

  constructor(scope: Construct, id: string, props: StackProps = {}) {
    super(scope, id, props);
    this.endpoint = new S3ModelEndpoint(this, 'DemoEndpoint', { model: ModelSource.fromAsset(DEMO_MODEL_FILE), modelName: DEMO_MODEL_NAME, monitoring: {} });
    this.asyncInference = new AsyncInference(this, 'AsyncInference', { endpoint: this.endpoint });
    new CfnOutput(this, 'InferUrl', { value: this.endpoint.inferUrl });
    new CfnOutput(this, 'InferAsyncUrl', { value: this.asyncInference.acceptUrl });
    new CfnOutput(this, 'AsyncBucket', { value: this.asyncInference.bucket.bucketName });
  }
}
