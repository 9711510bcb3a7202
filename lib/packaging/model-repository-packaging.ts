import { Size, SizeRoundingBehavior, Stack, Token } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as efs from 'aws-cdk-lib/aws-efs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import { ENV } from '../../contract/environment';
import { REPOSITORY_NAME_PATTERN } from '../../contract/repository';
import { acknowledge, wildcardResourceFinding } from '../private/acknowledge';
import { BoundOnce } from '../private/bound-once';
import { validationError } from '../private/errors';
import { LAMBDA_LIMITS } from '../private/lambda-limits';
import { ModelPackaging, type ModelPackagingBindOptions, type ModelPackagingConfig } from './model-packaging';
import { createModelBucket } from './s3-model-packaging';

/** Where a `ModelRepositoryPackaging` finds its models, and their budgets. */
export interface ModelRepositoryPackagingProps {
  /**
   * The bucket that holds the repository, under `prefix`: `<prefix><name>/<version>/model.onnx`
   * (and `model.ort`, the precompiled copy, when you upload one). Not with `accessPoint`.
   * @default - a new bucket: encrypted, TLS only, public access blocked, versioned, retained when
   * the stack is deleted, with server access logs (unless `accessPoint` is given)
   */
  readonly bucket?: s3.IBucket;

  /**
   * The repository's prefix in the bucket, ending in `/` (or empty: the whole bucket).
   * @default 'models/'
   */
  readonly prefix?: string;

  /**
   * Where the new bucket's server access logs go.
   * @default - a new access log bucket
   */
  readonly serverAccessLogsBucket?: s3.IBucket;

  /**
   * An EFS access point whose root holds the repository (`<name>/<version>/model.onnx`), mounted
   * at `/mnt/models` instead of a bucket. Needs `vpc`.
   * @default - the repository is in S3
   */
  readonly accessPoint?: efs.IAccessPoint;

  /**
   * The VPC of the file system of `accessPoint`: the function runs in it.
   * @default - none (needed with `accessPoint`)
   */
  readonly vpc?: ec2.IVpc;

  /**
   * The function's subnets in `vpc`.
   * @default - the VPC's private subnets
   */
  readonly vpcSubnets?: ec2.SubnetSelection;

  /**
   * The memory loaded models may take: each is charged twice its file's size (onnxruntime's copy
   * of the weights and the copy it prepacks), and the least recently used models that serve no
   * request are unloaded to make room. A model larger than this is answered 507. At least 1 MiB.
   * @default - the function's memory - 256 MiB, read by the function at start
   */
  readonly memoryBudget?: Size;

  /**
   * The /tmp space model files fetched from S3 may take (the function's ephemeral storage is sized
   * for it); the least recently used files of unloaded models are removed to make room. The loaded
   * models' files stay there, so no more models are loaded than this holds either.
   * @default Size.gibibytes(2)
   */
  readonly diskBudget?: Size;

  /**
   * Models the warmer keeps loaded (`name`, or `name:version`): each warm-up loads them, and they
   * are unloaded last.
   * @default - none
   */
  readonly warmModels?: string[];
}

/** /tmp kept free besides the disk budget: downloads in flight, the runtime's own files. */
const TMP_HEADROOM_MIB = 256;
const DEFAULT_DISK_BUDGET = Size.gibibytes(2);
const EFS_MOUNT = '/mnt/models';
const MIB = 1024 * 1024;

/** Where the repository is, once the packaging is bound. */
interface PlacedRepository {
  readonly bucket?: s3.IBucket;
  readonly prefix: string;
}

/**
 * Many models behind one function: a model repository in S3 (or on EFS) in Triton's layout, each
 * model loaded on its first request and unloaded least recently used first under a memory budget.
 * Adding a model or a version is an upload, not a deploy.
 */
export class ModelRepositoryPackaging extends ModelPackaging {
  private readonly placed = new BoundOnce<PlacedRepository>('ModelRepositoryPackaging');

  constructor(private readonly props: ModelRepositoryPackagingProps = {}) {
    super();
  }

  public bind(scope: Construct, options: ModelPackagingBindOptions): ModelPackagingConfig {
    const props = this.props;
    validate(scope, props);
    const warm: Record<string, string> = props.warmModels?.length ? { [ENV.MODEL_REPOSITORY_WARM_MODELS]: props.warmModels.join(',') } : {};
    const memory: Record<string, string> = props.memoryBudget
      ? { [ENV.MODEL_CACHE_MEMORY_MB]: String(props.memoryBudget.toMebibytes({ rounding: SizeRoundingBehavior.FLOOR })) }
      : {};
    if (props.accessPoint) {
      this.placed.bind(scope, () => ({ prefix: '' }));
      return {
        environment: { [ENV.MODEL_REPOSITORY_PATH]: EFS_MOUNT, ...memory, ...warm },
        vpc: props.vpc,
        vpcSubnets: props.vpcSubnets,
        filesystem: lambda.FileSystem.fromEfsAccessPoint(props.accessPoint, EFS_MOUNT),
      };
    }
    const prefix = props.prefix ?? 'models/';
    const placed = this.placed.bind(scope, () => ({ bucket: props.bucket ?? createModelBucket(scope, props.serverAccessLogsBucket), prefix }));
    const bucket = placed.bucket!;
    grantReadRepository(scope, options.role, bucket, prefix);
    const disk = props.diskBudget ?? DEFAULT_DISK_BUDGET;
    return {
      environment: {
        [ENV.MODEL_REPOSITORY_S3_URI]: `s3://${bucket.bucketName}/${prefix}`,
        [ENV.MODEL_CACHE_DISK_MB]: String(disk.toMebibytes({ rounding: SizeRoundingBehavior.FLOOR })),
        ...memory,
        ...warm,
      },
      tmpSize: Size.mebibytes(Math.ceil(disk.toBytes() / MIB) + TMP_HEADROOM_MIB),
    };
  }

  /** The bucket of the repository (none on EFS); once bound. */
  public get bucket(): s3.IBucket | undefined {
    return this.placed.get().bucket;
  }

  /** The repository's prefix in `bucket`; once bound. */
  public get prefix(): string {
    return this.placed.get().prefix;
  }
}

function validate(scope: Construct, props: ModelRepositoryPackagingProps): void {
  const name = 'ModelRepositoryPackaging';
  if (props.accessPoint && (props.bucket || props.prefix !== undefined || props.serverAccessLogsBucket || props.diskBudget)) {
    throw validationError(scope, `${name}: accessPoint serves the repository from EFS; bucket, prefix, serverAccessLogsBucket and diskBudget are for a repository in S3`);
  }
  if (props.accessPoint && !props.vpc) throw validationError(scope, `${name}: accessPoint needs the vpc of its file system`);
  if (!props.accessPoint && (props.vpc || props.vpcSubnets)) throw validationError(scope, `${name}: vpc and vpcSubnets are for a repository on EFS (accessPoint)`);
  if (props.bucket && props.serverAccessLogsBucket) {
    throw validationError(scope, `${name}: serverAccessLogsBucket applies to the bucket the endpoint creates; give it to your own bucket instead`);
  }
  const prefix = props.prefix;
  if (prefix !== undefined && !Token.isUnresolved(prefix) && (prefix.startsWith('/') || (prefix !== '' && !prefix.endsWith('/')))) {
    throw validationError(scope, `${name}: prefix must be empty or end in '/', and not start with '/', got: ${JSON.stringify(prefix)}`);
  }
  if (props.memoryBudget && !Token.isUnresolved(props.memoryBudget.toBytes()) && props.memoryBudget.toBytes() < 1024 * 1024) {
    throw validationError(scope, `${name}: memoryBudget must be at least 1 MiB, got: ${props.memoryBudget.toBytes()} bytes`);
  }
  if (props.diskBudget && !Token.isUnresolved(props.diskBudget.toBytes())) {
    const mib = Math.ceil(props.diskBudget.toBytes() / MIB);
    if (mib < 1 || mib + TMP_HEADROOM_MIB > LAMBDA_LIMITS.maxEphemeralMiB) {
      throw validationError(
        scope,
        `${name}: diskBudget must be between 1 MiB and ${LAMBDA_LIMITS.maxEphemeralMiB - TMP_HEADROOM_MIB} MiB (Lambda's /tmp of ${LAMBDA_LIMITS.maxEphemeralMiB} MiB, less ${TMP_HEADROOM_MIB} MiB for downloads in flight), got: ${mib} MiB`,
      );
    }
  }
  for (const spec of props.warmModels ?? []) {
    const [model, version, ...rest] = spec.split(':');
    if (Token.isUnresolved(spec) || rest.length > 0 || !REPOSITORY_NAME_PATTERN.test(model) || (version !== undefined && !REPOSITORY_NAME_PATTERN.test(version))) {
      throw validationError(
        scope,
        `${name}: warmModels are model names, each optionally with :version (letters, digits, '_', '-', '.', not starting with '.'), got: ${JSON.stringify(spec)}`,
      );
    }
  }
}

/**
 * Read access to every object under the prefix (a model or version is an upload, not a deploy),
 * and the listing of that prefix (the handler lists a model's versions, and the index lists the
 * models). The wildcard is the repository itself, acknowledged as such.
 */
function grantReadRepository(scope: Construct, role: iam.IRole, bucket: s3.IBucket, prefix: string): void {
  const objects = bucket.arnForObjects(`${prefix}*`);
  role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: [objects] }));
  role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [bucket.bucketArn], conditions: { StringLike: { 's3:prefix': `${prefix}*` } } }));
  bucket.encryptionKey?.grantDecrypt(role);
  acknowledge(
    role,
    [wildcardResourceFinding(objects, Stack.of(scope))],
    'A model repository is every object under its prefix: adding a model or a version is an upload, read without a deploy.',
  );
}
