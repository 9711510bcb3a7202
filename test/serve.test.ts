import { type ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelLayer, ModelSource } from '../lib';
import { logisticRegressionModel } from '../tools/onnx';
import { writeModel } from './support/handler';
import { assetFolder, resourceProps } from './support/stacks';

const CLI = path.resolve(__dirname, '..', 'bin', 'cdk-serverless-inference.js');
const lr = logisticRegressionModel({ features: 100, seed: 13 });

/** Starts `cdk-serverless-inference serve` as a user would, and waits for the URL it prints. */
function startServe(args: string[]): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [CLI, 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`serve did not start in 20 s:\n${out}`)), 20_000);
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /at (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1] });
      }
    });
    child.stderr!.on('data', (d) => (out += d));
    child.on('exit', (code) => reject(new Error(`serve exited with ${code}:\n${out}`)));
  });
}

function runCli(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('exit', (code) => resolve({ code, output }));
  });
}

describe('cdk-serverless-inference serve, over real HTTP', () => {
  let server: { child: ChildProcess; url: string };

  beforeAll(async () => {
    server = await startServe(['--model', writeModel(lr.bytes), '--port', '0', '--name', 'scorer']);
  });
  afterAll(() => {
    server?.child.kill('SIGTERM');
  });

  it('answers an infer request with the model’s prediction', async () => {
    const row = Array.from({ length: 100 }, (_, i) => (i % 7) / 7 - 0.5);
    const res = await fetch(`${server.url}/v2/models/scorer/infer`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ inputs: [{ name: 'features', shape: [1, 100], datatype: 'FP32', data: row }] }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    const body = (await res.json()) as any;
    expect(body.outputs[0].data[0]).toBeCloseTo(lr.predict([row.map(Math.fround)])[0], 5);
  });

  it('serves metadata and health, and answers errors in the protocol’s form', async () => {
    const meta = (await (await fetch(`${server.url}/v2/models/scorer`)).json()) as any;
    expect(meta.inputs).toEqual([{ name: 'features', datatype: 'FP32', shape: [-1, 100] }]);
    expect((await fetch(`${server.url}/v2/health/ready`)).status).toBe(200);
    const bad = await fetch(`${server.url}/v2/models/scorer/infer`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{' });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as any).error).toMatch(/not valid JSON/);
    expect((await fetch(`${server.url}/v2/models/other`)).status).toBe(404);
  });

  it('refuses a body over API Gateway’s 10 MB limit before the handler sees it', async () => {
    const res = await fetch(`${server.url}/v2/models/scorer/infer`, { method: 'POST', body: 'x'.repeat(10 * 1024 * 1024 + 1) });
    expect(res.status).toBe(413);
  });
});

describe('serve --mount: an endpoint configuration, with local folders for its paths', () => {
  it("serves a ModelLayer's content where the function finds it (/opt)", async () => {
    const app = new App();
    const stack = new Stack(app, 'S');
    const layer = new ModelLayer(stack, 'Layer', { model: ModelSource.fromAsset(writeModel(lr.bytes, 'scorer.onnx')) });
    // The layer's asset folder in the cloud assembly is what Lambda unpacks under /opt.
    const layerDir = assetFolder(app, resourceProps(Template.fromStack(stack), layer).Content.S3Key);
    const served = await startServe(['--model', layer.modelPath, '--mount', `/opt=${layerDir}`, '--port', '0']);
    try {
      const row = Array.from({ length: 100 }, (_, i) => (i % 5) / 5);
      const res = await fetch(`${served.url}/v2/models/model/infer`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ inputs: [{ name: 'features', shape: [1, 100], datatype: 'FP32', data: row }] }),
      });
      expect(res.status).toBe(200);
      expect(((await res.json()) as any).outputs[0].data[0]).toBeCloseTo(lr.predict([row.map(Math.fround)])[0], 5);
    } finally {
      served.child.kill('SIGTERM');
    }
  });

  it('names the mapped path when the model is not there, and refuses a relative target', async () => {
    const missing = await runCli(['serve', '--model', '/mnt/models/m.onnx', '--mount', '/mnt/models=/nonexistent']);
    expect(missing.code).toBe(1);
    expect(missing.output).toMatch(/--model: \/nonexistent\/m\.onnx does not exist \(\/mnt\/models\/m\.onnx through --mount \/mnt\/models=\/nonexistent\)/);
    const relative = await runCli(['serve', '--model', 'x.onnx', '--mount', 'opt=./x']);
    expect(relative.code).toBe(1);
    expect(relative.output).toMatch(/--mount must be PATH=DIR with an absolute PATH, got: opt=\.\/x/);
  });
});

describe('cdk-serverless-inference command line errors', () => {
  it('names a missing model file', async () => {
    const r = await runCli(['serve', '--model', '/nonexistent/m.onnx']);
    expect(r.code).toBe(1);
    expect(r.output).toMatch(/--model: \/nonexistent\/m\.onnx does not exist/);
  });

  it('rejects a bad port and an unknown command with the usage', async () => {
    const port = await runCli(['serve', '--model', CLI, '--port', 'abc']);
    expect(port.code).toBe(1);
    expect(port.output).toMatch(/--port must be a port number/);
    const cmd = await runCli(['deploy']);
    expect(cmd.code).toBe(1);
    expect(cmd.output).toMatch(/unknown command 'deploy'[\s\S]*Usage: cdk-serverless-inference serve/);
  });
});
