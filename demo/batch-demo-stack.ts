import { Duration, Stack, type StackProps } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import { BatchInference, ModelSource, S3ModelEndpoint } from '../lib';
import { DEMO_MODEL_FILE, DEMO_MODEL_NAME } from '../fixtures/demo-model';

/**
 * The demo model scored past one request at a time: a nightly batch job over a JSON Lines file in a
 * data bucket (`rows.jsonl`, or any key given in an execution's input), on the endpoint's own
 * function, with its alarms and dashboard. `npx cdk-serverless-inference batch --model
 * demo/model/demo.onnx --input rows.jsonl --output out/` runs the same batches locally.
 */
export class BatchDemoStack extends Stack {
  public readonly endpoint: S3ModelEndpoint;
  public readonly batch: BatchInference;

  constructor(scope: Construct, id: string, props: StackProps = {}) {
    super(scope, id, props);
    this.endpoint = new S3ModelEndpoint(this, 'DemoEndpoint', { model: ModelSource.fromAsset(DEMO_MODEL_FILE), modelName: DEMO_MODEL_NAME });
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
  }
}
