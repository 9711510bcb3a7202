import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import { mlpModel } from '../../../tools/onnx';
import { call, infer, restEvent } from '../../../fixtures/events';
import { handlerForModel, tempDir, writeModel } from '../../support/handler';

/*
 * On Lambda Managed Instances one execution environment serves many requests at once: the Node.js
 * runtime runs several worker threads, each with its own init (so its own onnxruntime session), and
 * hands each worker several requests concurrently. These tests run the bundled handler that way.
 */

const mlp = mlpModel({ inputs: 4, hidden: 16, classes: 3, seed: 11 });

/** A distinct, deterministic row per request, so a crossed answer shows. */
function row(i: number): number[] {
  return [0, 1, 2, 3].map((j) => Math.fround(Math.sin(i * 7.3 + j) * 3));
}

function request(i: number) {
  return { id: `req-${i}`, inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: row(i) }] };
}

function expectAnswerOf(i: number, answer: { status: number; body: any }): void {
  expect(answer.status, JSON.stringify(answer.body)).toBe(200);
  expect(answer.body.id).toBe(`req-${i}`);
  const probabilities = answer.body.outputs.find((o: any) => o.name === 'probabilities').data as number[];
  const expected = mlp.predict([row(i)])[0];
  for (const [k, p] of probabilities.entries()) expect(p).toBeCloseTo(expected[k], 5);
}

describe('one handler, many requests at once', () => {
  it('answers 200 concurrent requests, each with its own answer', async () => {
    const handler = await handlerForModel(mlp.bytes);
    const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => infer(handler, request(i))));
    for (const [i, answer] of answers.entries()) expectAnswerOf(i, answer);
  });

  it('lets requests that arrive while the model loads wait for it, and readiness answer meanwhile', async () => {
    // No wait at init: the handler exists before its model is loaded, as after a short init phase.
    const handler = await handlerForModel(mlp.bytes, { MODEL_INIT_WAIT_MS: '0' });
    const ready = call(handler, restEvent('GET', '/v2/models/model/ready'));
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => infer(handler, request(i))));
    for (const [i, answer] of answers.entries()) expectAnswerOf(i, answer);
    expect([200, 400]).toContain((await ready).status);
    expect((await call(handler, restEvent('GET', '/v2/models/model/ready'))).status).toBe(200);
  });
});

describe('worker threads, each with its own init and session, as the Managed Instances runtime runs them', () => {
  const workers: Worker[] = [];
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.terminate()));
  });

  it('answers concurrent requests spread over 3 workers, each loading the model once', async () => {
    const modelPath = writeModel(mlp.bytes);
    const bundle = pathToFileURL(path.resolve(__dirname, '../../../assets/handlers/core/index.mjs')).href;
    const script = path.join(tempDir('csi-workers-'), 'worker.mjs');
    fs.writeFileSync(
      script,
      `import { parentPort, workerData, threadId } from 'node:worker_threads';
const { createInferenceHandler } = await import(${JSON.stringify(bundle)});
const handler = await createInferenceHandler({ env: { MODEL_PATH: workerData.modelPath } });
parentPort.on('message', async ({ id, event }) => {
  const answer = await handler(event, { awsRequestId: 'r' + id });
  parentPort.postMessage({ id, threadId, answer });
});
parentPort.postMessage({ ready: true });
`,
    );
    const pending = new Map<number, (value: { threadId: number; answer: any }) => void>();
    for (let w = 0; w < 3; w++) {
      const worker = new Worker(script, {
        workerData: { modelPath },
        env: { ...process.env, POWERTOOLS_LOG_LEVEL: 'SILENT', POWERTOOLS_METRICS_DISABLED: 'true' },
      });
      workers.push(worker);
      await new Promise<void>((resolve, reject) => {
        worker.once('error', reject);
        worker.on('message', (m) => {
          if (m.ready) resolve();
          else pending.get(m.id)?.({ threadId: m.threadId, answer: m.answer });
        });
      });
    }
    const results = await Promise.all(
      Array.from({ length: 150 }, (_, i) => {
        const event = restEvent('POST', '/v2/models/model/infer', request(i));
        return new Promise<{ threadId: number; answer: any }>((resolve) => {
          pending.set(i, resolve);
          workers[i % workers.length].postMessage({ id: i, event });
        });
      }),
    );
    for (const [i, { answer }] of results.entries()) expectAnswerOf(i, { status: answer.statusCode, body: JSON.parse(answer.body) });
    expect(new Set(results.map((r) => r.threadId)).size).toBe(3);
  });
});
