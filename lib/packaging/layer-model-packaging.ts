import { Annotations } from 'aws-cdk-lib';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type { Construct } from 'constructs';
import { ENV } from '../../contract/environment';
import { ModelLayer } from './model-layer';
import type { ModelSource } from '../model/model-source';
import { OnnxRuntimeLayer } from '../runtime/onnxruntime-layer';
import { BoundOnce } from '../private/bound-once';
import { validationError } from '../private/errors';
import { wantsPrecompiled } from './precompiled-model';
import { type CodePart, ModelPackaging, type ModelPackagingBindOptions, type ModelPackagingConfig } from './model-packaging';

/** The model layer of a `LayerModelPackaging`: a model file, or a `ModelLayer` to share. */
export interface LayerModelPackagingProps {
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
 * The model in a Lambda layer at `/opt/models/<file>`: no download at cold start, one copy shared by
 * several functions; the function's code and layers must fit in 250 MB unzipped.
 */
export class LayerModelPackaging extends ModelPackaging {
  private readonly layer = new BoundOnce<ModelLayer>('LayerModelPackaging');

  constructor(private readonly props: LayerModelPackagingProps) {
    super();
  }

  public bind(scope: Construct, options: ModelPackagingBindOptions): ModelPackagingConfig {
    const props = this.props;
    const modelLayer = this.layer.bind(scope, () => {
      if ((props.model === undefined) === (props.modelLayer === undefined)) {
        throw validationError(scope, 'LayerModelPackaging: give exactly one of model (a model file) and modelLayer (a ModelLayer)');
      }
      return props.modelLayer ?? new ModelLayer(scope, 'ModelLayer', { model: props.model!, precompileModel: wantsPrecompiled(options) });
    });
    const extra = props.layers ?? [];
    const known = (l: lambda.ILayerVersion): l is ModelLayer | OnnxRuntimeLayer => l instanceof ModelLayer || l instanceof OnnxRuntimeLayer;
    const unknown = extra.filter((l) => !known(l));
    if (unknown.length > 0) {
      Annotations.of(scope).addWarningV2(
        'cdk-serverless-inference:layer-size-unknown',
        `the unzipped size of ${unknown.length} layer(s) in 'layers' is not known at synth: Lambda's 250 MB limit of code plus layers is checked at deploy only`,
      );
    }
    const codeParts: CodePart[] = [
      { name: 'model layer', sizeBytes: modelLayer.unzippedSizeBytes },
      ...extra.filter(known).map((l) => ({ name: l.node.path, sizeBytes: l.unzippedSizeBytes })),
    ];
    return {
      environment: {
        [ENV.MODEL_PATH]: modelLayer.modelPath,
        // A shared layer may hold a copy that this function was told not to use.
        ...(modelLayer.precompiledModelPath && wantsPrecompiled(options) ? { [ENV.MODEL_PRECOMPILED_PATH]: modelLayer.precompiledModelPath } : {}),
      },
      layers: [modelLayer, ...extra],
      codeParts,
      modelInfo: modelLayer.modelInfo,
      modelIdentity: modelLayer.modelFingerprint,
    };
  }

  /** @internal */
  public _modelLayer(): ModelLayer {
    return this.layer.get();
  }
}
