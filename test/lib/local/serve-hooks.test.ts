import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_FEATURES, DEMO_HOOKS_FILE, DEMO_MODEL_FILE, demoModel } from '../../../fixtures/demo-model';
import { mlpModel } from '../../../tools/onnx';
import { tempDir, writeModel } from '../../support/handler';
import { runCli, type Served, startServe } from '../../support/serve';

const mlp = mlpModel({ inputs: 4, hidden: 8, classes: 3, seed: 21 });
const LABELS = ['setosa', 'versicolor', 'virginica'];

/**
 * A hooks entry as a user writes one: TypeScript, importing a helper of its own and the library's
 * `badRequest`, with all three hooks. `afterResponse` sleeps two seconds, then writes what it got
 * to a file named by the request (or throws, when asked to).
 */
function hooksEntry(dir: string): string {
  fs.writeFileSync(path.join(dir, 'labels.ts'), `export const LABELS: string[] = ${JSON.stringify(LABELS)};\n`);
  const entry = path.join(dir, 'hooks.ts');
  fs.writeFileSync(
    entry,
    `import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { badRequest } from 'cdk-serverless-inference/handler';
import { LABELS } from './labels';

interface Body { measurements?: number[]; tag?: string; failAfter?: boolean }

export function preprocess(body: Body, context: any) {
  if (!Array.isArray(body?.measurements) || body.measurements.length !== 4) {
    throw badRequest("'measurements' must be an array of 4 numbers");
  }
  return { inputs: [{ name: context.signature.inputs[0].name, shape: [1, 4], datatype: 'FP32', data: body.measurements }] };
}

export function postprocess(response: any, context: any) {
  const scores: number[] = response.outputs[0].data;
  return { label: LABELS[scores.indexOf(Math.max(...scores))], scores, tag: context.request.tag };
}

export async function afterResponse(response: any, context: any) {
  await new Promise((resolve) => setTimeout(resolve, 2000));
  if (context.request.failAfter) throw new Error('the audit store is down');
  writeFileSync(join(${JSON.stringify(dir)}, context.request.tag + '.json'), JSON.stringify({ response, statusCode: context.statusCode, requestId: context.requestId }));
}
`,
  );
  return entry;
}

async function infer(url: string, body: unknown): Promise<{ status: number; json: Record<string, unknown>; ms: number }> {
  const started = performance.now();
  const r = await fetch(`${url}/v2/models/iris/infer`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  const json = (await r.json()) as Record<string, unknown>;
  return { status: r.status, json, ms: performance.now() - started };
}

async function waitForFile(file: string, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (fs.existsSync(file)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return fs.existsSync(file);
}

describe('serve --hooks', () => {
  const dir = tempDir('csi-serve-hooks-');
  const model = writeModel(mlp.bytes);
  let served: Served;

  beforeAll(async () => {
    served = await startServe(['--model', model, '--name', 'iris', '--port', '0', '--hooks', hooksEntry(dir)], {
      env: { ...process.env, POWERTOOLS_LOG_LEVEL: 'ERROR' },
      timeoutMs: 40_000,
    });
  }, 60_000);
  afterAll(() => served?.child.kill());

  it('names the hooks it found', () => {
    expect(served.output()).toMatch(/Hooks from .*hooks\.ts: afterResponse, postprocess, preprocess/);
  });

  it('runs preprocess and postprocess around inference', async () => {
    const measurements = [5.1, 3.5, 1.4, 0.2];
    const r = await infer(served.url, { measurements, tag: 'first' });
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    const expected = mlp.predict([measurements.map(Math.fround)])[0];
    expect(r.json.label).toBe(LABELS[expected.indexOf(Math.max(...expected))]);
    expect((r.json.scores as number[]).length).toBe(3);
    for (const [i, s] of (r.json.scores as number[]).entries()) expect(s).toBeCloseTo(expected[i], 5);
    expect(r.json.tag).toBe('first');
  });

  it("answers a preprocess hook's badRequest with a 400", async () => {
    const r = await infer(served.url, { measurements: [1, 2] });
    expect(r.status).toBe(400);
    expect(r.json.error).toBe("'measurements' must be an array of 4 numbers");
  });

  it('sends the whole answer before afterResponse ends, which then writes its file', async () => {
    const file = path.join(dir, 'slow.json');
    const r = await infer(served.url, { measurements: [6.3, 3.3, 6.0, 2.5], tag: 'slow' });
    expect(r.status).toBe(200);
    // The hook sleeps 2 s before it writes: the client had everything long before.
    expect(r.ms).toBeLessThan(1000);
    expect(fs.existsSync(file)).toBe(false);
    expect(await waitForFile(file, 10_000)).toBe(true);
    const written = JSON.parse(fs.readFileSync(file, 'utf8'));
    expect(written.response).toEqual(r.json);
    expect(written.statusCode).toBe(200);
    expect(written.requestId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('keeps the answer of a request whose afterResponse throws, and logs the failure', async () => {
    const r = await infer(served.url, { measurements: [5.9, 3.0, 5.1, 1.8], tag: 'failing', failAfter: true });
    expect(r.status).toBe(200);
    expect(r.json.label).toBeTypeOf('string');
    const logged = () => /the afterResponse hook failed; the answer was sent/.test(served.output()) && /the audit store is down/.test(served.output());
    const until = Date.now() + 10_000;
    while (!logged() && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(served.output()).toContain('the audit store is down');
    expect(fs.existsSync(path.join(dir, 'failing.json'))).toBe(false);
    // The server still answers.
    expect((await infer(served.url, { measurements: [5.1, 3.5, 1.4, 0.2], tag: 'after' })).status).toBe(200);
  });

  it('keeps the routes other than infer as they are', async () => {
    const meta = await fetch(`${served.url}/v2/models/iris`);
    expect(meta.status).toBe(200);
    expect(((await meta.json()) as { inputs: unknown[] }).inputs).toHaveLength(1);
    expect((await fetch(`${served.url}/v2/health/ready`)).status).toBe(200);
  });
});

describe('serve --hooks with workers', () => {
  it('bundles the entry and runs its hooks in every worker', async () => {
    const dir = tempDir('csi-serve-hooks-workers-');
    const served = await startServe(['--model', writeModel(mlp.bytes), '--name', 'iris', '--port', '0', '--workers', '2', '--hooks', hooksEntry(dir)], {
      env: { ...process.env, POWERTOOLS_LOG_LEVEL: 'ERROR' },
      timeoutMs: 60_000,
    });
    try {
      const answers = await Promise.all([1, 2, 3, 4].map((i) => infer(served.url, { measurements: [5.1, 3.5, 1.4, 0.2], tag: `w${i}` })));
      for (const a of answers) {
        expect(a.status).toBe(200);
        expect(a.ms).toBeLessThan(1500);
      }
      for (const i of [1, 2, 3, 4]) expect(await waitForFile(path.join(dir, `w${i}.json`), 10_000)).toBe(true);
    } finally {
      served.child.kill();
    }
  }, 90_000);
});

describe('serve --hooks refusals', () => {
  it('exits 1 naming the file, line and column of an entry that does not build', async () => {
    const dir = tempDir('csi-serve-hooks-bad-');
    const entry = path.join(dir, 'broken.ts');
    fs.writeFileSync(entry, 'export function preprocess(body) {\n  return { inputs: [ };\n}\n');
    const r = await runCli(['serve', '--model', writeModel(mlp.bytes), '--port', '0', '--hooks', entry]);
    expect(r.code).toBe(1);
    expect(r.output).toContain(`${entry}:2:`);
    expect(r.output).toContain('does not build');
  });

  it('exits 1 when the entry exports no hook, saying what it exports', async () => {
    const dir = tempDir('csi-serve-hooks-none-');
    const entry = path.join(dir, 'nohooks.js');
    fs.writeFileSync(entry, 'export function helper() {}\nexport const other = 1;\n');
    const r = await runCli(['serve', '--model', writeModel(mlp.bytes), '--port', '0', '--hooks', entry]);
    expect(r.code).toBe(1);
    expect(r.output).toContain('exports none of the hooks (preprocess, postprocess, afterResponse); it exports: helper, other');
  });

  it("exits 1 on a hook's name in another case, which would never run", async () => {
    const dir = tempDir('csi-serve-hooks-case-');
    const entry = path.join(dir, 'cased.js');
    fs.writeFileSync(entry, 'export function preprocess(b) { return b; }\nexport function postProcess(r) { return r; }\n');
    const r = await runCli(['serve', '--model', writeModel(mlp.bytes), '--port', '0', '--hooks', entry]);
    expect(r.code).toBe(1);
    expect(r.output).toContain("exports 'postProcess': the hook is named 'postprocess'");
  });

  it('refuses --hooks with --handler', async () => {
    const r = await runCli(['serve', '--model', writeModel(mlp.bytes), '--hooks', 'a.ts', '--handler', 'b.mjs']);
    expect(r.code).toBe(1);
    expect(r.output).toContain('not both');
  });
});

describe("the demo's hooks", () => {
  it('serve the demo model: named features in, class names out, a log line per prediction after the answer', async () => {
    const served = await startServe(['--model', DEMO_MODEL_FILE, '--name', 'demo', '--port', '0', '--hooks', DEMO_HOOKS_FILE], {
      env: { ...process.env, POWERTOOLS_LOG_LEVEL: 'INFO' },
      timeoutMs: 40_000,
    });
    try {
      const rows = [
        { a: DEMO_FEATURES[0], b: DEMO_FEATURES[1], c: DEMO_FEATURES[2], d: DEMO_FEATURES[3] },
        { a: 1, b: 0.2, c: -0.4, d: 2.5 },
      ];
      const r = await fetch(`${served.url}/v2/models/demo/infer`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(rows) });
      const body = (await r.json()) as { predictions: Array<{ class: string; confidence: number }> };
      expect(r.status).toBe(200);
      const expected = demoModel().predict(rows.map((row) => [row.a, row.b, row.c, row.d].map(Math.fround)));
      expect(body.predictions.map((p) => p.class)).toEqual(expected.map((p) => ['alpha', 'beta', 'gamma'][p.indexOf(Math.max(...p))]));
      for (const [i, p] of body.predictions.entries()) expect(p.confidence).toBeCloseTo(Math.max(...expected[i]), 5);
      const bad = await fetch(`${served.url}/v2/models/demo/infer`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ a: 1 }) });
      expect(bad.status).toBe(400);
      expect(((await bad.json()) as { error: string }).error).toBe("row 0: 'b' must be a number");
      const until = Date.now() + 10_000;
      while ((served.output().match(/"message":"prediction"/g) ?? []).length < 2 && Date.now() < until) await new Promise((res) => setTimeout(res, 50));
      expect((served.output().match(/"message":"prediction"/g) ?? []).length).toBe(2);
    } finally {
      served.child.kill();
    }
  }, 60_000);
});

describe("serve's log level", () => {
  // As a user runs it: no POWERTOOLS_LOG_LEVEL in the environment.
  const { POWERTOOLS_LOG_LEVEL: _, ...userEnv } = process.env;
  const dir = tempDir('csi-serve-log-level-');
  const entry = path.join(dir, 'hooks.ts');
  fs.writeFileSync(
    entry,
    `export function preprocess(body: any, context: any) {
  context.logger.info('hook info', { tag: body.tag });
  context.logger.warn('hook warning', { tag: body.tag });
  return body.request;
}
`,
  );
  const request = { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [5.1, 3.5, 1.4, 0.2] }] };

  /** Serves with `args`, sends one request through the hook, and returns what serve printed once the hook's warning is out. */
  async function logsOfOneRequest(args: string[]): Promise<string> {
    const served = await startServe(['--model', writeModel(mlp.bytes), '--port', '0', '--hooks', entry, ...args], { env: userEnv, timeoutMs: 40_000 });
    try {
      const r = await fetch(`${served.url}/v2/models/model/infer`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ tag: 't1', request }),
      });
      expect(r.status).toBe(200);
      const until = Date.now() + 10_000;
      while (!served.output().includes('"message":"hook warning"') && Date.now() < until) await new Promise((res) => setTimeout(res, 50));
      return served.output();
    } finally {
      served.child.kill();
    }
  }

  it("shows a hook's logger.info by default", async () => {
    const output = await logsOfOneRequest([]);
    expect(output).toMatch(/"level":"INFO","message":"hook info".*"tag":"t1"/);
    expect(output).toMatch(/"level":"WARN","message":"hook warning"/);
  }, 60_000);

  it('takes another level from --log-level', async () => {
    const output = await logsOfOneRequest(['--log-level', 'warn']);
    expect(output).toMatch(/"level":"WARN","message":"hook warning"/);
    expect(output).not.toMatch(/"message":"hook info"/);
  }, 60_000);

  it('refuses a level the logger does not have, naming those it has', async () => {
    const r = await runCli(['serve', '--model', writeModel(mlp.bytes), '--log-level', 'loud']);
    expect(r.code).toBe(1);
    expect(r.output).toContain('--log-level must be one of TRACE, DEBUG, INFO, WARN, ERROR, CRITICAL, SILENT, got: loud');
    const fromEnv = await runCli(['serve', '--model', writeModel(mlp.bytes)], { env: { ...userEnv, POWERTOOLS_LOG_LEVEL: 'loud' } });
    expect(fromEnv.code).toBe(1);
    expect(fromEnv.output).toContain('POWERTOOLS_LOG_LEVEL must be one of TRACE, DEBUG, INFO, WARN, ERROR, CRITICAL, SILENT, got: loud');
  });

  it('says so in --help', async () => {
    const r = await runCli(['serve', '--help']);
    expect(r.code).toBe(0);
    expect(r.output).toMatch(/--log-level L +the handler's log level, which your hooks' context.logger shares/);
    expect(r.output).toMatch(/\(default: INFO, or POWERTOOLS_LOG_LEVEL when\s+set\)/);
  });
});
