/**
 * Compressed requests (`Content-Encoding: gzip` or `deflate`) and compressed answers
 * (`Accept-Encoding`), as Triton's client sends and asks for them with its
 * `request_compression_algorithm` and `response_compression_algorithm`. Bodies are compressed and
 * answers decompressed here with node:zlib directly, over every event shape.
 */
import * as zlib from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { logisticRegressionModel } from '../../../../tools/onnx';
import { functionUrlEvent, httpApiEvent, restEvent } from '../../../../fixtures/events';
import { type Handler, handlerForModel } from '../../../support/handler';

const HEADER = 'Inference-Header-Content-Length';
const MAX_BODY_BYTES = 200_000;
const lr = logisticRegressionModel({ features: 100, seed: 7 });
const row = Array.from({ length: 100 }, (_, i) => Math.fround(Math.sin(i) / 2));
const expected = lr.predict([row])[0];
const request = { inputs: [{ name: 'features', shape: [1, 100], datatype: 'FP32', data: row }] };
const json = Buffer.from(JSON.stringify(request));

type Shape = 'rest' | 'http-api' | 'function-url';
const SHAPES: Shape[] = ['rest', 'http-api', 'function-url'];

/** An infer event whose body is `bytes`, base64-encoded as every front passes a binary body. */
function bytesEvent(shape: Shape, bytes: Buffer, headers: Record<string, string>) {
  const make = shape === 'rest' ? restEvent : shape === 'http-api' ? httpApiEvent : functionUrlEvent;
  const e = make('POST', '/v2/models/model/infer', undefined, { headers });
  // The helpers add a JSON Content-Type; these requests name their own, or none (as Triton's client).
  const named = Object.keys(headers).some((k) => k.toLowerCase() === 'content-type');
  const own = Object.fromEntries(Object.entries(e.headers).filter(([k]) => named || k.toLowerCase() !== 'content-type'));
  return { ...e, headers: own, body: bytes.toString('base64'), isBase64Encoded: true };
}

/** The answer's body as bytes, decompressed as its Content-Encoding says. */
function answerBytes(r: any): Buffer {
  const body = Buffer.from(r.body, r.isBase64Encoded ? 'base64' : 'utf8');
  const coding = r.headers['Content-Encoding'];
  return coding === 'gzip' ? zlib.gunzipSync(body) : coding === 'deflate' ? zlib.inflateSync(body) : body;
}

function answerJson(r: any): any {
  return JSON.parse(answerBytes(r).toString('utf8'));
}

describe('compressed requests', () => {
  let handler: Handler;
  beforeAll(async () => {
    handler = await handlerForModel(lr.bytes, { MAX_BODY_BYTES: String(MAX_BODY_BYTES) });
  });

  const codings: Array<[string, string, (b: Buffer) => Buffer]> = [
    ['gzip', 'gzip', zlib.gzipSync],
    ['x-gzip', 'x-gzip', zlib.gzipSync],
    ['deflate (zlib)', 'deflate', zlib.deflateSync],
    ['deflate (raw, as some clients send it)', 'deflate', zlib.deflateRawSync],
  ];
  for (const shape of SHAPES) {
    it.each(codings)(`${shape}: a JSON body in %s, without a Content-Type`, async (_name, coding, compress) => {
      const r = await handler(bytesEvent(shape, compress(json), { 'Content-Encoding': coding }));
      expect(r.statusCode, r.body).toBe(200);
      expect(answerJson(r).outputs[0].data[0]).toBeCloseTo(expected, 6);
    });
  }

  it.each(SHAPES)('%s: binary tensor data in gzip, the header giving the uncompressed JSON length', async (shape) => {
    const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'features', shape: [1, 100], datatype: 'FP32', parameters: { binary_data_size: 400 } }] }));
    const body = Buffer.concat([header, Buffer.from(Float32Array.from(row).buffer)]);
    const r = await handler(bytesEvent(shape, zlib.gzipSync(body), { 'Content-Encoding': 'gzip', [HEADER]: String(header.length) }));
    expect(r.statusCode, r.body).toBe(200);
    expect(answerJson(r).outputs[0].data[0]).toBeCloseTo(expected, 6);
  });

  it('stops a body that inflates past MAX_BODY_BYTES at the limit, with a 413 that names it', async () => {
    // 64 MB of zeros in 64 KB: never inflated whole.
    const bomb = zlib.gzipSync(Buffer.alloc(64 * 1024 * 1024), { level: 9 });
    expect(bomb.length).toBeLessThan(MAX_BODY_BYTES);
    const before = process.memoryUsage().arrayBuffers;
    for (const [coding, body] of [
      ['gzip', bomb],
      ['deflate', zlib.deflateSync(Buffer.alloc(64 * 1024 * 1024), { level: 9 })],
    ] as const) {
      const r = await handler(bytesEvent('rest', body, { 'Content-Encoding': coding }));
      expect(r.statusCode).toBe(413);
      expect(JSON.parse(r.body).error).toBe(
        `the request body decompresses (Content-Encoding: ${coding}) to more than ${MAX_BODY_BYTES} bytes; the limit is ${MAX_BODY_BYTES} bytes`,
      );
    }
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(32 * 1024 * 1024);
  });

  it('holds a compressed body to MAX_BODY_BYTES too', async () => {
    const big = Buffer.alloc(MAX_BODY_BYTES + 100, 1);
    const r = await handler(bytesEvent('http-api', big, { 'Content-Encoding': 'gzip' }));
    expect(r.statusCode).toBe(413);
    expect(JSON.parse(r.body).error).toMatch(/the limit is 200000 bytes/);
  });

  it('answers 400 for a body that is not in the coding it names', async () => {
    const r = await handler(bytesEvent('rest', Buffer.from([0x1f, 0x8b, 1, 2, 3, 4, 5]), { 'Content-Encoding': 'gzip' }));
    expect(r.statusCode).toBe(400);
    expect(JSON.parse(r.body).error).toMatch(/^the request body is not valid gzip data \(Content-Encoding: gzip\): /);
    const cut = zlib.deflateSync(json).subarray(0, 40);
    const d = await handler(bytesEvent('rest', cut, { 'Content-Encoding': 'deflate' }));
    expect(d.statusCode).toBe(400);
    expect(JSON.parse(d.body).error).toMatch(/^the request body is not valid deflate data/);
  });

  it('answers 415 for a coding it does not read, or codings on top of each other', async () => {
    for (const coding of ['br', 'compress', 'gzip, deflate']) {
      const r = await handler(bytesEvent('rest', zlib.gzipSync(json), { 'Content-Encoding': coding }));
      expect(r.statusCode, coding).toBe(415);
      expect(JSON.parse(r.body).error).toMatch(/is not supported; send the body uncompressed, or compressed once as gzip or deflate/);
    }
  });

  it('reads identity as no coding, and a body already decompressed on the way (API Gateway does so) as it is', async () => {
    for (const coding of ['identity', 'gzip', 'deflate']) {
      const r = await handler(bytesEvent('rest', json, { 'Content-Type': 'application/json', 'Content-Encoding': coding }));
      expect(r.statusCode, coding).toBe(200);
      expect(answerJson(r).outputs[0].data[0]).toBeCloseTo(expected, 6);
    }
  });

  it('answers 415 for a compressed body that reached the function as text, its bytes replaced', async () => {
    const e = bytesEvent('function-url', zlib.gzipSync(json), { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' });
    const r = await handler({ ...e, body: zlib.gzipSync(json).toString('utf8'), isBase64Encoded: false });
    expect(r.statusCode).toBe(415);
    expect(JSON.parse(r.body).error).toMatch(/^the request body \(Content-Encoding: gzip\) reached the function as text.*Content-Type application\/json/);
  });
});

describe('compressed answers', () => {
  let handler: Handler;
  beforeAll(async () => {
    handler = await handlerForModel(lr.bytes);
  });

  const infer = (shape: Shape, accept: string | undefined, body: unknown = request) =>
    handler(bytesEvent(shape, Buffer.from(JSON.stringify(body)), { 'Content-Type': 'application/json', ...(accept === undefined ? {} : { 'Accept-Encoding': accept }) }));

  const negotiated: Array<[string | undefined, string | undefined]> = [
    [undefined, undefined],
    ['gzip', 'gzip'],
    ['deflate', 'deflate'],
    ['gzip, deflate, br', 'gzip'],
    ['deflate;q=1, gzip;q=0.5', 'deflate'],
    ['br', undefined],
    ['identity', undefined],
    ['gzip;q=0', undefined],
    ['*', 'gzip'],
    ['gzip;q=0, *', 'deflate'],
    ['GZIP', 'gzip'],
  ];
  for (const shape of SHAPES) {
    it.each(negotiated)(`${shape}: Accept-Encoding %s answers %s`, async (accept, coding) => {
      const r = await infer(shape, accept);
      expect(r.statusCode).toBe(200);
      expect(r.headers['Content-Encoding']).toBe(coding);
      if (coding !== undefined) {
        expect(r.isBase64Encoded).toBe(true);
        expect(r.headers.Vary).toBe('Accept-Encoding');
        expect(r.headers['Content-Type']).toBe('application/json');
      }
      expect(answerJson(r).outputs[0].data[0]).toBeCloseTo(expected, 6);
    });
  }

  it('compresses a binary answer whole, its JSON header length that of the uncompressed body', async () => {
    const r = await infer('rest', 'gzip', { ...request, parameters: { binary_data_output: true } });
    expect(r.headers['Content-Encoding']).toBe('gzip');
    expect(r.headers['Content-Type']).toBe('application/octet-stream');
    const body = answerBytes(r);
    const n = Number(r.headers[HEADER]);
    expect(JSON.parse(body.subarray(0, n).toString('utf8')).outputs[0].parameters.binary_data_size).toBe(4);
    expect(body.length).toBe(n + 4);
    expect(body.readFloatLE(n)).toBeCloseTo(expected, 6);
  });

  it("answers errors and the other routes uncompressed, as Triton's client reads them", async () => {
    const bad = await infer('rest', 'gzip', { inputs: [] });
    expect(bad.statusCode).toBe(400);
    expect(bad.headers['Content-Encoding']).toBeUndefined();
    expect(JSON.parse(bad.body).error).toMatch(/non-empty array/);
    const metadata = await handler(restEvent('GET', '/v2/models/model', undefined, { headers: { 'Accept-Encoding': 'gzip' } }));
    expect(metadata.statusCode).toBe(200);
    expect(metadata.headers['Content-Encoding']).toBeUndefined();
    expect(JSON.parse(metadata.body).name).toBe('model');
  });
});
