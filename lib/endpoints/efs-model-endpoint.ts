import type { CustomResource } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as efs from 'aws-cdk-lib/aws-efs';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type { Construct } from 'constructs';
import { EFS_MOUNT_PATH } from '../../contract/model-copy';
import { ModelEndpoint, type ModelEndpointOptions } from './model-endpoint';
import { EfsModelPackaging, type EfsModelPackagingProps } from '../packaging/efs-model-packaging';

/** Props of an `EfsModelEndpoint`: every endpoint's options, the model and its file system. */
export interface EfsModelEndpointProps extends ModelEndpointOptions, EfsModelPackagingProps {}

/**
 * An ONNX model on an EFS file system that the function mounts at `/mnt/models`: for big models
 * (up to the function's memory), with no download at cold start. A loader copies the model from S3
 * onto the file system at deploy, under a new name for each model, renamed only when complete, so a
 * running function never reads a half-written file and older function versions keep theirs.
 */
export class EfsModelEndpoint extends ModelEndpoint {
  /** Where the function (and the model loader) mount the file system. */
  public static readonly MOUNT_PATH = EFS_MOUNT_PATH;

  /** The VPC. */
  public readonly vpc: ec2.IVpc;
  /** The file system that holds the model. */
  public readonly fileSystem: efs.FileSystem;
  /** The access point the function and the loader use (its root is the file system's `/models`). */
  public readonly accessPoint: efs.AccessPoint;
  /** The deploy-time copy of the model onto the file system. */
  public readonly modelCopy: CustomResource;
  /** The function that copies the model. */
  public readonly modelLoader: lambda.Function;
  /** Where the model is in the function. */
  public readonly modelPath: string;

  constructor(scope: Construct, id: string, props: EfsModelEndpointProps) {
    const packaging = new EfsModelPackaging(props);
    super(scope, id, { ...props, packaging });
    const storage = packaging._storage();
    this.vpc = storage.vpc;
    this.fileSystem = storage.fileSystem;
    this.accessPoint = storage.accessPoint;
    this.modelCopy = storage.copy;
    this.modelLoader = storage.loader;
    this.modelPath = storage.modelPath;
  }
}
