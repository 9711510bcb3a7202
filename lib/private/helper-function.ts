import type { Duration } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { acknowledge } from './acknowledge';
import { defaultNodeRuntime } from './node-runtime';

/** The construct ids of a helper function's parts: part of the stack's logical ids, so given, not derived. */
export interface HelperFunctionIds {
  readonly function: string;
  readonly role: string;
  readonly logGroup: string;
}

/** One of the library's own small functions (the warmer, the pre-traffic check, the EFS copy's parts). */
export interface HelperFunctionProps {
  readonly ids: HelperFunctionIds;
  readonly description: string;
  readonly roleDescription: string;
  readonly code: lambda.Code;
  /** @default 'index.handler' */
  readonly handler?: string;
  readonly memorySize: number;
  readonly timeout: Duration;
  /** The log group's retention and removal policy. */
  readonly logGroup: Pick<logs.LogGroupProps, 'retention' | 'removalPolicy'>;
  readonly environment?: Record<string, string>;
  readonly retryAttempts?: number;
  readonly vpc?: ec2.IVpc;
  readonly vpcSubnets?: ec2.SubnetSelection;
  readonly securityGroups?: ec2.ISecurityGroup[];
  readonly filesystem?: lambda.FileSystem;
  /** Grants the role what the function needs, before the function adds its own (VPC, file system). */
  readonly grant?: (role: iam.Role) => void;
  /** Why the Serverless pack's dead-letter queue and async failure destination rules do not apply. */
  readonly whyNoFailureCapture: string;
  /** Why its tracing rule does not apply. @default whyNoFailureCapture */
  readonly whyNoTracing?: string;
}

export interface HelperFunction {
  readonly function: lambda.Function;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;
}

/**
 * A helper function with a log group and a role of its own: the default role would attach
 * AWSLambdaBasicExecutionRole, which may write to every log group in the account. Runs on arm64 and
 * the newest Node.js runtime the app's aws-cdk-lib knows, and acknowledges the Serverless pack's
 * failure-capture and tracing rules with the caller's reasons.
 */
export function createHelperFunction(scope: Construct, props: HelperFunctionProps): HelperFunction {
  const logGroup = new logs.LogGroup(scope, props.ids.logGroup, props.logGroup);
  const role = new iam.Role(scope, props.ids.role, {
    assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
    description: props.roleDescription,
  });
  logGroup.grantWrite(role);
  props.grant?.(role);
  const fn = new lambda.Function(scope, props.ids.function, {
    runtime: defaultNodeRuntime(),
    architecture: lambda.Architecture.ARM_64,
    handler: props.handler ?? 'index.handler',
    code: props.code,
    memorySize: props.memorySize,
    timeout: props.timeout,
    role,
    logGroup,
    retryAttempts: props.retryAttempts,
    description: props.description,
    environment: props.environment,
    vpc: props.vpc,
    vpcSubnets: props.vpcSubnets,
    securityGroups: props.securityGroups,
    filesystem: props.filesystem,
  });
  if (props.whyNoTracing === undefined) {
    acknowledge(fn, ['Serverless-LambdaDLQ', 'Serverless-LambdaAsyncFailureDestination', 'Serverless-LambdaTracing'], props.whyNoFailureCapture);
  } else {
    acknowledge(fn, ['Serverless-LambdaDLQ', 'Serverless-LambdaAsyncFailureDestination'], props.whyNoFailureCapture);
    acknowledge(fn, ['Serverless-LambdaTracing'], props.whyNoTracing);
  }
  return { function: fn, role, logGroup };
}
