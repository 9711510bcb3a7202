import type { Construct } from 'constructs';
import { ModelEndpoint, type ModelEndpointOptions } from './model-endpoint';
import { ContainerModelPackaging, type ContainerModelPackagingProps } from './packaging/container-model-packaging';

/** Props of a `ContainerModelEndpoint`: every endpoint's options and the image. */
export interface ContainerModelEndpointProps extends ModelEndpointOptions, ContainerModelPackagingProps {}

/**
 * An ONNX model baked into a Lambda container image (up to 10 GB): for big models and heavy
 * dependencies, with no download at cold start. The build context is generated at synth (no Docker
 * needed then); `cdk deploy` builds and pushes the image.
 */
export class ContainerModelEndpoint extends ModelEndpoint {
  /** The Docker build context the image is built from. */
  public readonly imageDirectory: string;
  /** Where the model is in the image. */
  public readonly modelPath: string;

  constructor(scope: Construct, id: string, props: ContainerModelEndpointProps) {
    const packaging = new ContainerModelPackaging(props);
    super(scope, id, { ...props, packaging });
    const image = packaging._image();
    this.imageDirectory = image.directory;
    this.modelPath = image.modelPath;
  }
}
