/**
 * Throughput of one instance: what one handler process sustains over local HTTP (the library's
 * `serve` server in front of the Lambda bundle) against a minimal node:http server that calls
 * session.run on the same body.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { mlpModel, mulberry32 } from '../tools/onnx';
import { startChild } from './lib/child';
import { handlerOrtOptionsEnv } from './lib/session-options';
import { ms, summarize, times, type Summary } from './lib/stats';
import { autocannon } from './lib/autocannon';
import type { Bench, BenchContext, BenchOutput } from './lib/types';

const SERVERS = ['bare', 'handler'] as const;
type Server = (typeof SERVERS)[number];
const CONNECTIONS = 8;

interface Round {
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
}

export const throughput: Bench = {
  name: 'throughput',
  title: 'Throughput of one instance',
  async run(ctx: BenchContext): Promise<BenchOutput> {
    const rounds = ctx.quick ? 2 : 5;
    const duration = ctx.quick ? 4 : 10;
    const mlp = mlpModel({ seed: 2 });
    const file = path.join(ctx.tmpDir, 'throughput-mlp.onnx');
    fs.writeFileSync(file, mlp.bytes);
    const random = mulberry32(11);
    const row = Array.from({ length: mlp.inputs }, () => Math.fround(random() * 2 - 1));
    const body = JSON.stringify({ inputs: [{ name: 'input', shape: [1, mlp.inputs], datatype: 'FP32', data: row }] });
    const expected = mlp.predict([row])[0];

    const results: Record<Server, Round[]> = { bare: [], handler: [] };
    for (let round = 0; round < rounds; round++) {
      for (const server of round % 2 === 0 ? SERVERS : [...SERVERS].reverse()) {
        const child = await startChild<{ port: number }>('throughput-server.mjs', {
          repoRoot: ctx.repoRoot,
          env: { BENCH_SERVER: server, MODEL_PATH: file, MODEL_NAME: 'model', ...handlerOrtOptionsEnv(file) },
        });
        try {
          const url = `http://127.0.0.1:${child.ready.port}/v2/models/model/infer`;
          await checkAnswer(url, body, expected, server);
          const options = { url, method: 'POST' as const, headers: { 'content-type': 'application/json' }, body, connections: CONNECTIONS };
          // A short run first, not kept: the JIT and the connections warm up.
          await autocannon({ ...options, duration: 1 });
          // autocannon's own histogram keeps whole milliseconds, too coarse here: each response's time is kept instead.
          const latencies: number[] = [];
          const r = await autocannon({ ...options, duration }).on('response', (_client, status, _bytes, responseMs) => {
            if (status === 200) latencies.push(responseMs);
          });
          if (r.non2xx > 0 || r.errors > 0 || r.timeouts > 0) {
            throw new Error(`throughput, ${server}: ${r.non2xx} non-2xx answers, ${r.errors} errors, ${r.timeouts} timeouts`);
          }
          const latency = summarize(latencies);
          results[server].push({ rps: r['2xx'] / r.duration, p50: latency.p50, p99: latency.p99 });
        } finally {
          await child.stop();
        }
      }
      ctx.log(`throughput: round ${round + 1}/${rounds} done`);
    }

    const stats = Object.fromEntries(
      SERVERS.map((s) => [
        s,
        {
          rps: summarize(results[s].map((r) => r.rps)),
          p50: summarize(results[s].map((r) => r.p50)),
          p99: summarize(results[s].map((r) => r.p99)),
        },
      ]),
    ) as Record<Server, { rps: Summary; p50: Summary; p99: Summary }>;
    const rows = SERVERS.map((s) => {
      const x = stats[s];
      return [
        s === 'bare' ? 'bare: node:http + session.run' : 'handler bundle behind the `serve` server',
        `${x.rps.min.toFixed(0)} / **${x.rps.p50.toFixed(0)}** / ${x.rps.max.toFixed(0)}`,
        s === 'bare' ? '1' : times(x.rps.p50 / stats.bare.rps.p50),
        ms(x.p50.p50),
        s === 'bare' ? '1' : times(x.p50.p50 / stats.bare.p50.p50),
        ms(x.p99.p50),
        s === 'bare' ? '1' : times(x.p99.p50 / stats.bare.p99.p50),
      ];
    });
    return {
      method:
        `autocannon (programmatic API, in the bench process) against one server process on 127.0.0.1, ${CONNECTIONS} connections, ` +
        `${duration} s per run after a 1 s warm-up run, ${rounds} runs per server, the servers taking turns; a fresh server ` +
        'process per run. The body is one row for the MLP (4-16-3) as an Open Inference Protocol request. **handler** is the ' +
        'Lambda bundle (`assets/handlers/inference/index.mjs`) behind `startInferenceServer`, which turns each request into an ' +
        'API Gateway REST event, as `cdk-serverless-inference serve` does; **bare** parses the JSON, runs the session with the ' +
        "handler's options and writes the outputs as JSON. The load generator shares the machine's cores with the server.",
      tables: [
        {
          columns: ['server', 'requests/s min / median / max', 'req/s vs bare', 'latency p50 (ms, median run)', 'p50 vs bare', 'latency p99 (ms, median run)', 'p99 vs bare'],
          rows,
        },
      ],
      notes: [
        "Latency is each response's time as autocannon reports it (its `response` event), percentiles per run; the table " +
          "shows the median run's. With a fixed number of connections, latency is mostly queueing: connections ÷ throughput.",
        'On Lambda one instance serves one request at a time, so this is not a Lambda figure: it is the cost per request of ' +
          'the handler, seen as the capacity it leaves to a local server or a container.',
      ],
      data: { connections: CONNECTIONS, duration, rounds, unit: { rps: 'requests/s', latency: 'ms' }, runs: results, summary: stats },
    };
  },
};

async function checkAnswer(url: string, body: string, expected: number[], server: Server): Promise<void> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  const answer = (await response.json()) as { outputs?: { name: string; data: number[] }[] };
  const data = answer.outputs?.find((o) => o.name === 'probabilities')?.data;
  if (response.status !== 200 || data?.length !== expected.length || !data.every((v, i) => Math.abs(v - expected[i]) < 1e-5)) {
    throw new Error(`throughput, ${server}: wrong answer ${JSON.stringify(answer)}, expected probabilities ${JSON.stringify(expected)}`);
  }
}
