import { Annotations } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { ENV } from '../contract/environment';
import { ModelEndpointBase, ModelEndpointProps } from './model-endpoint-base';
import { ModelLayer } from './model-layer';
import { ModelSource } from './model/model-source';
import { OnnxRuntimeLayer } from './onnxruntime-layer';
import { CodePart } from './private/lambda-limits';

export interface LayerModelEndpointProps extends ModelEndpointProps {
  /**
   * The model file, packaged into a new `ModelLayer`. Give either this or `modelLayer`.
   * @default - none: `modelLayer` is used
   */
  readonly model?: ModelSource;

  /**
   * A model layer to use, shared with other functions. Give either this or `model`.
   * @default - a new layer from `model`
   */
  readonly modelLayer?: ModelLayer;

  /**
   * More layers for the function (your own code or data). They count towards Lambda's limits of
   * 5 layers and 250 MB unzipped; the sizes of layers other than `ModelLayer` and
   * `OnnxRuntimeLayer` are not known at synth and are not checked (a warning says so).
   * @default - none
   */
  readonly layers?: lambda.ILayerVersion[];
}

/**
 * An ONNX model in a Lambda layer at `/opt/models/<file>`, for small models (the function's code
 * and layers must fit in 250 MB unzipped, with the ONNX Runtime layer's ~46 MB) that several
 * functions share. No download at cold start; a new model is a new layer version and a deploy.
 */
export class LayerModelEndpoint extends ModelEndpointBase {
  /** The layer that holds the model. */
  public readonly modelLayer: ModelLayer;

  constructor(scope: Construct, id: string, props: LayerModelEndpointProps) {
    let modelLayer!: ModelLayer;
    super(scope, id, props, (self) => {
      if ((props.model === undefined) === (props.modelLayer === undefined)) {
        throw new Error('LayerModelEndpoint: give exactly one of model (a model file) and modelLayer (a ModelLayer)');
      }
      modelLayer = props.modelLayer ?? new ModelLayer(self, 'ModelLayer', { model: props.model! });
      const extra = props.layers ?? [];
      const unknown = extra.filter((l) => !(l instanceof ModelLayer) && !(l instanceof OnnxRuntimeLayer));
      if (unknown.length > 0) {
        Annotations.of(self).addWarningV2(
          'cdk-serverless-inference:layer-size-unknown',
          `the unzipped size of ${unknown.length} layer(s) in 'layers' is not known at synth: Lambda's 250 MB limit of code plus layers is checked at deploy only`,
        );
      }
      const parts: CodePart[] = [
        { name: 'model layer', bytes: modelLayer.unzippedSizeBytes },
        ...extra.flatMap((l) => (l instanceof ModelLayer || l instanceof OnnxRuntimeLayer ? [{ name: l.node.path, bytes: l.unzippedSizeBytes }] : [])),
      ];
      return {
        environment: { [ENV.MODEL_PATH]: modelLayer.modelPath },
        layers: [modelLayer, ...extra],
        codeParts: parts,
        info: modelLayer.modelInfo,
        identity: modelLayer.modelFingerprint,
      };
    });
    this.modelLayer = modelLayer;
  }
}
