import type { Size } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type { Construct, IDependable } from 'constructs';
import type { GraphOptimizationLevel } from '../../contract/defaults';
import type { HandlerHooksConfig } from '../hooks/handler-hooks';
import type { OnnxModelInfo } from '../model/onnx-model-info';

/** One part of a function's unzipped code or layers, for Lambda's 250 MB check at synth. */
export interface CodePart {
  /** What the part is, as the error names it (`model layer`, `inference handler`). */
  readonly name: string;
  /** Its size, unzipped, in bytes. */
  readonly sizeBytes: number;
}

/** What an inference function tells its packaging when it binds it. */
export interface ModelPackagingBindOptions {
  /** The function's role: grant it what it needs to read the model. */
  readonly role: iam.IRole;
  /** The model's name in the routes. */
  readonly modelName: string;
  /** The function's architecture (an image or onnxruntime build must match it). */
  readonly architecture: lambda.Architecture;
  /**
   * The function's Node.js runtime.
   * @default - the newest `lambda.Runtime.NODEJS_<N>_X` the installed aws-cdk-lib defines (nodejs24.x with aws-cdk-lib 2.257)
   */
  readonly runtime?: lambda.Runtime;
  /**
   * The users' hooks, bundled: a packaging that brings its own code (the handler with the model, an
   * image) puts `hooks.mjs` beside the handler's entry.
   * @default - no hooks
   */
  readonly hooks?: HandlerHooksConfig;
  /**
   * Whether to ship, beside a local model, its copy precompiled at synth in ORT format (see
   * `InferenceFunctionOptions.precompileModel`).
   * @default true
   */
  readonly precompileModel?: boolean;
  /**
   * The function's graph optimisation level: `DISABLED` ships no precompiled copy, whose graph
   * holds the basic optimisations.
   * @default GraphOptimizationLevel.ALL
   */
  readonly graphOptimizationLevel?: GraphOptimizationLevel;
}

/**
 * How a model reaches the inference function, as its packaging decides it: the environment that
 * tells the handler where the model is, and everything the function needs around it.
 */
export interface ModelPackagingConfig {
  /** Environment variables that tell the handler where the model is (`MODEL_PATH` or `MODEL_S3_URI`...). */
  readonly environment: { [name: string]: string };
  /**
   * The function's code instead of the library's prebuilt inference handler: a zip holding the
   * handler and the model, or a container image (with `image: true`).
   * @default - the prebuilt inference handler
   */
  readonly code?: lambda.Code;
  /**
   * Whether `code` is a container image: it brings its runtime, handler and onnxruntime itself and
   * takes no layers.
   * @default false
   */
  readonly image?: boolean;
  /**
   * Whether the function runs models with onnxruntime; zip code then gets the stack's ONNX Runtime
   * layer and the onnxruntime settings.
   * @default true
   */
  readonly onnxRuntime?: boolean;
  /**
   * Unzipped sizes of `code` (when it replaces the prebuilt handler) and of `layers`, for the
   * 250 MB check.
   * @default - the prebuilt handler's size
   */
  readonly codeParts?: CodePart[];
  /**
   * Layers besides the ONNX Runtime layer (a model layer, your own).
   * @default - none
   */
  readonly layers?: lambda.ILayerVersion[];
  /**
   * What the function fetches into /tmp at cold start; sizes its ephemeral storage.
   * @default - nothing: the function gets Lambda's default /tmp
   */
  readonly tmpSize?: Size;
  /**
   * The model's size when it is known at synth but its signature is not (an S3 object given with
   * its size): the memory check uses it.
   * @default - the size in `modelInfo`, if any
   */
  readonly modelSize?: Size;
  /**
   * The model's size and signature, when they are known at synth: they size the function and
   * validate requests at the API.
   * @default - unknown: generic request validation
   */
  readonly modelInfo?: OnnxModelInfo;
  /**
   * What identifies the model's content (a content hash, a pinned S3 version): the default model
   * version of the API, and part of each function version's description.
   * @default - none: the model version is '1' unless given
   */
  readonly modelIdentity?: string;
  /**
   * The function's VPC, for a model on a file system.
   * @default - not in a VPC
   */
  readonly vpc?: ec2.IVpc;
  /**
   * The function's subnets in `vpc`.
   * @default - the VPC's default selection
   */
  readonly vpcSubnets?: ec2.SubnetSelection;
  /**
   * The function's security groups in `vpc`.
   * @default - none
   */
  readonly securityGroups?: ec2.ISecurityGroup[];
  /**
   * A file system the function mounts.
   * @default - none
   */
  readonly filesystem?: lambda.FileSystem;
  /**
   * What must exist before the function runs: the model object, the model's copy on a file system.
   * @default - none
   */
  readonly dependencies?: IDependable[];
}

/**
 * How an inference function gets its model, as a strategy the function binds (the way a
 * `lambda.Function` binds its `lambda.Code`): `S3ModelPackaging`, `LayerModelPackaging`,
 * `BundledModelPackaging`, `ContainerModelPackaging`, `EfsModelPackaging`, or your own subclass.
 *
 * A packaging creates what holds the model (a bucket, a layer, a file system) in the scope it is
 * bound to, once: give each endpoint its own.
 */
export abstract class ModelPackaging {
  /**
   * Creates what holds the model in `scope`, grants `options.role` read access to it, and returns
   * how the function reaches it.
   */
  public abstract bind(scope: Construct, options: ModelPackagingBindOptions): ModelPackagingConfig;
}
