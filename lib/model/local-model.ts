import * as fs from 'node:fs';
import { FileSystem } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import type { ModelSource, ModelSourceConfig } from './model-source';
import type { OnnxModelInfo } from './onnx-model-info';
import { validationError } from '../private/errors';

/** A local model's config, or an error on `scope`, which packages the model at synth. */
export function requireLocalModel(scope: IConstruct, model: ModelSource, what: string): ModelSourceConfig & { localPath: string; info: OnnxModelInfo } {
  const config = model.bind();
  if (!config.localPath || !config.info) {
    throw validationError(scope, `${what}: model must be a local file (ModelSource.fromAsset): it is packaged at synth`);
  }
  return config as ModelSourceConfig & { localPath: string; info: OnnxModelInfo };
}

const fingerprints = new Map<string, string>();

/**
 * The content hash of a local model (as aws-cdk-lib fingerprints assets), remembered per path,
 * size and modification time so an app with several endpoints of one model reads it once.
 */
export function modelFingerprint(localPath: string): string {
  const stat = fs.statSync(localPath);
  const key = `${localPath}:${stat.size}:${stat.mtimeMs}`;
  let hash = fingerprints.get(key);
  if (!hash) {
    hash = FileSystem.fingerprint(localPath);
    fingerprints.set(key, hash);
  }
  return hash;
}
