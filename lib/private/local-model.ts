import { ModelSource, ModelSourceConfig } from '../model/model-source';
import type { OnnxModelInfo } from '../model/onnx-model-info';

/** A local model's config, or an error naming the construct that needs a local file. */
export function requireLocalModel(model: ModelSource, construct: string): ModelSourceConfig & { localPath: string; info: OnnxModelInfo } {
  const config = model.bind();
  if (!config.localPath || !config.info) {
    throw new Error(`${construct}: model must be a local file (ModelSource.fromAsset): it is packaged at synth`);
  }
  return config as ModelSourceConfig & { localPath: string; info: OnnxModelInfo };
}
