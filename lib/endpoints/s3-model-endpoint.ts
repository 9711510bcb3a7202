import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as cr from 'aws-cdk-lib/custom-resources';
import type { Construct } from 'constructs';
import { ModelEndpoint, type ModelEndpointOptions } from './model-endpoint';
import { S3ModelPackaging, type S3ModelPackagingProps } from '../packaging/s3-model-packaging';

/** Props of an `S3ModelEndpoint`: every endpoint's options, the model and its bucket. */
export interface S3ModelEndpointProps extends ModelEndpointOptions, S3ModelPackagingProps {}

/**
 * An ONNX model in S3, fetched to the function's /tmp at cold start and served over the Open
 * Inference Protocol behind API Gateway. For models that are updated often, up to a few GB: a new
 * object at the same key reaches every new instance without a deploy.
 *
 * @example
 * import { ModelSource, S3ModelEndpoint } from 'cdk-serverless-inference';
 *
 * const endpoint = new S3ModelEndpoint(this, 'Churn', {
 *   model: ModelSource.fromAsset('models/churn.onnx'),
 *   modelName: 'churn',
 * });
 * endpoint.grantInvoke(backendRole);
 */
export class S3ModelEndpoint extends ModelEndpoint {
  /** The bucket that holds the model. */
  public readonly bucket: s3.IBucket;
  /** The model's key in `bucket`. */
  public readonly modelObjectKey: string;
  /** The deploy-time copy that puts a `fromAsset` model into `bucket`. */
  public readonly modelDeployment?: cr.AwsCustomResource;

  constructor(scope: Construct, id: string, props: S3ModelEndpointProps) {
    const packaging = new S3ModelPackaging(props);
    super(scope, id, { ...props, packaging });
    const placed = packaging._placed();
    this.bucket = placed.bucket;
    this.modelObjectKey = placed.key;
    this.modelDeployment = placed.deployment;
  }
}
