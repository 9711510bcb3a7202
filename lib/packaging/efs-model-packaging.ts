import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { CustomResource, Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as efs from 'aws-cdk-lib/aws-efs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import * as cr from 'aws-cdk-lib/custom-resources';
import type { Construct } from 'constructs';
import { ENV } from '../../contract/environment';
import { EFS_MOUNT_PATH, MODEL_COPY_PROPERTY as P, MODEL_COPY_RESOURCE_TYPE } from '../../contract/model-copy';
import type { ModelSource } from '../model/model-source';
import type { OnnxModelInfo } from '../model/onnx-model-info';
import { acknowledge, invokeAnyVersionFinding } from '../private/acknowledge';
import { BoundOnce } from '../private/bound-once';
import { grantLambdaVpcAccess, grantReadModelObject } from '../private/grants';
import { builtAssetPath } from '../private/package-paths';
import { precompileModel, wantsPrecompiled } from './precompiled-model';
import { ModelPackaging, type ModelPackagingBindOptions, type ModelPackagingConfig } from './model-packaging';

/** The model and file system of an `EfsModelPackaging`. */
export interface EfsModelPackagingProps {
  /**
   * The model: a local file (`fromAsset`) or an S3 object (`fromBucket`). Either is copied onto the
   * file system at deploy, and again when it changes (for `fromBucket`, when its `version` does).
   */
  readonly model: ModelSource;

  /**
   * The VPC of the function, the file system and the model loader. Its subnets need a route to S3
   * (a gateway endpoint or a NAT gateway) for the loader.
   * @default - a new VPC: two AZs of isolated subnets, no NAT gateway, an S3 gateway endpoint,
   * flow logs of rejected traffic
   */
  readonly vpc?: ec2.IVpc;

  /**
   * Subnets of the function, the mount targets and the loader.
   * @default - the VPC's private subnets (isolated ones if it has no private ones)
   */
  readonly vpcSubnets?: ec2.SubnetSelection;

  /**
   * The file system's throughput mode. Elastic scales with what is read and bills per GB read:
   * a burst of cold starts reading a big model neither drains burst credits (bursting) nor
   * needs throughput paid for around the clock (provisioned).
   * @default efs.ThroughputMode.ELASTIC
   */
  readonly throughputMode?: efs.ThroughputMode;

  /**
   * What happens to the file system when the stack is deleted. It only holds copies of the model
   * that a deploy writes again.
   * @default RemovalPolicy.DESTROY
   */
  readonly fileSystemRemovalPolicy?: RemovalPolicy;
}

/** POSIX identity the function and the loader use on the file system. */
const POSIX_ID = '1001';

/**
 * The model on an EFS file system that the function mounts at `/mnt/models`: for big models (up to
 * the function's memory), with no download at cold start. A loader copies the model from S3 onto
 * the file system at deploy, under a new name for each model, renamed only when complete, so a
 * running function never reads a half-written file and older function versions keep theirs.
 */
export class EfsModelPackaging extends ModelPackaging {
  private readonly storage = new BoundOnce<ModelStorage>('EfsModelPackaging');

  constructor(private readonly props: EfsModelPackagingProps) {
    super();
  }

  public bind(scope: Construct, options: ModelPackagingBindOptions): ModelPackagingConfig {
    const storage = this.storage.bind(scope, () => createModelStorage(scope, this.props, options));
    // The file system lets the function mount, read-only.
    allowClient(storage.fileSystem, options.role, { write: false });
    return {
      environment: { [ENV.MODEL_PATH]: storage.modelPath, ...(storage.precompiledPath ? { [ENV.MODEL_PRECOMPILED_PATH]: storage.precompiledPath } : {}) },
      modelInfo: storage.info,
      modelSize: this.props.model.bind().size,
      vpc: storage.vpc,
      vpcSubnets: storage.vpcSubnets,
      securityGroups: [storage.functionSecurityGroup],
      filesystem: new AccessPointMount(storage.accessPoint, EFS_MOUNT_PATH, { write: false }),
      dependencies: [storage.copy],
      modelIdentity: storage.identity,
    };
  }

  /** @internal */
  public _storage(): ModelStorage {
    return this.storage.get();
  }
}

/** What an `EfsModelPackaging` created when it was bound. */
export interface ModelStorage {
  readonly vpc: ec2.IVpc;
  readonly vpcSubnets: ec2.SubnetSelection;
  readonly fileSystem: efs.FileSystem;
  readonly accessPoint: efs.AccessPoint;
  readonly functionSecurityGroup: ec2.SecurityGroup;
  readonly loader: lambda.Function;
  readonly copy: CustomResource;
  readonly modelPath: string;
  /** Where the model precompiled in ORT format is on the file system, when it is copied there. */
  readonly precompiledPath?: string;
  readonly info?: OnnxModelInfo;
  /** The asset hash, or the pinned S3 version. */
  readonly identity?: string;
}

function createModelStorage(scope: Construct, props: EfsModelPackagingProps, options: ModelPackagingBindOptions): ModelStorage {
  const source = props.model.bind();
  const vpc = props.vpc ?? createVpc(scope);
  const vpcSubnets = props.vpcSubnets ?? { subnetType: props.vpc ? undefined : ec2.SubnetType.PRIVATE_ISOLATED };

  const fileSystem = new efs.FileSystem(scope, 'FileSystem', {
    vpc,
    vpcSubnets,
    encrypted: true,
    throughputMode: props.throughputMode ?? efs.ThroughputMode.ELASTIC,
    performanceMode: efs.PerformanceMode.GENERAL_PURPOSE,
    removalPolicy: props.fileSystemRemovalPolicy ?? RemovalPolicy.DESTROY,
    // The file system policy (allowClient below) names the only two clients: the loader may write,
    // the function may only read. Any policy denies clients without IAM; `false` here would make
    // aws-cdk-lib add a statement letting every IAM principal that reaches a mount target write.
    allowAnonymousAccess: true,
  });
  // In transit too: Lambda mounts with IAM authorization, which EFS only allows over TLS.
  fileSystem.addToResourcePolicy(
    new iam.PolicyStatement({
      effect: iam.Effect.DENY,
      principals: [new iam.AnyPrincipal()],
      actions: ['elasticfilesystem:*'],
      resources: ['*'],
      conditions: { Bool: { 'aws:SecureTransport': 'false' } },
    }),
  );
  const accessPoint = fileSystem.addAccessPoint('AccessPoint', {
    path: '/models',
    createAcl: { ownerUid: POSIX_ID, ownerGid: POSIX_ID, permissions: '750' },
    posixUser: { uid: POSIX_ID, gid: POSIX_ID },
  });
  const functionSecurityGroup = new ec2.SecurityGroup(scope, 'FunctionSecurityGroup', {
    vpc,
    description: 'Inference function: NFS to the model file system',
    allowAllOutbound: false,
  });
  functionSecurityGroup.connections.allowTo(fileSystem, ec2.Port.tcp(2049), 'NFS to the model file system');

  // Where the model comes from: the asset (copied by the loader) or the user's object.
  let s3Uri: string;
  let versionId: string | undefined;
  let identity: string;
  let grantSource: (role: iam.IRole) => void;
  if (source.localPath) {
    const asset = new s3assets.Asset(scope, 'ModelAsset', { path: source.localPath });
    s3Uri = asset.s3ObjectUrl;
    identity = asset.assetHash;
    grantSource = (role) => grantReadModelObject(role, asset.bucket, asset.s3ObjectKey, undefined);
  } else {
    const bucket = source.bucket!;
    const key = source.objectKey!;
    s3Uri = `s3://${bucket.bucketName}/${key}`;
    versionId = source.objectVersion;
    identity = `${key}@${versionId ?? 'latest'}`;
    grantSource = (role) => grantReadModelObject(role, bucket, key, versionId);
  }
  // A name per model: a new model is a new file, so older function versions keep reading theirs
  // until CloudFormation deletes the old copy after a successful update.
  const stem = path
    .basename(source.localPath ?? source.objectKey ?? 'model', '.onnx')
    .replace(/[^A-Za-z0-9._-]/g, '_')
    .slice(0, 64);
  const modelFileName = `${stem}-${createHash('sha256').update(identity).digest('hex').slice(0, 16)}.onnx`;
  // Named after its model: replaced, and deleted, with it.
  const precompiled = source.localPath && wantsPrecompiled(options) ? precompileModel(scope, source.localPath) : undefined;
  const precompiledAsset = precompiled ? new s3assets.Asset(scope, 'PrecompiledModelAsset', { path: precompiled.path }) : undefined;
  const precompiledFileName = precompiled ? modelFileName.replace(/\.onnx$/, '.ort') : undefined;

  const loader = createLoader(scope, vpc, vpcSubnets, fileSystem, accessPoint);
  grantSource(loader.role!);
  if (precompiledAsset) {
    grantReadModelObject(loader.role!, precompiledAsset.bucket, precompiledAsset.s3ObjectKey, undefined);
  }
  allowClient(fileSystem, loader.role!, { write: true });
  const provider = createProvider(scope, loader);
  const copy = new CustomResource(scope, 'ModelCopy', {
    serviceToken: provider.serviceToken,
    resourceType: MODEL_COPY_RESOURCE_TYPE,
    properties: {
      [P.MODEL_S3_URI]: s3Uri,
      ...(versionId ? { [P.MODEL_S3_VERSION_ID]: versionId } : {}),
      [P.MOUNT_PATH]: EFS_MOUNT_PATH,
      [P.MODEL_FILE_NAME]: modelFileName,
      ...(precompiledAsset ? { [P.PRECOMPILED_S3_URI]: precompiledAsset.s3ObjectUrl, [P.PRECOMPILED_FILE_NAME]: precompiledFileName } : {}),
    },
  });
  return {
    vpc,
    vpcSubnets,
    fileSystem,
    accessPoint,
    functionSecurityGroup,
    loader,
    copy,
    modelPath: `${EFS_MOUNT_PATH}/${modelFileName}`,
    precompiledPath: precompiledFileName ? `${EFS_MOUNT_PATH}/${precompiledFileName}` : undefined,
    info: source.info,
    identity: source.localPath ? identity : versionId,
  };
}

/**
 * A file system policy statement: `principal` may mount, and maybe write. (The principal's own
 * policy limits it to the access point; naming the access point here would be a dependency cycle.)
 */
function allowClient(fileSystem: efs.FileSystem, principal: iam.IRole, options: { readonly write: boolean }): void {
  fileSystem.addToResourcePolicy(
    new iam.PolicyStatement({
      principals: [principal],
      actions: options.write ? ['elasticfilesystem:ClientMount', 'elasticfilesystem:ClientWrite'] : ['elasticfilesystem:ClientMount'],
      resources: ['*'],
    }),
  );
}

function createVpc(scope: Construct): ec2.Vpc {
  const flowLogs = new logs.LogGroup(scope, 'VpcFlowLogs', { retention: logs.RetentionDays.ONE_MONTH });
  return new ec2.Vpc(scope, 'Vpc', {
    maxAzs: 2,
    natGateways: 0,
    subnetConfiguration: [{ name: 'models', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 }],
    // The loader reads the model from S3 without a NAT gateway.
    gatewayEndpoints: { S3: { service: ec2.GatewayVpcEndpointAwsService.S3 } },
    // Rejected traffic only: accepted traffic is mostly NFS reads of the model, costly to log.
    flowLogs: { Rejected: { destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogs), trafficType: ec2.FlowLogTrafficType.REJECT } },
  });
}

function createLoader(scope: Construct, vpc: ec2.IVpc, vpcSubnets: ec2.SubnetSelection, fileSystem: efs.FileSystem, accessPoint: efs.AccessPoint): lambda.Function {
  const logGroup = new logs.LogGroup(scope, 'ModelLoaderLogGroup', { retention: logs.RetentionDays.ONE_MONTH, removalPolicy: RemovalPolicy.DESTROY });
  const role = new iam.Role(scope, 'ModelLoaderRole', {
    assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
    description: 'Copies the model from S3 onto the model file system at deploy',
  });
  logGroup.grantWrite(role);
  const securityGroup = new ec2.SecurityGroup(scope, 'ModelLoaderSecurityGroup', {
    vpc,
    description: 'Model loader: NFS to the model file system, HTTPS to S3',
    allowAllOutbound: false,
  });
  securityGroup.connections.allowTo(fileSystem, ec2.Port.tcp(2049), 'NFS to the model file system');
  securityGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'HTTPS to S3 (through the gateway endpoint)');
  const loader = new lambda.Function(scope, 'ModelLoader', {
    runtime: lambda.Runtime.NODEJS_24_X,
    architecture: lambda.Architecture.ARM_64,
    handler: 'index.handler',
    code: lambda.Code.fromAsset(builtAssetPath('handlers', 'model-loader')),
    memorySize: 1024,
    timeout: Duration.minutes(15),
    role,
    logGroup,
    vpc,
    vpcSubnets,
    securityGroups: [securityGroup],
    filesystem: new AccessPointMount(accessPoint, EFS_MOUNT_PATH, { write: true }),
    description: 'Copies the model from S3 onto the model file system at deploy',
  });
  // Its network interfaces in its own subnets and security group only (see grantLambdaVpcAccess).
  grantLambdaVpcAccess(role, vpc.selectSubnets(vpcSubnets).subnetIds, [securityGroup]);
  acknowledge(
    loader,
    ['Serverless-LambdaDLQ', 'Serverless-LambdaAsyncFailureDestination', 'Serverless-LambdaTracing'],
    'The loader runs once per deploy, invoked synchronously by the custom resource provider, which reports its failures to CloudFormation.',
  );
  return loader;
}

function createProvider(scope: Construct, loader: lambda.Function): cr.Provider {
  const logGroup = new logs.LogGroup(scope, 'ModelCopyProviderLogGroup', { retention: logs.RetentionDays.ONE_MONTH, removalPolicy: RemovalPolicy.DESTROY });
  // Its own role, without the managed policy the framework's default role gets.
  const role = new iam.Role(scope, 'ModelCopyProviderRole', {
    assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
    description: 'Custom resource provider of the model copy: invokes the model loader',
  });
  logGroup.grantWrite(role);
  const provider = new cr.Provider(scope, 'ModelCopyProvider', {
    onEventHandler: loader,
    logGroup,
    frameworkOnEventRole: role,
  });
  acknowledge(role, [invokeAnyVersionFinding(loader)], "aws-cdk-lib's provider framework may invoke any version of the one loader function it serves.");
  acknowledge(
    provider,
    [
      'AwsSolutions-L1',
      'Serverless-LambdaLatestVersion',
      'Serverless-LambdaTracing',
      'Serverless-LambdaDLQ',
      'Serverless-LambdaAsyncFailureDestination',
      'Serverless-LambdaDefaultMemorySize',
    ],
    "aws-cdk-lib's custom resource provider framework: aws-cdk-lib picks its runtime, and CloudFormation invokes it and handles its failures.",
  );
  return provider;
}

/**
 * An access point mount whose grants name the file system (aws-cdk-lib's `fromEfsAccessPoint`
 * grants on `*`, and always grants writing): the function may only mount and read, the loader
 * may also write.
 */
class AccessPointMount extends lambda.FileSystem {
  constructor(accessPoint: efs.AccessPoint, mountPath: string, options: { readonly write: boolean }) {
    super({
      localMountPath: mountPath,
      arn: accessPoint.accessPointArn,
      dependency: [accessPoint.fileSystem.mountTargetsAvailable],
      connections: accessPoint.fileSystem.connections,
      policies: [
        new iam.PolicyStatement({
          actions: options.write ? ['elasticfilesystem:ClientMount', 'elasticfilesystem:ClientWrite'] : ['elasticfilesystem:ClientMount'],
          resources: [accessPoint.fileSystem.fileSystemArn],
          conditions: { StringEquals: { 'elasticfilesystem:AccessPointArn': accessPoint.accessPointArn } },
        }),
      ],
    });
  }
}
