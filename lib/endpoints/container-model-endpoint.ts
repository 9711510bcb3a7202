import * as lambda from 'aws-cdk-lib/aws-lambda';
import type { Construct } from 'constructs';
import { ModelEndpoint, type ModelEndpointOptions } from './model-endpoint';
import { ContainerModelPackaging, type ContainerModelPackagingProps } from '../packaging/container-model-packaging';

/** Props of a `ContainerModelEndpoint`: every endpoint's options and the image. */
export interface ContainerModelEndpointProps extends ModelEndpointOptions, ContainerModelPackagingProps {}

/**
 * An ONNX model baked into a Lambda container image (up to 10 GB): for big models and heavy
 * dependencies, with no download at cold start. The build context is generated at synth (no Docker
 * needed then); `cdk deploy` builds and pushes the image. Unlike the other endpoints it defaults to
 * x86_64: building an arm64 image on an x86_64 machine needs Docker's emulation set up there.
 */
export class ContainerModelEndpoint extends ModelEndpoint {
  /** The Docker build context the image is built from. */
  public readonly imageDirectory: string;
  /** Where the model is in the image. */
  public readonly modelPath: string;

  constructor(scope: Construct, id: string, props: ContainerModelEndpointProps) {
    const packaging = new ContainerModelPackaging(props);
    // An arm64 image needs an arm64 build (or emulation) on the machine that runs `cdk deploy`,
    // which most x86_64 machines lack: images stay x86_64 unless asked.
    super(scope, id, { ...props, architecture: props.architecture ?? lambda.Architecture.X86_64, packaging });
    const image = packaging._image();
    this.imageDirectory = image.directory;
    this.modelPath = image.modelPath;
  }
}
