/**
 * A/B variants in the handler: two real models side by side, each request answered by the one the
 * weights (or the sticky header) choose, the answer naming it and matching that model's reference
 * and not the other's.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { infer, restEvent, call } from '../../../../fixtures/events';
import { logisticRegressionModel } from '../../../../tools/onnx';
import { readCaptureDir } from '../../../support/capture';
import { type Handler, createHandler, tempDir, writeModel } from '../../../support/handler';
import { logged } from '../../../support/logs';

const a = logisticRegressionModel({ features: 8, seed: 3 });
const b = logisticRegressionModel({ features: 8, seed: 4 });
const row = [0.5, -0.25, 1, 0, 0.75, -1, 0.1, 0.3];
const request = { inputs: [{ name: 'features', shape: [1, 8], datatype: 'FP32', data: row }] };
const reference: Record<string, number> = { a: a.predict([row])[0], b: b.predict([row])[0] };

/** Variant a is the function's own model (MODEL_PATH); b names its own with `env`. */
function variantsEnv(weights: [number, number], extra: Record<string, string> = {}): Record<string, string> {
  return {
    MODEL_PATH: writeModel(a.bytes),
    MODEL_VERSION: 'va',
    MODEL_VARIANTS: JSON.stringify([
      { name: 'a', weight: weights[0] },
      { name: 'b', weight: weights[1], version: 'vb', env: { MODEL_PATH: writeModel(b.bytes) } },
    ]),
    ...extra,
  };
}

/** Checks that an answer came from the variant it names, and from no other. */
function servedBy(r: Awaited<ReturnType<typeof infer>>): string {
  expect(r.status).toBe(200);
  const variant = r.headers['X-Inference-Variant'];
  expect(r.body.parameters).toEqual({ variant });
  expect(r.body.model_version).toBe(variant === 'a' ? 'va' : 'vb');
  const p = r.body.outputs[0].data[0];
  expect(p).toBeCloseTo(reference[variant], 5);
  const other = variant === 'a' ? 'b' : 'a';
  expect(Math.abs(p - reference[other])).toBeGreaterThan(1e-3);
  return variant;
}

describe('variants chosen by a sticky header', () => {
  let handler: Handler;
  beforeAll(async () => {
    // The two models must disagree on the row, or an answer could not tell them apart.
    expect(Math.abs(reference.a - reference.b)).toBeGreaterThan(0.01);
    handler = await createHandler(variantsEnv([3, 1], { MODEL_VARIANT_HEADER: 'X-User-Id' }));
  });

  it("answers each user from one variant, every time, with that variant's model", async () => {
    const seen: Record<string, string> = {};
    for (let round = 0; round < 2; round++) {
      for (let user = 0; user < 40; user++) {
        const v = servedBy(await infer(handler, request, 'model', { headers: { 'X-User-Id': `user-${user}` } }));
        if (round === 0) seen[user] = v;
        else expect(v, `user-${user}`).toBe(seen[user]);
      }
    }
    expect(new Set(Object.values(seen))).toEqual(new Set(['a', 'b']));
  });

  it('splits users by weight (3:1)', async () => {
    let bCount = 0;
    const n = 400;
    for (let user = 0; user < n; user++) {
      const r = await infer(handler, request, 'model', { headers: { 'x-user-id': `u${user}` } });
      if (r.headers['X-Inference-Variant'] === 'b') bCount++;
    }
    // Binomial(400, 0.25): mean 100, sd ~8.7; 5 sd either side.
    expect(bCount).toBeGreaterThan(56);
    expect(bCount).toBeLessThan(144);
  });

  it('lets the caller name the variant, and refuses an unknown one with a 400 that lists them', async () => {
    for (const v of ['a', 'b']) {
      expect(servedBy(await infer(handler, request, 'model', { headers: { 'X-User-Id': 'u1', 'X-Inference-Target-Variant': v } }))).toBe(v);
    }
    const r = await infer(handler, request, 'model', { headers: { 'X-Inference-Target-Variant': 'c' } });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatch(/X-Inference-Target-Variant names no variant of this model: 'c'; its variants are 'a', 'b'/);
  });

  it("lets a direct invocation, which has no headers, name the variant in the request's parameters", async () => {
    for (const v of ['a', 'b']) {
      const answer = await handler({ ...request, parameters: { variant: v } });
      expect(answer.parameters).toEqual({ variant: v });
      expect(answer.model_version).toBe(v === 'a' ? 'va' : 'vb');
      expect(answer.outputs[0].data[0]).toBeCloseTo(reference[v], 5);
    }
    await expect(handler({ ...request, parameters: { variant: 'c' } })).rejects.toThrow(/\[400\] parameters\.variant names no variant of this model: 'c'/);
    await expect(handler({ ...request, parameters: { variant: 7 } })).rejects.toThrow(/\[400\] parameters\.variant must be the name of a variant, got: 7/);
    // Over HTTP too; the header wins over the parameter.
    const r = await infer(handler, { ...request, parameters: { variant: 'b' } }, 'model', { headers: { 'X-Inference-Target-Variant': 'a' } });
    expect(servedBy(r)).toBe('a');
  });

  it("reports the first variant's metadata and is ready once both are loaded", async () => {
    const meta = await call(handler, restEvent('GET', '/v2/models/model'));
    expect(meta.body.inputs).toEqual([{ name: 'features', datatype: 'FP32', shape: [-1, 8] }]);
    expect((await call(handler, restEvent('GET', '/v2/models/model/ready'))).status).toBe(200);
  });
});

describe('variants without a sticky header', () => {
  it('assigns each request at random by weight, every answer from the variant it names', async () => {
    const handler = await createHandler(variantsEnv([1, 1]));
    const counts: Record<string, number> = { a: 0, b: 0 };
    for (let i = 0; i < 100; i++) counts[servedBy(await infer(handler, request))]++;
    // Binomial(100, 0.5): 5 sd either side of 50.
    expect(counts.a).toBeGreaterThan(25);
    expect(counts.b).toBeGreaterThan(25);
  });

  it('leaves a handler without MODEL_VARIANTS as it was: no header, no parameters', async () => {
    const handler = await createHandler({ MODEL_PATH: writeModel(a.bytes) });
    const r = await infer(handler, request);
    expect(r.headers['X-Inference-Variant']).toBeUndefined();
    expect(r.body.parameters).toBeUndefined();
    expect(r.body.outputs[0].data[0]).toBeCloseTo(reference.a, 5);
  });

  it('counts each variant apart: requests, errors and inference time with a variant dimension', async () => {
    const saved = process.env.POWERTOOLS_METRICS_DISABLED;
    process.env.POWERTOOLS_METRICS_DISABLED = 'false';
    let handler: Handler;
    try {
      handler = await createHandler(variantsEnv([1, 1], { MODEL_NAME: 'ab' }));
    } finally {
      process.env.POWERTOOLS_METRICS_DISABLED = saved;
    }
    const { logs } = await logged(async () => {
      await infer(handler, request, 'ab', { headers: { 'X-Inference-Target-Variant': 'b' } });
      await infer(handler, request, 'ab', { headers: { 'X-Inference-Target-Variant': 'b' } });
      await infer(handler, request, 'ab', { headers: { 'X-Inference-Target-Variant': 'a' } });
      // 9 features where the model takes 8: a 400, the request's fault and not the variant's.
      await infer(handler, { inputs: [{ ...request.inputs[0], shape: [1, 9], data: [...row, 0] }] }, 'ab', { headers: { 'X-Inference-Target-Variant': 'a' } });
    });
    const lines = logs.filter((l) => l._aws?.CloudWatchMetrics && l.variant !== undefined);
    expect(lines.map((l) => [l.variant, l.VariantRequests, l.VariantErrors])).toEqual([
      ['b', 1, 0],
      ['b', 1, 0],
      ['a', 1, 0],
      ['a', 1, 0],
    ]);
    expect(lines[3].VariantInferenceMs).toBeUndefined();
    for (const l of lines.slice(0, 3)) {
      expect(l.model).toBe('ab');
      expect(l._aws.CloudWatchMetrics[0].Dimensions[0]).toEqual(expect.arrayContaining(['service', 'model', 'variant']));
      expect(typeof l.VariantInferenceMs).toBe('number');
    }
  });
});

describe('variants that cannot serve', () => {
  it('is not ready while a variant takes other inputs, and says which', async () => {
    const wide = logisticRegressionModel({ features: 9, seed: 5 });
    const handler = await createHandler({
      MODEL_PATH: writeModel(a.bytes),
      MODEL_VARIANTS: JSON.stringify([
        { name: 'a', weight: 1 },
        { name: 'wide', weight: 1, env: { MODEL_PATH: writeModel(wide.bytes) } },
      ]),
    });
    const r = await infer(handler, request);
    expect(r.status).toBe(503);
    expect(r.body.error).toMatch(/variant 'wide' takes other inputs than variant 'a'/);
    expect((await call(handler, restEvent('GET', '/v2/health/ready'))).status).toBe(400);
  });

  it('names the variant whose model is missing', async () => {
    const handler = await createHandler({
      MODEL_PATH: writeModel(a.bytes),
      MODEL_VARIANTS: JSON.stringify([
        { name: 'a', weight: 1 },
        { name: 'gone', weight: 1, env: { MODEL_PATH: '/nonexistent/model.onnx' } },
      ]),
    });
    const r = await infer(handler, request);
    expect(r.status).toBe(503);
    expect(r.body.error).toMatch(/variant 'gone': the model file does not exist/);
  });

  it.each([
    ['not JSON', { MODEL_VARIANTS: '[{' }, /MODEL_VARIANTS is not valid JSON/],
    ['one variant', { MODEL_VARIANTS: '[{"name":"a","weight":1}]' }, /two or more variants/],
    ['a zero weight', { MODEL_VARIANTS: '[{"name":"a","weight":1},{"name":"b","weight":0}]' }, /MODEL_VARIANTS\[1\]\.weight must be a positive number, got: 0/],
    ['a name twice', { MODEL_VARIANTS: '[{"name":"a","weight":1},{"name":"a","weight":1}]' }, /'a' is given twice/],
    ['a name with a space', { MODEL_VARIANTS: '[{"name":"a b","weight":1},{"name":"c","weight":1}]' }, /name must be 1 to 64 letters/],
    ['a variable other than the location', { MODEL_VARIANTS: '[{"name":"a","weight":1},{"name":"b","weight":1,"env":{"MODEL_NAME":"x"}}]' }, /env may set only MODEL_PATH/],
    ['a sticky header without variants', { MODEL_VARIANT_HEADER: 'x-user-id' }, /MODEL_VARIANT_HEADER is set, but MODEL_VARIANTS is not/],
    ['a header name with a space', { MODEL_VARIANTS: '[{"name":"a","weight":1},{"name":"b","weight":1}]', MODEL_VARIANT_HEADER: 'x user' }, /must be an HTTP header name/],
  ])('answers 500 and logs why for %s', async (_what, env, message) => {
    const { logs, result } = await logged(async () => {
      const handler = await createHandler({ MODEL_PATH: writeModel(a.bytes), ...env });
      return infer(handler, request);
    });
    expect(result.status).toBe(500);
    expect(result.body.error).toMatch(/misconfigured/);
    expect(JSON.stringify(logs)).toMatch(message);
  });
});

describe('variants with data capture', () => {
  it("names in each capture record the variant that answered, and that variant's version", async () => {
    const dir = tempDir();
    const handler = await createHandler(variantsEnv([1, 1], { MODEL_VARIANT_HEADER: 'X-User-Id', DATA_CAPTURE_DIR: dir }));
    const served: string[] = [];
    for (let user = 0; user < 12; user++) {
      served.push(servedBy(await infer(handler, request, 'model', { headers: { 'X-User-Id': `user-${user}` } })));
    }
    // Both variants answered some users, so the records must tell them apart.
    expect(new Set(served)).toEqual(new Set(['a', 'b']));
    const records = readCaptureDir(dir).map((r) => r.record);
    expect(records).toHaveLength(served.length);
    const byInput = records.map((r) => ({ variant: r.eventMetadata.variant, output: JSON.parse(r.captureData.endpointOutput.data) }));
    for (const { variant, output } of byInput) {
      expect(output.parameters).toEqual({ variant });
      expect(output.model_version).toBe(variant === 'a' ? 'va' : 'vb');
    }
    expect(byInput.map((r) => r.variant).sort()).toEqual([...served].sort());
  });
});
