import type * as apigw from 'aws-cdk-lib/aws-apigateway';
import { type OnnxModelInfo, readOnnxModelInfo, type TensorSignature } from './onnx-model-info';
import { inferRequestSchema } from './request-schema';

/** What the library reads from an ONNX model at synth, for your own constructs and checks. */
export class OnnxModel {
  /**
   * Reads a model's size and signature (inputs, outputs, opsets) from its file without reading its
   * weights. Throws, naming the file, when it is not a readable ONNX model.
   */
  public static readInfo(filePath: string): OnnxModelInfo {
    return readOnnxModelInfo(filePath);
  }

  /**
   * The JSON schema (draft 4) of an infer request for these inputs, as the endpoints give API
   * Gateway to validate requests: input names, datatypes and shapes, or the generic protocol shape
   * when the inputs are not known.
   */
  public static inferRequestSchema(inputs?: TensorSignature[]): apigw.JsonSchema {
    return inferRequestSchema(inputs);
  }

  private constructor() {}
}
