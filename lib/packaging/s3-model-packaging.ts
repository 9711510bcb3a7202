import * as path from 'node:path';
import { Duration, RemovalPolicy, Size, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import * as cr from 'aws-cdk-lib/custom-resources';
import type { Construct } from 'constructs';
import { ENV } from '../../contract/environment';
import type { ModelSource } from '../model/model-source';
import { createAccessLogsBucket } from '../private/access-logs-bucket';
import { acknowledge } from '../private/acknowledge';
import { BoundOnce } from '../private/bound-once';
import { validationError } from '../private/errors';
import { grantReadModelObject } from '../private/grants';
import { formatBytes } from '../private/lambda-limits';
import { precompileModel, wantsPrecompiled } from './precompiled-model';
import { ModelPackaging, type ModelPackagingBindOptions, type ModelPackagingConfig } from './model-packaging';

/** Where an `S3ModelPackaging` finds the model, and the bucket it deploys a local model into. */
export interface S3ModelPackagingProps {
  /**
   * The model: `ModelSource.fromAsset('model.onnx')` is deployed into the endpoint's bucket;
   * `ModelSource.fromBucket(bucket, key)` is read where it is.
   */
  readonly model: ModelSource;

  /**
   * The bucket a `fromAsset` model is deployed into. Not for a `fromBucket` model, which names
   * its own bucket.
   * @default - a new bucket: encrypted, TLS only, public access blocked, versioned, retained when
   * the stack is deleted, with server access logs
   */
  readonly bucket?: s3.IBucket;

  /**
   * Where the new bucket's server access logs go.
   * @default - a new access log bucket
   */
  readonly serverAccessLogsBucket?: s3.IBucket;
}

/** S3's limit for a single `CopyObject`, which puts a `fromAsset` model into the bucket. */
const MAX_DEPLOYABLE_MODEL_BYTES = 5 * 1024 ** 3;

/** Where the model is, once the packaging is bound. */
export interface PlacedS3Model {
  readonly bucket: s3.IBucket;
  readonly key: string;
  readonly version?: string;
  /** The deploy-time copy of a `fromAsset` model. */
  readonly deployment?: cr.AwsCustomResource;
  /** The endpoint made the bucket: it holds only models, so listing it reveals nothing else. */
  readonly ownBucket: boolean;
  /** The model's content hash or pinned version. */
  readonly identity?: string;
  /** The key of the model precompiled in ORT format, in the same bucket, and its deploy-time copy. */
  readonly precompiledKey?: string;
  readonly precompiledSizeBytes?: number;
  readonly precompiledDeployment?: cr.AwsCustomResource;
}

/**
 * The model in S3, fetched into the function's /tmp at cold start. A local model is copied at
 * deploy into a bucket, under a key of its content hash; a model already in S3 is read where it
 * is, so a new object at the same key reaches every new instance without a deploy.
 */
export class S3ModelPackaging extends ModelPackaging {
  private readonly placed = new BoundOnce<PlacedS3Model>('S3ModelPackaging');

  constructor(private readonly props: S3ModelPackagingProps) {
    super();
  }

  public bind(scope: Construct, options: ModelPackagingBindOptions): ModelPackagingConfig {
    const source = this.props.model.bind();
    const placed = this.placed.bind(scope, () => placeModel(scope, this.props, options));
    grantReadModelObject(options.role, placed.bucket, placed.key, placed.version, { listBucket: placed.ownBucket });
    if (placed.precompiledKey) {
      grantReadModelObject(options.role, placed.bucket, placed.precompiledKey, undefined, { listBucket: placed.ownBucket });
    }
    return {
      environment: {
        [ENV.MODEL_S3_URI]: `s3://${placed.bucket.bucketName}/${placed.key}`,
        ...(placed.version ? { [ENV.MODEL_S3_VERSION_ID]: placed.version } : {}),
        ...(placed.precompiledKey ? { [ENV.MODEL_PRECOMPILED_S3_URI]: `s3://${placed.bucket.bucketName}/${placed.precompiledKey}` } : {}),
      },
      // When the precompiled copy is refused, the .onnx is fetched beside it.
      tmpSize: source.size && placed.precompiledSizeBytes ? Size.bytes(source.size.toBytes() + placed.precompiledSizeBytes) : source.size,
      modelSize: source.size,
      modelInfo: source.info,
      dependencies: [...(placed.deployment ? [placed.deployment] : []), ...(placed.precompiledDeployment ? [placed.precompiledDeployment] : [])],
      modelIdentity: placed.identity,
    };
  }

  /** @internal */
  public _placed(): PlacedS3Model {
    return this.placed.get();
  }
}

function placeModel(scope: Construct, props: S3ModelPackagingProps, options: ModelPackagingBindOptions): PlacedS3Model {
  const modelName = options.modelName;
  const source = props.model.bind();
  if (source.bucket && source.objectKey !== undefined) {
    if (props.bucket) {
      throw validationError(scope, 'S3ModelPackaging: bucket applies to a ModelSource.fromAsset model; a ModelSource.fromBucket model is read from its own bucket');
    }
    if (props.serverAccessLogsBucket) {
      throw validationError(
        scope,
        'S3ModelPackaging: serverAccessLogsBucket applies to the bucket the endpoint creates; a ModelSource.fromBucket model is read from its own bucket',
      );
    }
    return { bucket: source.bucket, key: source.objectKey, version: source.objectVersion, ownBucket: false, identity: source.objectVersion };
  }
  const localPath = source.localPath!;
  const sizeBytes = source.info!.sizeBytes;
  if (sizeBytes > MAX_DEPLOYABLE_MODEL_BYTES) {
    throw validationError(
      scope,
      `S3ModelPackaging: model ${localPath} is ${formatBytes(sizeBytes)}; a fromAsset model is copied into the bucket with one S3 CopyObject, which takes at most ` +
        `${formatBytes(MAX_DEPLOYABLE_MODEL_BYTES)}: upload it yourself and use ModelSource.fromBucket`,
    );
  }
  if (props.bucket && props.serverAccessLogsBucket) {
    throw validationError(scope, 'S3ModelPackaging: serverAccessLogsBucket applies to the bucket the endpoint creates; give it to your own bucket instead');
  }
  const bucket = props.bucket ?? createModelBucket(scope, props.serverAccessLogsBucket);
  const asset = new s3assets.Asset(scope, 'ModelAsset', { path: localPath });
  // A key per model content: a deploy never overwrites the object an older function version
  // reads (during the deploy, or after a rollback), and endpoints sharing a bucket never collide.
  const stem = path.basename(localPath, '.onnx');
  const key = `models/${modelName}/${stem}-${asset.assetHash.slice(0, 16)}.onnx`;
  const deployment = copyAssetIntoBucket(scope, asset, bucket, key, 'ModelCopy');
  const precompiled = wantsPrecompiled(options) ? precompileModel(scope, localPath) : undefined;
  if (!precompiled) {
    return { bucket, key, deployment, ownBucket: props.bucket === undefined, identity: asset.assetHash };
  }
  // Keyed by the .onnx's hash too: it is the precompiled copy of that model and no other.
  // Hashed by what it is made from (PrecompiledModel.inputHash), not by the bytes the converter wrote.
  const precompiledAsset = new s3assets.Asset(scope, 'PrecompiledModelAsset', { path: precompiled.path, assetHash: precompiled.inputHash });
  const precompiledKey = `models/${modelName}/${stem}-${asset.assetHash.slice(0, 16)}.ort`;
  const precompiledCopy = copyAssetIntoBucket(scope, precompiledAsset, bucket, precompiledKey, 'PrecompiledModelCopy');
  return {
    bucket,
    key,
    deployment,
    precompiledDeployment: precompiledCopy,
    ownBucket: props.bucket === undefined,
    identity: asset.assetHash,
    precompiledKey,
    precompiledSizeBytes: precompiled.sizeBytes,
  };
}

/**
 * Copies the model asset into the model bucket at deploy, with one server-side `CopyObject` (no
 * download, no /tmp, at most 5 GB), again whenever the model file changes. Its grants are the two
 * objects and nothing else; the copied object stays when the stack is deleted, as the bucket does.
 */
function copyAssetIntoBucket(scope: Construct, asset: s3assets.Asset, bucket: s3.IBucket, key: string, id: string): cr.AwsCustomResource {
  const copy: cr.AwsSdkCall = {
    service: 'S3',
    action: 'copyObject',
    parameters: { Bucket: bucket.bucketName, Key: key, CopySource: `${asset.s3BucketName}/${asset.s3ObjectKey}` },
    physicalResourceId: cr.PhysicalResourceId.of(key),
  };
  const statements = [
    new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: [asset.bucket.arnForObjects(asset.s3ObjectKey)] }),
    new iam.PolicyStatement({ actions: ['s3:PutObject'], resources: [bucket.arnForObjects(key)] }),
  ];
  if (bucket.encryptionKey) {
    statements.push(new iam.PolicyStatement({ actions: ['kms:GenerateDataKey', 'kms:Decrypt'], resources: [bucket.encryptionKey.keyArn] }));
  }
  const deployment = new cr.AwsCustomResource(scope, id, {
    onCreate: copy,
    onUpdate: copy,
    policy: cr.AwsCustomResourcePolicy.fromStatements(statements),
    installLatestAwsSdk: false,
    timeout: Duration.minutes(5),
    memorySize: 256,
    logGroup: copyLogGroup(scope),
  });
  acknowledgeAwsCustomResourceProvider(scope);
  return deployment;
}

/**
 * The log group of the copy's provider function. That function is one per stack, configured by the
 * first `AwsCustomResource` made, so its log group is one per stack too.
 */
function copyLogGroup(scope: Construct): logs.ILogGroup {
  const stack = Stack.of(scope);
  const existing = stack.node.tryFindChild(COPY_LOG_GROUP_ID) as logs.LogGroup | undefined;
  return existing ?? new logs.LogGroup(stack, COPY_LOG_GROUP_ID, { retention: logs.RetentionDays.ONE_MONTH });
}

const COPY_LOG_GROUP_ID = 'CdkServerlessInferenceModelCopyLogs';

/** The provider function of `AwsCustomResource` is a stack-wide singleton that aws-cdk-lib owns. */
function acknowledgeAwsCustomResourceProvider(scope: Construct): void {
  const provider = Stack.of(scope).node.tryFindChild(AWS_CUSTOM_RESOURCE_PROVIDER_ID);
  if (!provider) return;
  acknowledge(
    provider,
    ['AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]'],
    "aws-cdk-lib's AwsCustomResource provider role; it only writes its own logs, and its S3 grants are the model's two objects.",
  );
  acknowledge(
    provider,
    ['AwsSolutions-L1', 'Serverless-LambdaLatestVersion', 'Serverless-LambdaTracing', 'Serverless-LambdaDLQ'],
    "aws-cdk-lib's AwsCustomResource provider: aws-cdk-lib picks its runtime, and CloudFormation invokes it and handles its failures.",
  );
}

/** The construct id aws-cdk-lib gives the `AwsCustomResource` provider singleton. */
const AWS_CUSTOM_RESOURCE_PROVIDER_ID = 'AWS679f53fac002430cb0da5b7982bd2287';

/** The model bucket an endpoint creates (and its access log bucket, unless one is given): ids `ModelBucket`, `AccessLogsBucket`. */
export function createModelBucket(scope: Construct, accessLogs: s3.IBucket | undefined): s3.Bucket {
  const serverAccessLogsBucket = accessLogs ?? createAccessLogsBucket(scope, 'model bucket');
  return new s3.Bucket(scope, 'ModelBucket', {
    encryption: s3.BucketEncryption.S3_MANAGED,
    enforceSSL: true,
    blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
    versioned: true,
    removalPolicy: RemovalPolicy.RETAIN,
    serverAccessLogsBucket,
    serverAccessLogsPrefix: 'model-bucket/',
    // Overwritten models stay recoverable for a month; multi-GB versions are not kept forever.
    lifecycleRules: [{ noncurrentVersionExpiration: Duration.days(30), abortIncompleteMultipartUploadAfter: Duration.days(7) }],
  });
}
