import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Annotations, Size } from 'aws-cdk-lib';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type { Construct } from 'constructs';
import { ENV } from '../../contract/environment';
import { writeModelImageContext } from './model-image-context';
import type { ModelSource } from '../model/model-source';
import { readManifest } from '../runtime/onnxruntime-manifest';
import { BoundOnce } from '../private/bound-once';
import { validationError } from '../private/errors';
import { formatBytes } from '../private/lambda-limits';
import { modelFingerprint, requireLocalModel } from '../model/local-model';
import { handlerWithHooks } from '../hooks/handler-code';
import { builtAssetPath, inferenceHandlerDir } from '../private/package-paths';
import { precompileModel, wantsPrecompiled } from './precompiled-model';
import { describeTree, stagingDir, treeSize } from '../private/staging';
import { ModelPackaging, type ModelPackagingBindOptions, type ModelPackagingConfig } from './model-packaging';

/** The image of a `ContainerModelPackaging`: generated from a model file, or your own. */
export interface ContainerModelPackagingProps {
  /**
   * The model file (`ModelSource.fromAsset`), baked into an image generated at synth: the
   * Lambda Node.js base image, the library's handler, onnxruntime for the architecture, the model.
   * Give either this or `imageDirectory`.
   * @default - none: `imageDirectory` is used
   */
  readonly model?: ModelSource;

  /**
   * Your own Docker build context (a directory with a Dockerfile) instead of the generated one.
   * Its image must run the library's handler (`cdk-serverless-inference/handler`) with
   * onnxruntime-node and hold the model at `modelPathInImage`.
   * @default - none: the image is generated from `model`
   */
  readonly imageDirectory?: string;

  /**
   * Where the model is in your image (`imageDirectory`); required with it.
   * @default - none: the generated image knows where it put the model
   */
  readonly modelPathInImage?: string;

  /**
   * Options of the image asset (build args, target, Dockerfile name) for `imageDirectory`.
   * @default - none
   */
  readonly imageAssetOptions?: lambda.AssetImageCodeProps;
}

/** Lambda's limit for a container image, uncompressed, all layers included. */
const MAX_IMAGE_BYTES = 10 * 1024 ** 3;
/** What the Lambda Node.js base image adds, rounded up, for the 10 GB check. */
const BASE_IMAGE_ALLOWANCE_BYTES = 1024 ** 3;

/** The image's build context and where the model is in it. */
export interface ContainedModel {
  readonly directory: string;
  readonly modelPath: string;
  /** Where the model precompiled in ORT format is in the image, when the generated image holds one. */
  readonly precompiledPath?: string;
}

/**
 * The model baked into a Lambda container image (up to 10 GB): for big models and heavy
 * dependencies, with no download at cold start. The build context is written at synth (no Docker
 * needed then); `cdk deploy` builds and pushes the image.
 *
 * Synth writes a generated build context (the handler, onnxruntime and the model, hard-linked
 * where the file system allows) in `cdk.out/.cache/cdk-serverless-inference` (the OS temp folder
 * for an App with no outdir of its own), or where the `cdk-serverless-inference:stagingDirectory`
 * context key says; see docs/endpoints.md.
 */
export class ContainerModelPackaging extends ModelPackaging {
  private readonly image = new BoundOnce<ContainedModel>('ContainerModelPackaging');

  constructor(private readonly props: ContainerModelPackagingProps) {
    super();
  }

  public bind(scope: Construct, options: ModelPackagingBindOptions): ModelPackagingConfig {
    const props = this.props;
    const image = this.image.bind(scope, () => (props.imageDirectory ? ownImage(scope, props, options) : generatedImage(scope, props, options)));
    const platform = options.architecture === lambda.Architecture.ARM_64 ? Platform.LINUX_ARM64 : Platform.LINUX_AMD64;
    const source = props.model ? requireLocalModel(scope, props.model, 'ContainerModelPackaging') : undefined;
    return {
      environment: { [ENV.MODEL_PATH]: image.modelPath, ...(image.precompiledPath ? { [ENV.MODEL_PRECOMPILED_PATH]: image.precompiledPath } : {}) },
      code: lambda.Code.fromAssetImage(image.directory, { ...props.imageAssetOptions, platform }),
      image: true,
      modelInfo: source?.info,
      modelIdentity: source ? modelFingerprint(source.localPath) : undefined,
    };
  }

  /** @internal */
  public _image(): ContainedModel {
    return this.image.get();
  }
}

function ownImage(scope: Construct, props: ContainerModelPackagingProps, options: ModelPackagingBindOptions): ContainedModel {
  if (options.hooks) {
    throw validationError(
      scope,
      "ContainerModelPackaging: hooks are bundled beside the library's handler, which your own image (imageDirectory) does not take from here: put them in the image, or give model so that the image is generated",
    );
  }
  if (props.model) {
    throw validationError(scope, 'ContainerModelPackaging: give either model (the image is generated) or imageDirectory (your own image), not both');
  }
  if (!props.modelPathInImage || !path.posix.isAbsolute(props.modelPathInImage)) {
    throw validationError(scope, `ContainerModelPackaging: modelPathInImage must be the absolute path of the model in your image, got: ${props.modelPathInImage}`);
  }
  const directory = path.resolve(props.imageDirectory!);
  if (!fs.existsSync(path.join(directory, props.imageAssetOptions?.file ?? 'Dockerfile'))) {
    throw validationError(scope, `ContainerModelPackaging: imageDirectory ${directory} has no ${props.imageAssetOptions?.file ?? 'Dockerfile'}`);
  }
  return { directory, modelPath: props.modelPathInImage };
}

function generatedImage(scope: Construct, props: ContainerModelPackagingProps, options: ModelPackagingBindOptions): ContainedModel {
  const { architecture, runtime } = options;
  if (!props.model) {
    throw validationError(scope, 'ContainerModelPackaging: give model (a model file) or imageDirectory (your own Docker build context)');
  }
  if (props.modelPathInImage || props.imageAssetOptions) {
    throw validationError(scope, 'ContainerModelPackaging: modelPathInImage and imageAssetOptions apply to imageDirectory, not to a generated image');
  }
  const source = requireLocalModel(scope, props.model, 'ContainerModelPackaging');
  const nodeMajor = nodeMajorOf(scope, runtime);
  const arch = architecture === lambda.Architecture.ARM_64 ? 'arm64' : 'x86_64';
  // Keyed by what goes in, so a repeated synth reuses the context instead of writing it again.
  const handlerDir = handlerWithHooks(scope, inferenceHandlerDir(), options.hooks);
  const precompiled = wantsPrecompiled(options) ? precompileModel(scope, source.localPath) : undefined;
  const inputs = [source.localPath, handlerDir, builtAssetPath('layers', `onnxruntime-node-${arch}.zip`), ...(precompiled ? [precompiled.path] : [])].map(describeTree);
  const key = createHash('sha256')
    .update(JSON.stringify([...inputs, arch, nodeMajor]))
    .digest('hex')
    .slice(0, 32);
  const outDir = stagingDir(scope, 'model-image', key);
  // Checked before the context is written: a model too big is never linked or copied.
  const runtimeBytes = treeSize(handlerDir) + readManifest().layers[arch].unzippedBytes;
  const imageBytes = source.info.sizeBytes + (precompiled?.sizeBytes ?? 0) + runtimeBytes + BASE_IMAGE_ALLOWANCE_BYTES;
  if (imageBytes > MAX_IMAGE_BYTES) {
    throw validationError(
      scope,
      `ContainerModelPackaging: the image would be about ${formatBytes(imageBytes)} (model ${formatBytes(source.info.sizeBytes)}, handler and onnxruntime ` +
        `${formatBytes(runtimeBytes)}, base image up to ${formatBytes(BASE_IMAGE_ALLOWANCE_BYTES)}), over Lambda's limit of ` +
        `${Size.bytes(MAX_IMAGE_BYTES).toGibibytes()} GiB for a container image: serve it from EFS (EfsModelEndpoint)`,
    );
  }
  // The folder is keyed by every input, so one written before (it is swapped in whole) is this
  // context already: writing it again would extract ONNX Runtime and copy the handler on every synth.
  const record = `${outDir}.json`;
  if (fs.existsSync(outDir) && fs.existsSync(record)) {
    const { modelPath, precompiledPath } = JSON.parse(fs.readFileSync(record, 'utf8'));
    return { directory: outDir, modelPath, precompiledPath };
  }
  const context = writeModelImageContext({ modelFile: source.localPath, architecture: arch, nodeMajor, outDir, precompiledFile: precompiled?.path, handlerDirectory: handlerDir });
  fs.writeFileSync(record, JSON.stringify({ modelPath: context.modelPath, precompiledPath: context.precompiledPath }));
  return { directory: context.directory, modelPath: context.modelPath, precompiledPath: context.precompiledPath };
}

/** The base image's Node.js major version, from the `runtime` prop (Node.js 24 by default). */
function nodeMajorOf(scope: Construct, runtime: lambda.Runtime | undefined): 22 | 24 {
  if (!runtime || runtime.name === lambda.Runtime.NODEJS_24_X.name) return 24;
  if (runtime.name === lambda.Runtime.NODEJS_22_X.name) return 22;
  Annotations.of(scope).addWarningV2('cdk-serverless-inference:image-runtime', `runtime ${runtime.name} has no generated image; using Node.js 24`);
  return 24;
}
