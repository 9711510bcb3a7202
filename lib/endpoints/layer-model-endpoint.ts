import type { Construct } from 'constructs';
import type { ModelLayer } from '../packaging/model-layer';
import { ModelEndpoint, type ModelEndpointOptions } from './model-endpoint';
import { LayerModelPackaging, type LayerModelPackagingProps } from '../packaging/layer-model-packaging';

/** Props of a `LayerModelEndpoint`: every endpoint's options and the model's layer. */
export interface LayerModelEndpointProps extends ModelEndpointOptions, LayerModelPackagingProps {}

/**
 * An ONNX model in a Lambda layer at `/opt/models/<file>`, for small models (the function's code
 * and layers must fit in 250 MB unzipped, with the ONNX Runtime layer's ~46 MB) that several
 * functions share. No download at cold start; a new model is a new layer version and a deploy.
 */
export class LayerModelEndpoint extends ModelEndpoint {
  /** The layer that holds the model. */
  public readonly modelLayer: ModelLayer;

  constructor(scope: Construct, id: string, props: LayerModelEndpointProps) {
    const packaging = new LayerModelPackaging(props);
    super(scope, id, { ...props, packaging });
    this.modelLayer = packaging._modelLayer();
  }
}
