import { CfnOutput, Size, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { ModelRepositoryEndpoint } from '../lib';
import { DEMO_MODEL_NAME } from '../fixtures/demo-model';

/**
 * Many models behind one endpoint: a model repository in a bucket the endpoint creates, with
 * monitoring (its dashboard shows the top models). After the deploy, adding a model is an upload:
 *
 *   aws s3 cp demo/model/model.onnx s3://<RepositoryBucket>/models/demo/1/model.onnx
 *
 * then `POST <url>v2/models/demo/infer` answers it, and `POST <url>v2/repository/index` lists it.
 */
export class ModelRepositoryDemoStack extends Stack {
  public readonly endpoint: ModelRepositoryEndpoint;

  constructor(scope: Construct, id: string, props: StackProps = {}) {
    super(scope, id, props);
    this.endpoint = new ModelRepositoryEndpoint(this, 'DemoRepository', {
      memoryBudget: Size.mebibytes(512),
      warmModels: [DEMO_MODEL_NAME],
      monitoring: {},
    });
    new CfnOutput(this, 'Url', { value: this.endpoint.url });
    new CfnOutput(this, 'RepositoryBucket', { value: this.endpoint.bucket!.bucketName });
  }
}
