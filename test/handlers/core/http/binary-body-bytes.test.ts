/**
 * Tensor bytes that happen to be the UTF-8 encoding of U+FFFD (EF BF BD), which the handler looks
 * for to tell a body a front decoded as text: in a body that came base64-encoded they are data, and
 * the request is answered.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { functionUrlEvent, httpApiEvent, restEvent } from '../../../../fixtures/events';
import { logisticRegressionModel } from '../../../../tools/onnx';
import { type Handler, handlerForModel } from '../../../support/handler';

const lr = logisticRegressionModel({ features: 100, seed: 5 });
/** Every float's bytes are EF BF BD 3F (about 1.4980), little-endian. */
const bytes = Buffer.alloc(400);
for (let i = 0; i < 100; i++) bytes.set([0xef, 0xbf, 0xbd, 0x3f], i * 4);
const row = Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, 100));
const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'features', shape: [1, 100], datatype: 'FP32', parameters: { binary_data_size: 400 } }] }));

describe('binary tensor data whose bytes read as U+FFFD', () => {
  let handler: Handler;
  beforeAll(async () => {
    handler = await handlerForModel(lr.bytes);
  });

  it.each([
    ['rest', restEvent],
    ['http-api', httpApiEvent],
    ['function-url', functionUrlEvent],
  ] as const)('%s: a base64-encoded body is answered as the client sent it', async (_shape, make) => {
    expect(bytes.includes(Buffer.from('\uFFFD'))).toBe(true);
    const e = make('POST', '/v2/models/model/infer', undefined, {
      headers: { 'Content-Type': 'application/octet-stream', 'Inference-Header-Content-Length': String(header.length) },
    });
    const r = await handler({ ...e, body: Buffer.concat([header, bytes]).toString('base64'), isBase64Encoded: true });
    expect(r.statusCode, r.body).toBe(200);
    expect(JSON.parse(r.body).outputs[0].data[0]).toBeCloseTo(lr.predict([row])[0], 6);
  });
});
