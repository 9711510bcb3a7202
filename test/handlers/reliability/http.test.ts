/**
 * Requests a caller can make, built by hand and sent over real HTTP to the bundled handler behind
 * the library's local server, against real onnxruntime and models made by tools/onnx. None of them
 * may get a 5xx (each would raise the server-error alarm, and could roll back a good deployment),
 * hang, or take the instance down: after each, the next valid request is answered as before.
 *
 * - nesting deeper than any request needs, anywhere in the body: a 400 naming where;
 * - values onnxruntime refuses while the model runs: a 422 naming the inputs, without onnxruntime's
 *   source paths (those are logged);
 * - "toString" and other inherited names where "NaN" or "Infinity" may stand: a 400;
 * - answers that cannot fit the response limit, sized by the request's values: a 422 before the
 *   answer is built;
 * - a model without inputs, called with `"inputs": []`;
 * - content types other than JSON: a 415;
 * - a model that cannot load: readiness and errors say what failed, not where.
 */
import * as path from 'node:path';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningInferenceServer } from '../../../lib/local/inference-server';
import { castStringModel, constantModel, constantOfShapeModel, gatherModel, reshapeModel, truncatedModel, wideningModel } from '../../../tools/onnx';
import { type Handler, createHandler, handlerForModel, writeModel } from '../../support/handler';
import { type HttpAnswer, postJson, send, serveOverHttp } from '../../support/http';
import { captureLogs, withLogLevel } from '../../support/logs';
import { INHERITED_NAMES, answerMismatch, mlpUnderTest, render } from '../../support/reliability-requests';

/** A full garbage collection, so that what is still resident is what something keeps. */
function collectGarbage(): void {
  v8.setFlagsFromString('--expose-gc');
  (vm.runInNewContext('gc') as () => void)();
}

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

/** What reads as the server's own: onnxruntime's source paths and internals, the tests' temporary paths. */
const SERVER_DETAIL = /onnxruntime_src|\/onnxruntime\/|\.(?:cc|cpp|h|hpp):\d+|onnxruntime::|csi-test/;

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

describe('values onnxruntime refuses while the model runs', () => {
  const urls: Record<string, string> = {};
  beforeAll(async () => {
    urls.reshape = await serve(() => handlerForModel(reshapeModel().bytes, { MODEL_NAME: 'reshape' }));
    urls.cast = await serve(() => handlerForModel(castStringModel().bytes, { MODEL_NAME: 'cast' }));
    urls.fill = await serve(() => handlerForModel(constantOfShapeModel().bytes, { MODEL_NAME: 'fill' }));
    urls.gather = await serve(() => handlerForModel(gatherModel().bytes, { MODEL_NAME: 'gather' }));
  });

  const reshape = (dims: string) => `{"inputs":[{"name":"x","datatype":"FP32","shape":[4],"data":[1,2,3,4]},{"name":"shape","datatype":"INT64","shape":[2],"data":${dims}}]}`;
  const fill = (dims: string, rank: number) => `{"inputs":[{"name":"shape","datatype":"INT64","shape":[${rank}],"data":${dims}}]}`;
  const cases: Array<[string, string, string, string, string]> = [
    [
      'a negative dimension for Reshape',
      'reshape',
      reshape('[-5,2]'),
      "inputs 'x', 'shape': its Reshape node refused them (A dimension cannot be less than -1, got -5)",
      reshape('[2,2]'),
    ],
    ['a shape Reshape cannot give', 'reshape', reshape('[3,3]'), "inputs 'x', 'shape': its Reshape node refused them (The input tensor cannot be reshaped", reshape('[-1,1]')],
    [
      'a string Cast cannot parse',
      'cast',
      '{"inputs":[{"name":"text","datatype":"BYTES","shape":[2],"data":["1.5","abc"]}]}',
      "input 'text': its Cast node refused them (a string that is not a number)",
      '{"inputs":[{"name":"text","datatype":"BYTES","shape":[1],"data":["2.5"]}]}',
    ],
    ['a negative dimension for ConstantOfShape', 'fill', fill('[-1,2]', 2), "input 'shape': its ConstantOfShape node refused them", fill('[2,3]', 2)],
    ['the largest int64 as a dimension', 'fill', fill('["9223372036854775807"]', 1), "input 'shape': its ConstantOfShape node refused them", fill('[2]', 1)],
    ['the smallest int64 as a dimension', 'fill', fill('["-9223372036854775808","1"]', 2), "input 'shape': its ConstantOfShape node refused them", fill('[1,1]', 2)],
    [
      'dimensions whose product overflows',
      'fill',
      fill('["4611686018427387904","4611686018427387904"]', 2),
      "input 'shape': its ConstantOfShape node refused them (Integer overflow)",
      fill('[3]', 1),
    ],
    ['a size no memory holds', 'fill', fill('[100000,100000,100000]', 3), "input 'shape': its ConstantOfShape node refused them", fill('[0,5]', 2)],
    [
      'an index outside the table',
      'gather',
      '{"inputs":[{"name":"idx","datatype":"INT64","shape":[1],"data":[10]}]}',
      "input 'idx': its Gather node refused them (indices element out of data bounds",
      '{"inputs":[{"name":"idx","datatype":"INT64","shape":[2],"data":[3,0]}]}',
    ],
  ];

  it.each(cases)('%s: a 422 naming the input, no server path; the full message in the log', async (_what, model, body, says, valid) => {
    const logs = captureLogs();
    let a: HttpAnswer;
    try {
      a = await postJson(urls[model], model, body);
    } finally {
      logs.stop();
    }
    expect(a.status, a.text).toBe(422);
    expect(a.body.error).toContain(`the model cannot compute an answer from the values of ${says}`);
    expect(a.body.error).toMatch(/ \(request id [\w-]+\)$/);
    expect(a.text).not.toMatch(SERVER_DETAIL);
    const refused = logs.lines().find((l) => l.message === 'request refused');
    expect(refused).toMatchObject({ level: 'WARN', status: 422, detail: expect.stringContaining('Non-zero status code returned while running') });
    expect(a.body.error).toContain(`(request id ${refused.requestId})`);

    const after = await postJson(urls[model], model, valid);
    expect(after.status, after.text).toBe(200);
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

describe('answers that cannot fit the response limit', () => {
  const fill = constantOfShapeModel({ value: 1.5 });
  const widening = wideningModel({ width: 1000 });
  const urls: Record<string, string> = {};
  beforeAll(async () => {
    urls.fill = await serve(() => handlerForModel(fill.bytes, { MODEL_NAME: 'fill' }));
    urls.widening = await serve(() => handlerForModel(widening.bytes, { MODEL_NAME: 'widening' }));
  });
  const shapeRequest = (dims: number[]) => JSON.stringify({ inputs: [{ name: 'shape', datatype: 'INT64', shape: [dims.length], data: dims }] });
  const expectFilled = async (dims: number[]) => {
    const a = await postJson(urls.fill, 'fill', shapeRequest(dims));
    expect(a.status, a.text.slice(0, 300)).toBe(200);
    expect(a.body.outputs[0].shape).toEqual(dims);
    expect(a.body.outputs[0].data).toEqual(new Array(dims.reduce((x, y) => x * y, 1)).fill(fill.value));
    return a;
  };

  it('a 90-byte request for 100 million values: a 422 in seconds, and the instance serves the next request with its memory back', { timeout: 60_000 }, async () => {
    const request = shapeRequest([10_000, 10_000]);
    expect(request.length).toBeLessThan(100);
    const before = process.memoryUsage().rss;
    const a = await postJson(urls.fill, 'fill', request);
    expect(a.status, a.text).toBe(422);
    expect(a.body.error).toBe(
      "the answer has at least 200000000 bytes of JSON (output 'filled' [10000,10000]), over the response limit of 6291456 bytes; ask for fewer values or fewer outputs",
    );
    expect(a.ms).toBeLessThan(10_000);
    await expectFilled([2, 3]);
    // onnxruntime's tensor (400 MB) and its copy are gone: no arena keeps them.
    collectGarbage();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(process.memoryUsage().rss - before).toBeLessThan(300 * 2 ** 20);
  });

  it('an answer whose values fit but whose JSON does not: a 422 once its JSON is counted past the limit, never a 6 MB+ answer', async () => {
    // 1.6 million values of "1.5,": at least 3.2 MB by the count, 6.4 MB once written.
    const a = await postJson(urls.fill, 'fill', shapeRequest([1600, 1000]));
    expect(a.status, a.text.slice(0, 300)).toBe(422);
    const m =
      /^the answer has at least (\d+) bytes of JSON \(output 'filled' \[1600,1000\]\), over the response limit of 6291456 bytes; ask for fewer values or fewer outputs$/.exec(
        a.body.error,
      );
    expect(m, a.body.error).not.toBeNull();
    // Counted up to the limit, not to the end: the rest of the values were never written.
    expect(Number(m![1])).toBeGreaterThan(6_291_456);
    expect(Number(m![1])).toBeLessThan(6_400_000);
    // A million of them fit, and are answered.
    const fits = await expectFilled([1000, 1000]);
    expect(fits.text.length).toBeGreaterThan(4_000_000);
  });

  it('an output whose declared shape the request fixes: refused before the model runs', async () => {
    const batch = 4000;
    const a = await postJson(urls.widening, 'widening', JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [batch, 1], data: new Array(batch).fill(2) }] }));
    expect(a.status, a.text.slice(0, 300)).toBe(422);
    expect(a.body.error).toBe(
      "the answer would have at least 8000000 bytes of JSON (output 'y' [4000,1000]), over the response limit of 6291456 bytes; ask for fewer values or fewer outputs",
    );
    const small = await postJson(urls.widening, 'widening', JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 1], data: [2, 3] }] }));
    expect(small.status).toBe(200);
    expect(small.body.outputs[0].data).toEqual([...new Array(1000).fill(2), ...new Array(1000).fill(3)]);
  });

  it('the instances form for an output that does not come in rows: a 400, not a 500', async () => {
    const a = await postJson(urls.fill, 'fill', '{"instances":[5,1]}');
    expect(a.status, a.text).toBe(400);
    expect(a.body.error).toBe("output 'filled' has shape [5,1], which cannot be split into 2 predictions: use 'inputs' (Open Inference Protocol)");
    // 40 instances whose answer has 40 dimensions: predictions nested 40 deep, refused.
    const deep = await postJson(urls.fill, 'fill', JSON.stringify({ instances: [40, ...new Array(38).fill(1), 0] }));
    expect(deep.status, deep.text.slice(0, 300)).toBe(400);
    expect(deep.body.error).toMatch(/^output 'filled' has shape \[40,1,.*,0\], which cannot be split into 40 predictions/);
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

  it.each(['text/plain', 'text/plain; charset=utf-8', 'text/json', 'multipart/form-data; boundary=x', 'application/octet-stream'])('%s: 415, whatever the body', async (type) => {
    const a = await postJson(url, 'mlp', validMlp, { 'Content-Type': type });
    expect(a.status, a.text).toBe(415);
    expect(a.body.error).toBe(`Content-Type ${type.split(';')[0]} is not supported; send the request as application/json`);
  });

  it.each([
    ['application/json', { 'Content-Type': 'application/json' }],
    ['application/json with a charset', { 'Content-Type': 'application/json; charset=utf-8' }],
    ['a JSON-based type', { 'Content-Type': 'application/vnd.kserve+json' }],
    ['no Content-Type at all', {}],
    ['a form type (what curl -d sends) with a JSON body', { 'Content-Type': 'application/x-www-form-urlencoded' }],
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
