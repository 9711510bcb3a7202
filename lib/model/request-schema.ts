import * as apigw from 'aws-cdk-lib/aws-apigateway';
// The datatypes the handler decodes: API Gateway accepts no other.
import { DATATYPES } from '../../contract/datatypes';
import type { TensorSignature } from './onnx-model-info';

const T = apigw.JsonSchemaType;

/**
 * JSON schema (draft 4) of an infer request body, for API Gateway's request validator: the Open
 * Inference Protocol form (`inputs`) or the instances form (`instances`). Given the model's inputs,
 * it also pins each input's name, datatype and rank, so API Gateway refuses a wrong request
 * without invoking (and billing) the function. The handler checks everything again, and more.
 */
export function inferRequestSchema(inputs?: readonly TensorSignature[]): apigw.JsonSchema {
  const tensor = (name: apigw.JsonSchema, datatype: apigw.JsonSchema, shape: apigw.JsonSchema): apigw.JsonSchema => ({
    type: T.OBJECT,
    required: ['name', 'shape', 'datatype', 'data'],
    properties: { name, datatype, shape, data: { type: T.ARRAY }, parameters: { type: T.OBJECT } },
  });
  const dims = (rank?: number): apigw.JsonSchema => ({
    type: T.ARRAY,
    items: { type: T.INTEGER, minimum: 0 },
    ...(rank === undefined ? {} : { minItems: rank, maxItems: rank }),
  });
  const items: apigw.JsonSchema =
    inputs && inputs.length > 0
      ? {
          oneOf: inputs.map((i) => tensor({ type: T.STRING, enum: [i.name] }, { type: T.STRING, enum: [i.datatype] }, dims(i.shape.length > 0 ? i.shape.length : undefined))),
        }
      : tensor({ type: T.STRING, minLength: 1 }, { type: T.STRING, enum: [...DATATYPES] }, dims());

  return {
    schema: apigw.JsonSchemaVersion.DRAFT4,
    title: 'InferenceRequest',
    type: T.OBJECT,
    oneOf: [{ required: ['inputs'] }, { required: ['instances'] }],
    properties: {
      id: { type: T.STRING },
      parameters: { type: T.OBJECT },
      // A model with no inputs (a constant graph) is called with `"inputs": []`.
      inputs:
        inputs && inputs.length === 0
          ? { type: T.ARRAY, maxItems: 0 }
          : {
              type: T.ARRAY,
              minItems: 1,
              ...(inputs && inputs.length > 0 ? { maxItems: inputs.length } : {}),
              items,
            },
      instances: { type: T.ARRAY, minItems: 1 },
      outputs: {
        type: T.ARRAY,
        items: {
          type: T.OBJECT,
          required: ['name'],
          properties: { name: { type: T.STRING, minLength: 1 }, parameters: { type: T.OBJECT } },
        },
      },
    },
  };
}
