/**
 * The Open Inference Protocol's binary tensor data extension, as Triton's and KServe's documents
 * define it (docs/protocol/extension_binary_data.md): a JSON header of the length given by
 * `Inference-Header-Content-Length`, then each binary input's bytes in the order of the inputs,
 * little-endian, row major; BOOL one byte (0 or 1); BYTES a 4-byte little-endian length then the
 * bytes. Every request here is assembled by hand with Buffer.concat and typed arrays, and every
 * answer taken apart the same way: nothing of the handler's own encoding is used.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { buildOnnxModel, logisticRegressionModel, multiIoModel } from '../../../../tools/onnx';
import { functionUrlEvent, httpApiEvent, restEvent } from '../../../../fixtures/events';
import { createHandler, type Handler, handlerForModel, writeModel } from '../../../support/handler';

const HEADER = 'Inference-Header-Content-Length';
const OCTET = 'application/octet-stream';

/** The bytes of a typed array, as they lie in memory (little-endian on every machine this runs on). */
function raw(a: ArrayBufferView): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

/** BYTES elements: each a 4-byte little-endian length, then its UTF-8 bytes. */
function byteStrings(...items: string[]): Buffer {
  return Buffer.concat(
    items.flatMap((s) => {
      const text = Buffer.from(s, 'utf8');
      const length = Buffer.alloc(4);
      length.writeUInt32LE(text.length);
      return [length, text];
    }),
  );
}

interface Framed {
  readonly body: Buffer;
  readonly headerLength: number;
}

/** A JSON header followed by the given bytes. */
function framed(header: unknown, ...tensors: Buffer[]): Framed {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  return { body: Buffer.concat([json, ...tensors]), headerLength: json.length };
}

type Shape = 'rest' | 'http-api' | 'function-url';
const SHAPES: Shape[] = ['rest', 'http-api', 'function-url'];

/** An infer request event carrying a binary body, base64-encoded as API Gateway and Function URLs pass it. */
function binaryEvent(shape: Shape, f: Framed, headers: Record<string, string> = {}) {
  const path = '/v2/models/model/infer';
  const all = { 'Content-Type': OCTET, [HEADER]: String(f.headerLength), ...headers };
  const base =
    shape === 'rest'
      ? restEvent('POST', path, undefined, { headers: all })
      : shape === 'http-api'
        ? httpApiEvent('POST', path, undefined, { headers: all })
        : functionUrlEvent('POST', path, undefined, { headers: all });
  return { ...base, body: f.body.toString('base64'), isBase64Encoded: true };
}

interface BinaryAnswer {
  readonly status: number;
  readonly headers: Record<string, string>;
  /** The JSON (the whole body, or the header of a binary one). */
  readonly json: any;
  /** Each output's bytes, by name, cut from after the JSON header by its binary_data_size. */
  readonly bytes: Map<string, Buffer>;
  readonly isBase64Encoded: boolean;
}

/** Takes the handler's answer apart: the JSON header, then each binary output's bytes in the order of the outputs. */
function readAnswer(r: any): BinaryAnswer {
  if (!r.isBase64Encoded) {
    return { status: r.statusCode, headers: r.headers, json: JSON.parse(r.body), bytes: new Map(), isBase64Encoded: false };
  }
  const body = Buffer.from(r.body, 'base64');
  const length = Number(r.headers[HEADER]);
  const json = JSON.parse(body.subarray(0, length).toString('utf8'));
  const bytes = new Map<string, Buffer>();
  let at = length;
  for (const o of json.outputs) {
    const size = o.parameters?.binary_data_size;
    if (size === undefined) continue;
    bytes.set(o.name, body.subarray(at, at + size));
    at += size;
  }
  expect(at, 'the binary outputs take the whole rest of the body').toBe(body.length);
  return { status: r.statusCode, headers: r.headers, json, bytes, isBase64Encoded: true };
}

/** Float32 values of a binary output (copied: the bytes need not be 4-aligned in the body). */
function float32s(b: Buffer): number[] {
  return Array.from(new Float32Array(Uint8Array.from(b).buffer));
}

function int64s(b: Buffer): bigint[] {
  return Array.from(new BigInt64Array(Uint8Array.from(b).buffer));
}

function uint16s(b: Buffer): number[] {
  return Array.from(new Uint16Array(Uint8Array.from(b).buffer));
}

/** BYTES elements read back: 4-byte little-endian lengths and their bytes. */
function readByteStrings(b: Buffer): string[] {
  const out: string[] = [];
  for (let at = 0; at < b.length; ) {
    const n = b.readUInt32LE(at);
    out.push(b.subarray(at + 4, at + 4 + n).toString('utf8'));
    at += 4 + n;
  }
  return out;
}

const lr = logisticRegressionModel({ features: 100, seed: 7 });

function rows(n: number, width: number, seed = 1): number[][] {
  let x = seed;
  return Array.from({ length: n }, () =>
    Array.from({ length: width }, () => {
      x = (x * 1103515245 + 12345) % 2 ** 31;
      return Math.fround((x / 2 ** 31) * 2 - 1);
    }),
  );
}

describe('binary tensor data extension, FP32 (logistic regression, 100 features)', () => {
  let handler: Handler;
  beforeAll(async () => {
    handler = await handlerForModel(lr.bytes, { MAX_BODY_BYTES: '200000' });
  });

  const batch = rows(4, 100);
  const request = () => framed({ inputs: [{ name: 'features', shape: [4, 100], datatype: 'FP32', parameters: { binary_data_size: 1600 } }] }, raw(Float32Array.from(batch.flat())));

  it.each(SHAPES)('%s: reads a binary FP32 input and answers JSON when no binary output is asked for', async (shape) => {
    const a = readAnswer(await handler(binaryEvent(shape, request())));
    expect(a.status, JSON.stringify(a.json)).toBe(200);
    expect(a.isBase64Encoded).toBe(false);
    expect(a.headers['Content-Type']).toBe('application/json');
    expect(a.json.outputs[0].shape).toEqual([4, 1]);
    const expected = lr.predict(batch);
    a.json.outputs[0].data.forEach((v: number, i: number) => {
      expect(v).toBeCloseTo(expected[i], 6);
    });
  });

  it.each(SHAPES)('%s: answers every output in binary with "binary_data_output": true, base64-encoded', async (shape) => {
    const f = framed(
      { inputs: [{ name: 'features', shape: [4, 100], datatype: 'FP32', parameters: { binary_data_size: 1600 } }], parameters: { binary_data_output: true } },
      raw(Float32Array.from(batch.flat())),
    );
    const r = await handler(binaryEvent(shape, f));
    const a = readAnswer(r);
    expect(a.status).toBe(200);
    expect(a.isBase64Encoded).toBe(true);
    expect(a.headers['Content-Type']).toBe(OCTET);
    expect(a.json.outputs[0]).toEqual({ name: 'probability', datatype: 'FP32', shape: [4, 1], parameters: { binary_data_size: 16 } });
    const expected = lr.predict(batch);
    float32s(a.bytes.get('probability')!).forEach((v, i) => {
      expect(v).toBeCloseTo(expected[i], 6);
    });
  });

  it('answers in binary a plain JSON request that asks for it', async () => {
    const r = await handler(
      restEvent('POST', '/v2/models/model/infer', {
        inputs: [{ name: 'features', shape: [1, 100], datatype: 'FP32', data: batch[0] }],
        outputs: [{ name: 'probability', parameters: { binary_data: true } }],
      }),
    );
    const a = readAnswer(r);
    expect(a.status).toBe(200);
    expect(a.isBase64Encoded).toBe(true);
    expect(float32s(a.bytes.get('probability')!)[0]).toBeCloseTo(lr.predict([batch[0]])[0], 6);
  });

  it('accepts the header with a JSON content type too, and a body sent as text', async () => {
    const f = request();
    const e = binaryEvent('rest', f, { 'Content-Type': 'application/json' });
    const a = readAnswer(await handler(e));
    expect(a.status, JSON.stringify(a.json)).toBe(200);
  });

  describe('framing errors: a 400 that names what is wrong', () => {
    const cases: Array<[string, () => Framed, Record<string, string>, RegExp]> = [
      [
        'a header length past the end of the body',
        () => request(),
        { [HEADER]: '99999' },
        /Inference-Header-Content-Length header says the JSON header is 99999 bytes, but the body has only 1\d{3}/,
      ],
      ['a header length that is not a number', () => request(), { [HEADER]: 'twelve' }, /Inference-Header-Content-Length header must be the JSON header's length in bytes/],
      [
        'a header length that cuts the JSON',
        () => request(),
        { [HEADER]: '20' },
        /the request's JSON header \(its first 20 bytes, per Inference-Header-Content-Length\) is not valid JSON/,
      ],
      [
        'binary_data_size that does not match the shape',
        () => framed({ inputs: [{ name: 'features', shape: [4, 100], datatype: 'FP32', parameters: { binary_data_size: 1596 } }] }, raw(new Float32Array(399))),
        {},
        /input 'features': binary_data_size is 1596 but shape \[4,100\] of FP32 takes 1600 bytes/,
      ],
      [
        'binary_data_size past the end of the body',
        () => framed({ inputs: [{ name: 'features', shape: [4, 100], datatype: 'FP32', parameters: { binary_data_size: 1600 } }] }, raw(new Float32Array(300))),
        {},
        /input 'features': binary_data_size is 1600 but only 1200 bytes of binary data are left/,
      ],
      [
        'both data and binary_data_size',
        () =>
          framed({ inputs: [{ name: 'features', shape: [1, 100], datatype: 'FP32', data: batch[0], parameters: { binary_data_size: 400 } }] }, raw(Float32Array.from(batch[0]))),
        {},
        /input 'features' has both 'data' and parameters.binary_data_size/,
      ],
      [
        'one byte left over after the inputs',
        () =>
          framed({ inputs: [{ name: 'features', shape: [1, 100], datatype: 'FP32', parameters: { binary_data_size: 400 } }] }, raw(Float32Array.from(batch[0])), Buffer.from([0])),
        {},
        /the body has 1 bytes of binary data after the JSON header that no input claims \(the inputs' binary_data_size add up to 400 bytes\)/,
      ],
      [
        'bytes left over after the inputs',
        () =>
          framed(
            { inputs: [{ name: 'features', shape: [1, 100], datatype: 'FP32', parameters: { binary_data_size: 400 } }] },
            raw(Float32Array.from(batch[0])),
            Buffer.from([1, 2, 3]),
          ),
        {},
        /3 bytes of binary data after the JSON header that no input claims/,
      ],
      [
        'a binary_data_size that is not a size',
        () => framed({ inputs: [{ name: 'features', shape: [1, 100], datatype: 'FP32', parameters: { binary_data_size: -4 } }] }, raw(Float32Array.from(batch[0]))),
        {},
        /binary_data_size must be a non-negative integer, got: -4/,
      ],
    ];
    it.each(cases)('%s', async (_what, make, headers, error) => {
      const a = readAnswer(await handler(binaryEvent('rest', make(), headers)));
      expect(a.status).toBe(400);
      expect(a.json.error).toMatch(error);
    });

    it('binary_data_size in a request without binary data', async () => {
      const r = readAnswer(
        await handler(restEvent('POST', '/v2/models/model/infer', { inputs: [{ name: 'features', shape: [1, 100], datatype: 'FP32', parameters: { binary_data_size: 400 } }] })),
      );
      expect(r.status).toBe(400);
      expect(r.json.error).toMatch(/has parameters.binary_data_size but the request has no binary data/);
    });

    it('binary_data_output that is not a boolean', async () => {
      const f = framed(
        { inputs: [{ name: 'features', shape: [1, 100], datatype: 'FP32', parameters: { binary_data_size: 400 } }], parameters: { binary_data_output: 'yes' } },
        raw(Float32Array.from(batch[0])),
      );
      const r = readAnswer(await handler(binaryEvent('rest', f)));
      expect(r.status).toBe(400);
      expect(r.json.error).toMatch(/binary_data_output must be true or false/);
    });
  });

  it('applies the body limit to the bytes, not to their base64 text', async () => {
    // 150 000 bytes of tensor (under the 200 000-byte limit) are 200 000 characters of base64.
    const n = 375;
    const f = framed({ inputs: [{ name: 'features', shape: [n, 100], datatype: 'FP32', parameters: { binary_data_size: n * 400 } }] }, raw(new Float32Array(n * 100)));
    expect(f.body.toString('base64').length).toBeGreaterThan(200_000);
    expect(readAnswer(await handler(binaryEvent('rest', f))).status).toBe(200);
    const over = framed({ inputs: [{ name: 'features', shape: [500, 100], datatype: 'FP32', parameters: { binary_data_size: 200_000 } }] }, raw(new Float32Array(50_000)));
    const a = readAnswer(await handler(binaryEvent('http-api', over)));
    expect(a.status).toBe(413);
    expect(a.json.error).toMatch(/the limit is 200000 bytes/);
  });

  it('keeps 415 for a binary body without the header', async () => {
    const e = binaryEvent('rest', request());
    const noHeader = { ...e, headers: { 'Content-Type': OCTET } };
    const a = readAnswer(await handler(noHeader));
    expect(a.status).toBe(415);
    expect(a.json.error).toMatch(/Content-Type application\/octet-stream is not supported/);
  });

  describe("the header marks the extension whatever the Content-Type, or none (as Triton's client sends it)", () => {
    const cases: Array<[string, Record<string, string>]> = [
      ['no Content-Type', {}],
      ['application/json', { 'Content-Type': 'application/json' }],
      ['text/csv', { 'Content-Type': 'text/csv' }],
    ];
    for (const shape of SHAPES) {
      it.each(cases)(`${shape}: %s`, async (_name, headers) => {
        const e = binaryEvent(shape, request());
        const all = Object.fromEntries(Object.entries(e.headers).filter(([k]) => k.toLowerCase() !== 'content-type'));
        const a = readAnswer(await handler({ ...e, headers: { ...all, ...headers } }));
        expect(a.status, JSON.stringify(a.json)).toBe(200);
        const expected = lr.predict(batch);
        a.json.outputs[0].data.forEach((v: number, i: number) => {
          expect(v).toBeCloseTo(expected[i], 6);
        });
      });
    }
  });

  it('refuses with 415, not a wrong answer, binary data that reached the function as text with bytes replaced', async () => {
    // 19.078 is F0 9F 98 41 in FP32. Decoded as UTF-8 text, F0 9F 98 is a cut sequence and becomes
    // U+FFFD (EF BF BD), as many bytes as it replaces; 2.0 (00 00 00 40) is text already. So the
    // body keeps its length, and EF BF BD 41, 23.72, would reach the model in place of 19.078.
    const values = new Float32Array(100).fill(2);
    const bytes = Buffer.from(raw(values));
    Buffer.from([0xf0, 0x9f, 0x98, 0x41]).copy(bytes, 0);
    const f = framed({ inputs: [{ name: 'features', shape: [1, 100], datatype: 'FP32', parameters: { binary_data_size: 400 } }] }, bytes);
    expect(Buffer.byteLength(f.body.toString('utf8'))).toBe(f.body.length);
    for (const shape of SHAPES) {
      const e = binaryEvent(shape, f, { 'Content-Type': 'application/json' });
      const a = readAnswer(await handler({ ...e, body: f.body.toString('utf8'), isBase64Encoded: false }));
      expect(a.status, `${shape}: ${JSON.stringify(a.json)}`).toBe(415);
      expect(a.json.error).toMatch(
        /reached the function as text, with the bytes that are not UTF-8 replaced \(U\+FFFD\).*Content-Type application\/json.*send it as application\/octet-stream/,
      );
    }
    // The same bytes base64-encoded are read as sent.
    const a = readAnswer(await handler(binaryEvent('rest', f, { 'Content-Type': 'application/json' })));
    expect(a.status).toBe(200);
    expect(a.json.outputs[0].data[0]).toBeCloseTo(lr.predict([Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, 100))])[0], 6);
    // Bytes that are all UTF-8 survive being sent as text, and are read as sent.
    const safe = framed({ inputs: [{ name: 'features', shape: [1, 100], datatype: 'FP32', parameters: { binary_data_size: 400 } }] }, raw(values));
    const e = binaryEvent('function-url', safe, { 'Content-Type': 'application/json' });
    const b = readAnswer(await handler({ ...e, body: safe.body.toString('utf8'), isBase64Encoded: false }));
    expect(b.status).toBe(200);
    expect(b.json.outputs[0].data[0]).toBeCloseTo(lr.predict([Array.from(values)])[0], 6);
  });

  it('refuses binary outputs over a direct invocation, which answers JSON only', async () => {
    await expect(handler({ inputs: [{ name: 'features', shape: [1, 100], datatype: 'FP32', data: batch[0] }], parameters: { binary_data_output: true } })).rejects.toThrow(
      /\[400\] a direct invocation answers JSON only/,
    );
    // Lambda's Invoke payload is JSON: there are no bytes after it for binary_data_size to point at.
    await expect(handler({ inputs: [{ name: 'features', shape: [1, 100], datatype: 'FP32', parameters: { binary_data_size: 400 } }] })).rejects.toThrow(
      /\[400\] input 'features' has parameters.binary_data_size but the request has no binary data/,
    );
  });
});

describe('binary tensor data extension, INT64, BOOL, BYTES and FP16 (multi-io model)', () => {
  const model = multiIoModel();
  let handler: Handler;
  beforeAll(async () => {
    handler = await handlerForModel(model.bytes);
  });

  // 0.5, 1, -2, 0.25 as IEEE half floats.
  const halvesBits = Uint16Array.from([0x3800, 0x3c00, 0xc000, 0x3400]);
  const ids = BigInt64Array.from([1n, -2n, 9007199254740993n, -9223372036854775807n, 5n, 6n, 7n, 8n]);
  const mask = Uint8Array.from([1, 0, 0, 1, 0, 0, 1, 1]);

  function allBinary(outputs?: unknown, parameters?: unknown): Framed {
    const text = byteStrings('héllo', '日本');
    return framed(
      {
        inputs: [
          { name: 'ids', shape: [2, 4], datatype: 'INT64', parameters: { binary_data_size: 64 } },
          { name: 'mask', shape: [2, 4], datatype: 'BOOL', parameters: { binary_data_size: 8 } },
          { name: 'text', shape: [2], datatype: 'BYTES', parameters: { binary_data_size: text.length } },
          { name: 'halves', shape: [2, 2], datatype: 'FP16', parameters: { binary_data_size: 8 } },
        ],
        ...(outputs ? { outputs } : {}),
        ...(parameters ? { parameters } : {}),
      },
      raw(ids),
      raw(mask),
      text,
      raw(halvesBits),
    );
  }

  it.each(SHAPES)('%s: every input and output in binary', async (shape) => {
    const a = readAnswer(await handler(binaryEvent(shape, allBinary(undefined, { binary_data_output: true }))));
    expect(a.status, JSON.stringify(a.json)).toBe(200);
    expect(a.json.outputs.map((o: any) => [o.name, o.datatype, o.shape, o.parameters.binary_data_size, 'data' in o])).toEqual([
      ['ids_times_two', 'INT64', [2, 4], 64, false],
      ['mask_inverted', 'BOOL', [2, 4], 8, false],
      ['text_echo', 'BYTES', [2], 4 + 6 + 4 + 6, false],
      ['halves_plus_half', 'FP32', [2, 2], 16, false],
      ['halves_plus_half_fp16', 'FP16', [2, 2], 8, false],
    ]);
    expect(int64s(a.bytes.get('ids_times_two')!)).toEqual(Array.from(ids, (v) => BigInt.asIntN(64, v * 2n)));
    expect([...a.bytes.get('mask_inverted')!]).toEqual([0, 1, 1, 0, 1, 1, 0, 0]);
    expect(readByteStrings(a.bytes.get('text_echo')!)).toEqual(['héllo', '日本']);
    expect(float32s(a.bytes.get('halves_plus_half')!)).toEqual([1, 1.5, -1.5, 0.75]);
    // 1, 1.5, -1.5, 0.75 as half floats.
    expect(uint16s(a.bytes.get('halves_plus_half_fp16')!)).toEqual([0x3c00, 0x3e00, 0xbe00, 0x3a00]);
  });

  it('binary outputs asked for one by one; the others in JSON; binary_data: false overrides binary_data_output', async () => {
    const a = readAnswer(
      await handler(
        binaryEvent(
          'rest',
          allBinary(
            [
              { name: 'text_echo', parameters: { binary_data: true } },
              { name: 'ids_times_two' },
              { name: 'halves_plus_half_fp16', parameters: { binary_data: false } },
              { name: 'mask_inverted', parameters: { binary_data: true } },
            ],
            { binary_data_output: false },
          ),
        ),
      ),
    );
    expect(a.status, JSON.stringify(a.json)).toBe(200);
    expect(a.json.outputs.map((o: any) => o.name)).toEqual(['text_echo', 'ids_times_two', 'halves_plus_half_fp16', 'mask_inverted']);
    expect([...a.bytes.keys()]).toEqual(['text_echo', 'mask_inverted']);
    expect(readByteStrings(a.bytes.get('text_echo')!)).toEqual(['héllo', '日本']);
    expect([...a.bytes.get('mask_inverted')!]).toEqual([0, 1, 1, 0, 1, 1, 0, 0]);
    // JSON.parse here rounds the two values past 2^53; the exact ones are checked in binary above.
    expect(a.json.outputs[1].data.slice(0, 2)).toEqual([2, -4]);
    expect(a.json.outputs[1].data.slice(4)).toEqual([10, 12, 14, 16]);
    expect(a.json.outputs[2].data).toEqual([1, 1.5, -1.5, 0.75]);

    const overridden = readAnswer(
      await handler(binaryEvent('rest', allBinary([{ name: 'ids_times_two', parameters: { binary_data: false } }, { name: 'mask_inverted' }], { binary_data_output: true }))),
    );
    expect(overridden.json.outputs[0].data.slice(0, 2)).toEqual([2, -4]);
    expect([...overridden.bytes.keys()]).toEqual(['mask_inverted']);
  });

  it('mixes binary and JSON inputs: the binary ones take the bytes in their order', async () => {
    const text = byteStrings('a', '');
    const f = framed(
      {
        inputs: [
          { name: 'halves', shape: [2, 2], datatype: 'FP16', data: [0.5, 1, -2, 0.25] },
          { name: 'text', shape: [2], datatype: 'BYTES', parameters: { binary_data_size: text.length } },
          { name: 'ids', shape: [2, 4], datatype: 'INT64', data: [1, 2, 3, 4, 5, 6, 7, 8] },
          { name: 'mask', shape: [2, 4], datatype: 'BOOL', parameters: { binary_data_size: 8 } },
        ],
        outputs: [{ name: 'text_echo' }, { name: 'mask_inverted' }, { name: 'halves_plus_half_fp16', parameters: { binary_data: true } }],
      },
      text,
      raw(mask),
    );
    const a = readAnswer(await handler(binaryEvent('function-url', f)));
    expect(a.status, JSON.stringify(a.json)).toBe(200);
    expect(a.json.outputs[0].data).toEqual(['a', '']);
    expect(a.json.outputs[1].data).toEqual([false, true, true, false, true, true, false, false]);
    expect(uint16s(a.bytes.get('halves_plus_half_fp16')!)).toEqual([0x3c00, 0x3e00, 0xbe00, 0x3a00]);
  });

  it('reads a tensor whose bytes start at an odd offset in the body (after a BYTES input of odd length)', async () => {
    const text = byteStrings('abc');
    const f = framed(
      {
        inputs: [
          { name: 'text', shape: [1], datatype: 'BYTES', parameters: { binary_data_size: 7 } },
          { name: 'halves', shape: [1, 2], datatype: 'FP16', parameters: { binary_data_size: 4 } },
          { name: 'ids', shape: [1, 4], datatype: 'INT64', parameters: { binary_data_size: 32 } },
          { name: 'mask', shape: [1, 4], datatype: 'BOOL', data: [true, false, true, false] },
        ],
        parameters: { binary_data_output: true },
      },
      text,
      raw(Uint16Array.from([0x3800, 0x3c00])),
      raw(BigInt64Array.from([3n, -3n, 2n ** 62n, 0n])),
    );
    for (const shape of SHAPES) {
      const a = readAnswer(await handler(binaryEvent(shape, f)));
      expect(a.status, JSON.stringify(a.json)).toBe(200);
      expect(uint16s(a.bytes.get('halves_plus_half_fp16')!)).toEqual([0x3c00, 0x3e00]);
      expect(int64s(a.bytes.get('ids_times_two')!)).toEqual([6n, -6n, -(2n ** 63n), 0n]);
      expect(readByteStrings(a.bytes.get('text_echo')!)).toEqual(['abc']);
    }
  });

  it.each([
    ['4 bytes past an 8-byte boundary (after a 4-byte FP16 input)', 'halves'],
    ['6 bytes past an 8-byte boundary (after a 6-byte BYTES input)', 'text'],
  ])('reads an INT64 input whose bytes start %s', async (_what, before) => {
    const ints = BigInt64Array.from([7n, -7n, 2n ** 40n, 1n]);
    const first =
      before === 'halves'
        ? { input: { name: 'halves', shape: [1, 2], datatype: 'FP16', parameters: { binary_data_size: 4 } }, bytes: raw(Uint16Array.from([0x3800, 0x3c00])) }
        : { input: { name: 'text', shape: [1], datatype: 'BYTES', parameters: { binary_data_size: 6 } }, bytes: byteStrings('ab') };
    const others = [
      { name: 'mask', shape: [1, 4], datatype: 'BOOL', data: [true, false, true, false] },
      ...(before === 'halves' ? [{ name: 'text', shape: [1], datatype: 'BYTES', data: ['ab'] }] : [{ name: 'halves', shape: [1, 2], datatype: 'FP16', data: [0.5, 1] }]),
    ];
    const f = framed(
      { inputs: [first.input, { name: 'ids', shape: [1, 4], datatype: 'INT64', parameters: { binary_data_size: 32 } }, ...others], parameters: { binary_data_output: true } },
      first.bytes,
      raw(ints),
    );
    for (const shape of SHAPES) {
      const a = readAnswer(await handler(binaryEvent(shape, f)));
      expect(a.status, JSON.stringify(a.json)).toBe(200);
      expect(int64s(a.bytes.get('ids_times_two')!)).toEqual([14n, -14n, 2n ** 41n, 2n]);
    }
  });

  const textCase = (text: Buffer, size = text.length) =>
    framed(
      {
        inputs: [
          { name: 'text', shape: [2], datatype: 'BYTES', parameters: { binary_data_size: size } },
          { name: 'ids', shape: [2, 4], datatype: 'INT64', data: [1, 2, 3, 4, 5, 6, 7, 8] },
          { name: 'mask', shape: [2, 4], datatype: 'BOOL', data: [true, true, true, true, true, true, true, true] },
          { name: 'halves', shape: [2, 2], datatype: 'FP16', data: [0, 0, 0, 0] },
        ],
      },
      text,
    );

  it.each([
    [
      'a BYTES element length past the end',
      () => Buffer.concat([byteStrings('ok'), Buffer.from([0xe8, 0x03, 0, 0]), Buffer.from('abc')]),
      /input 'text' \(BYTES\): element 1 is 1000 bytes long, past the end/,
    ],
    ['a BYTES element with no room for its length', () => Buffer.concat([byteStrings('ok'), Buffer.from([1, 0])]), /input 'text' \(BYTES\): element 1 has no 4-byte length/],
    [
      'BYTES elements that do not fill binary_data_size',
      () => Buffer.concat([byteStrings('ok', 'no'), Buffer.from([0, 0])]),
      /its 2 elements take 12 bytes but binary_data_size is 14/,
    ],
    ['a BYTES element that is not UTF-8', () => Buffer.concat([byteStrings('ok'), Buffer.from([2, 0, 0, 0, 0xff, 0xfe])]), /element 1 is not valid UTF-8/],
  ])('%s: 400', async (_what, make, error) => {
    const a = readAnswer(await handler(binaryEvent('rest', textCase(make()))));
    expect(a.status).toBe(400);
    expect(a.json.error).toMatch(error);
  });

  it('a BOOL byte other than 0 or 1: 400', async () => {
    const f = framed(
      {
        inputs: [
          { name: 'mask', shape: [1, 4], datatype: 'BOOL', parameters: { binary_data_size: 4 } },
          { name: 'text', shape: [1], datatype: 'BYTES', data: ['x'] },
          { name: 'ids', shape: [1, 4], datatype: 'INT64', data: [1, 2, 3, 4] },
          { name: 'halves', shape: [1, 2], datatype: 'FP16', data: [0, 0] },
        ],
      },
      Buffer.from([0, 1, 2, 1]),
    );
    const a = readAnswer(await handler(binaryEvent('rest', f)));
    expect(a.status).toBe(400);
    expect(a.json.error).toMatch(/input 'mask' \(BOOL\): byte 2 is 2/);
  });
});

describe('a BYTES shape that claims more elements than its binary data holds', () => {
  /** `same` = `text`, BYTES of two free dimensions, so that a claimed shape can pass 2^32 - 1 and 2^53 elements. */
  const grid = buildOnnxModel({
    graphName: 'text_grid',
    inputs: [{ name: 'text', elemType: 'string', shape: ['a', 'b'] }],
    outputs: [{ name: 'same', elemType: 'string', shape: ['a', 'b'] }],
    nodes: [{ opType: 'Identity', inputs: ['text'], outputs: ['same'] }],
  });
  const MAX_DIM = 2 ** 31 - 1;
  let handler: Handler;
  beforeAll(async () => {
    handler = await handlerForModel(grid);
  });

  const request = (shape: number[], bytes: Buffer) => framed({ inputs: [{ name: 'text', shape, datatype: 'BYTES', parameters: { binary_data_size: bytes.length } }] }, bytes);
  const threeStrings = byteStrings('a', 'bc', '');

  it.each([
    ['about 8.6 * 10^9 elements, past the 2^32 - 1 of a JavaScript array', [MAX_DIM, 4], '8589934588'],
    ['2^32 elements exactly', [65536, 65536], '4294967296'],
    ['about 2^62 elements, past 2^53', [MAX_DIM, MAX_DIM], 'more than 2^53'],
    ['10^9 elements', [1_000_000, 1000], '1000000000'],
    ['one element more than the bytes hold', [2, 2], '4'],
  ])('%s: a 400 naming the input, its shape and how many the bytes have room for', async (_what, shape, count) => {
    const a = readAnswer(await handler(binaryEvent('rest', request(shape, threeStrings))));
    expect(a.status, JSON.stringify(a.json)).toBe(400);
    expect(a.json.error).toBe(
      `input 'text' (BYTES): shape [${shape.join(',')}] holds ${count} elements, but its binary_data_size of ${threeStrings.length} bytes has room for at most ${Math.floor(threeStrings.length / 4)} (each element takes at least its 4-byte length)`,
    );
  });

  it('still reads a shape the bytes hold, and the same claimed shapes in JSON get their 400 too', async () => {
    const ok = readAnswer(await handler(binaryEvent('rest', request([3, 1], threeStrings))));
    expect(ok.status, JSON.stringify(ok.json)).toBe(200);
    expect(ok.json.outputs[0]).toEqual({ name: 'same', datatype: 'BYTES', shape: [3, 1], data: ['a', 'bc', ''] });
    for (const shape of [
      [MAX_DIM, 4],
      [MAX_DIM, MAX_DIM],
    ]) {
      const r = readAnswer(await handler(restEvent('POST', '/v2/models/model/infer', { inputs: [{ name: 'text', shape, datatype: 'BYTES', data: ['a', 'bc', ''] }] })));
      expect(r.status, JSON.stringify(r.json)).toBe(400);
      expect(r.json.error).toMatch(new RegExp(`^input 'text': shape \\[${shape.join(',')}\\] holds \\S+ elements but data has 3$`));
    }
  });
});

describe('binary tensor data with hooks', () => {
  const batch = rows(2, 100, 5);
  const f = () =>
    framed(
      { inputs: [{ name: 'features', shape: [2, 100], datatype: 'FP32', parameters: { binary_data_size: 800 } }], parameters: { binary_data_output: true } },
      raw(Float32Array.from(batch.flat())),
    );

  it('preprocess sees the JSON header, the bytes follow it; postprocess that keeps the outputs keeps them binary', async () => {
    const seen: unknown[] = [];
    const handler = await createHandler(
      { MODEL_PATH: writeModel(lr.bytes) },
      {
        preprocess: (body: any) => {
          seen.push(body);
          return { ...body, id: 'from-hook' };
        },
        postprocess: (response: any) => ({ ...response, note: 'kept' }),
      },
    );
    const a = readAnswer(await handler(binaryEvent('rest', f())));
    expect(a.status, JSON.stringify(a.json)).toBe(200);
    expect(seen[0]).toMatchObject({ inputs: [{ name: 'features', parameters: { binary_data_size: 800 } }] });
    expect(a.json).toMatchObject({ id: 'from-hook', note: 'kept' });
    const expected = lr.predict(batch);
    float32s(a.bytes.get('probability')!).forEach((v, i) => {
      expect(v).toBeCloseTo(expected[i], 6);
    });
  });

  it('postprocess that builds outputs of its own answers them in JSON', async () => {
    const handler = await createHandler(
      { MODEL_PATH: writeModel(lr.bytes) },
      { postprocess: (response: any) => ({ outputs: response.outputs.map((o: any) => ({ name: o.name, shape: o.shape, datatype: o.datatype, data: [1, 2] })) }) },
    );
    const a = readAnswer(await handler(binaryEvent('rest', f())));
    expect(a.status).toBe(200);
    expect(a.isBase64Encoded).toBe(false);
    expect(a.json.outputs[0].data).toEqual([1, 2]);
  });
});

/** Mean time per call of `fn`, in µs, over `n` calls after `warm` unmeasured ones. */
async function timeUs(fn: () => Promise<unknown>, n: number, warm = 50): Promise<number> {
  for (let i = 0; i < warm; i++) await fn();
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await fn();
  return Number(process.hrtime.bigint() - start) / 1000 / n;
}

describe('what binary tensor data saves (a log line, not an assertion of time)', () => {
  it('64 rows × 100 features FP32, and one 1×3×224×224 FP32 image, binary against JSON', async () => {
    const ort = await import('onnxruntime-node');
    const quiet = { logSeverityLevel: 3 as const };

    const batch = rows(64, 100, 3);
    const flat = Float32Array.from(batch.flat());
    const lrHandler = await handlerForModel(lr.bytes);
    const jsonEvent = restEvent('POST', '/v2/models/model/infer', { inputs: [{ name: 'features', shape: [64, 100], datatype: 'FP32', data: Array.from(flat) }] });
    const binEvent = binaryEvent(
      'rest',
      framed(
        { inputs: [{ name: 'features', shape: [64, 100], datatype: 'FP32', parameters: { binary_data_size: flat.byteLength } }], parameters: { binary_data_output: true } },
        raw(flat),
      ),
    );
    const lrSession = await ort.InferenceSession.create(Buffer.from(lr.bytes), quiet);
    const expected = lr.predict(batch);
    const bin = readAnswer(await lrHandler(binEvent));
    float32s(bin.bytes.get('probability')!).forEach((v, i) => {
      expect(v).toBeCloseTo(expected[i], 5);
    });
    expect(readAnswer(await lrHandler(jsonEvent)).status).toBe(200);

    const image = new Float32Array(3 * 224 * 224).map((_, i) => (i % 251) / 251);
    const poolModel = buildOnnxModel({
      graphName: 'global_average_pool',
      inputs: [{ name: 'image', elemType: 'float32', shape: [1, 3, 224, 224] }],
      outputs: [{ name: 'pooled', elemType: 'float32', shape: [1, 3, 1, 1] }],
      nodes: [{ opType: 'GlobalAveragePool', inputs: ['image'], outputs: ['pooled'] }],
    });
    const imageHandler = await handlerForModel(poolModel, { MAX_BODY_BYTES: String(10 * 1024 * 1024) });
    const imageBin = binaryEvent(
      'rest',
      framed(
        { inputs: [{ name: 'image', shape: [1, 3, 224, 224], datatype: 'FP32', parameters: { binary_data_size: image.byteLength } }], parameters: { binary_data_output: true } },
        raw(image),
      ),
    );
    const imageJson = restEvent('POST', '/v2/models/model/infer', { inputs: [{ name: 'image', shape: [1, 3, 224, 224], datatype: 'FP32', data: Array.from(image) }] });
    const pooled = readAnswer(await imageHandler(imageBin));
    expect(pooled.status).toBe(200);
    // Each channel's mean, computed here.
    const plane = 224 * 224;
    const means = [0, 1, 2].map((c) => image.subarray(c * plane, (c + 1) * plane).reduce((a, b) => a + b, 0) / plane);
    float32s(pooled.bytes.get('pooled')!).forEach((v, i) => {
      expect(v).toBeCloseTo(means[i], 4);
    });
    const imageSession = await ort.InferenceSession.create(Buffer.from(poolModel), quiet);

    const n = 300;
    const lrBare = await timeUs(() => lrSession.run({ features: new ort.Tensor('float32', flat, [64, 100]) }), n);
    const lrJson = await timeUs(() => lrHandler(jsonEvent), n);
    const lrBin = await timeUs(() => lrHandler(binEvent), n);
    // The handler's fixed cost per request, whatever the tensors: one row, in JSON.
    const oneRow = restEvent('POST', '/v2/models/model/infer', { inputs: [{ name: 'features', shape: [1, 100], datatype: 'FP32', data: batch[0] }] });
    const oneBare = await timeUs(() => lrSession.run({ features: new ort.Tensor('float32', flat.subarray(0, 100), [1, 100]) }), n);
    const oneJson = await timeUs(() => lrHandler(oneRow), n);
    const imBare = await timeUs(() => imageSession.run({ image: new ort.Tensor('float32', image, [1, 3, 224, 224]) }), 100, 10);
    const imJson = await timeUs(() => imageHandler(imageJson), 20, 3);
    const imBin = await timeUs(() => imageHandler(imageBin), 100, 10);
    const f = (us: number) => `${us.toFixed(0)} µs`;
    console.log(
      [
        'binary tensor data, mean per request through the bundled handler (REST event), against bare session.run:',
        `  64×100 FP32: bare ${f(lrBare)}; JSON ${f(lrJson)} (×${(lrJson / lrBare).toFixed(1)}); binary in and out ${f(lrBin)} (×${(lrBin / lrBare).toFixed(1)}, handler − bare ${f(lrBin - lrBare)})`,
        `  1×100 FP32 in JSON (the handler's fixed cost): bare ${f(oneBare)}; handler ${f(oneJson)} (handler − bare ${f(oneJson - oneBare)})`,
        `  1×3×224×224 FP32: bare ${f(imBare)}; JSON ${f(imJson)} (handler − bare ${f(imJson - imBare)}); binary ${f(imBin)} (handler − bare ${f(imBin - imBare)})`,
      ].join('\n'),
    );
  }, 120_000);
});
