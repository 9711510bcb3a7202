import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InferenceCompute, ModelSource, S3ModelEndpoint } from '../../../lib';
import { limitConcurrency } from '../../../lib/local/concurrency-limit';
import { DEFAULT_CONCURRENCY_PER_WORKER, DEFAULT_QUEUE, workerSettings } from '../../../lib/local/cli';
import { mlpModel, mulberry32 } from '../../../tools/onnx';
import { embeddingStackModel } from '../../../tools/onnx/serving-models';
import { tempDir, writeModel } from '../../support/handler';
import { runCli, type Served, startServe } from '../../support/serve';
import { newStack, resourceProps } from '../../support/stacks';
import { bundleUserEntry } from '../../support/user-entry';

/*
 * `serve --workers N` runs the handler as the Node.js runtime of Lambda Managed Instances does:
 * N worker threads, each with its own init (its own onnxruntime session and copy of the model).
 */

const ROOT = path.resolve(__dirname, '../../..');
const MiB = 1024 * 1024;

/** Linux's view of a process: resident memory (VmRSS) and CPU time of all its threads. */
function rssBytes(pid: number): number {
  return Number(/^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
}
function cpuSeconds(pid: number): number {
  // Fields 14 and 15 (utime, stime) after the command name, in clock ticks of 1/100 s on Linux.
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}
/** CPU seconds the whole machine has spent busy (all but idle and iowait), from /proc/stat. */
function machineBusySeconds(): number {
  const [user, nice, system, , , irq, softirq, steal] = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].split(/\s+/).slice(1).map(Number);
  return (user + nice + system + irq + softirq + steal) / 100;
}

interface Window {
  /** Answers per second. */
  readonly perSecond: number;
  /** CPU cores the serve process used, on average. */
  readonly cores: number;
  /** CPU cores this test's client used. */
  readonly client: number;
  /** CPU cores the rest of the machine used meanwhile: neither serve nor this test's client. */
  readonly others: number;
}

function mean(windows: readonly Window[]): Window {
  const avg = (f: (w: Window) => number) => windows.reduce((a, w) => a + f(w), 0) / windows.length;
  return { perSecond: avg((w) => w.perSecond), cores: avg((w) => w.cores), client: avg((w) => w.client), others: avg((w) => w.others) };
}

describe('serve --workers: memory grows with workers, and every answer under load is right', () => {
  // 40 MiB of embedding table (every session holds it) and 12 dense 512 × 512 layers: each request of
  // 64 ids costs onnxruntime 201 M multiply-adds, about 4.5 ms of one core here. The larger a request's
  // work, the smaller the share of what does not grow with workers (the server's thread, the client).
  const model = embeddingStackModel({ vocabulary: 20_480, width: 512, layers: 12, seed: 3 });
  const ROWS = 64;
  const CONNECTIONS = 8;
  /** Each measurement: the two servers in turns, ROUNDS times WINDOW_MS each. */
  const WINDOW_MS = 750;
  const ROUNDS = 4;
  let modelFile: string;
  let rss = { 1: 0, 2: 0 };
  const served: Record<1 | 2, Served | undefined> = { 1: undefined, 2: undefined };

  // The reference, per id: each request has its own ROWS ids, and the answer's rows are checked one by one.
  const reference = new Map<number, number[]>();
  const expectedRow = (id: number) => {
    let row = reference.get(id);
    if (!row) {
      row = model.predict([id])[0];
      reference.set(id, row);
    }
    return row;
  };
  const idsOf = (i: number) => {
    const random = mulberry32(i + 1);
    return Array.from({ length: ROWS }, () => Math.floor(random() * model.vocabulary));
  };
  const bodyOf = (i: number) => JSON.stringify({ id: `r${i}`, inputs: [{ name: 'ids', shape: [ROWS], datatype: 'INT64', data: idsOf(i) }] });
  /** What is wrong with the answer to request i, or undefined. */
  const wrongIn = (i: number, status: number, text: string): string | undefined => {
    if (status !== 200) return `request ${i}: status ${status}: ${text.slice(0, 200)}`;
    const body = JSON.parse(text);
    if (body.id !== `r${i}`) return `request ${i}: the answer of ${body.id}`;
    const scores = body.outputs?.[0];
    if (scores?.name !== 'scores' || scores.shape?.join() !== `${ROWS},${model.outputs}`) return `request ${i}: ${text.slice(0, 200)}`;
    const ids = idsOf(i);
    for (let r = 0; r < ROWS; r++) {
      const expected = expectedRow(ids[r]);
      for (let k = 0; k < model.outputs; k++) {
        const got = scores.data[r * model.outputs + k];
        if (!(Math.abs(got - expected[k]) <= 1e-4)) return `request ${i}, row ${r}, score ${k}: ${got}, expected ${expected[k]}`;
      }
    }
    return undefined;
  };

  let nextRequest = 0;
  let checked = 0;
  const wrong: string[] = [];

  /** `CONNECTIONS` keep-alive connections sending one request after another for `ms`; every answer is kept, then checked. */
  async function drive(s: Served, ms: number): Promise<Window> {
    const agent = new http.Agent({ keepAlive: true, maxSockets: CONNECTIONS });
    const url = new URL('/v2/models/model/infer', s.url);
    const answers: Array<[number, number, string]> = [];
    const send = (i: number) =>
      new Promise<void>((resolve, reject) => {
        const body = bodyOf(i);
        const req = http.request(url, { method: 'POST', agent, headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            answers.push([i, res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8')]);
            resolve();
          });
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end(body);
      });
    const pid = s.child.pid!;
    const cpuBefore = cpuSeconds(pid);
    const clientBefore = process.cpuUsage();
    const machineBefore = machineBusySeconds();
    const started = performance.now();
    const until = started + ms;
    await Promise.all(
      Array.from({ length: CONNECTIONS }, async () => {
        while (performance.now() < until) await send(nextRequest++);
      }),
    );
    const elapsed = (performance.now() - started) / 1000;
    const serveCpu = cpuSeconds(pid) - cpuBefore;
    const client = process.cpuUsage(clientBefore);
    const clientCpu = (client.user + client.system) / 1e6;
    const others = Math.max(0, machineBusySeconds() - machineBefore - serveCpu - clientCpu) / elapsed;
    agent.destroy();
    for (const [i, status, text] of answers) {
      const problem = wrongIn(i, status, text);
      if (problem) wrong.push(problem);
    }
    checked += answers.length;
    return { perSecond: answers.length / elapsed, cores: serveCpu / elapsed, client: clientCpu / elapsed, others };
  }

  beforeAll(async () => {
    modelFile = writeModel(model.bytes, 'embedding-stack.onnx');
    // One onnxruntime thread per worker in both, so that only the workers differ (with --workers 1,
    // serve would give its one worker both cores for onnxruntime's threads, as an endpoint would).
    const env = { ...process.env, ORT_INTRA_OP_THREADS: '1' };
    const [one, two] = await Promise.all([
      startServe(['--model', modelFile, '--port', '0', '--workers', '1'], { env }),
      startServe(['--model', modelFile, '--port', '0', '--workers', '2'], { env }),
    ]);
    served[1] = one;
    served[2] = two;
    // Memory once every worker has loaded the model, before any request.
    rss = { 1: rssBytes(one.child.pid!), 2: rssBytes(two.child.pid!) };
  });
  afterAll(() => {
    served[1]?.child.kill('SIGTERM');
    served[2]?.child.kill('SIGTERM');
  });

  it('tells how it runs the handler', () => {
    expect(served[1]!.output()).toMatch(/1 worker thread, each with its own copy of the model and 1 onnxruntime thread; at most 4 requests in flight, 100 more waiting/);
    expect(served[2]!.output()).toMatch(/2 worker threads, each with its own copy of the model and 1 onnxruntime thread; at most 8 requests in flight, 100 more waiting/);
  });

  it('holds a copy of the model per worker: memory grows by the model with each worker', () => {
    // Each worker holds its own session (and a little runtime of its own).
    expect(rss[2] - rss[1]).toBeGreaterThanOrEqual(0.8 * model.bytes.length);
  });

  it('serves a load on both servers, in turns, and logs what each answered', async () => {
    const testStarted = performance.now();
    const [one, two] = [served[1]!, served[2]!];
    // Requests per second are a benchmark's figure (bench/results/concurrency-and-arm64.md), not an
    // assertion here: on a shared machine they say more about its other work than about serve. What
    // this test asserts is that every answer under load is right (below) and that both servers answered.
    await drive(one, 300);
    await drive(two, 300);
    const runs = { one: [] as Window[], two: [] as Window[] };
    for (let round = 0; round < ROUNDS; round++) {
      runs.one.push(await drive(one, WINDOW_MS));
      runs.two.push(await drive(two, WINDOW_MS));
    }
    const [w1, w2] = [mean(runs.one), mean(runs.two)];
    const rssAfter = { 1: rssBytes(one.child.pid!), 2: rssBytes(two.child.pid!) };
    const perWorker = rss[2] - rss[1];
    const f = (n: number) => n.toFixed(0);
    const c = (n: number) => n.toFixed(2);
    console.log(
      `serve --workers, ${f(model.bytes.length / MiB)} MiB model, ${ROWS} ids a request (${f((model.macsPerRow * ROWS) / 1e6)} M multiply-adds), ${CONNECTIONS} connections: ` +
        `workers=1 ${f(w1.perSecond)} req/s (serve used ${c(w1.cores)} cores, the client ${c(w1.client)}), RSS ${f(rss[1] / MiB)} MiB loaded, ${f(rssAfter[1] / MiB)} MiB after the load; ` +
        `workers=2 ${f(w2.perSecond)} req/s (${c(w2.cores)} cores, ${c(w2.client)}), RSS ${f(rss[2] / MiB)} MiB, ${f(rssAfter[2] / MiB)} MiB; ` +
        `×${c(w2.perSecond / w1.perSecond)} req/s (other processes used ${c((w1.others + w2.others) / 2)} cores), +${f(perWorker / MiB)} MiB for the second worker; ` +
        `${checked} answers checked, ${wrong.length} wrong; ${((performance.now() - testStarted) / 1000).toFixed(1)} s`,
    );
    expect(w1.perSecond).toBeGreaterThan(0);
    expect(w2.perSecond).toBeGreaterThan(0);
  });

  it('answers every request of the load test right, each with its own inputs', () => {
    expect(wrong.slice(0, 5)).toEqual([]);
    // How many depends on the machine's speed (the load runs for a fixed time): enough to mean the
    // check ran under load, not a throughput figure.
    expect(checked).toBeGreaterThan(100);
  });
});

describe('serve --workers with a user entry file', () => {
  const mlp = mlpModel({ inputs: 4, hidden: 8, classes: 3, seed: 31 });
  // The entry holds a request when asked (so the test can fill every slot), and says which thread answered.
  const ENTRY = `
import { threadId } from 'node:worker_threads';
import { setTimeout as sleep } from 'node:timers/promises';
import { createInferenceHandler } from 'cdk-serverless-inference/handler';

export const handler = await createInferenceHandler({
  hooks: {
    async preprocess(body) {
      if (body.crash) {
        // A hook's bug that no request catches: it ends the worker's thread.
        setTimeout(() => {
          throw new Error('the hook crashed');
        }, 10);
        await sleep(10_000);
      }
      if (body.holdMs) await sleep(body.holdMs);
      return { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: body.row }] };
    },
    postprocess(response, context) {
      return { probabilities: response.outputs[0].data, row: context.request.row, threadId };
    },
  },
});
`;
  // Bundled inside the repo so that `require('onnxruntime-node')` finds the installed package.
  fs.mkdirSync(path.join(ROOT, 'node_modules', '.cache'), { recursive: true });
  const bundleDir = fs.mkdtempSync(path.join(ROOT, 'node_modules', '.cache', 'csi-serve-workers-'));
  afterAll(() => fs.rmSync(bundleDir, { recursive: true, force: true }));

  let bundle: string;
  beforeAll(async () => {
    bundle = await bundleUserEntry(ENTRY, bundleDir);
  });

  it('runs the entry in every worker, spreads requests over them, queues what exceeds --concurrency and refuses what exceeds --queue', async () => {
    const s = await startServe(['--model', writeModel(mlp.bytes), '--handler', bundle, '--port', '0', '--workers', '2', '--concurrency', '2', '--queue', '1']);
    try {
      const row = (i: number) => [i + 1, -(i + 1), i / 2, 1].map(Math.fround);
      const post = (i: number, holdMs: number) =>
        fetch(`${s.url}/v2/models/model/infer`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ row: row(i), holdMs }) });
      // Two requests fill both slots (one per worker) for a second, the third waits, the fourth finds no room.
      const pause = () => new Promise((r) => setTimeout(r, 150));
      const started = performance.now();
      const held = [post(0, 1_000), post(1, 1_000)];
      await pause();
      held.push(post(2, 0));
      await pause();
      const refused = await post(3, 0);
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toBe('1');
      expect(((await refused.json()) as any).message).toMatch(/2 requests in flight \(--concurrency\) and 1 waiting \(--queue\)/);
      expect(performance.now() - started).toBeLessThan(1_000);

      const answers = await Promise.all(held.map(async (r) => ({ status: (await r).status, body: (await (await r).json()) as any, at: performance.now() - started })));
      for (const [i, a] of answers.entries()) {
        expect(a.status).toBe(200);
        expect(a.body.row).toEqual(row(i));
        const expected = mlp.predict([row(i)])[0];
        for (const [k, p] of (a.body.probabilities as number[]).entries()) expect(p).toBeCloseTo(expected[k], 5);
      }
      expect(new Set([answers[0].body.threadId, answers[1].body.threadId]).size).toBe(2);
      // The queued request ran once a slot was free.
      expect(answers[2].at).toBeGreaterThanOrEqual(1_000);
    } finally {
      s.child.kill('SIGTERM');
    }
  });

  it('answers 502 to the requests of a worker that crashes, and stops with code 1 and the cause, as a process whose handler crashes does', async () => {
    const s = await startServe(['--model', writeModel(mlp.bytes), '--handler', bundle, '--port', '0', '--workers', '2']);
    const exited = new Promise<number | null>((resolve) => s.child.once('exit', resolve));
    const res = await fetch(`${s.url}/v2/models/model/infer`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ row: [1, 2, 3, 4], crash: true }),
    });
    expect(res.status).toBe(502);
    expect(await res.json()).toEqual({ message: 'Internal server error' });
    expect(await exited).toBe(1);
    expect(s.output()).toMatch(/worker [12] of 2 stopped: Error: the hook crashed/);
    expect(s.output()).toMatch(/serve stops: a worker that ended takes its model and its requests with it/);
  });
});

describe('serve --workers starts only when every worker is ready, and stops them all', () => {
  const { POWERTOOLS_LOG_LEVEL: _, NODE_PATH: __, ...userEnv } = process.env;

  it('exits 1 with the cause when a worker cannot load the model, before it serves', async () => {
    const r = await runCli(['serve', '--model', writeModel(new TextEncoder().encode('not an ONNX model'), 'notes.onnx'), '--port', '0', '--workers', '2'], { env: userEnv });
    expect(r.code, r.output).toBe(1);
    expect(r.output).toMatch(/Loading model 'model' in 2 workers/);
    expect(r.output).toMatch(/cannot serve model 'model' \(worker [12] of 2\): onnxruntime cannot load the model \(request id [0-9a-f-]{36}\)\nserve stops: /);
    expect(r.output).toMatch(/onnxruntime cannot load the model \S*notes\.onnx/);
    expect(r.output).not.toMatch(/Serving model/);
    expect(r.output.slice(r.output.indexOf("cannot serve model 'model'"))).not.toMatch(/next attempt|retries the load/);
  });

  it('exits 1 when the entry file exports no handler', async () => {
    const entry = path.join(tempDir('csi-serve-entry-'), 'entry.mjs');
    fs.writeFileSync(entry, 'export const notTheHandler = 1;\n');
    const r = await runCli(['serve', '--model', writeModel(mlpModel().bytes), '--handler', entry, '--port', '0', '--workers', '1']);
    expect(r.code).toBe(1);
    expect(r.output).toMatch(/cannot serve model 'model' \(worker 1 of 1\): \S*entry\.mjs does not export a function named 'handler'/);
  });

  it('stops its workers and exits 0 on SIGTERM', async () => {
    const s = await startServe(['--model', writeModel(mlpModel().bytes), '--port', '0', '--workers', '2']);
    expect((await fetch(`${s.url}/v2/health/ready`)).status).toBe(200);
    const started = performance.now();
    const code = await new Promise<number | null>((resolve) => {
      s.child.once('exit', resolve);
      s.child.kill('SIGTERM');
    });
    expect(code).toBe(0);
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it('refuses workers, concurrency and queue that are not whole numbers, and fewer requests in flight than workers', async () => {
    const model = writeModel(mlpModel().bytes);
    for (const [args, message] of [
      [['--workers', '0'], /--workers must be a whole number of at least 1, got: 0/],
      [['--concurrency', '1.5'], /--concurrency must be a whole number of at least 1, got: 1\.5/],
      [['--queue=-1'], /--queue must be a whole number of at least 0, got: -1/],
      [['--workers', '2', '--concurrency', '1'], /--concurrency must be at least the 2 workers/],
    ] as const) {
      const r = await runCli(['serve', '--model', model, ...args]);
      expect(r.code, r.output).toBe(1);
      expect(r.output).toMatch(message);
    }
  });
});

describe('serve --workers defaults', () => {
  it('runs the handler in the server’s own thread unless --workers, --concurrency or --queue is given', () => {
    expect(workerSettings({})).toBeUndefined();
    expect(workerSettings({ workers: '3' })).toEqual({ workers: 3, concurrency: 3 * DEFAULT_CONCURRENCY_PER_WORKER, queue: DEFAULT_QUEUE });
    expect(workerSettings({ concurrency: '6' })).toEqual({ workers: 1, concurrency: 6, queue: DEFAULT_QUEUE });
    expect(workerSettings({ queue: '0' })).toEqual({ workers: 1, concurrency: DEFAULT_CONCURRENCY_PER_WORKER, queue: 0 });
  });

  it('takes as many requests per worker as an endpoint on Managed Instances does by default', () => {
    const { stack } = newStack();
    const vpc = new ec2.Vpc(stack, 'Vpc', { natGateways: 0, subnetConfiguration: [{ name: 'instances', subnetType: ec2.SubnetType.PRIVATE_ISOLATED }] });
    const endpoint = new S3ModelEndpoint(stack, 'E', {
      model: ModelSource.fromAsset(writeModel(mlpModel().bytes)),
      memorySize: 8192,
      compute: InferenceCompute.managedInstances({ vpc, workers: 3 }),
    });
    const props = resourceProps(Template.fromStack(stack), endpoint.function);
    expect(props.CapacityProviderConfig.LambdaManagedInstancesCapacityProviderConfig.PerExecutionEnvironmentMaxConcurrency).toBe(3 * DEFAULT_CONCURRENCY_PER_WORKER);
  });
});

describe('limitConcurrency', () => {
  it('runs at most maxConcurrency calls at a time, starts waiting ones in order, and refuses beyond the queue', async () => {
    const releases: Array<() => void> = [];
    const started: number[] = [];
    const handler = limitConcurrency(
      async (event) => {
        started.push(event as number);
        await new Promise<void>((r) => releases.push(r));
        return { statusCode: 200, body: String(event) };
      },
      { maxConcurrency: 2, maxQueue: 2 },
    );
    const calls = [1, 2, 3, 4, 5].map((i) => handler(i, { awsRequestId: `r${i}` }) as Promise<any>);
    await new Promise((r) => setImmediate(r));
    expect(started).toEqual([1, 2]);
    const refused = await calls[4];
    expect(refused.statusCode).toBe(503);
    expect(refused.headers['Retry-After']).toBe('1');
    releases[1]();
    await new Promise((r) => setImmediate(r));
    expect(started).toEqual([1, 2, 3]);
    releases[0]();
    await new Promise((r) => setImmediate(r));
    expect(started).toEqual([1, 2, 3, 4]);
    // Two in flight (3 and 4) and nobody waiting: the next call waits for a slot.
    const sixth = handler(6, { awsRequestId: 'r6' }) as Promise<any>;
    await new Promise((r) => setImmediate(r));
    expect(started).toEqual([1, 2, 3, 4]);
    releases[2]();
    await new Promise((r) => setImmediate(r));
    expect(started).toEqual([1, 2, 3, 4, 6]);
    releases[3]();
    releases[4]();
    expect((await sixth).body).toBe('6');
    expect((await Promise.all(calls.slice(0, 4))).map((r) => r.body)).toEqual(['1', '2', '3', '4']);
  });
});
