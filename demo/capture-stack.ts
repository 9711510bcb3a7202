import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import type { Construct } from 'constructs';
import { ModelSource, S3ModelEndpoint, S3ModelPackaging, ShadowAgreement } from '../lib';
import { DEMO_CANDIDATE_MODEL_FILE, DEMO_MODEL_FILE, DEMO_MODEL_NAME } from '../fixtures/demo-model';

/**
 * Knowing what the model does in production, all three ways on one endpoint: A/B variants (the demo
 * model for 90 % of users, a candidate with other weights for 10 %, sticky by `X-User-Id`); data
 * capture (a tenth of the requests and their answers, each naming its variant, through Firehose
 * into hourly S3 prefixes, queryable in Athena); and a shadow run on another tenth once each answer
 * is sent, compared by argmax and captured beside the live answer; alarms and a dashboard that
 * graph all three. The shadow here is the demo model itself, so it agrees with the control's
 * answers: a team's next version goes there. Capture and the shadow run after the answer, which the
 * streamed API lets the function do.
 */
export class CaptureDemoStack extends Stack {
  public readonly endpoint: S3ModelEndpoint;

  constructor(scope: Construct, id: string, props: StackProps = {}) {
    super(scope, id, props);
    this.endpoint = new S3ModelEndpoint(this, 'DemoEndpoint', {
      model: ModelSource.fromAsset(DEMO_MODEL_FILE),
      modelName: DEMO_MODEL_NAME,
      api: { responseTransferMode: apigw.ResponseTransferMode.STREAM },
      variants: {
        primaryName: 'control',
        primaryWeight: 90,
        variants: [{ name: 'candidate', weight: 10, packaging: new S3ModelPackaging({ model: ModelSource.fromAsset(DEMO_CANDIDATE_MODEL_FILE) }) }],
        stickyHeader: 'X-User-Id',
      },
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
