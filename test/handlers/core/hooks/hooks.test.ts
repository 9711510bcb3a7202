import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mlpModel } from '../../../../tools/onnx';
import { call, restEvent } from '../../../../fixtures/events';
import { type Handler, writeModel } from '../../../support/handler';
import { logged, withLogLevel } from '../../../support/logs';
import { bundleUserEntry } from '../../../support/user-entry';

const ROOT = path.resolve(__dirname, '../../../..');
const mlp = mlpModel({ inputs: 4, hidden: 8, classes: 3, seed: 21 });
const LABELS = ['setosa', 'versicolor', 'virginica'];

/** A user's own entry file, as docs/hooks.md shows it: plain functions around the shared handler. */
const ENTRY = `
import { createInferenceHandler, badRequest } from 'cdk-serverless-inference/handler';

const LABELS = ${JSON.stringify(LABELS)};

export const handler = await createInferenceHandler({
  hooks: {
    preprocess(body, context) {
      if (!Array.isArray(body?.measurements) || body.measurements.length !== 4) {
        throw badRequest("'measurements' must be an array of 4 numbers");
      }
      if (body.measurements.includes(-1)) {
        throw new Error('sensor offline');
      }
      return { inputs: [{ name: context.signature.inputs[0].name, shape: [1, 4], datatype: 'FP32', data: body.measurements }] };
    },
    postprocess(response, context) {
      const scores = response.outputs[0].data;
      const best = scores.indexOf(Math.max(...scores));
      return { label: LABELS[best], scores, echoed: context.request.measurements, requestId: context.requestId };
    },
  },
});
`;

// Bundled inside the repo so that `require('onnxruntime-node')` finds the installed package.
fs.mkdirSync(path.join(ROOT, 'node_modules', '.cache'), { recursive: true });
const BUNDLE_DIR = fs.mkdtempSync(path.join(ROOT, 'node_modules', '.cache', 'csi-hooks-'));
afterAll(() => fs.rmSync(BUNDLE_DIR, { recursive: true, force: true }));

describe('pre- and post-processing hooks in a user entry file', () => {
  let handler: Handler;

  beforeAll(async () => {
    const bundle = await bundleUserEntry(ENTRY, BUNDLE_DIR);
    process.env.MODEL_PATH = writeModel(mlp.bytes);
    process.env.MODEL_NAME = 'iris';
    handler = await withLogLevel(async () => (await import(pathToFileURL(bundle).href)).handler, 'WARN');
  });

  it('turns a custom body into tensors and the output into a custom answer', async () => {
    const measurements = [5.1, 3.5, 1.4, 0.2];
    const r = await call(handler, restEvent('POST', '/v2/models/iris/infer', { measurements }));
    expect(r.status, r.text).toBe(200);
    const expected = mlp.predict([measurements.map(Math.fround)])[0];
    for (const [i, s] of r.body.scores.entries()) expect(s).toBeCloseTo(expected[i], 5);
    expect(r.body.label).toBe(LABELS[expected.indexOf(Math.max(...expected))]);
    expect(r.body.echoed).toEqual(measurements);
    expect(r.body.requestId).toBe('rest-request-id');
  });

  it("answers a hook's badRequest with 400 and its message", async () => {
    const r = await call(handler, restEvent('POST', '/v2/models/iris/infer', { measurements: [1, 2] }));
    expect(r.status).toBe(400);
    expect(r.body.error).toBe("'measurements' must be an array of 4 numbers");
  });

  it('answers any other hook failure with a 500 that names the hook; its message goes to the log', async () => {
    const { result: r, logs } = await logged(() => call(handler, restEvent('POST', '/v2/models/iris/infer', { measurements: [1, -1, 2, 3] })));
    expect(r.status).toBe(500);
    expect(r.body.error).toBe('the preprocess hook failed (request id rest-request-id)');
    expect(logs.find((l) => l.message === 'request failed')).toMatchObject({ requestId: 'rest-request-id', detail: 'sensor offline' });
  });

  it('leaves the protocol routes as they are', async () => {
    const r = await call(handler, restEvent('GET', '/v2/models/iris'));
    expect(r.status).toBe(200);
    expect(r.body.inputs).toEqual([{ name: 'input', datatype: 'FP32', shape: [-1, 4] }]);
  });
});
