import * as path from 'node:path';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type { Construct } from 'constructs';
import { ENV } from '../../contract/environment';
import type { ModelSource } from '../model/model-source';
import { BoundOnce } from '../private/bound-once';
import { modelFingerprint, requireLocalModel } from '../model/local-model';
import { handlerWithHooks } from '../hooks/handler-code';
import { readManifest } from '../runtime/onnxruntime-manifest';
import { inferenceHandlerDir } from '../private/package-paths';
import { ifItFits, precompiledAssetHash, precompileModel, wantsPrecompiled } from './precompiled-model';
import { STAGING_EXCLUDE, stageFiles, treeSize } from '../private/staging';
import { ModelPackaging, type ModelPackagingBindOptions, type ModelPackagingConfig } from './model-packaging';

/** The model of a `BundledModelPackaging`. */
export interface BundledModelPackagingProps {
  /** The model file (`ModelSource.fromAsset`), shipped inside the function's code. */
  readonly model: ModelSource;
}

/** Where the model is in the function: under its code root, `/var/task`. */
const BUNDLED_MODEL_DIR = 'model';

/**
 * The model inside the function's own code, at `/var/task/model/<file>`, next to the prebuilt
 * handler: for tiny models (the code plus the ONNX Runtime layer must fit in 250 MB unzipped).
 *
 * Synth stages the code folder (the handler and the model, hard-linked where the file system
 * allows) in `cdk.out/.cache/cdk-serverless-inference` (the OS temp folder for an App with no
 * outdir of its own), or where the `cdk-serverless-inference:stagingDirectory` context key says;
 * see docs/endpoints.md.
 */
export class BundledModelPackaging extends ModelPackaging {
  private readonly modelPath = new BoundOnce<string>('BundledModelPackaging');

  constructor(private readonly props: BundledModelPackagingProps) {
    super();
  }

  public bind(scope: Construct, options: ModelPackagingBindOptions): ModelPackagingConfig {
    const source = requireLocalModel(scope, this.props.model, 'BundledModelPackaging');
    const fileName = path.basename(source.localPath);
    const modelPath = this.modelPath.bind(scope, () => `/var/task/${BUNDLED_MODEL_DIR}/${fileName}`);
    const handlerDir = handlerWithHooks(scope, inferenceHandlerDir(), options.hooks);
    const handlerBytes = treeSize(handlerDir);
    const arch = options.architecture.name === lambda.Architecture.X86_64.name ? 'x86_64' : 'arm64';
    const precompiled = wantsPrecompiled(options)
      ? ifItFits(scope, precompileModel(scope, source.localPath), handlerBytes + source.info.sizeBytes + (readManifest().layers[arch]?.unzippedBytes ?? 0))
      : undefined;
    const precompiledPath = precompiled ? path.posix.join(BUNDLED_MODEL_DIR, precompiled.fileName) : undefined;
    const entries = [
      { source: handlerDir, destination: '.' },
      { source: source.localPath, destination: path.posix.join(BUNDLED_MODEL_DIR, fileName) },
      ...(precompiled ? [{ source: precompiled.path, destination: precompiledPath! }] : []),
    ];
    const staged = stageFiles(scope, 'bundled-model', entries);
    return {
      environment: { [ENV.MODEL_PATH]: modelPath, ...(precompiled ? { [ENV.MODEL_PRECOMPILED_PATH]: `/var/task/${precompiledPath}` } : {}) },
      code: lambda.Code.fromAsset(staged, { exclude: STAGING_EXCLUDE, ...precompiledAssetHash(entries, precompiled) }),
      codeParts: [
        { name: 'inference handler', sizeBytes: handlerBytes },
        { name: 'model', sizeBytes: source.info.sizeBytes },
        ...(precompiled ? [{ name: 'precompiled model', sizeBytes: precompiled.sizeBytes }] : []),
      ],
      modelInfo: source.info,
      modelIdentity: modelFingerprint(source.localPath),
    };
  }

  /** @internal */
  public _modelPath(): string {
    return this.modelPath.get();
  }
}
