import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BundledModelEndpoint, LayerModelEndpoint, ModelLayer, ModelSource } from '../../../lib';
import { logisticRegressionModel } from '../../../tools/onnx';
import { tempDir, writeModel } from '../../support/handler';
import { CLI, runCli, type Served, startServe } from '../../support/serve';
import { assetFolder, resourceProps } from '../../support/stacks';

const ROOT = path.resolve(__dirname, '../../..');
const lr = logisticRegressionModel({ features: 100, seed: 13 });
/** The local server's body limit: API Gateway's 10 MB. */
const LIMIT = 10 * 1024 * 1024;

/** Waits until `done()` holds, for at most `ms`. */
async function waitFor(done: () => boolean, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (!done() && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
}

/**
 * Bytes a process has read through read() calls, sockets included (Linux's /proc/PID/io `rchar`);
 * undefined where /proc has no such file.
 */
function bytesReadBy(pid: number): number | undefined {
  try {
    return Number(/^rchar: (\d+)$/m.exec(fs.readFileSync(`/proc/${pid}/io`, 'utf8'))![1]);
  } catch {
    return undefined;
  }
}

/**
 * Sends an infer request with a chunked body, built by hand, as fast as the connection takes it,
 * until the server answers (or `maxBytes` are sent). Says what was sent when the answer came.
 */
function streamChunkedBody(url: string, maxBytes: number): Promise<{ statusLine: string; sentBeforeAnswer: number; answeredInMs: number }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname);
    const data = Buffer.alloc(64 * 1024, '1');
    const chunk = Buffer.concat([Buffer.from(`${data.length.toString(16)}\r\n`), data, Buffer.from('\r\n')]);
    let sent = 0;
    let answer = '';
    let sentBeforeAnswer = -1;
    const started = Date.now();
    let answeredInMs = -1;
    const pump = () => {
      while (sentBeforeAnswer < 0 && sent < maxBytes) {
        sent += chunk.length;
        if (!socket.write(chunk)) {
          socket.once('drain', pump);
          return;
        }
      }
      if (sentBeforeAnswer < 0) socket.write('0\r\n\r\n');
    };
    socket.on('connect', () => {
      socket.write('POST /v2/models/scorer/infer HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n');
      pump();
    });
    socket.on('data', (d) => {
      if (sentBeforeAnswer < 0) {
        sentBeforeAnswer = sent;
        answeredInMs = Date.now() - started;
      }
      answer += d;
      if (answer.includes('\r\n')) {
        socket.destroy();
        resolve({ statusLine: answer.slice(0, answer.indexOf('\r\n')), sentBeforeAnswer, answeredInMs });
      }
    });
    // The server may reset the connection once it has answered; no answer at all is the failure.
    socket.on('error', (e) => reject(new Error(`no answer after ${sent} bytes sent: ${e.message}`)));
  });
}

describe('cdk-serverless-inference serve, over real HTTP', () => {
  const modelFile = writeModel(lr.bytes);
  let server: Served;

  beforeAll(async () => {
    server = await startServe(['--model', modelFile, '--port', '0', '--name', 'scorer']);
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

  it('refuses a body over API Gateway’s 10 MB limit before the handler sees it, reading none of a body announced too long', async () => {
    const before = bytesReadBy(server.child.pid!);
    const res = await fetch(`${server.url}/v2/models/scorer/infer`, { method: 'POST', body: 'x'.repeat(LIMIT + 1) });
    expect(res.status).toBe(413);
    expect(await res.json()).toEqual({ message: 'Request Too Long' });
    const read = bytesReadBy(server.child.pid!);
    if (before !== undefined) expect(read! - before).toBeLessThan(1024 * 1024);
  });

  it('stops reading a chunked body at the limit and answers 413 at once', async () => {
    // The client would send 256 MB; the server must answer after reading about 10 MB of it.
    const before = bytesReadBy(server.child.pid!);
    const r = await streamChunkedBody(server.url, 256 * 1024 * 1024);
    const read = bytesReadBy(server.child.pid!);
    expect(r.statusLine).toBe('HTTP/1.1 413 Payload Too Large');
    expect(r.answeredInMs).toBeLessThan(5_000);
    // What the client got sent before the answer: the limit, plus what the kernel's socket buffers held.
    expect(r.sentBeforeAnswer).toBeLessThan(4 * LIMIT);
    if (before !== undefined) {
      expect(read! - before).toBeGreaterThan(LIMIT);
      expect(read! - before).toBeLessThan(LIMIT + 1024 * 1024);
    }
  });

  it('answers 413 to a client that is still sending (fetch), not a connection reset', async () => {
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= 256 * 1024 * 1024) return controller.close();
        sent += 64 * 1024;
        controller.enqueue(new Uint8Array(64 * 1024));
      },
    });
    const res = await fetch(`${server.url}/v2/models/scorer/infer`, { method: 'POST', body, duplex: 'half' } as RequestInit);
    expect(res.status).toBe(413);
    expect(res.headers.get('connection')).toBe('close');
    expect(sent).toBeLessThan(4 * LIMIT);
  });

  it('tells a client that asks first (Expect: 100-continue) 413, and not to send the body', async () => {
    const { hostname, port } = new URL(server.url);
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(Number(port), hostname, () => {
        socket.write(`POST /v2/models/scorer/infer HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${LIMIT + 1}\r\nExpect: 100-continue\r\n\r\n`);
      });
      let text = '';
      socket.on('data', (d) => {
        text += d;
        if (text.includes('\r\n')) {
          socket.destroy();
          resolve(text.slice(0, text.indexOf('\r\n')));
        }
      });
      socket.on('error', reject);
    });
    expect(answer).toBe('HTTP/1.1 413 Payload Too Large');
  });

  it('reports the version the deployed endpoint reports for the same file (its content hash)', async () => {
    const stack = new Stack(new App(), 'S');
    const endpoint = new BundledModelEndpoint(stack, 'Scorer', { model: ModelSource.fromAsset(modelFile), modelName: 'scorer' });
    expect(endpoint.modelVersion).toMatch(/^[0-9a-f]{16}$/);
    const meta = (await (await fetch(`${server.url}/v2/models/scorer`)).json()) as any;
    expect(meta.versions).toEqual([endpoint.modelVersion]);
    expect(server.output()).toContain(`Serving model 'scorer' (version ${endpoint.modelVersion}) at ${server.url}`);
    const versioned = await fetch(`${server.url}/v2/models/scorer/versions/${endpoint.modelVersion}/ready`);
    expect(versioned.status).toBe(200);
  });

  it('prints no warning on the loopback address', () => {
    expect(server.output()).not.toMatch(/WARNING/);
  });

  it.each(['//[::1/v2/models/scorer/infer', 'http://x:99999/', 'http://[/'])(
    'answers 400 naming a request target that does not parse (%s), without calling the handler',
    async (target) => {
      const { hostname, port } = new URL(server.url);
      const answer = await new Promise<string>((resolve, reject) => {
        const socket = net.connect(Number(port), hostname, () => {
          socket.write(`POST ${target} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`);
        });
        let text = '';
        socket.on('data', (d) => (text += d));
        socket.on('end', () => resolve(text));
        socket.on('error', reject);
      });
      expect(answer.slice(0, answer.indexOf('\r\n'))).toBe('HTTP/1.1 400 Bad Request');
      expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).toEqual({ error: `the request target ${JSON.stringify(target)} is not a path or URL that can be parsed` });
      expect(server.output()).not.toMatch(/failed in the handler/);
    },
  );
});

describe('serve --mount: an endpoint configuration, with local folders for its paths', () => {
  it("serves a ModelLayer's content where the function finds it (/opt), with the endpoint's version", async () => {
    const app = new App();
    const stack = new Stack(app, 'S');
    const layer = new ModelLayer(stack, 'Layer', { model: ModelSource.fromAsset(writeModel(lr.bytes, 'scorer.onnx')) });
    const endpoint = new LayerModelEndpoint(stack, 'Endpoint', { modelLayer: layer });
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
      const body = (await res.json()) as any;
      expect(body.outputs[0].data[0]).toBeCloseTo(lr.predict([row.map(Math.fround)])[0], 5);
      expect(body.model_version).toBe(endpoint.modelVersion);
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

  it('prints the package version', async () => {
    const r = await runCli(['--version']);
    expect(r.code).toBe(0);
    expect(r.output.trim()).toBe(JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version);
  });
});

describe('serve --model-version', () => {
  it('is the version the model reports and the routes accept', async () => {
    const served = await startServe(['--model', writeModel(lr.bytes), '--port', '0', '--model-version', '7']);
    try {
      expect(((await (await fetch(`${served.url}/v2/models/model`)).json()) as any).versions).toEqual(['7']);
      const row = Array.from({ length: 100 }, () => 0.25);
      const res = await fetch(`${served.url}/v2/models/model/versions/7/infer`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ inputs: [{ name: 'features', shape: [1, 100], datatype: 'FP32', data: row }] }),
      });
      expect(res.status).toBe(200);
      expect(((await res.json()) as any).model_version).toBe('7');
    } finally {
      served.child.kill('SIGTERM');
    }
  });

  it('refuses an empty version or one with a slash', async () => {
    const slash = await runCli(['serve', '--model', writeModel(lr.bytes), '--model-version', 'a/b']);
    expect(slash.code).toBe(1);
    expect(slash.output).toMatch(/--model-version must be a route segment: not empty, no '\/', got: 'a\/b'/);
    const empty = await runCli(['serve', '--model', writeModel(lr.bytes), '--model-version', '']);
    expect(empty.code).toBe(1);
    expect(empty.output).toMatch(/--model-version must be a route segment: not empty, no '\/', got: ''/);
  });
});

describe('serve fails fast when it cannot serve the model', () => {
  // As a user runs it: the handler's log, where the cause's detail goes, at serve's own level.
  const { POWERTOOLS_LOG_LEVEL: _, NODE_PATH: __, ...userEnv } = process.env;

  it('exits 1 with the cause when the file is not a loadable model, before it serves', async () => {
    const r = await runCli(['serve', '--model', writeModel(new TextEncoder().encode('not an ONNX model'), 'notes.onnx'), '--port', '0'], { env: userEnv });
    expect(r.code).toBe(1);
    expect(r.output).toMatch(/cannot serve model 'model': onnxruntime cannot load the model/);
    expect(r.output).toMatch(/onnxruntime cannot load the model \S*notes\.onnx/);
    expect(r.output).not.toMatch(/Serving model/);
    // What serve says of itself is what it does: it stops, where a deployed function would retry.
    const said = r.output.slice(r.output.indexOf("cannot serve model 'model'"));
    expect(said).toMatch(
      /^cannot serve model 'model': onnxruntime cannot load the model \(request id [0-9a-f-]{36}\)\nserve stops: it loads the model once, before it listens, and does not retry/,
    );
    expect(said).not.toMatch(/next attempt|retries the load/);
  });

  it('exits 1 with the cause when onnxruntime-node cannot be found, before it serves', async () => {
    // The library's own handler bundle, copied where no node_modules folder above it holds
    // onnxruntime-node: what a project without onnxruntime-node installed runs.
    const bundle = path.join(tempDir('csi-serve-no-ort-'), 'inference');
    fs.cpSync(path.join(ROOT, 'assets', 'handlers', 'inference'), bundle, { recursive: true });
    expect(() => require.resolve('onnxruntime-node', { paths: [bundle] })).toThrow();
    const r = await runCli(['serve', '--model', writeModel(lr.bytes), '--handler', path.join(bundle, 'index.mjs'), '--port', '0'], { env: userEnv });
    expect(r.code).toBe(1);
    expect(r.output).toMatch(/cannot serve model 'model': [^\n]*onnxruntime-node/);
    expect(r.output).toMatch(/Cannot find module 'onnxruntime-node'/);
    expect(r.output).not.toMatch(/Serving model/);
  });
});

describe('serve --host', () => {
  it('warns that an address other machines can reach has no authorization', async () => {
    const served = await startServe(['--model', writeModel(lr.bytes), '--port', '0', '--host', '0.0.0.0']);
    try {
      // The warning goes to stderr, which may arrive after the URL on stdout.
      await waitFor(() => /WARNING/.test(served.output()), 2_000);
      expect(served.output()).toMatch(/WARNING: listening on 0\.0\.0\.0, which is reachable from the network, with no authorization/);
      const port = new URL(served.url).port;
      expect((await fetch(`http://127.0.0.1:${port}/v2/health/ready`)).status).toBe(200);
    } finally {
      served.child.kill('SIGTERM');
    }
  });
});
