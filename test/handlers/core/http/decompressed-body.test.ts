/**
 * A body that names a coding (Content-Encoding) but arrives as plain JSON, as when API Gateway's
 * REST API decompressed it on the way: read as the JSON it is, whatever white space it starts with
 * (a pretty-printed body starts with a line break or a tab as often as with a space).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { restEvent } from '../../../../fixtures/events';
import { logisticRegressionModel } from '../../../../tools/onnx';
import { type Handler, handlerForModel } from '../../../support/handler';

const lr = logisticRegressionModel({ features: 100, seed: 13 });
const row = Array.from({ length: 100 }, (_, i) => Math.fround(Math.sin(i * 7) / 4));
const json = JSON.stringify({ inputs: [{ name: 'features', shape: [1, 100], datatype: 'FP32', data: row }] });

describe('a body named compressed that arrives as JSON', () => {
  let handler: Handler;
  beforeAll(async () => {
    handler = await handlerForModel(lr.bytes);
  });

  it.each([
    ['a space', ' '],
    ['a line break', '\n'],
    ['CR LF', '\r\n'],
    ['a tab', '\t'],
  ])('starting with %s, is read as JSON', async (_what, lead) => {
    for (const coding of ['gzip', 'deflate']) {
      const e = restEvent('POST', '/v2/models/model/infer', undefined, { headers: { 'Content-Type': 'application/json', 'Content-Encoding': coding } });
      const r = await handler({ ...e, body: Buffer.from(`${lead}${json}`).toString('base64'), isBase64Encoded: true });
      expect(r.statusCode, `${coding}: ${r.body}`).toBe(200);
      expect(JSON.parse(r.body).outputs[0].data[0]).toBeCloseTo(lr.predict([row])[0], 6);
    }
  });
});
