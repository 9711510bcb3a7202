import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { CustomResource, Duration, Fn, RemovalPolicy, Tags } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as efs from 'aws-cdk-lib/aws-efs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import * as cr from 'aws-cdk-lib/custom-resources';
import { Construct, DependencyGroup, type IDependable } from 'constructs';
import { ENV } from '../../contract/environment';
import { EFS_MOUNT_PATH, MODEL_COPY_ENV, MODEL_COPY_HANDLER, MODEL_COPY_PROPERTY as P, MODEL_COPY_RESOURCE_TYPE, MODEL_COPY_START_WINDOW_SECONDS } from '../../contract/model-copy';
import type { ModelSource } from '../model/model-source';
import type { OnnxModelInfo } from '../model/onnx-model-info';
import { acknowledge, invokeAnyVersionFinding } from '../private/acknowledge';
import { BoundOnce } from '../private/bound-once';
import { grantLambdaVpcAccess, grantReadModelObject } from '../private/grants';
import { defaultNodeRuntime } from '../private/node-runtime';
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
   * @default - a new VPC: two AZs of isolated subnets (chosen at deploy, with no lookup at synth),
   * no NAT gateway, an S3 gateway endpoint, flow logs of rejected traffic
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
  const created = props.vpc ? undefined : createVpc(scope);
  const vpc = props.vpc ?? created!.vpc;
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
  // Hashed by what it is made from (PrecompiledModel.inputHash), not by the bytes the converter wrote.
  const precompiledAsset = precompiled ? new s3assets.Asset(scope, 'PrecompiledModelAsset', { path: precompiled.path, assetHash: precompiled.inputHash }) : undefined;
  const precompiledFileName = precompiled ? modelFileName.replace(/\.onnx$/, '.ort') : undefined;

  const loader = createLoader(scope, vpc, vpcSubnets, fileSystem, accessPoint);
  // Its subnets' routes, the S3 one included, exist before it runs (ec2.Vpc's subnets did the same).
  if (created) loader.node.addDependency(created.ready);
  grantSource(loader.role!);
  if (precompiledAsset) {
    grantReadModelObject(loader.role!, precompiledAsset.bucket, precompiledAsset.s3ObjectKey, undefined);
  }
  allowClient(fileSystem, loader.role!, { write: true });
  const provider = createProvider(scope, loader, createCopyCheck(scope, loader, vpc, vpcSubnets, fileSystem, accessPoint));
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
  // The loader's configuration, its asynchronous invocation's (no retry) included, before a job.
  copy.node.addDependency(loader);
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

/** Address range of the default VPC, and of its subnets (one per zone). */
const VPC_CIDR = '10.0.0.0/16';
const SUBNET_CIDRS = ['10.0.0.0/24', '10.0.1.0/24'];

/**
 * The default VPC: isolated subnets in two zones, no NAT gateway, an S3 gateway endpoint, flow logs
 * of rejected traffic. Made of CloudFormation resources whose zones `Fn::GetAZs` picks at deploy:
 * `ec2.Vpc` reads the stack's availability zones, which in a stack with an explicit account and
 * region is a context lookup, and a synth without credentials fails on it ("Need to perform AWS
 * calls for account ..."), even with `availabilityZones` given.
 */
function createVpc(scope: Construct): { readonly vpc: ec2.IVpc; readonly ready: IDependable } {
  // Construct ids and tags as ec2.Vpc gives its parts: the same logical ids, so a VPC deployed by an
  // earlier version is kept.
  const group = new Construct(scope, 'Vpc');
  Tags.of(group).add('Name', group.node.path);
  const cfnVpc = new ec2.CfnVPC(group, 'Resource', { cidrBlock: VPC_CIDR, enableDnsHostnames: true, enableDnsSupport: true, instanceTenancy: 'default' });
  const zones = SUBNET_CIDRS.map((_, i) => Fn.select(i, Fn.getAzs()));
  const ready = new DependencyGroup();
  const subnets = SUBNET_CIDRS.map((cidrBlock, i) => {
    const part = new Construct(group, `modelsSubnet${i + 1}`);
    Tags.of(part).add('Name', part.node.path);
    const subnet = new ec2.CfnSubnet(part, 'Subnet', {
      vpcId: cfnVpc.ref,
      cidrBlock,
      availabilityZone: zones[i],
      mapPublicIpOnLaunch: false,
      tags: [
        { key: 'aws-cdk:subnet-name', value: 'models' },
        { key: 'aws-cdk:subnet-type', value: 'Isolated' },
      ],
    });
    const routeTable = new ec2.CfnRouteTable(part, 'RouteTable', { vpcId: cfnVpc.ref });
    ready.add(new ec2.CfnSubnetRouteTableAssociation(part, 'RouteTableAssociation', { subnetId: subnet.ref, routeTableId: routeTable.ref }));
    return { subnet, routeTable };
  });
  const vpc = ec2.Vpc.fromVpcAttributes(group, 'Vpc', {
    vpcId: cfnVpc.ref,
    vpcCidrBlock: VPC_CIDR,
    availabilityZones: zones,
    isolatedSubnetIds: subnets.map((s) => s.subnet.ref),
    isolatedSubnetRouteTableIds: subnets.map((s) => s.routeTable.ref),
  });
  // The loader reads the model from S3 without a NAT gateway.
  ready.add(new ec2.GatewayVpcEndpoint(group, 'S3', { vpc, service: ec2.GatewayVpcEndpointAwsService.S3, subnets: [{ subnetType: ec2.SubnetType.PRIVATE_ISOLATED }] }));
  // Rejected traffic only: accepted traffic is mostly NFS reads of the model, costly to log.
  const flowLogs = new logs.LogGroup(scope, 'VpcFlowLogs', { retention: logs.RetentionDays.ONE_MONTH });
  new ec2.FlowLog(group, 'Rejected', {
    resourceType: ec2.FlowLogResourceType.fromVpc(vpc),
    destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogs),
    trafficType: ec2.FlowLogTrafficType.REJECT,
  });
  return { vpc, ready };
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
    runtime: defaultNodeRuntime(),
    architecture: lambda.Architecture.ARM_64,
    handler: MODEL_COPY_HANDLER.LOADER,
    code: loaderCode(),
    memorySize: 1024,
    timeout: LOADER_TIMEOUT,
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
  // A copy job runs once or not at all: the check reads how it ended, and gives up on one that never
  // started once Lambda has dropped it from its queue.
  loader.configureAsyncInvoke({ retryAttempts: 0, maxEventAge: Duration.seconds(MODEL_COPY_START_WINDOW_SECONDS) });
  acknowledge(
    loader,
    ['Serverless-LambdaDLQ', 'Serverless-LambdaAsyncFailureDestination', 'Serverless-LambdaTracing'],
    'The loader runs once per deploy, as one asynchronous copy job (never retried) whose end it records on the file system, where the custom resource reads it and reports it to CloudFormation; a Delete is invoked synchronously.',
  );
  return loader;
}

/** The loader's code: one bundle for the loader, the copy's starter and its check. */
function loaderCode(): lambda.Code {
  return lambda.Code.fromAsset(builtAssetPath('handlers', 'model-loader'));
}

/** The Lambda limit the loader's copy job has to finish in. */
const LOADER_TIMEOUT = Duration.minutes(15);
/** How often the provider asks the check whether the copy is done, and how long it waits in all. */
const COPY_QUERY_INTERVAL = Duration.seconds(10);
const COPY_TOTAL_TIMEOUT = Duration.minutes(30);

/**
 * The custom resource's onEvent handler: outside the VPC, so that it reaches Lambda's API (the VPC
 * may have no route to it). It invokes the loader asynchronously for a copy, synchronously for a
 * Delete, and answers at once.
 */
function createCopyStarter(scope: Construct, loader: lambda.Function): lambda.Function {
  const logGroup = new logs.LogGroup(scope, 'ModelCopyStarterLogGroup', { retention: logs.RetentionDays.ONE_MONTH, removalPolicy: RemovalPolicy.DESTROY });
  const role = new iam.Role(scope, 'ModelCopyStarterRole', {
    assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
    description: 'Starts the copy of the model onto its file system: invokes the model loader',
  });
  logGroup.grantWrite(role);
  loader.grantInvoke(role);
  const starter = new lambda.Function(scope, 'ModelCopyStarter', {
    runtime: defaultNodeRuntime(),
    architecture: lambda.Architecture.ARM_64,
    handler: MODEL_COPY_HANDLER.START,
    code: loaderCode(),
    memorySize: 256,
    // A synchronous Delete is one unlink; a start one asynchronous invocation.
    timeout: Duration.minutes(2),
    role,
    logGroup,
    environment: { [MODEL_COPY_ENV.LOADER_FUNCTION_ARN]: loader.functionArn },
    description: 'Starts the copy of the model onto its file system at deploy (custom resource onEvent)',
  });
  acknowledge(role, [invokeAnyVersionFinding(loader)], 'Lambda grants invoking a function and any of its versions together; the starter invokes the loader by its ARN.');
  acknowledge(
    starter,
    ['Serverless-LambdaDLQ', 'Serverless-LambdaAsyncFailureDestination', 'Serverless-LambdaTracing'],
    'Invoked synchronously by the custom resource provider, which reports its failures to CloudFormation.',
  );
  return starter;
}

/**
 * The custom resource's isComplete handler: on the file system, read-only, in the loader's subnets
 * and security group, it reads how the loader's copy job ended.
 */
function createCopyCheck(
  scope: Construct,
  loader: lambda.Function,
  vpc: ec2.IVpc,
  vpcSubnets: ec2.SubnetSelection,
  fileSystem: efs.FileSystem,
  accessPoint: efs.AccessPoint,
): lambda.Function {
  const logGroup = new logs.LogGroup(scope, 'ModelCopyCheckLogGroup', { retention: logs.RetentionDays.ONE_MONTH, removalPolicy: RemovalPolicy.DESTROY });
  const role = new iam.Role(scope, 'ModelCopyCheckRole', {
    assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
    description: "Reads how the copy of the model onto its file system ended (the loader's status file)",
  });
  logGroup.grantWrite(role);
  allowClient(fileSystem, role, { write: false });
  const securityGroups = loader.connections.securityGroups;
  const check = new lambda.Function(scope, 'ModelCopyCheck', {
    runtime: defaultNodeRuntime(),
    architecture: lambda.Architecture.ARM_64,
    handler: MODEL_COPY_HANDLER.IS_COMPLETE,
    code: loaderCode(),
    memorySize: 256,
    timeout: Duration.minutes(1),
    role,
    logGroup,
    vpc,
    vpcSubnets,
    // The loader's: the same network interfaces serve both.
    securityGroups,
    filesystem: new AccessPointMount(accessPoint, EFS_MOUNT_PATH, { write: false }),
    description: 'Checks whether the copy of the model onto its file system has ended (custom resource isComplete)',
  });
  grantLambdaVpcAccess(role, vpc.selectSubnets(vpcSubnets).subnetIds, securityGroups);
  acknowledge(
    check,
    ['Serverless-LambdaDLQ', 'Serverless-LambdaAsyncFailureDestination', 'Serverless-LambdaTracing'],
    "Invoked synchronously by the custom resource provider's waiter, which reports its failures to CloudFormation.",
  );
  return check;
}

/**
 * The provider framework, asynchronous: its onEvent calls the starter and answers CloudFormation
 * only when the check finds the copy ended, polling every COPY_QUERY_INTERVAL (a Step Functions
 * waiter), so the copy has the loader's whole 15 minutes and a failure is reported, not timed out.
 */
function createProvider(scope: Construct, loader: lambda.Function, check: lambda.Function): cr.Provider {
  const starter = createCopyStarter(scope, loader);
  const logGroup = new logs.LogGroup(scope, 'ModelCopyProviderLogGroup', { retention: logs.RetentionDays.ONE_MONTH, removalPolicy: RemovalPolicy.DESTROY });
  // Their own roles, without the managed policy the framework's default roles get.
  const role = new iam.Role(scope, 'ModelCopyProviderRole', {
    assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
    description: 'Custom resource provider of the model copy: invokes the copy starter and starts the waiter',
  });
  logGroup.grantWrite(role);
  const waiterRole = new iam.Role(scope, 'ModelCopyWaiterRole', {
    assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
    description: 'Custom resource provider of the model copy: invokes the copy check until the copy ends',
  });
  logGroup.grantWrite(waiterRole);
  const provider = new cr.Provider(scope, 'ModelCopyProvider', {
    onEventHandler: starter,
    isCompleteHandler: check,
    queryInterval: COPY_QUERY_INTERVAL,
    totalTimeout: COPY_TOTAL_TIMEOUT,
    logGroup,
    frameworkOnEventRole: role,
    frameworkCompleteAndTimeoutRole: waiterRole,
  });
  // aws-cdk-lib grants each of the framework's roles both user functions, each with any version.
  for (const frameworkRole of [role, waiterRole]) {
    acknowledge(
      frameworkRole,
      [invokeAnyVersionFinding(starter), invokeAnyVersionFinding(check)],
      "aws-cdk-lib's provider framework may invoke any version of the starter and the check it serves.",
    );
  }
  const waiter = provider.node.findChild('waiter-state-machine');
  acknowledge(
    waiter,
    ['framework-isComplete', 'framework-onTimeout'].map((id) => invokeAnyVersionFinding(provider.node.findChild(id) as lambda.Function)),
    "aws-cdk-lib's provider framework waiter invokes the framework's isComplete and onTimeout functions, any version, as aws-cdk-lib grants.",
  );
  // Its own logs would need CloudWatch Logs delivery actions on Resource '*'.
  acknowledge(
    waiter,
    ['AwsSolutions-SF1', 'AwsSolutions-SF2', 'Serverless-StepFunctionStateMachineXray'],
    "The waiter only calls the framework's isComplete function every 10 s while a model is copied at deploy; that function, the check and the loader log each step and its outcome, and a trace adds nothing.",
  );
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
