import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as lambda from 'aws-cdk-lib/aws-lambda';

/** Lambda Managed Instances: the capacity the function runs on, and how each environment is used. */
export interface ManagedInstancesOptions {
  /**
   * A capacity provider to run on, shared with other functions (they must trust each other: a
   * capacity provider is a security boundary). Give either this or `vpc`.
   * @default - a new capacity provider in `vpc`
   */
  readonly capacityProvider?: lambda.ICapacityProvider;

  /**
   * The VPC of a new capacity provider's instances. The instances send the function's logs (with
   * the handler's metrics, which are log lines) and traces through its subnets, not through
   * Lambda's network: the chosen subnets need a route to CloudWatch Logs (a NAT gateway, or an
   * interface endpoint `InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS`; X-Ray's too with
   * tracing), to S3 for a model in S3 (a gateway endpoint or a NAT gateway), and to whatever your
   * hooks call. The synth warns about isolated subnets without the endpoints. Give either this or
   * `capacityProvider`.
   * @default - none: `capacityProvider` is used
   */
  readonly vpc?: ec2.IVpc;

  /**
   * Subnets of the new capacity provider's instances; spread them over several Availability Zones.
   * @default - the VPC's private subnets (isolated ones if it has no private ones)
   */
  readonly vpcSubnets?: ec2.SubnetSelection;

  /**
   * Security groups of the new capacity provider's instances.
   * @default - a new security group with no inbound rule, and outbound HTTPS only
   */
  readonly securityGroups?: ec2.ISecurityGroup[];

  /**
   * Instance types a new capacity provider may launch (C, M and R families, of the function's
   * architecture).
   * @default - any instance type of the function's architecture that Lambda picks
   */
  readonly instanceTypes?: ec2.InstanceType[];

  /**
   * The most vCPUs a new capacity provider may scale to, a ceiling on its cost.
   * @default - Lambda's default (400)
   */
  readonly maxVCpuCount?: number;

  /**
   * Memory of an execution environment per vCPU, in GiB: 2, 4 or 8. The function's `memorySize`
   * divided by it is the environment's vCPUs.
   * @default 2
   */
  readonly memoryGiBPerVCpu?: number;

  /**
   * Worker threads per execution environment (`AWS_LAMBDA_NODEJS_WORKER_COUNT`). Each worker runs
   * the handler's init, so each loads the model: memory grows with workers times the model.
   * @default - one per vCPU
   */
  readonly workers?: number;

  /**
   * Concurrent requests Lambda sends to one execution environment. A model's `session.run` keeps a
   * worker busy, so requests beyond the workers wait in the environment rather than in Lambda.
   * @default - 4 per worker
   */
  readonly maxConcurrencyPerEnvironment?: number;

  /**
   * Fewest execution environments of each published version.
   * @default - Lambda's default (3, one per Availability Zone)
   */
  readonly minEnvironments?: number;

  /**
   * Most execution environments of each published version.
   * @default - no limit but the capacity provider's vCPUs
   */
  readonly maxEnvironments?: number;
}

/**
 * Where an inference function runs: on-demand Lambda (one request per execution environment at a
 * time) or Lambda Managed Instances (EC2 capacity in your VPC, many requests per environment, no
 * per-request cold starts).
 */
export class InferenceCompute {
  /** On-demand Lambda: scales to zero, one request per execution environment at a time. */
  public static onDemand(): InferenceCompute {
    return new InferenceCompute(undefined);
  }

  /**
   * Lambda Managed Instances: the function runs on EC2 capacity of a capacity provider, with
   * several worker threads per execution environment, each with its own copy of the model, and
   * several requests at a time. No warmer or provisioned concurrency: environments stay up.
   */
  public static managedInstances(options: ManagedInstancesOptions): InferenceCompute {
    return new InferenceCompute(options);
  }

  /**
   * The Managed Instances options.
   * @default - none: on-demand Lambda
   */
  public readonly managedInstancesOptions?: ManagedInstancesOptions;

  private constructor(managedInstancesOptions: ManagedInstancesOptions | undefined) {
    this.managedInstancesOptions = managedInstancesOptions;
  }
}
