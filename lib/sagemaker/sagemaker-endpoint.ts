import { Arn, ArnFormat, Size, Stack, Token } from 'aws-cdk-lib';
import type * as ecr from 'aws-cdk-lib/aws-ecr';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import * as sagemaker from 'aws-cdk-lib/aws-sagemaker';
import type { Construct } from 'constructs';
import { acknowledge } from '../private/acknowledge';
import { unscopedValidationError, validationError } from '../private/errors';
import { grantReadModelObject } from '../private/grants';

/** A SageMaker endpoint, resolved for a proxy. */
export interface SageMakerEndpointConfig {
  /** The endpoint's name, as `InvokeEndpoint` takes it. */
  readonly endpointName: string;
  /** `arn:...:endpoint/<name>`: the one resource `sagemaker:InvokeEndpoint` is granted on. */
  readonly endpointArn: string;
  /** The production variant the endpoint's metrics are reported by. */
  readonly variantName: string;
  /**
   * The endpoint, when the construct created it (or was given it), so the proxy waits for it.
   * @default - an endpoint that exists already
   */
  readonly cfnEndpoint?: sagemaker.CfnEndpoint;
  /**
   * Whether the endpoint is serverless, whose requests SageMaker limits to 4 MB (6 MB otherwise).
   * @default false
   */
  readonly serverless?: boolean;
}

/** Options for an existing endpoint. */
export interface ExistingEndpointOptions {
  /**
   * The production variant, for the endpoint's metrics.
   * @default 'AllTraffic'
   */
  readonly variantName?: string;

  /**
   * Whether the endpoint is serverless: SageMaker takes requests of at most 4 MB there (6 MB on
   * instances), and the proxy refuses larger ones with a 413 before calling it.
   * @default false
   */
  readonly serverless?: boolean;
}

/** A `model.tar.gz` for SageMaker: a local file uploaded as an asset, or an S3 object. */
export abstract class ModelArtifact {
  /** A local `model.tar.gz`, uploaded as an asset. */
  public static fromAsset(path: string): ModelArtifact {
    return new (class extends ModelArtifact {
      public bind(scope: Construct, role: iam.IRole): string {
        const asset = new s3assets.Asset(scope, 'ModelData', { path });
        grantReadModelObject(role, asset.bucket, asset.s3ObjectKey, undefined);
        return asset.s3ObjectUrl;
      }
    })();
  }

  /** An S3 object. */
  public static fromBucket(bucket: s3.IBucket, key: string): ModelArtifact {
    return new (class extends ModelArtifact {
      public bind(_scope: Construct, role: iam.IRole): string {
        grantReadModelObject(role, bucket, key, undefined);
        return `s3://${bucket.bucketName}/${key}`;
      }
    })();
  }

  /** Grants `role` read access and returns the artifact's `s3://` URL. */
  public abstract bind(scope: Construct, role: iam.IRole): string;
}

/** The model of an endpoint the construct creates. */
export interface SageMakerModelOptions {
  /** The serving container's image URI (an AWS Deep Learning Container, Triton, MLServer, your own). */
  readonly image: string;
  /**
   * The ECR repository of `image`, when it is yours: the endpoint's role may pull from it.
   * @default - none: an image SageMaker may pull without a grant (AWS's own containers)
   */
  readonly imageRepository?: ecr.IRepository;
  /**
   * The model artifact.
   * @default - none: the image holds the model
   */
  readonly modelData?: ModelArtifact;
  /**
   * Environment variables of the container.
   * @default - none
   */
  readonly environment?: Record<string, string>;
}

/** A serverless endpoint: billed per request, scaled to zero. */
export interface ServerlessEndpointOptions extends SageMakerModelOptions {
  /**
   * Memory of each instance: 1, 2, 3, 4, 5 or 6 GiB.
   * @default Size.gibibytes(2)
   */
  readonly memorySize?: Size;
  /**
   * Concurrent invocations, 1 to 200.
   * @default 5
   */
  readonly maxConcurrency?: number;
}

/** A provisioned endpoint: instances billed while they run (GPUs among them). */
export interface ProvisionedEndpointOptions extends SageMakerModelOptions {
  /** The instance type, e.g. `ml.g5.xlarge`. */
  readonly instanceType: string;
  /**
   * Instances.
   * @default 1
   */
  readonly initialInstanceCount?: number;
}

const VARIANT = 'AllTraffic';

/**
 * The SageMaker endpoint a `SageMakerProxyEndpoint` fronts: one that exists (`fromEndpointName`,
 * `fromCfnEndpoint`) or one the construct creates from an image and a model artifact
 * (`serverless`, the default choice, or `provisioned`).
 */
export abstract class SageMakerEndpoint {
  /** An existing endpoint, by name. */
  public static fromEndpointName(endpointName: string, options: ExistingEndpointOptions = {}): SageMakerEndpoint {
    return new (class extends SageMakerEndpoint {
      public bind(scope: Construct): SageMakerEndpointConfig {
        return { endpointName, endpointArn: endpointArnOf(scope, endpointName), variantName: options.variantName ?? VARIANT, serverless: options.serverless ?? false };
      }
    })();
  }

  /** An endpoint defined in your app with the L1 `CfnEndpoint`. */
  public static fromCfnEndpoint(endpoint: sagemaker.CfnEndpoint, options: ExistingEndpointOptions = {}): SageMakerEndpoint {
    return new (class extends SageMakerEndpoint {
      public bind(): SageMakerEndpointConfig {
        // The Ref of AWS::SageMaker::Endpoint is its ARN (with the name lower-cased, as IAM sees it).
        return {
          endpointName: endpoint.attrEndpointName,
          endpointArn: endpoint.ref,
          variantName: options.variantName ?? VARIANT,
          cfnEndpoint: endpoint,
          serverless: options.serverless ?? false,
        };
      }
    })();
  }

  /** A new serverless endpoint: no instances to pay for while idle; cold starts of its own. */
  public static serverless(options: ServerlessEndpointOptions): SageMakerEndpoint {
    const memory = options.memorySize ?? Size.gibibytes(2);
    const memoryMiB = memory.toMebibytes();
    if (!Token.isUnresolved(memoryMiB) && ![1024, 2048, 3072, 4096, 5120, 6144].includes(memoryMiB)) {
      throw unscopedValidationError(`SageMakerEndpoint.serverless: memorySize must be 1, 2, 3, 4, 5 or 6 GiB (SageMaker's serverless sizes), got: ${memoryMiB} MiB`);
    }
    const concurrency = options.maxConcurrency ?? 5;
    if (!Token.isUnresolved(concurrency) && (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 200)) {
      throw unscopedValidationError(`SageMakerEndpoint.serverless: maxConcurrency must be a whole number from 1 to 200, got: ${concurrency}`);
    }
    return new CreatedEndpoint(options, { variantName: VARIANT, serverlessConfig: { memorySizeInMb: memoryMiB, maxConcurrency: concurrency } });
  }

  /** A new endpoint on provisioned instances, for GPUs or steady traffic. */
  public static provisioned(options: ProvisionedEndpointOptions): SageMakerEndpoint {
    const count = options.initialInstanceCount ?? 1;
    if (!Token.isUnresolved(count) && (!Number.isInteger(count) || count < 1)) {
      throw unscopedValidationError(`SageMakerEndpoint.provisioned: initialInstanceCount must be a whole number of at least 1, got: ${count}`);
    }
    if (!Token.isUnresolved(options.instanceType) && !/^ml\.[a-z0-9]+\.[a-z0-9]+$/.test(options.instanceType)) {
      throw unscopedValidationError(`SageMakerEndpoint.provisioned: instanceType must be a SageMaker instance type such as ml.g5.xlarge, got: ${options.instanceType}`);
    }
    return new CreatedEndpoint(options, { variantName: VARIANT, instanceType: options.instanceType, initialInstanceCount: count, initialVariantWeight: 1 });
  }

  /** Resolves (or creates) the endpoint. */
  public abstract bind(scope: Construct): SageMakerEndpointConfig;
}

class CreatedEndpoint extends SageMakerEndpoint {
  constructor(
    private readonly options: SageMakerModelOptions,
    private readonly variant: Omit<sagemaker.CfnEndpointConfig.ProductionVariantProperty, 'modelName'>,
  ) {
    super();
    if (!Token.isUnresolved(options.image) && options.image.trim() === '') {
      throw unscopedValidationError('SageMakerEndpoint: image must be a container image URI');
    }
  }

  public bind(scope: Construct): SageMakerEndpointConfig {
    const role = new iam.Role(scope, 'SageMakerRole', {
      assumedBy: new iam.ServicePrincipal('sagemaker.amazonaws.com'),
      description: 'Runs the SageMaker model: reads its artifact and image, writes its logs and metrics',
    });
    const stack = Stack.of(scope);
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['logs:CreateLogGroup', 'logs:CreateLogStream', 'logs:PutLogEvents', 'logs:DescribeLogStreams'],
        resources: [stack.formatArn({ service: 'logs', resource: 'log-group', resourceName: '/aws/sagemaker/Endpoints/*', arnFormat: ArnFormat.COLON_RESOURCE_NAME })],
      }),
    );
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['cloudwatch:PutMetricData'],
        resources: ['*'],
        conditions: { StringLike: { 'cloudwatch:namespace': '/aws/sagemaker/*' } },
      }),
    );
    if (this.options.imageRepository) {
      this.options.imageRepository.grantPull(role);
    }
    // cdk-nag names the finding by the ARN as synthesized: literal region and account where known.
    const region = Token.isUnresolved(stack.region) ? '<AWS::Region>' : stack.region;
    const account = Token.isUnresolved(stack.account) ? '<AWS::AccountId>' : stack.account;
    acknowledge(
      role,
      ['AwsSolutions-IAM5[Resource::*]', `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:${region}:${account}:log-group:/aws/sagemaker/Endpoints/*]`],
      "CloudWatch accepts metric data only on Resource '*' (limited here to SageMaker's namespaces), and SageMaker names its endpoints' log groups itself under /aws/sagemaker/Endpoints/.",
    );
    const modelDataUrl = this.options.modelData?.bind(scope, role);
    const model = new sagemaker.CfnModel(scope, 'Model', {
      executionRoleArn: role.roleArn,
      primaryContainer: { image: this.options.image, modelDataUrl, environment: this.options.environment },
    });
    model.node.addDependency(role);
    const config = new sagemaker.CfnEndpointConfig(scope, 'EndpointConfig', {
      productionVariants: [{ ...this.variant, modelName: model.attrModelName }],
    });
    const endpoint = new sagemaker.CfnEndpoint(scope, 'Endpoint', { endpointConfigName: config.attrEndpointConfigName });
    return {
      endpointName: endpoint.attrEndpointName,
      endpointArn: endpoint.ref,
      variantName: VARIANT,
      cfnEndpoint: endpoint,
      serverless: this.variant.serverlessConfig !== undefined,
    };
  }
}

/**
 * IAM sees SageMaker endpoint ARNs with the name in lower case. A name that is a token cannot be
 * lower-cased at synth: give such endpoints with `fromCfnEndpoint`, whose ARN CloudFormation knows.
 */
function endpointArnOf(scope: Construct, endpointName: string): string {
  if (Token.isUnresolved(endpointName)) {
    throw validationError(scope, 'SageMakerEndpoint.fromEndpointName: the name must be a literal (IAM needs it lower-cased); for an endpoint of this app, use fromCfnEndpoint');
  }
  if (!/^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/.test(endpointName)) {
    throw validationError(scope, `SageMakerEndpoint.fromEndpointName: not a SageMaker endpoint name (letters, digits and '-', at most 63), got: ${endpointName}`);
  }
  return Arn.format({ service: 'sagemaker', resource: 'endpoint', resourceName: endpointName.toLowerCase() }, Stack.of(scope));
}
