import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import type { Construct } from 'constructs';
import { ModelSource, S3ModelEndpoint, ShadowAgreement } from '../lib';
import { DEMO_MODEL_FILE, DEMO_MODEL_NAME } from '../fixtures/demo-model';

/**
 * Knowing what the model does in production: the demo model in S3 with data capture (a tenth of
 * the requests and their answers, through Firehose into hourly S3 prefixes, queryable in Athena)
 * and a shadow candidate run on another tenth once each answer is sent, compared by argmax and
 * captured beside the live answer; alarms and a dashboard that graphs both. The candidate here is
 * the demo model itself, so the shadow agrees on every request: a team's next version goes there.
 * Both run after the answer, which the streamed API lets the function do.
 */
export class CaptureDemoStack extends Stack {
  public readonly endpoint: S3ModelEndpoint;

  constructor(scope: Construct, id: string, props: StackProps = {}) {
    super(scope, id, props);
    this.endpoint = new S3ModelEndpoint(this, 'DemoEndpoint', {
      model: ModelSource.fromAsset(DEMO_MODEL_FILE),
      modelName: DEMO_MODEL_NAME,
      api: { responseTransferMode: apigw.ResponseTransferMode.STREAM },
      dataCapture: { samplingPercentage: 10 },
      shadow: { model: ModelSource.fromAsset(DEMO_MODEL_FILE), samplingPercentage: 10, agreement: ShadowAgreement.argmax() },
      monitoring: {},
    });
    const capture = this.endpoint.inferenceFunction.dataCapture!;
    new CfnOutput(this, 'InferUrl', { value: this.endpoint.inferUrl });
    new CfnOutput(this, 'CaptureLocation', { value: `s3://${capture.bucket.bucketName}/${capture.prefix}` });
    new CfnOutput(this, 'CaptureTable', { value: `${capture.glueDatabaseName}.${capture.glueTableName}` });
  }
}
