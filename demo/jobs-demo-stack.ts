import { CfnOutput, Duration, Stack, type StackProps } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import { AsyncInference, BatchInference, ModelSource, S3ModelEndpoint } from '../lib';
import { DEMO_MODEL_FILE, DEMO_MODEL_NAME } from '../fixtures/demo-model';

/**
 * The demo model past one request at a time, both ways, on the endpoint's own function:
 * - a nightly batch job over a JSON Lines file in a data bucket (`rows.jsonl`, or any key given in
 *   an execution's input), with its alarms and dashboard; `npx cdk-serverless-inference batch
 *   --model demo/model/demo.onnx --input rows.jsonl --output out/` runs the same batches locally;
 * - asynchronous inference: `POST /v2/models/demo/infer-async` answers 202 with an id, an SQS queue
 *   runs the request, the result lands in S3 and an event on the default EventBridge bus says so;
 *   `GET .../infer-async/{id}` answers its status.
 */
export class JobsDemoStack extends Stack {
  public readonly endpoint: S3ModelEndpoint;
  public readonly batch: BatchInference;
  public readonly asyncInference: AsyncInference;

  constructor(scope: Construct, id: string, props: StackProps = {}) {
    super(scope, id, props);
    this.endpoint = new S3ModelEndpoint(this, 'DemoEndpoint', { model: ModelSource.fromAsset(DEMO_MODEL_FILE), modelName: DEMO_MODEL_NAME, monitoring: {} });
    const data = new s3.Bucket(this, 'Data', {
      enforceSSL: true,
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      serverAccessLogsPrefix: 'access-logs/',
      eventBridgeEnabled: false,
    });
    this.batch = new BatchInference(this, 'NightlyScoring', {
      inferenceFunction: this.endpoint.inferenceFunction,
      inputBucket: data,
      inputKey: 'rows.jsonl',
      schedule: events.Schedule.rate(Duration.days(1)),
      monitoring: {},
    });
    this.asyncInference = new AsyncInference(this, 'AsyncInference', { endpoint: this.endpoint });
    new CfnOutput(this, 'InferUrl', { value: this.endpoint.inferUrl });
    new CfnOutput(this, 'InferAsyncUrl', { value: this.asyncInference.acceptUrl });
    new CfnOutput(this, 'AsyncBucket', { value: this.asyncInference.bucket.bucketName });
  }
}
