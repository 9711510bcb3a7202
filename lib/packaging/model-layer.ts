import * as path from 'node:path';
import { RemovalPolicy } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type { Construct } from 'constructs';
import type { ModelSource } from '../model/model-source';
import { modelFingerprint, requireLocalModel } from '../model/local-model';
import type { OnnxModelInfo } from '../model/onnx-model-info';
import { formatBytes, LAMBDA_LIMITS } from '../private/lambda-limits';
import { STAGING_EXCLUDE, stageFiles, treeSize } from '../private/staging';
import { validationError } from '../private/errors';
import { inferenceHandlerDir } from '../private/package-paths';
import { ifItFits, largestOnnxRuntimeLayerBytes, precompiledAssetHash, precompileModel } from './precompiled-model';

/** Where model layers put their files: `/opt/models/<file name>` in the function. */
const MODEL_LAYER_DIR = '/opt/models';

/** Props of a `ModelLayer`. */
export interface ModelLayerProps {
  /** The model: a local file (`ModelSource.fromAsset`). A layer is built from local files. */
  readonly model: ModelSource;

  /**
   * The layer's description.
   * @default - names the model file
   */
  readonly description?: string;

  /**
   * What happens to the layer version when it is replaced or the stack is deleted. Functions that
   * use a deleted version keep working; new functions cannot use it.
   * @default RemovalPolicy.DESTROY
   */
  readonly removalPolicy?: RemovalPolicy;

  /**
   * Whether the layer also holds the model precompiled at synth in ORT format
   * (`/opt/models/<stem>.ort`), which functions create their session from; see
   * `InferenceFunctionOptions.precompileModel`. Left out, with an info annotation, where
   * onnxruntime-node is not installed at synth or where the copy would not fit in Lambda's 250 MB
   * beside the model, the handler and the larger ONNX Runtime layer.
   * @default true
   */
  readonly precompileModel?: boolean;
}

/**
 * An ONNX model packaged as a Lambda layer, at `/opt/models/<file name>` in the functions that use
 * it, so several functions can share one copy. A changed model file is a new layer version; the
 * functions that use it get a new version too (see docs/endpoints.md).
 *
 * Synth stages the layer's folder (the model, hard-linked where the file system allows) in
 * `cdk.out/.cache/cdk-serverless-inference` (the OS temp folder for an App with no outdir of its
 * own), or where the `cdk-serverless-inference:stagingDirectory` context key says; see docs/endpoints.md.
 */
export class ModelLayer extends lambda.LayerVersion {
  /** Where model layers put their files in a function: `/opt/models/<file name>`. */
  public static readonly DIRECTORY = MODEL_LAYER_DIR;

  /** Where the model is in a function that uses this layer. */
  public readonly modelPath: string;
  /** The model's size and signature, read at synth. */
  public readonly modelInfo: OnnxModelInfo;
  /** The layer's size unzipped (the model), for Lambda's 250 MB limit. */
  public readonly unzippedSizeBytes: number;
  /** The model's content hash. */
  public readonly modelFingerprint: string;
  /**
   * Where the model precompiled in ORT format is in a function that uses this layer.
   * @default - none: the layer holds the .onnx alone
   */
  public readonly precompiledModelPath?: string;

  constructor(scope: Construct, id: string, props: ModelLayerProps) {
    const source = requireLocalModel(scope, props.model, 'ModelLayer');
    const fileName = path.basename(source.localPath);
    if (source.info.sizeBytes > LAMBDA_LIMITS.maxUnzippedCodeBytes) {
      throw validationError(
        scope,
        `ModelLayer: model ${source.localPath} is ${formatBytes(source.info.sizeBytes)}, over Lambda's limit of 250 MiB for a function's code and layers, unzipped: ` +
          'serve it from S3 (S3ModelEndpoint), EFS (EfsModelEndpoint) or a container image (ContainerModelEndpoint)',
      );
    }
    const precompiled =
      props.precompileModel === false
        ? undefined
        : ifItFits(scope, precompileModel(scope, source.localPath), source.info.sizeBytes + treeSize(inferenceHandlerDir()) + largestOnnxRuntimeLayerBytes());
    const entries = [
      { source: source.localPath, destination: path.posix.join('models', fileName) },
      ...(precompiled ? [{ source: precompiled.path, destination: path.posix.join('models', precompiled.fileName) }] : []),
    ];
    const staged = stageFiles(scope, 'model-layer', entries);
    super(scope, id, {
      code: lambda.Code.fromAsset(staged, { exclude: STAGING_EXCLUDE, ...precompiledAssetHash(entries, precompiled) }),
      description: props.description ?? `ONNX model ${fileName} at ${MODEL_LAYER_DIR}/${fileName}`,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.DESTROY,
    });
    this.modelPath = `${MODEL_LAYER_DIR}/${fileName}`;
    this.modelInfo = source.info;
    this.unzippedSizeBytes = source.info.sizeBytes + (precompiled?.sizeBytes ?? 0);
    this.precompiledModelPath = precompiled ? `${MODEL_LAYER_DIR}/${precompiled.fileName}` : undefined;
    this.modelFingerprint = modelFingerprint(source.localPath);
  }
}
