import type { Construct } from 'constructs';
import { ModelEndpoint, type ModelEndpointOptions } from './model-endpoint';
import { BundledModelPackaging, type BundledModelPackagingProps } from '../packaging/bundled-model-packaging';

/** Props of a `BundledModelEndpoint`: every endpoint's options and the model. */
export interface BundledModelEndpointProps extends ModelEndpointOptions, BundledModelPackagingProps {}

/**
 * The simplest packaging: the model ships inside the function's own code, at
 * `/var/task/model/<file>`. For tiny models; the code plus the ONNX Runtime layer must fit in
 * Lambda's 250 MB unzipped. No download at cold start; a new model is a deploy.
 */
export class BundledModelEndpoint extends ModelEndpoint {
  /** Where the model is in the function. */
  public readonly modelPath: string;

  constructor(scope: Construct, id: string, props: BundledModelEndpointProps) {
    const packaging = new BundledModelPackaging(props);
    super(scope, id, { ...props, packaging });
    this.modelPath = packaging._modelPath();
  }
}
