/**
 * `serve` with A/B variants (MODEL_VARIANTS and MODEL_VARIANT_HEADER in its environment, as the
 * constructs set them on the function): over real HTTP, two real models, each answer from the
 * variant it names, one variant per user.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logisticRegressionModel } from '../../../tools/onnx';
import { writeModel } from '../../support/handler';
import { type Served, startServe } from '../../support/serve';

const a = logisticRegressionModel({ features: 8, seed: 21 });
const b = logisticRegressionModel({ features: 8, seed: 22 });
const rows = [
  [0.5, -0.25, 1, 0, 0.75, -1, 0.1, 0.3],
  [-0.5, 0.25, 0, 1, -0.75, 1, -0.1, 0.9],
];
const reference: Record<string, number[]> = { control: a.predict(rows), candidate: b.predict(rows) };

describe('serve with variants', () => {
  let server: Served;
  beforeAll(async () => {
    const env = {
      ...process.env,
      MODEL_VARIANTS: JSON.stringify([
        { name: 'control', weight: 1 },
        { name: 'candidate', weight: 1, version: '2', env: { MODEL_PATH: writeModel(b.bytes, 'candidate.onnx') } },
      ]),
      MODEL_VARIANT_HEADER: 'X-User-Id',
    };
    server = await startServe(['--model', writeModel(a.bytes, 'control.onnx'), '--port', '0', '--name', 'churn', '--model-version', '1'], { env });
  });
  afterAll(() => {
    server?.child.kill('SIGTERM');
  });

  const ask = async (user: string) => {
    const res = await fetch(`${server.url}/v2/models/churn/infer`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-User-Id': user },
      body: JSON.stringify({ inputs: [{ name: 'features', shape: [2, 8], datatype: 'FP32', data: rows.flat() }] }),
    });
    expect(res.status).toBe(200);
    return { variant: res.headers.get('x-inference-variant')!, body: (await res.json()) as any };
  };

  it('says which variants it serves, and how they are chosen', () => {
    expect(server.output()).toContain('variants: control 50 %, candidate 50 %, sticky by X-User-Id');
  });

  it("answers each user from one variant, with that variant's model and not the other's", async () => {
    const first: Record<string, string> = {};
    for (let round = 0; round < 2; round++) {
      for (let u = 0; u < 30; u++) {
        const { variant, body } = await ask(`user-${u}`);
        expect(body.parameters).toEqual({ variant });
        expect(body.model_version).toBe(variant === 'control' ? '1' : '2');
        const got = body.outputs[0].data as number[];
        const other = variant === 'control' ? 'candidate' : 'control';
        got.forEach((p, i) => {
          expect(p).toBeCloseTo(reference[variant][i], 5);
          expect(Math.abs(p - reference[other][i])).toBeGreaterThan(1e-3);
        });
        if (round === 0) first[u] = variant;
        else expect(variant, `user-${u}`).toBe(first[u]);
      }
    }
    expect(new Set(Object.values(first))).toEqual(new Set(['control', 'candidate']));
  });
});
