/**
 * A bounded load test of one handler process: `cdk-serverless-inference serve` in a child process
 * (so that its memory is its own), 16 connections for 8 s over loopback, mixing valid requests,
 * each checked against the model's plain-JS reference, with invalid ones that must get their 4xx.
 * Zero 5xx, zero wrong answers, and a resident set that stops growing once warm. The figures are
 * printed for the record.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
// @ts-expect-error -- autocannon 8 ships no type declarations; the part used here is typed below.
import autocannonUntyped from 'autocannon';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mulberry32 } from '../../../tools/onnx';
import { writeModel } from '../../support/handler';
import { type Draft, answerMismatch, mlpUnderTest, render, validDraft } from '../../support/reliability-requests';

interface LoadRequest {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
  onResponse?: (status: number, body: string) => void;
}

interface LoadResult {
  duration: number;
  errors: number;
  timeouts: number;
  statusCodeStats: Record<string, { count: number }>;
  requests: { average: number; total: number; sent: number };
  latency: { p50: number; p99: number; max: number };
}

const autocannon = autocannonUntyped as (options: { url: string; connections: number; duration: number; requests: LoadRequest[] }) => Promise<LoadResult>;

const CLI = path.resolve(__dirname, '../../..', 'bin', 'cdk-serverless-inference.js');
const DURATION_S = 8;
const CONNECTIONS = 16;
const MAX_BODY_BYTES = 65536;
const SAMPLE_EVERY_MS = 250;

const model = mlpUnderTest('scorer');
const infer = `/v2/models/${model.name}/infer`;
const json = { 'content-type': 'application/json' };

/** A batch of 32 deterministic rows, next to small generated requests of every form. */
const big: Draft = (() => {
  const random = mulberry32(99);
  const values = Array.from({ length: 32 * 4 }, () => Math.fround(random() * 20 - 10));
  return { batch: 32, values: new Map([['input', values]]), form: 'oip', order: ['input'], nested: false, id: 'big' };
})();
const drafts: Draft[] = [model.fixed, big, ...fc.sample(validDraft(model), { seed: 7, numRuns: 6 })];

const validInput = { name: 'input', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] };
const invalid: Array<{ what: string; status: number; request: LoadRequest }> = [
  { what: 'malformed JSON', status: 400, request: { method: 'POST', path: infer, headers: json, body: '{"inputs": [' } },
  { what: 'a wrong datatype', status: 400, request: { method: 'POST', path: infer, headers: json, body: JSON.stringify({ inputs: [{ ...validInput, datatype: 'INT32' }] }) } },
  {
    what: 'a shape the data does not fill',
    status: 400,
    request: { method: 'POST', path: infer, headers: json, body: JSON.stringify({ inputs: [{ ...validInput, shape: [2, 4] }] }) },
  },
  {
    what: 'a claimed shape of 10^9',
    status: 400,
    request: { method: 'POST', path: infer, headers: json, body: JSON.stringify({ inputs: [{ ...validInput, shape: [250_000_000, 4] }] }) },
  },
  { what: 'an unknown input', status: 400, request: { method: 'POST', path: infer, headers: json, body: JSON.stringify({ inputs: [{ ...validInput, name: 'x' }] }) } },
  {
    what: 'a raw NaN token',
    status: 400,
    request: { method: 'POST', path: infer, headers: json, body: '{"inputs":[{"name":"input","datatype":"FP32","shape":[1,4],"data":[NaN,1,2,3]}]}' },
  },
  { what: 'ragged instances', status: 400, request: { method: 'POST', path: infer, headers: json, body: '{"instances":[[1,2,3,4],[1,2,3,4,5],[1,2,3]]}' } },
  { what: 'a CSV body', status: 415, request: { method: 'POST', path: infer, headers: { 'content-type': 'text/csv' }, body: '1,2,3,4' } },
  {
    what: 'a body over MAX_BODY_BYTES',
    status: 413,
    request: { method: 'POST', path: infer, headers: json, body: JSON.stringify({ inputs: [validInput], pad: 'x'.repeat(MAX_BODY_BYTES) }) },
  },
  { what: 'an unknown model', status: 404, request: { method: 'POST', path: '/v2/models/other/infer', headers: json, body: JSON.stringify({ inputs: [validInput] }) } },
  { what: 'GET on infer', status: 405, request: { method: 'GET', path: infer } },
];

/** Starts `serve` as a user would and waits for the URL it prints. */
function startServe(modelFile: string): Promise<{ child: ChildProcess; url: string; stderr: () => string }> {
  const child = spawn(process.execPath, [CLI, 'serve', '--model', modelFile, '--port', '0', '--name', model.name], {
    // Errors only: a 5xx or an internal error would show here, 4xx answers would not.
    env: { ...process.env, MAX_BODY_BYTES: String(MAX_BODY_BYTES), POWERTOOLS_LOG_LEVEL: 'ERROR', POWERTOOLS_METRICS_DISABLED: 'true' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start in 20 s:\n${out}${err}`)), 20_000);
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /at (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1], stderr: () => err });
      }
    });
    child.on('exit', (code) => reject(new Error(`serve exited with ${code}:\n${out}${err}`)));
  });
}

/** The process's resident set in MiB, from the kernel's own account. */
function rssMiB(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1];
  return Number(kb) / 1024;
}

describe.skipIf(!fs.existsSync('/proc/self/status'))('one handler process under load', () => {
  let server: Awaited<ReturnType<typeof startServe>>;
  beforeAll(async () => {
    server = await startServe(writeModel(model.bytes));
  });
  afterAll(() => {
    server?.child.kill('SIGTERM');
  });

  it('every request gets its answer once, one at a time', async () => {
    for (const d of drafts) {
      const res = await fetch(server.url + infer, { method: 'POST', headers: json, body: JSON.stringify(render(model, d)) });
      expect(answerMismatch(model, d, res.status, await res.text())).toBeUndefined();
    }
    for (const { what, status, request } of invalid) {
      const res = await fetch(server.url + request.path, { method: request.method, headers: request.headers, body: request.body });
      expect(res.status, what).toBe(status);
      expect(Object.keys((await res.json()) as object), what).toEqual(['error']);
    }
  });

  it(`${CONNECTIONS} connections for ${DURATION_S} s: zero 5xx, zero wrong answers, flat memory`, { timeout: 30_000 }, async () => {
    const seen = { valid: 0, invalid: 0 };
    const wrong: string[] = [];
    const requests: LoadRequest[] = [
      ...drafts.map((d) => ({
        method: 'POST',
        path: infer,
        headers: json,
        body: JSON.stringify(render(model, d)),
        onResponse: (status: number, body: string) => {
          seen.valid++;
          const bad = answerMismatch(model, d, status, body);
          if (bad) wrong.push(`request ${d.id ?? '(no id)'}: ${bad}`);
        },
      })),
      ...invalid.map(({ what, status, request }) => ({
        ...request,
        onResponse: (got: number, body: string) => {
          seen.invalid++;
          if (got !== status || !/^\{"error":".+"\}$/.test(body)) wrong.push(`${what}: ${got} ${body.slice(0, 200)}`);
        },
      })),
    ];

    const rss: number[] = [];
    const sampler = setInterval(() => rss.push(rssMiB(server.child.pid!)), SAMPLE_EVERY_MS);
    let result: LoadResult;
    try {
      result = await autocannon({ url: server.url, connections: CONNECTIONS, duration: DURATION_S, requests });
    } finally {
      clearInterval(sampler);
    }

    const quarter = Math.floor(rss.length / 4);
    const secondQuarterMax = Math.max(...rss.slice(quarter, 2 * quarter));
    const lastQuarterMax = Math.max(...rss.slice(3 * quarter));
    const statuses = Object.fromEntries(Object.entries(result.statusCodeStats).map(([s, { count }]) => [s, count]));
    console.log(
      [
        `load: ${result.requests.total} requests in ${result.duration} s over ${CONNECTIONS} connections (${seen.valid} valid, ${seen.invalid} invalid)`,
        `  throughput ${Math.round(result.requests.average)} req/s; latency p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms, max ${result.latency.max} ms`,
        `  statuses ${JSON.stringify(statuses)}; connection errors ${result.errors}, timeouts ${result.timeouts}; wrong answers ${wrong.length}`,
        `  server RSS (MiB, every ${SAMPLE_EVERY_MS} ms): ${rss.map((v) => v.toFixed(0)).join(' ')}`,
        `  RSS max in the second quarter ${secondQuarterMax.toFixed(1)} MiB, in the last quarter ${lastQuarterMax.toFixed(1)} MiB`,
      ].join('\n'),
    );

    expect(wrong.slice(0, 5)).toEqual([]);
    expect(Object.keys(statuses).filter((s) => Number(s) >= 500)).toEqual([]);
    expect(result.errors).toBe(0);
    expect(result.timeouts).toBe(0);
    // Enough traffic to mean something, of both kinds.
    expect(seen.valid).toBeGreaterThan(1000);
    expect(seen.invalid).toBeGreaterThan(1000);
    expect(rss.length).toBeGreaterThanOrEqual(20);
    expect(lastQuarterMax).toBeLessThanOrEqual(secondQuarterMax + 50);
    // Nothing failed in the handler: no error log, no function error.
    expect(server.stderr()).toBe('');
    expect(server.child.exitCode).toBeNull();
  });
});
