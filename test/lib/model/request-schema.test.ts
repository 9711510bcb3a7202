import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Ajv from 'ajv-draft-04';
import { App, Stack } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import { Template } from 'aws-cdk-lib/assertions';
import { afterAll, describe, expect, it } from 'vitest';
import { readOnnxModelInfo, type TensorSignature } from '../../../lib/model/onnx-model-info';
import { inferRequestSchema } from '../../../lib/model/request-schema';
import { logisticRegressionModel, multiIoModel } from '../../../tools/onnx';

// What the handler decodes (handlers/core/datatypes.ts), listed here independently of the schema.
const HANDLER_DATATYPES = ['BOOL', 'UINT8', 'UINT16', 'UINT32', 'UINT64', 'INT8', 'INT16', 'INT32', 'INT64', 'FP16', 'FP32', 'FP64', 'BYTES'];

/**
 * The schema as API Gateway receives it: rendered by aws-cdk-lib itself into an
 * AWS::ApiGateway::Model, so its key renaming (`schema` → `$schema`, ...) is the real one.
 */
function renderedSchema(schema: apigw.JsonSchema): Record<string, unknown> {
  const stack = new Stack(new App(), 'Stack');
  const api = new apigw.RestApi(stack, 'Api');
  // A REST API without a method fails synthesis.
  api.root.addMethod('GET', new apigw.MockIntegration());
  api.addModel('Model', { contentType: 'application/json', schema });
  const models = Object.values(Template.fromStack(stack).findResources('AWS::ApiGateway::Model'));
  expect(models).toHaveLength(1);
  return models[0].Properties.Schema;
}

/** A validator of request bodies, as API Gateway's request validator applies the model (draft 4). */
function validatorFor(schema: apigw.JsonSchema): (body: unknown) => boolean {
  const rendered = renderedSchema(schema);
  expect(rendered.$schema).toBe('http://json-schema.org/draft-04/schema#');
  const validate = new Ajv({ allErrors: true, strictTypes: false }).compile(rendered);
  return (body) => validate(body) as boolean;
}

const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'request-schema-'));
afterAll(() => fs.rmSync(tmpDir, { recursive: true, force: true }));

function modelInputs(name: string, bytes: Uint8Array): readonly TensorSignature[] {
  const file = path.join(tmpDir, `${name}.onnx`);
  fs.writeFileSync(file, bytes);
  return readOnnxModelInfo(file).inputs;
}

/** A tensor that fits the signature: symbolic dimensions become 1, data is left empty. */
function tensorOf(signature: TensorSignature, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { name: signature.name, datatype: signature.datatype, shape: signature.shape.map((d) => (d < 0 ? 1 : d)), data: [], ...overrides };
}

describe('inferRequestSchema() without model inputs', () => {
  const accepts = validatorFor(inferRequestSchema());
  const tensor = { name: 'x', shape: [1, 2], datatype: 'FP32', data: [0.5, 1.5] };
  const withTensor = (t: Record<string, unknown>) => ({ inputs: [t] });
  const without = (key: string) => Object.fromEntries(Object.entries(tensor).filter(([k]) => k !== key));

  it('accepts a complete Open Inference Protocol request', () => {
    expect(
      accepts({
        id: 'request-1',
        parameters: { priority: 1 },
        inputs: [tensor, { name: 'ids', shape: [2], datatype: 'INT64', data: [1, 2], parameters: {} }],
        outputs: [{ name: 'y' }, { name: 'z', parameters: { binary_data: false } }],
      }),
    ).toBe(true);
  });

  it('accepts the instances form', () => {
    expect(accepts({ instances: [[1, 2]] })).toBe(true);
  });

  it('rejects a body with neither inputs nor instances', () => {
    expect(accepts({})).toBe(false);
  });

  it('rejects a body with both inputs and instances', () => {
    expect(accepts({ inputs: [tensor], instances: [[1, 2]] })).toBe(false);
  });

  it('rejects empty inputs', () => {
    expect(accepts({ inputs: [] })).toBe(false);
  });

  it.each(['data', 'shape', 'datatype', 'name'])('rejects a tensor without %s', (key) => {
    expect(accepts(withTensor(tensor))).toBe(true);
    expect(accepts(withTensor(without(key)))).toBe(false);
  });

  it('rejects a datatype outside the protocol', () => {
    expect(accepts(withTensor({ ...tensor, datatype: 'FLOAT' }))).toBe(false);
  });

  it('rejects negative and fractional dimensions', () => {
    expect(accepts(withTensor({ ...tensor, shape: [-1, 2] }))).toBe(false);
    expect(accepts(withTensor({ ...tensor, shape: [1.5, 2] }))).toBe(false);
  });

  it('rejects a requested output without a name', () => {
    expect(accepts({ inputs: [tensor], outputs: [{ parameters: {} }] })).toBe(false);
  });

  it('rejects data that is not an array', () => {
    expect(accepts(withTensor({ ...tensor, data: 'abc' }))).toBe(false);
    expect(accepts(withTensor({ ...tensor, data: { 0: 1 } }))).toBe(false);
  });

  it.each(HANDLER_DATATYPES)('accepts the datatype the handler supports: %s', (datatype) => {
    expect(accepts(withTensor({ ...tensor, datatype }))).toBe(true);
  });
});

describe.each([
  { model: 'multiIoModel', bytes: () => multiIoModel().bytes, inputNames: ['ids', 'mask', 'text', 'halves'] },
  { model: 'logisticRegressionModel', bytes: () => logisticRegressionModel().bytes, inputNames: ['features'] },
])('inferRequestSchema() of $model', ({ model, bytes, inputNames }) => {
  const inputs = modelInputs(model, bytes());
  const accepts = validatorFor(inferRequestSchema(inputs));
  const valid = () => inputs.map((i) => tensorOf(i));

  it('is built from the inputs the model declares', () => {
    expect(inputs.map((i) => i.name)).toEqual(inputNames);
  });

  it('accepts a request naming each input with its datatype and rank', () => {
    expect(accepts({ inputs: valid() })).toBe(true);
    // Any subset too: the handler, not the schema, reports a missing input.
    for (const input of inputs) {
      expect(accepts({ inputs: [tensorOf(input)] })).toBe(true);
    }
  });

  it('rejects an input name the model does not have', () => {
    const request = valid();
    request[0] = { ...request[0], name: 'no_such_input' };
    expect(accepts({ inputs: request })).toBe(false);
  });

  it.each(inputNames.map((_, i) => i))('rejects input #%i with a wrong datatype', (index) => {
    const request = valid();
    const wrong = HANDLER_DATATYPES.find((d) => d !== inputs[index].datatype);
    request[index] = { ...request[index], datatype: wrong };
    expect(accepts({ inputs: request })).toBe(false);
  });

  it.each(inputNames.map((_, i) => i))('rejects input #%i with too few or too many dimensions', (index) => {
    const shape = tensorOf(inputs[index]).shape as number[];
    for (const wrongShape of [shape.slice(1), [...shape, 1]]) {
      const request = valid();
      request[index] = { ...request[index], shape: wrongShape };
      expect(accepts({ inputs: request })).toBe(false);
    }
  });

  it('rejects more inputs than the model has', () => {
    expect(accepts({ inputs: [...valid(), tensorOf(inputs[0])] })).toBe(false);
  });
});

describe('inferRequestSchema() of a model with no inputs', () => {
  const accepts = validatorFor(inferRequestSchema([]));

  it('accepts `"inputs": []`, the only way to call a constant graph', () => {
    expect(accepts({ inputs: [] })).toBe(true);
    expect(accepts({ id: 'x', inputs: [], outputs: [{ name: 'y' }] })).toBe(true);
  });

  it('rejects any input, since the model has none', () => {
    expect(accepts({ inputs: [{ name: 'x', shape: [1], datatype: 'FP32', data: [1] }] })).toBe(false);
  });
});
