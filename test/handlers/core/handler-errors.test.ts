import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { gatherModel, logisticRegressionModel, multiIoModel, notOnnxBytes, unknownOpModel } from '../../../tools/onnx';
import { call, infer, restEvent } from '../../../fixtures/events';
import { type Handler, createHandler, handlerForModel, importCoreBundle, tempDir, writeModel } from '../../support/handler';
import { logged } from '../../support/logs';

const lr = logisticRegressionModel({ features: 100, seed: 7 });
const valid = { inputs: [{ name: 'features', shape: [1, 100], datatype: 'FP32', data: new Array(100).fill(0.5) }] };
const validAnswer = lr.predict([new Array(100).fill(0.5)])[0];

/** `out = table[idx]`: an index outside the table makes onnxruntime fail at run time, not at load. */
const gather = gatherModel().bytes;

describe('requests the handler refuses, with the status and a message naming the problem', () => {
  let handler: Handler;
  beforeAll(async () => {
    handler = await handlerForModel(lr.bytes, { MAX_BODY_BYTES: '200000' });
  });

  const cases: Array<[string, unknown, number, RegExp]> = [
    ['malformed JSON', '{"inputs": [', 400, /not valid JSON/],
    ['a JSON array body', [1, 2], 400, /must be a JSON object/],
    ['no inputs', { foo: 1 }, 400, /no 'inputs'/],
    ['inputs and instances together', { inputs: [], instances: [] }, 400, /both 'inputs' and 'instances'/],
    ['empty inputs', { inputs: [] }, 400, /non-empty array/],
    ['an input without a name', { inputs: [{ shape: [1], datatype: 'FP32', data: [1] }] }, 400, /inputs\[0\].*'name'/],
    ['an unknown input', { inputs: [{ ...valid.inputs[0], name: 'nope' }] }, 400, /unknown input 'nope'.*'features'/],
    ['an input given twice', { inputs: [valid.inputs[0], valid.inputs[0]] }, 400, /more than once/],
    ['a wrong datatype', { inputs: [{ ...valid.inputs[0], datatype: 'INT32' }] }, 400, /expects datatype FP32, got: INT32/],
    ['a datatype the protocol lacks', { inputs: [{ ...valid.inputs[0], datatype: 'FLOAT' }] }, 400, /datatype must be one of/],
    ['a wrong rank', { inputs: [{ ...valid.inputs[0], shape: [100] }] }, 400, /expects shape \[batch,100\] \(rank 2\), got: \[100\]/],
    ['a wrong fixed dimension', { inputs: [{ ...valid.inputs[0], shape: [2, 50] }] }, 400, /expects shape \[batch,100\], got: \[2,50\]/],
    ['a negative dimension', { inputs: [{ ...valid.inputs[0], shape: [-1, 100] }] }, 400, /non-negative integers/],
    ['data shorter than the shape', { inputs: [{ ...valid.inputs[0], shape: [2, 100] }] }, 400, /holds 200 elements but data has 100/],
    ['a shape of 10^9 elements', { inputs: [{ ...valid.inputs[0], shape: [10_000_000, 100] }] }, 400, /holds 1000000000 elements but data has 100/],
    ['a string where FP32 is expected', { inputs: [{ ...valid.inputs[0], data: ['a', ...new Array(99).fill(0)] }] }, 400, /index 0 must be a number/],
    ['a value past FP32 range', { inputs: [{ ...valid.inputs[0], data: [1e39, ...new Array(99).fill(0)] }] }, 400, /index 0 must be within/],
    ['an unknown output', { ...valid, outputs: [{ name: 'logits' }] }, 400, /unknown output 'logits'.*'probability'/],
    ['a non-string id', { ...valid, id: 7 }, 400, /'id' must be a string/],
    ['data nested 40 deep', { inputs: [{ ...valid.inputs[0], data: [JSON.parse(`${'['.repeat(40)}1${']'.repeat(40)}`)] }] }, 400, /nested deeper than 32/],
    ['data nested 33 deep', { inputs: [{ ...valid.inputs[0], data: [JSON.parse(`${'['.repeat(32)}1${']'.repeat(32)}`)] }] }, 400, /nested deeper than 32/],
    // 32 levels are read: the value is counted (one, against the shape's hundred).
    ['data nested 32 deep', { inputs: [{ ...valid.inputs[0], data: [JSON.parse(`${'['.repeat(31)}1${']'.repeat(31)}`)] }] }, 400, /holds 100 elements but data has 1$/],
    [
      'instances of other shapes than the first, with the count its shape makes',
      { instances: [new Array(100).fill(0), new Array(150).fill(0), new Array(50).fill(0)] },
      400,
      /'instances' must all have the shape of the first one, \[100\]/,
    ],
  ];

  it.each(cases)('%s', async (_what, body, status, message) => {
    const r = await infer(handler, body);
    expect(r.status).toBe(status);
    expect(r.body.error).toMatch(message);
    expect(Object.keys(r.body)).toEqual(['error']);
  });

  it('shows a number JSON cannot hold as itself in a message, not as null', async () => {
    const body = JSON.stringify(valid).replace('"shape":[1,100]', '"shape":[1e999,100]');
    const r = await call(handler, restEvent('POST', '/v2/models/model/infer', body));
    expect(r.status).toBe(400);
    expect(r.body.error).toContain('got: [Infinity,100]');
    const value = JSON.stringify(valid).replace('"data":[0.5', '"data":[-1e999');
    expect((await call(handler, restEvent('POST', '/v2/models/model/infer', value))).body.error).toMatch(/-Infinity/);
  });

  it('bounds a message that quotes a huge part of the request', async () => {
    const r = await infer(handler, { inputs: [{ ...valid.inputs[0], name: 'n'.repeat(100_000) }] });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatch(/^unknown input 'nnn/);
    expect(r.body.error).toMatch(/… \(\d{6} characters\)$/);
    expect(r.body.error.length).toBeLessThanOrEqual(1000);
  });

  it('answers a body over the limit with 413', async () => {
    const big = { inputs: [{ ...valid.inputs[0], data: new Array(100).fill(0.123456789).concat('x'.repeat(200_000)) }] };
    const r = await infer(handler, big);
    expect(r.status).toBe(413);
    expect(r.body.error).toMatch(/limit is 200000 bytes/);
  });

  it('refuses a content type that is not JSON with 415', async () => {
    const r = await infer(handler, valid, 'model', { headers: { 'Content-Type': 'text/plain' } });
    expect(r.status).toBe(415);
    expect(r.body.error).toBe('Content-Type text/plain is not supported; send the request as application/json');
  });

  it('reads a form-encoded body (what curl -d sends) as JSON when it is JSON, and says what to send when it is not', async () => {
    const form = { 'Content-Type': 'application/x-www-form-urlencoded' };
    const r = await infer(handler, valid, 'model', { headers: form });
    expect(r.status, r.text).toBe(200);
    expect(r.body.outputs[0].name).toBe('probability');
    const notJson = await infer(handler, 'inputs=1&x=2', 'model', { headers: form });
    expect(notJson.status).toBe(415);
    expect(notJson.body.error).toMatch(
      /Content-Type application\/x-www-form-urlencoded is read as JSON, and this body is not JSON; send the request as application\/json \(curl -d sets/,
    );
    // Still a 400 for a form body that is JSON but not a request, as for JSON.
    const wrong = await infer(handler, { inputs: 3 }, 'model', { headers: form });
    expect(wrong.status).toBe(400);
  });

  it('reads a body of the binary tensor extension whatever its content type: the header marks it', async () => {
    const text = JSON.stringify(valid);
    const r = await infer(handler, text, 'model', { headers: { 'Content-Type': 'text/plain', 'Inference-Header-Content-Length': String(Buffer.byteLength(text)) } });
    expect(r.status, r.text).toBe(200);
    const cut = await infer(handler, text, 'model', { headers: { 'Content-Type': 'text/plain', 'Inference-Header-Content-Length': '10' } });
    expect(cut.status).toBe(400);
    expect(cut.body.error).toMatch(/the request's JSON header \(its first 10 bytes, per Inference-Header-Content-Length\) is not valid JSON/);
  });

  it('refuses a body marked base64 that is not base64', async () => {
    const e = restEvent('POST', '/v2/models/model/infer');
    const r = await call(handler, { ...e, body: 'not*base64!', isBase64Encoded: true });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatch(/not valid base64/);
  });

  it('answers an unknown model, version or route with 404', async () => {
    const model = await call(handler, restEvent('POST', '/v2/models/other/infer', valid));
    expect(model.status).toBe(404);
    expect(model.body.error).toMatch(/unknown model 'other'.*'model'/);
    const version = await call(handler, restEvent('POST', '/v2/models/model/versions/9/infer', valid));
    expect(version.status).toBe(404);
    expect(version.body.error).toMatch(/no version '9'/);
    const route = await call(handler, restEvent('GET', '/v1/models/model:predict'));
    expect(route.status).toBe(404);
  });

  it('answers a wrong method with 405 and an Allow header', async () => {
    const r = await call(handler, restEvent('GET', '/v2/models/model/infer'));
    expect(r.status).toBe(405);
    expect(r.headers.Allow).toBe('POST');
    const h = await call(handler, restEvent('POST', '/v2/health/ready', {}));
    expect(h.status).toBe(405);
    expect(h.headers.Allow).toBe('GET');
  });

  it('still answers a valid request correctly after all of them', async () => {
    const r = await infer(handler, valid);
    expect(r.status).toBe(200);
    expect(r.body.outputs[0].data[0]).toBeCloseTo(validAnswer, 5);
  });
});

describe('values that are not of the datatype', () => {
  let handler: Handler;
  beforeAll(async () => {
    handler = await handlerForModel(multiIoModel().bytes);
  });
  const base = () => [
    { name: 'ids', datatype: 'INT64', shape: [1, 4], data: [1, 2, 3, 4] },
    { name: 'mask', datatype: 'BOOL', shape: [1, 4], data: [true, true, true, true] },
    { name: 'text', datatype: 'BYTES', shape: [1], data: ['a'] },
    { name: 'halves', datatype: 'FP16', shape: [1, 2], data: [1, 2] },
  ];
  const withData = (i: number, data: unknown[]) => base().map((t, j) => (j === i ? { ...t, data } : t));

  it.each([
    ['a fraction for INT64', withData(0, [1.5, 2, 3, 4]), /'ids' \(INT64\): value at index 0 must be an integer/],
    ['an unsafe JSON number for INT64', withData(0, [2 ** 60, 2, 3, 4]), /decimal string for exact 64-bit/],
    ['NaN for INT64', withData(0, ['NaN', 2, 3, 4]), /'ids' \(INT64\)/],
    ['a number for BOOL', withData(1, [1, 0, 1, 0]), /'mask' \(BOOL\): value at index 0 must be true or false/],
    ['a number for BYTES', withData(2, [5]), /'text' \(BYTES\): value at index 0 must be a string/],
    ['a value past FP16 range', withData(3, [70000, 1]), /'halves' \(FP16\): value at index 0 must be within ±65504/],
    ['two values for one symbolic dimension', base().map((t, j) => (j === 2 ? { ...t, shape: [2], data: ['a', 'b'] } : t)), /dimension 'batch' is 2 here but 1/],
    ['a missing input', base().slice(1), /missing input 'ids'/],
  ])('%s', async (_what, inputs, message) => {
    const r = await infer(handler, { inputs });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatch(message);
  });
});

describe('model failures', () => {
  it('answers values the model refuses while it runs (an index outside its table) with 422 naming the input, and recovers', async () => {
    const handler = await handlerForModel(gather);
    const bad = await call(handler, { ...restEvent('POST', '/v2/models/model/infer', { inputs: [{ name: 'idx', datatype: 'INT64', shape: [1], data: [10] }] }) });
    expect(bad.status).toBe(422);
    expect(bad.body.error).toBe(
      "the model cannot compute an answer from the values of input 'idx': its Gather node refused them (indices element out of data bounds, idx=10 must be within the inclusive range [-4,3]) (request id rest-request-id)",
    );
    expect(bad.text).not.toMatch(/\bat .*\.(m?js|ts):\d+/);
    const good = await infer(handler, { inputs: [{ name: 'idx', datatype: 'INT64', shape: [2], data: [3, 0] }] });
    expect(good.status).toBe(200);
    expect(good.body.outputs[0].data).toEqual([40, 10]);
  });

  it('reports a model that is not ONNX as not ready, without its path, and loads it once it is fixed', async () => {
    const file = path.join(tempDir(), 'model.onnx');
    fs.writeFileSync(file, notOnnxBytes());
    const handler = await createHandler({ MODEL_PATH: file, MODEL_INIT_WAIT_MS: '5000', MODEL_LOAD_RETRY_MS: '0' });
    const ready = await call(handler, restEvent('GET', '/v2/health/ready'));
    expect(ready.status).toBe(400);
    expect(ready.body).toEqual({ ready: false, error: 'onnxruntime cannot load the model; the next request retries the load (request id rest-request-id)' });
    const r = await infer(handler, valid);
    expect(r.status).toBe(503);
    expect(r.body.error).toBe("model 'model' is not available: onnxruntime cannot load the model; the next request retries the load (request id rest-request-id)");
    expect(r.text).not.toContain(path.dirname(file));

    fs.writeFileSync(file, lr.bytes);
    const after = await infer(handler, valid);
    expect(after.status).toBe(200);
    expect(after.body.outputs[0].data[0]).toBeCloseTo(validAnswer, 5);
    expect((await call(handler, restEvent('GET', '/v2/health/ready'))).status).toBe(200);
  });

  it('says what failed, a missing model file or one onnxruntime cannot run, without the path or onnxruntime’s words', async () => {
    const missing = await createHandler({ MODEL_PATH: '/nonexistent/model.onnx' });
    const r = await infer(missing, valid);
    expect(r.status).toBe(503);
    expect(r.body.error).toMatch(
      /^model 'model' is not available: the model file does not exist or cannot be read; the next attempt to load it is in 1 s \(request id rest-request-id\)$/,
    );
    expect(r.headers['Retry-After']).toBe('1');

    const unknown = await handlerForModel(unknownOpModel().bytes);
    const u = await call(unknown, restEvent('GET', '/v2/models/model'));
    expect(u.status).toBe(503);
    expect(u.body.error).toMatch(/^model 'model' is not available: onnxruntime cannot load the model; /);
    expect(u.text).not.toMatch(/NoSuchOp|\.onnx/);
  });

  it("answers a hook's own 5xx with the request id, as every 5xx", async () => {
    const { InferenceError } = await importCoreBundle();
    const handler = await createHandler(
      { MODEL_PATH: writeModel(lr.bytes) },
      {
        postprocess: () => {
          throw new InferenceError(500, 'the label store is down');
        },
      },
    );
    const r = await infer(handler, valid);
    expect(r.status).toBe(500);
    expect(r.body.error).toBe('the label store is down (request id rest-request-id)');
  });

  it('answers every request of a misconfigured function with a 500 that says so, the cause in the log', async () => {
    const handler = await createHandler({});
    const { result: r, text } = await logged(() => infer(handler, valid));
    expect(r.status).toBe(500);
    expect(r.body.error).toBe('the inference function is misconfigured; its log says why (request id rest-request-id)');
    expect(text).toMatch(/misconfigured: no model configured: set MODEL_PATH .* or MODEL_S3_URI/);
  });

  it.each(['MAX_BODY_BYTES', 'MAX_RESPONSE_BYTES'])('takes a %s of 0 for a misconfiguration, not a limit that refuses every request', async (name) => {
    const handler = await createHandler({ MODEL_PATH: writeModel(lr.bytes), [name]: '0' });
    const { result: r, text } = await logged(() => infer(handler, valid));
    expect(r.status).toBe(500);
    expect(r.body.error).toMatch(/^the inference function is misconfigured/);
    expect(text).toContain(`misconfigured: ${name} must be a positive integer, got: 0`);
  });
});
