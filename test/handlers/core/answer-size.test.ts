/**
 * Answers too large for the response limit: refused as soon as that is known, and never built
 * whole. json.ts's stringifyJsonWithin writes what JSON.stringify writes and gives up at its byte
 * limit; the handler counts an output's values against the limit before it builds the answer, and
 * writes a hook's answer with that writer; so a request whose answer is refused takes no more
 * memory than one of the same size whose answer fits.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import * as zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BoundedCompressor } from '../../../handlers/core/http/compression';
import { RawJsonNumber } from '../../../handlers/core/protocol/datatypes';
import { jsonEscapeBytes, stringifyJson, stringifyJsonWithin } from '../../../handlers/core/protocol/json';
import { constantOfShapeModel, matMulFp32Model, mlpModel } from '../../../tools/onnx';
import { functionUrlEvent, infer, restEvent } from '../../../fixtures/events';
import { inferenceHandlerDir } from '../../../lib/private/package-paths';
import { type LocalFunction, startLocalFunction } from '../../../tools/local-function';
import { createHandler, type Handler, handlerForModel, tempDir, writeModel } from '../../support/handler';

const LIMIT = 6_291_456;

/** A slice the writer and the counter take at once: a value's JSON is at most 25 characters and a comma. */
const SLICE_BYTES = 4096 * 26;

/**
 * An array of `length` floats (none of them stored) that records the highest index read: what a
 * writer that stops at its limit leaves unread, it never asked for.
 */
function virtualFloats(length: number): { array: number[]; highestRead: () => number } {
  let highest = -1;
  const target: number[] = [];
  target.length = length;
  const array = new Proxy(target, {
    get(t, key, receiver) {
      if (typeof key === 'string' && /^\d+$/.test(key)) {
        const i = Number(key);
        if (i < length) {
          highest = Math.max(highest, i);
          return Math.fround(Math.sin(i));
        }
      }
      return Reflect.get(t, key, receiver);
    },
    has(t, key) {
      return (typeof key === 'string' && /^\d+$/.test(key) && Number(key) < length) || Reflect.has(t, key);
    },
  });
  return { array, highestRead: () => highest };
}

describe('stringifyJsonWithin', () => {
  const long = 'x'.repeat(100_000);
  const SAMPLES: Array<[string, unknown]> = [
    ['a number', 1.5],
    ['a string to escape', 'a"b\\c\u0001\n'],
    ['null and booleans', [null, true, false]],
    ['values JSON skips or nulls, and holes', [1, undefined, () => 1, Symbol('s'), 'x', Object.assign(new Array(2), { 1: 2 }), { a: undefined, b: () => 1, c: Symbol('c') }]],
    [
      'toJSON, with the key it is given',
      { d: new Date(0), k: { toJSON: (key: string) => `key ${key}` }, rows: [{ toJSON: (key: string) => key }, { toJSON: (key: string) => key }] },
    ],
    ['boxed primitives', [new Number(3), new String('s'), Object(false)]],
    ['numbers JSON writes as null, and the longest ones', [Number.NaN, Number.POSITIVE_INFINITY, -0, 1e21, 1e-7, 1.2345678901234567e-6, -Number.MAX_VALUE]],
    ['a 64-bit integer past 2^53', { x: new RawJsonNumber('12345678901234567890'), y: [new RawJsonNumber('-9223372036854775808'), 1] }],
    ['non-ASCII text, a lone surrogate, a quoted key', { 'k"ey': 'é日本😀', lone: '\ud800x' }],
    ['long strings among short values', [long, 1, long, 'a"', long]],
    ['a flat output of 10 000 values and strings', Array.from({ length: 10_000 }, (_, i) => (i % 3 ? i / 7 : String(i)))],
    [
      'predictions in rows, and rows of objects',
      [Array.from({ length: 5000 }, (_, i) => [i, i / 3, null, true]), Array.from({ length: 2000 }, (_, i) => ({ a: [i, -i], b: 'é"\\' }))],
    ],
    ['an inference answer', { model_name: 'm', model_version: '1', outputs: [{ name: 'y', datatype: 'FP32', shape: [1, 3], data: [0.1, 0.25, 0.65] }] }],
  ];

  it.each(SAMPLES)('%s: writes what JSON.stringify writes', (_what, value) => {
    expect(stringifyJsonWithin(value, { maxBytes: 100 * 2 ** 20 })).toBe(stringifyJson(value));
  });

  it.each(SAMPLES)('%s: gives up exactly past the limit, counted as UTF-8, or as the text stands inside a JSON string', (_what, value) => {
    const text = stringifyJson(value)!;
    const bytes = Buffer.byteLength(text);
    // A buffered HTTP answer's body is a string in the JSON payload Lambda sends.
    const escaped = Buffer.byteLength(JSON.stringify(text)) - 2;
    expect(bytes + jsonEscapeBytes(text)).toBe(escaped);
    expect(stringifyJsonWithin(value, { maxBytes: bytes })).toBe(text);
    expect(stringifyJsonWithin(value, { maxBytes: bytes - 1 })).toBeUndefined();
    expect(stringifyJsonWithin(value, { maxBytes: escaped, escaped: true })).toBe(text);
    expect(stringifyJsonWithin(value, { maxBytes: escaped - 1, escaped: true })).toBeUndefined();
    expect(stringifyJsonWithin(value, { maxBytes: bytes, countOnly: true })).toBe('');
    expect(stringifyJsonWithin(value, { maxBytes: bytes - 1, countOnly: true })).toBeUndefined();
  });

  it('stops reading the value at the limit: of 5 million values, no more than the limit can hold', () => {
    const values = virtualFloats(5_000_000);
    const answer = { model_name: 'm', outputs: [{ name: 'y', datatype: 'FP32', shape: [5_000_000], data: values.array }] };
    expect(stringifyJsonWithin(answer, { maxBytes: LIMIT, escaped: true })).toBeUndefined();
    // Each value written takes at least two bytes (a digit and a comma); one slice is read ahead.
    expect(values.highestRead()).toBeGreaterThan(0);
    expect(values.highestRead()).toBeLessThan(LIMIT / 2 + 4096);
  });

  it('refuses a cycle and a BigInt as JSON.stringify does', () => {
    const cycle: { rows: unknown[] } = { rows: [1, 2] };
    cycle.rows.push(cycle);
    expect(() => stringifyJsonWithin(cycle, { maxBytes: LIMIT })).toThrow(TypeError);
    expect(() => stringifyJsonWithin({ n: 1n }, { maxBytes: LIMIT })).toThrow(TypeError);
  });

  it('counts what escaping adds to a text as JSON.stringify escapes it', () => {
    for (const text of ['a"\\b', '\u0001\n\t\b\f\r\u001f', '\ud800', '\udc00x', 'x\ud83d', '😀é', '\u2028']) {
      expect(jsonEscapeBytes(text), JSON.stringify(text)).toBe(Buffer.byteLength(JSON.stringify(text)) - 2 - Buffer.byteLength(text));
    }
  });
});

/** The mlp's request of `rows` rows of zeros (2 bytes of JSON each value), asking for one output. */
function zeros(rows: number, output: string): string {
  return `{"inputs":[{"name":"input","shape":[${rows},4],"datatype":"FP32","data":[${new Array(rows * 4).fill('0').join(',')}]}],"outputs":[{"name":"${output}"}]}`;
}

describe('a 5.6 MB request whose answer cannot fit (the mlp, 700 000 rows)', () => {
  const mlp = mlpModel({ inputs: 4, hidden: 16, classes: 3, seed: 4, label: true });
  const rows = 700_000;
  let modelPath: string;
  let handler: Handler;
  beforeAll(async () => {
    modelPath = writeModel(mlp.bytes);
    handler = await createHandler({ MODEL_PATH: modelPath });
  });

  it('is refused with a 422 once its values are counted past the limit, never written out (about 40 MB of JSON)', async () => {
    const r = await handler(restEvent('POST', '/v2/models/model/infer', zeros(rows, 'probabilities')));
    expect(r.statusCode, r.body.slice(0, 300)).toBe(422);
    const m =
      /^the answer has at least (\d+) bytes of JSON \(output 'probabilities' \[700000,3\]\), over the response limit of 6291456 bytes; ask for fewer values or fewer outputs$/.exec(
        JSON.parse(r.body).error,
      );
    expect(m, r.body).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThan(LIMIT);
    expect(Number(m![1])).toBeLessThanOrEqual(LIMIT + SLICE_BYTES);
  });

  it('while the same request for the labels (1.4 MB of JSON) is answered', async () => {
    const r = await handler(restEvent('POST', '/v2/models/model/infer', zeros(rows, 'label')));
    expect(r.statusCode, r.body.slice(0, 300)).toBe(200);
    const label = mlp.predictLabels([[0, 0, 0, 0]])[0];
    const answer = JSON.parse(r.body);
    expect(answer.outputs[0].shape).toEqual([rows]);
    expect(answer.outputs[0].data.every((v: number) => v === label)).toBe(true);
  });

  it('takes no more memory than the request whose answer fits: peak RSS of a fresh process for each', { timeout: 120_000 }, async () => {
    const script = path.join(tempDir('csi-answer-memory-'), 'one-request.mjs');
    fs.writeFileSync(
      script,
      `const [bundle, modelPath, body] = process.argv.slice(2);
const { createInferenceHandler } = await import(bundle);
const handler = await createInferenceHandler({ env: { MODEL_PATH: modelPath } });
await handler({ httpMethod: 'POST', path: '/v2/models/model/infer', requestContext: {}, headers: {}, body: '{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[0,0,0,0]}]}' });
const request = { httpMethod: 'POST', path: '/v2/models/model/infer', requestContext: {}, headers: {}, body: (await import('node:fs')).readFileSync(body, 'utf8') };
globalThis.gc();
const answer = await handler(request);
process.stdout.write(JSON.stringify({ status: answer.statusCode, peakBytes: process.resourceUsage().maxRSS * 1024 }));
`,
    );
    const bundle = pathToFileURL(path.resolve(__dirname, '../../../assets/handlers/core/index.mjs')).href;
    const peak = async (output: string) => {
      const body = path.join(path.dirname(script), `${output}.json`);
      fs.writeFileSync(body, zeros(rows, output));
      const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', script, bundle, modelPath, body], {
        env: { ...process.env, POWERTOOLS_LOG_LEVEL: 'SILENT', POWERTOOLS_METRICS_DISABLED: 'true' },
        timeout: 60_000,
      });
      return JSON.parse(stdout) as { status: number; peakBytes: number };
    };
    const fits = await peak('label');
    const refused = await peak('probabilities');
    expect(fits.status).toBe(200);
    expect(refused.status).toBe(422);
    // Measured: ~195 MiB for the labels, ~180 MiB for the refused request; writing the refused
    // answer whole, then again to size it, peaked at ~390 MiB.
    expect(refused.peakBytes).toBeLessThan(fits.peakBytes + 16 * 2 ** 20);
  });
});

/** The mlp's request of `rows` rows of small integers (0, 1 or 2: 2 bytes of JSON each value), asking for one output. */
function patterned(rows: number, output: string): { body: string; row: (i: number) => number[] } {
  const row = (i: number) => [i % 3, Math.floor(i / 3) % 3, Math.floor(i / 9) % 3, Math.floor(i / 27) % 3];
  const data = Array.from({ length: rows }, (_, i) => row(i).join(',')).join(',');
  return { body: `{"inputs":[{"name":"input","shape":[${rows},4],"datatype":"FP32","data":[${data}]}],"outputs":[{"name":"${output}"}]}`, row };
}

describe('a streamed answer of about 40 MB (the mlp, 700 000 rows), through the inference bundle as Lambda runs it', () => {
  const mlp = mlpModel({ inputs: 4, hidden: 16, classes: 3, seed: 4, label: true });
  const rows = 700_000;
  const request = patterned(rows, 'probabilities');
  let streamed: LocalFunction;
  let buffered: LocalFunction;
  beforeAll(() => {
    const environment = { MODEL_PATH: writeModel(mlp.bytes) };
    streamed = startLocalFunction({ codeDir: inferenceHandlerDir(), environment: { ...environment, RESPONSE_STREAMING: '1' } });
    buffered = startLocalFunction({ codeDir: inferenceHandlerDir(), environment });
  });
  afterAll(async () => {
    await Promise.all([streamed?.stop(), buffered?.stop()]);
  });

  const event = () => ({ ...functionUrlEvent('POST', '/v2/models/model/infer'), body: request.body });

  it("is sent whole when streamed (a function URL's RESPONSE_STREAM, API Gateway's STREAM): Lambda streams up to 200 MB", async () => {
    const answer = await streamed.invoke({ text: JSON.stringify(event()) });
    expect(answer.functionError).toBeUndefined();
    const bytes = Buffer.from(answer.payload as Buffer);
    const end = bytes.indexOf(Buffer.alloc(8));
    expect(JSON.parse(bytes.subarray(0, end).toString('utf8')).statusCode, bytes.subarray(end + 8, end + 300).toString()).toBe(200);
    expect(bytes.length - end - 8).toBeGreaterThan(5 * LIMIT);
    const output = JSON.parse(bytes.subarray(end + 8).toString('utf8')).outputs[0];
    expect(output.shape).toEqual([rows, 3]);
    // Every row against the model's plain-JS reference: 81 distinct inputs, each row in its place.
    const reference = new Map(Array.from({ length: 81 }, (_, i) => [i, mlp.predict([request.row(i)])[0]]));
    for (let i = 0; i < rows; i++) {
      const want = reference.get(i % 81)!;
      for (let k = 0; k < 3; k++) {
        if (Math.abs(output.data[i * 3 + k] - want[k]) > 1e-5) expect([i, k, output.data[i * 3 + k]]).toEqual([i, k, want[k]]);
      }
    }
  });

  it('is refused with a 422 when buffered, where Lambda would turn it into a 502', async () => {
    const answer = await buffered.invoke({ text: JSON.stringify(event()) });
    const http = JSON.parse(Buffer.from(answer.payload as Buffer).toString('utf8'));
    expect(http.statusCode).toBe(422);
    expect(JSON.parse(http.body).error).toMatch(/over the response limit of 6291456 bytes/);
  });
});

describe('the limit, to the byte, as Lambda counts an answer: the JSON of the whole HTTP answer', () => {
  const mlp = mlpModel({ inputs: 4, hidden: 8, classes: 3, seed: 21 });
  const rows = Array.from({ length: 50 }, (_, i) => [Math.sin(i), Math.cos(i), i / 50, 1]);
  const request = (binary: boolean) =>
    restEvent('POST', '/v2/models/model/infer', {
      id: 'quotes " and \\ backslashes',
      inputs: [{ name: 'input', shape: [rows.length, 4], datatype: 'FP32', data: rows.flat() }],
      ...(binary ? { parameters: { binary_data_output: true } } : {}),
    });

  it.each([
    ['a JSON answer (its body escaped in the payload)', false],
    ['a binary answer (its body base64)', true],
  ])('%s: sent at the limit, refused a byte under it', async (_what, binary) => {
    const modelPath = writeModel(mlp.bytes);
    const sent = await (await createHandler({ MODEL_PATH: modelPath })).call(undefined, request(binary));
    expect(sent.statusCode).toBe(200);
    expect(sent.isBase64Encoded).toBe(binary);
    const payload = Buffer.byteLength(JSON.stringify(sent));
    const atLimit = await createHandler({ MODEL_PATH: modelPath, MAX_RESPONSE_BYTES: String(payload) });
    expect(await atLimit(request(binary))).toEqual(sent);
    const under = await createHandler({ MODEL_PATH: modelPath, MAX_RESPONSE_BYTES: String(payload - 1) });
    const refused = await under(request(binary));
    expect(refused.statusCode, refused.body).toBe(422);
    expect(JSON.parse(refused.body).error).toMatch(
      new RegExp(`^the answer (takes more than the response limit of ${payload - 1} bytes|is ${payload} bytes, over the response limit of ${payload - 1} bytes); `),
    );
  });
});

describe("a hook's answer too large to send", () => {
  const mlp = mlpModel({ inputs: 4, hidden: 8, classes: 3, seed: 21 });
  let values: ReturnType<typeof virtualFloats>;
  let handler: Handler;
  beforeAll(async () => {
    handler = await createHandler(
      { MODEL_PATH: writeModel(mlp.bytes) },
      {
        postprocess: () => {
          // About 100 MB of JSON.
          values = virtualFloats(5_000_000);
          return { scores: values.array };
        },
      },
    );
  });
  const request = { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] };

  it('over HTTP: a 422, its values read no further than the limit holds', async () => {
    const r = await infer(handler, request);
    expect(r.status, r.text.slice(0, 300)).toBe(422);
    expect(r.body.error).toBe('the answer takes more than the response limit of 6291456 bytes; ask for fewer values or fewer outputs');
    expect(values.highestRead()).toBeLessThan(LIMIT / 2 + 4096);
  });

  it('over a direct invocation: the same, counted without being kept', async () => {
    await expect(handler(request)).rejects.toThrow('[422] the answer takes more than the response limit of 6291456 bytes');
    expect(values.highestRead()).toBeLessThan(LIMIT / 2 + 4096);
  });
});

describe('the instances form of an empty output with huge dimensions', () => {
  it('is refused on the arrays it would nest, before one is made', async () => {
    const handler = await handlerForModel(constantOfShapeModel().bytes);
    // ConstantOfShape makes an empty tensor of shape [3, 2000000, 0]: as predictions, 3 rows of 2
    // million empty arrays (with 2147483647 for 2000000, the process ran out of memory making them).
    const r = await infer(handler, { instances: [3, 2_000_000, 0] });
    expect(r.status, r.text.slice(0, 300)).toBe(422);
    expect(r.body.error).toBe(
      "the answer has at least 12000006 bytes of JSON (output 'filled' [3,2000000,0]), over the response limit of 6291456 bytes; ask for fewer values or fewer outputs",
    );
    const small = await infer(handler, { instances: [3, 1, 0] });
    expect(small.status, small.text).toBe(200);
    expect(small.body).toEqual({ predictions: [[[]], [[]], [[]]] });
  });
});

describe('BoundedCompressor', () => {
  // JSON-like text with characters of every UTF-8 length, cut into pieces across the segments, and bytes.
  const text = JSON.stringify({ data: Array.from({ length: 100_000 }, (_, i) => Math.fround(Math.sin(i))), s: 'é日本😀'.repeat(50_000) });
  const bytes = Buffer.from(new Float32Array(200_000).map((_, i) => i % 7).buffer);
  const whole = Buffer.concat([Buffer.from(text), bytes]);
  const compress = (coding: 'gzip' | 'deflate', maxBytes: number) => {
    const compressor = new BoundedCompressor(coding, maxBytes);
    let taken = true;
    for (let at = 0; at < text.length && taken; at += 70_001) taken = compressor.write(text.slice(at, at + 70_001));
    if (taken) taken = compressor.write(bytes);
    return { taken, output: compressor.end() };
  };

  it.each(['gzip', 'deflate'] as const)('%s: one stream that zlib reads back whole', (coding) => {
    const { output } = compress(coding, 100 * 2 ** 20);
    expect(output).toBeDefined();
    expect((coding === 'gzip' ? zlib.gunzipSync(output!) : zlib.inflateSync(output!)).equals(whole)).toBe(true);
    // Its segments cost little against one stream at the same level.
    const one = coding === 'gzip' ? zlib.gzipSync(whole, { level: 1 }) : zlib.deflateSync(whole, { level: 1 });
    expect(output!.length).toBeLessThan(one.length * 1.02);
  });

  it.each(['gzip', 'deflate'] as const)('%s: given up past its limit, to the byte', (coding) => {
    const size = compress(coding, 100 * 2 ** 20).output!.length;
    expect(compress(coding, size).output?.length).toBe(size);
    expect(compress(coding, size - 1).output).toBeUndefined();
    const small = compress(coding, 100_000);
    expect(small.taken).toBe(false);
    expect(small.output).toBeUndefined();
  });
});

describe("compressed answers (Accept-Encoding, as KServe's client asks by default)", () => {
  it('sends an answer over the limit uncompressed that fits compressed', async () => {
    const fill = constantOfShapeModel({ value: 1.5 });
    const handler = await handlerForModel(fill.bytes);
    // 1.6 million values of "1.5,": 6.4 MB of JSON, a few kB compressed.
    const request = (accept?: string) =>
      handler(
        restEvent(
          'POST',
          '/v2/models/model/infer',
          { inputs: [{ name: 'shape', datatype: 'INT64', shape: [2], data: [1600, 1000] }] },
          { headers: accept ? { 'Accept-Encoding': accept } : {} },
        ),
      );
    expect((await request()).statusCode).toBe(422);
    for (const coding of ['gzip', 'deflate']) {
      const r = await request(coding);
      expect(r.statusCode, r.body.slice(0, 300)).toBe(200);
      expect(r.headers['Content-Encoding']).toBe(coding);
      const body = Buffer.from(r.body, 'base64');
      expect(body.length).toBeLessThan(100_000);
      const answer = JSON.parse((coding === 'gzip' ? zlib.gunzipSync(body) : zlib.inflateSync(body)).toString('utf8'));
      expect(answer.outputs[0].shape).toEqual([1600, 1000]);
      expect(answer.outputs[0].data).toHaveLength(1_600_000);
      expect(answer.outputs[0].data.every((v: number) => v === 1.5)).toBe(true);
    }
  });

  it('refuses one too large even compressed (57 MB of JSON), once its compressed bytes pass the limit', async () => {
    const matmul = matMulFp32Model({ k: 4, n: 3000 });
    const handler = await handlerForModel(matmul.bytes);
    const x = matmul.sampleInput(1000);
    for (const coding of ['gzip', 'deflate']) {
      const r = await infer(handler, { inputs: [{ name: 'x', datatype: 'FP32', shape: [1000, 4], data: x.values }] }, 'model', { headers: { 'Accept-Encoding': coding } });
      expect(r.status, r.text.slice(0, 300)).toBe(422);
      expect(r.headers['Content-Encoding']).toBeUndefined();
      expect(r.body.error).toBe(`the answer, compressed in ${coding}, takes more than the response limit of 6291456 bytes; ask for fewer values or fewer outputs`);
    }
  });

  it("writes a hook's answer only as far as its compressed bytes fit", async () => {
    let values: ReturnType<typeof virtualFloats> | undefined;
    const handler = await createHandler(
      { MODEL_PATH: writeModel(mlpModel({ inputs: 4, hidden: 8, classes: 3, seed: 21 }).bytes) },
      {
        postprocess: () => {
          values = virtualFloats(5_000_000);
          return { scores: values.array };
        },
      },
    );
    const r = await infer(handler, { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] }, 'model', { headers: { 'Accept-Encoding': 'gzip' } });
    expect(r.status, r.text.slice(0, 300)).toBe(422);
    expect(r.body.error).toBe('the answer, compressed in gzip, takes more than the response limit of 6291456 bytes; ask for fewer values or fewer outputs');
    // About 100 MB of JSON, which compresses about 2.5 times: a fraction of it is written.
    expect(values!.highestRead()).toBeLessThan(2_500_000);
  });
});
