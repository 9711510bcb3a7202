import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type MatMulFp32Model, matMulFp32Model } from '../../../tools/onnx';
import { tempDir } from '../../support/handler';
import { runCli, type Served, startServe } from '../../support/serve';

/*
 * `serve --model-repository DIR` serves a local repository as a deployed function serves one: each
 * model loads on its first request (once per worker with --workers), under the budget of the flags.
 */

const N = 600;
const MODELS = Array.from({ length: 4 }, (_, i) => ({ name: `m${i}`, k: 600 + 20 * i, model: matMulFp32Model({ k: 600 + 20 * i, n: N, seed: 40 + i }) }));

function writeModel(root: string, name: string, version: string, model: MatMulFp32Model): void {
  fs.mkdirSync(path.join(root, name, version), { recursive: true });
  fs.writeFileSync(path.join(root, name, version, 'model.onnx'), model.bytes);
}

async function inferAndCheck(url: string, m: (typeof MODELS)[number], seed: number): Promise<void> {
  const input = m.model.sampleInput(1, seed);
  const res = await fetch(`${url}/v2/models/${m.name}/infer`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ inputs: [{ name: 'x', shape: [1, m.k], datatype: 'FP32', data: input.values }] }),
  });
  const body = (await res.json()) as any;
  expect(res.status, JSON.stringify(body)).toBe(200);
  const expected = m.model.predict(input);
  for (let j = 0; j < N; j += 41) expect(body.outputs[0].data[j]).toBeCloseTo(expected[j], 3);
}

const servers: Served[] = [];
afterAll(() => {
  for (const s of servers) s.child.kill('SIGTERM');
});

describe('serve --model-repository', () => {
  it('serves every model of a directory within --memory-budget, and a model added while it runs', async () => {
    const root = tempDir('csi-serve-repository-');
    for (const m of MODELS.slice(0, 3)) writeModel(root, m.name, '1', m.model);
    const served = await startServe(['--model-repository', root, '--memory-budget', '7', '--port', '0', '--warm-models', 'm0', '--log-level', 'INFO']);
    servers.push(served);
    expect(served.output()).toContain(`Serving the model repository ${root}`);
    for (let round = 0; round < 2; round++) for (const m of MODELS.slice(0, 3)) await inferAndCheck(served.url, m, round);
    await Promise.all(MODELS.slice(0, 3).flatMap((m) => [1, 2, 3].map((s) => inferAndCheck(served.url, m, 10 + s))));
    writeModel(root, MODELS[3].name, '1', MODELS[3].model);
    await inferAndCheck(served.url, MODELS[3], 1);
    const index = (await (await fetch(`${served.url}/v2/repository/index`, { method: 'POST' })).json()) as any[];
    expect(index.map((e) => e.name)).toEqual(['m0', 'm1', 'm2', 'm3']);
    expect(index.filter((e) => e.state === 'READY').length).toBeLessThanOrEqual(2);
    // Unloads are logged, as the budget holds two of these models.
    expect(served.output()).toContain('model unloaded to make room');
  });

  it('loads a model once per worker for many concurrent requests with --workers', async () => {
    const root = tempDir('csi-serve-repository-');
    for (const m of MODELS.slice(0, 2)) writeModel(root, m.name, '1', m.model);
    const served = await startServe(['--model-repository', root, '--workers', '2', '--port', '0', '--log-level', 'INFO'], { timeoutMs: 40_000 });
    servers.push(served);
    await Promise.all(Array.from({ length: 24 }, (_, i) => inferAndCheck(served.url, MODELS[i % 2], i)));
    const loads = served.output().match(/"message":"model loaded"/g) ?? [];
    // Each worker is an instance of its own: at most one load per model and worker.
    expect(loads.length).toBeGreaterThanOrEqual(2);
    expect(loads.length).toBeLessThanOrEqual(4);
  });

  it('refuses wrong flags, naming them', async () => {
    expect((await runCli(['serve', '--model-repository', '/no/such/dir'])).output).toContain('--model-repository: /no/such/dir is not a directory');
    expect((await runCli(['serve', '--model', 'x.onnx', '--model-repository', tempDir()])).output).toContain('give --model (one model) or --model-repository (many), not both');
    expect((await runCli(['serve', '--model-repository', tempDir(), '--memory-budget', 'lots'])).output).toContain('--memory-budget must be a whole number of MiB');
    expect((await runCli(['serve', '--model', 'x.onnx', '--disk-budget', '5'])).output).toContain('--disk-budget is for a model repository');
  });
});
