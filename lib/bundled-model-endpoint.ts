import * as path from 'node:path';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { ENV } from '../contract/environment';
import { INFERENCE_HANDLER_DIR, ModelEndpointBase, ModelEndpointProps } from './model-endpoint-base';
import { ModelSource } from './model/model-source';
import { modelFingerprint, requireLocalModel } from './private/local-model';
import { STAGING_EXCLUDE, stageFiles, treeSize } from './private/staging';

export interface BundledModelEndpointProps extends ModelEndpointProps {
  /** The model file (`ModelSource.fromAsset`), shipped inside the function's code. */
  readonly model: ModelSource;
}

/** Where the model is in the function: under its code root, `/var/task`. */
const BUNDLED_MODEL_DIR = 'model';

/**
 * The simplest packaging: the model ships inside the function's own code, at
 * `/var/task/model/<file>`. For tiny models; the code plus the ONNX Runtime layer must fit in
 * Lambda's 250 MB unzipped. No download at cold start; a new model is a deploy.
 */
export class BundledModelEndpoint extends ModelEndpointBase {
  /** Where the model is in the function. */
  public readonly modelPath: string;

  constructor(scope: Construct, id: string, props: BundledModelEndpointProps) {
    let modelPath!: string;
    super(scope, id, props, () => {
      const source = requireLocalModel(props.model, 'BundledModelEndpoint');
      const fileName = path.basename(source.localPath);
      const handlerDir = INFERENCE_HANDLER_DIR();
      const staged = stageFiles('bundled-model', [
        { source: handlerDir, destination: '.' },
        { source: source.localPath, destination: path.posix.join(BUNDLED_MODEL_DIR, fileName) },
      ]);
      modelPath = `/var/task/${BUNDLED_MODEL_DIR}/${fileName}`;
      return {
        environment: { [ENV.MODEL_PATH]: modelPath },
        code: {
          code: lambda.Code.fromAsset(staged, { exclude: STAGING_EXCLUDE }),
          parts: [
            { name: 'inference handler', bytes: treeSize(handlerDir) },
            { name: 'model', bytes: source.info.sizeBytes },
          ],
        },
        info: source.info,
        identity: modelFingerprint(source.localPath),
      };
    });
    this.modelPath = modelPath;
  }
}
