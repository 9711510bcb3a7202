/**
 * MAX_BODY_BYTES at its exact edge: a body of the limit's size is read, one byte more is a 413,
 * however the body comes (text, base64, base64 with line breaks, gzip or deflate). The other tests
 * send bodies far past the limit, where a limit off by one would pass them too.
 */
import * as zlib from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { httpApiEvent } from '../../../../fixtures/events';
import { logisticRegressionModel } from '../../../../tools/onnx';
import { type Handler, handlerForModel } from '../../../support/handler';

const MAX_BODY_BYTES = 20_000;
const lr = logisticRegressionModel({ features: 100, seed: 11 });
const row = Array.from({ length: 100 }, (_, i) => Math.fround(Math.cos(i) / 3));
const expected = lr.predict([row])[0];
const json = Buffer.from(JSON.stringify({ inputs: [{ name: 'features', shape: [1, 100], datatype: 'FP32', data: row }] }));

/** The infer request, padded with trailing white space (still the same JSON) to `size` bytes. */
function padded(size: number): Buffer {
  expect(json.length).toBeLessThan(size);
  return Buffer.concat([json, Buffer.alloc(size - json.length, 0x20)]);
}

function event(body: string, isBase64Encoded: boolean, headers: Record<string, string> = {}) {
  const e = httpApiEvent('POST', '/v2/models/model/infer', undefined, { headers });
  return { ...e, body, isBase64Encoded };
}

/** Base64 in lines of 76 characters, as MIME writes it: not the decoder's fast path. */
function base64Lines(bytes: Buffer): string {
  return (bytes.toString('base64').match(/.{1,76}/g) ?? []).join('\r\n');
}

const BODIES: Array<[string, (bytes: Buffer) => ReturnType<typeof event>]> = [
  ['text', (b) => event(b.toString('utf8'), false)],
  ['base64', (b) => event(b.toString('base64'), true)],
  ['base64 in lines', (b) => event(base64Lines(b), true)],
  ['gzip', (b) => event(zlib.gzipSync(b).toString('base64'), true, { 'Content-Encoding': 'gzip' })],
  ['deflate', (b) => event(zlib.deflateSync(b).toString('base64'), true, { 'Content-Encoding': 'deflate' })],
  ['raw deflate', (b) => event(zlib.deflateRawSync(b).toString('base64'), true, { 'Content-Encoding': 'deflate' })],
];

describe('MAX_BODY_BYTES at its edge', () => {
  let handler: Handler;
  beforeAll(async () => {
    handler = await handlerForModel(lr.bytes, { MAX_BODY_BYTES: String(MAX_BODY_BYTES) });
  });

  it.each(BODIES)('%s: a body of exactly the limit is read, one byte more is a 413', async (_how, make) => {
    const at = await handler(make(padded(MAX_BODY_BYTES)));
    expect(at.statusCode, at.body).toBe(200);
    expect(JSON.parse(at.body).outputs[0].data[0]).toBeCloseTo(expected, 6);

    const over = await handler(make(padded(MAX_BODY_BYTES + 1)));
    expect(over.statusCode, over.body).toBe(413);
    expect(JSON.parse(over.body).error).toMatch(new RegExp(`the limit is ${MAX_BODY_BYTES} bytes`));
  });
});
