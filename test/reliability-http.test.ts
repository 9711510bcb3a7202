/**
 * Requests a caller can make, built by hand and sent over real HTTP to the bundled handler behind
 * the library's local server, against real onnxruntime and models made by tools/onnx. None of them
 * may get a 5xx (each would raise the server-error alarm, and could roll back a good deployment),
 * hang, or take the instance down: after each, the next valid request is answered as before.
 *
 * - nesting deeper than any request needs, anywhere in the body: a 400 naming where;
 * - "toString" and other inherited names where "NaN" or "Infinity" may stand: a 400;
 * - a model without inputs, called with `"inputs": []`;
 * - content types other than JSON: a 415;
 * - a model that cannot load: readiness and errors say what failed, not where.
 */
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningInferenceServer } from '../lib/local/inference-server';
import { constantModel, truncatedModel } from '../tools/onnx';
import { type Handler, createHandler, handlerForModel, writeModel } from './support/handler';
import { type HttpAnswer, postJson, send, serveOverHttp } from './support/http';
import { captureLogs, withLogLevel } from './support/logs';
import { INHERITED_NAMES, answerMismatch, mlpUnderTest, render } from './support/reliability-requests';

const servers: RunningInferenceServer[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

/** The handler (logging at WARN and above, which tests may capture) behind a local server; its base URL. */
async function serve(create: () => Promise<Handler>): Promise<string> {
  const handler = await withLogLevel(create, 'WARN');
  const server = await serveOverHttp(handler);
  servers.push(server);
  return server.url;
}

const mlp = mlpUnderTest('mlp');
const validMlp = JSON.stringify(render(mlp, mlp.fixed));
const expectMlpAnswer = (a: HttpAnswer) => expect(answerMismatch(mlp, mlp.fixed, a.status, a.text)).toBeUndefined();

/** `depth` arrays around a 1. */
const arrays = (depth: number) => `${'['.repeat(depth)}1${']'.repeat(depth)}`;
/** `depth` objects around a 1: {"a":{"a":...}}. */
const objects = (depth: number) => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;

describe('nesting deeper than any request needs, anywhere in the body', () => {
  let url: string;
  beforeAll(async () => {
    url = await serve(() => handlerForModel(mlp.bytes, { MODEL_NAME: 'mlp' }));
  });

  const tensor = (fields: string) => `{"inputs":[{"name":"input","datatype":"FP32","shape":[1,4],"data":[1,2,3,4]${fields}}]}`;
  /** Where the deep value goes, and the path the answer must name (its first 8 steps). */
  const places: Array<[string, (deep: string) => string, string]> = [
    ['data', (d) => `{"inputs":[{"name":"input","datatype":"FP32","shape":[1,4],"data":${d}}]}`, 'inputs[0].data[0][0][0][0][0]…'],
    ['a value in data', (d) => `{"inputs":[{"name":"input","datatype":"FP32","shape":[1,4],"data":[1,2,3,${d}]}]}`, 'inputs[0].data[3][0][0][0][0]…'],
    ['shape', (d) => `{"inputs":[{"name":"input","datatype":"FP32","shape":${d},"data":[1,2,3,4]}]}`, 'inputs[0].shape[0][0][0][0][0]…'],
    ['a dimension of shape', (d) => `{"inputs":[{"name":"input","datatype":"FP32","shape":[1,${d}],"data":[1,2,3,4]}]}`, 'inputs[0].shape[1][0][0][0][0]…'],
    ['datatype', (d) => `{"inputs":[{"name":"input","datatype":${d},"shape":[1,4],"data":[1,2,3,4]}]}`, 'inputs[0].datatype[0][0][0][0][0]…'],
    ['name', (d) => `{"inputs":[{"name":${d},"datatype":"FP32","shape":[1,4],"data":[1,2,3,4]}]}`, 'inputs[0].name[0][0][0][0][0]…'],
    ['a field of a tensor', (d) => tensor(`,"extra":${d}`), 'inputs[0].extra[0][0][0][0][0]…'],
    ['id', (d) => `{"id":${d},"inputs":[{"name":"input","datatype":"FP32","shape":[1,4],"data":[1,2,3,4]}]}`, 'id[0][0][0][0][0][0][0]…'],
    ['parameters', (d) => `{"parameters":{"p":${d}},"inputs":[]}`, 'parameters.p[0][0][0][0][0][0]…'],
    ['outputs', (d) => `{"inputs":[],"outputs":[{"name":${d}}]}`, 'outputs[0].name[0][0][0][0][0]…'],
    ['instances', (d) => `{"instances":${d}}`, 'instances[0][0][0][0][0][0][0]…'],
    ['a field nobody reads', (d) => `{"inputs":[],"x y":${d}}`, '["x y"][0][0][0][0][0][0][0]…'],
    ['the body itself', (d) => d, '[0][0][0][0][0][0][0][0]…'],
  ];

  it.each(places.flatMap(([where, body, path]) => [10_000, 1_000_000].map((depth) => [where, depth, body, path] as const)))(
    '%s, %i arrays deep: a 400 naming where, at once',
    async (_where, depth, body, path) => {
      const a = await postJson(url, 'mlp', body(arrays(depth)));
      expect(a.status, a.text).toBe(400);
      expect(a.body).toEqual({ error: `the request is nested deeper than 64 levels, at ${path}; no inference request needs that many` });
      // A linear scan of the text, before it is parsed: parsing a million levels alone takes ~0.5 s.
      expect(a.ms).toBeLessThan(depth > 10_000 ? 1000 : 250);
      expectMlpAnswer(await postJson(url, 'mlp', validMlp));
    },
  );

  it('objects in objects, too', async () => {
    const a = await postJson(url, 'mlp', `{"inputs":[],"parameters":${objects(100_000)}}`);
    expect(a.status, a.text).toBe(400);
    expect(a.body.error).toBe('the request is nested deeper than 64 levels, at parameters.a.a.a.a.a.a.a…; no inference request needs that many');
    expectMlpAnswer(await postJson(url, 'mlp', validMlp));
  });

  it('accepts 64 levels, and refuses 65', async () => {
    const valid = JSON.parse(validMlp);
    // The body is the first level: 63 more under `extra` make 64.
    const at = (depth: number) => `${JSON.stringify(valid).slice(0, -1)},"extra":${arrays(depth)}}`;
    expectMlpAnswer(await postJson(url, 'mlp', at(63)));
    const over = await postJson(url, 'mlp', at(64));
    expect(over.status).toBe(400);
    expect(over.body.error).toMatch(/^the request is nested deeper than 64 levels, at extra\[0\]/);
  });

  it('refuses a direct invocation nested as deep with the same message', async () => {
    const handler = await handlerForModel(mlp.bytes, { MODEL_NAME: 'mlp' });
    for (const [, body, path] of places) {
      const failure = await handler(JSON.parse(body(arrays(10_000)))).then(
        () => undefined,
        (e: Error) => e,
      );
      expect(failure?.message).toBe(`[400] the request is nested deeper than 64 levels, at ${path}; no inference request needs that many`);
    }
  });
});

describe('inherited names where a float token may stand', () => {
  let url: string;
  beforeAll(async () => {
    url = await serve(() => handlerForModel(mlp.bytes, { MODEL_NAME: 'mlp' }));
  });

  it.each(INHERITED_NAMES)('"%s" is refused with a 400 naming the value', async (name) => {
    const a = await postJson(url, 'mlp', `{"inputs":[{"name":"input","datatype":"FP32","shape":[1,4],"data":[1,2,${JSON.stringify(name)},4]}]}`);
    expect(a.status, a.text).toBe(400);
    expect(a.body.error).toBe(`input 'input' (FP32): value at index 2 must be a number (or "NaN", "Infinity", "-Infinity"), got: ${JSON.stringify(name)}`);
  });

  it('while "NaN", "Infinity" and "-Infinity" are still taken', async () => {
    const a = await postJson(url, 'mlp', '{"inputs":[{"name":"input","datatype":"FP32","shape":[1,4],"data":["NaN","Infinity","-Infinity",1]}]}');
    expect(a.status, a.text).toBe(200);
    expect(a.body.outputs[0].data).toEqual(['NaN', 'NaN', 'NaN']);
  });
});

describe('a model without inputs', () => {
  const model = constantModel({ values: [4, 2, -0.5] });
  let url: string;
  beforeAll(async () => {
    url = await serve(() => handlerForModel(model.bytes, { MODEL_NAME: 'constant' }));
  });

  it('is called with "inputs": []', async () => {
    const a = await postJson(url, 'constant', '{"id":"k","inputs":[]}');
    expect(a.status, a.text).toBe(200);
    expect(a.body).toEqual({ model_name: 'constant', model_version: '1', id: 'k', outputs: [{ name: 'answer', datatype: 'FP32', shape: [3], data: [4, 2, -0.5] }] });
    const meta = await send(url, { method: 'GET', path: '/v2/models/constant' });
    expect(meta.body.inputs).toEqual([]);
  });

  it('refuses an input it does not take, and a request without "inputs"', async () => {
    const extra = await postJson(url, 'constant', '{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1]}]}');
    expect(extra.status).toBe(400);
    expect(extra.body.error).toBe("unknown input 'x'; the model takes no inputs");
    const none = await postJson(url, 'constant', '{}');
    expect(none.status).toBe(400);
    expect(none.body.error).toMatch(/no 'inputs'/);
  });
});

describe('content types', () => {
  let url: string;
  beforeAll(async () => {
    url = await serve(() => handlerForModel(mlp.bytes, { MODEL_NAME: 'mlp' }));
  });

  it.each(['text/plain', 'text/plain; charset=utf-8', 'text/json', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/octet-stream'])(
    '%s: 415, whatever the body',
    async (type) => {
      const a = await postJson(url, 'mlp', validMlp, { 'Content-Type': type });
      expect(a.status, a.text).toBe(415);
      expect(a.body.error).toBe(`Content-Type ${type.split(';')[0]} is not supported; send the request as application/json`);
    },
  );

  it.each([
    ['application/json', { 'Content-Type': 'application/json' }],
    ['application/json with a charset', { 'Content-Type': 'application/json; charset=utf-8' }],
    ['a JSON-based type', { 'Content-Type': 'application/vnd.kserve+json' }],
    ['no Content-Type at all', {}],
  ])('%s: answered', async (_what, headers) => {
    expectMlpAnswer(await postJson(url, 'mlp', validMlp, headers));
  });
});

describe('a model that cannot load', () => {
  it('readiness and infer answers say what failed and give the request id, not the file nor onnxruntime’s words', async () => {
    const file = writeModel(truncatedModel());
    const logs = captureLogs();
    try {
      const url = await serve(() => createHandler({ MODEL_PATH: file, MODEL_NAME: 'broken' }));
      for (const route of ['/v2/health/ready', '/v2/models/broken/ready']) {
        const a = await send(url, { method: 'GET', path: route });
        expect(a.status).toBe(400);
        expect(a.body.ready).toBe(false);
        expect(a.body.error).toMatch(/^onnxruntime cannot load the model; the next attempt to load it is in 1 s \(request id [0-9a-f-]{36}\)$/);
        expect(a.text).not.toContain(path.dirname(file));
        expect(a.text).not.toMatch(/Protobuf|\.onnx|csi-test/);
      }
      const a = await postJson(url, 'broken', validMlp);
      expect(a.status).toBe(503);
      expect(a.headers['retry-after']).toBe('1');
      expect(a.body.error).toMatch(/^model 'broken' is not available: onnxruntime cannot load the model; the next attempt to load it is in 1 s \(request id [0-9a-f-]{36}\)$/);
      // The log has the file and onnxruntime's words, under the request id the answer gave.
      const id = /request id ([0-9a-f-]{36})/.exec(a.body.error)![1];
      expect(logs.lines().find((l) => l.requestId === id)).toMatchObject({ level: 'ERROR', detail: expect.stringContaining(`${file} failed:Protobuf parsing failed`) });
    } finally {
      logs.stop();
    }
  });
});
