/**
 * The handler's work per front: the same request as the REST API passes it (every body base64, as
 * `*` / `*` binary media types make it) and as a function URL passes it (JSON as text, binary
 * base64), through the bundled core handler, in one process, after warm-up; and a binary answer
 * through a function URL buffered (base64, as Lambda's buffered payload must carry it) and streamed
 * (its bytes as they are), through the inference entry bundle. What the gateway's own hop adds
 * needs an AWS account and is not measured here.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { functionUrlEvent, restEvent } from '../fixtures/events';
import { inferenceHandlerDir } from '../lib/private/package-paths';
import { importCoreBundle } from '../test/support/handler';
import { logisticRegressionModel, matMulFp32Model, mulberry32 } from '../tools/onnx';
import { summarize, times, us } from './lib/stats';
import type { Bench, BenchContext, BenchOutput } from './lib/types';

type Front = 'rest' | 'url';
type Handler = (e: unknown, context: { awsRequestId: string }) => Promise<{ statusCode: number; body: string; isBase64Encoded?: boolean; headers?: Record<string, string> }>;

interface Case {
  readonly label: string;
  readonly rows: number;
  readonly binary: boolean;
}

const CASES: readonly Case[] = [
  { label: 'logistic regression, 100 features, 1 row, JSON', rows: 1, binary: false },
  { label: 'logistic regression, 100 features, 64 rows, JSON', rows: 64, binary: false },
  { label: 'logistic regression, 100 features, 64 rows, binary tensors', rows: 64, binary: true },
];

export const fronts: Bench = {
  name: 'fronts',
  title: 'The handler through the REST API and through a function URL',
  async run(ctx: BenchContext): Promise<BenchOutput> {
    const blocks = ctx.quick ? 4 : 10;
    const perBlock = ctx.quick ? 250 : 500;
    const warmup = 300;
    process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
    process.env.POWERTOOLS_METRICS_DISABLED = 'true';
    const { createInferenceHandler } = await importCoreBundle();
    const lr = logisticRegressionModel({ features: 100, seed: 1 });
    const file = path.join(ctx.tmpDir, 'fronts-lr.onnx');
    fs.writeFileSync(file, lr.bytes);
    const handler = (await createInferenceHandler({ env: { MODEL_PATH: file, MODEL_NAME: 'model' } })) as Handler;
    const random = mulberry32(7);
    const context = { awsRequestId: 'bench-fronts' };

    const rows: string[][] = [];
    const results: Record<string, Record<Front, ReturnType<typeof summarize>>> = {};
    for (const c of CASES) {
      const matrix = Array.from({ length: c.rows }, () => Array.from({ length: lr.features }, () => Math.fround(random() * 2 - 1)));
      const events = c.binary ? binaryEvents(matrix) : jsonEvents(matrix);
      const expected = lr.predict(matrix);
      for (const front of ['rest', 'url'] as const) {
        const values = answerValues(await handler(events[front], context));
        if (values?.length !== expected.length || !values.every((v, i) => Math.abs(v - expected[i]) < 1e-4)) {
          throw new Error(`fronts, ${c.label}, ${front}: the answer disagrees with the model's reference`);
        }
      }
      const samples: Record<Front, number[]> = { rest: [], url: [] };
      for (const front of ['rest', 'url'] as const) for (let i = 0; i < warmup; i++) await handler(events[front], context);
      for (let b = 0; b < blocks; b++) {
        for (const front of (b % 2 ? ['url', 'rest'] : ['rest', 'url']) as Front[]) {
          for (let i = 0; i < perBlock; i++) {
            const t = process.hrtime.bigint();
            await handler(events[front], context);
            samples[front].push(Number(process.hrtime.bigint() - t) / 1e6);
          }
        }
      }
      const s = { rest: summarize(samples.rest), url: summarize(samples.url) };
      results[c.label] = s;
      rows.push([c.label, `${us(s.rest.p50)} / ${us(s.rest.p99)}`, `${us(s.url.p50)} / ${us(s.url.p99)}`, `${times(s.url.p50 / s.rest.p50)} / ${times(s.url.p99 / s.rest.p99)}`]);
      ctx.log(`fronts: ${c.label} done`);
    }
    const streamed = await streamedRows(ctx, { blocks, perBlock, warmup });
    return {
      method:
        `In the bench process, after ${warmup} warm-up calls of each: ${blocks} blocks of ${perBlock} timed calls per front, the fronts taking turns block by block. ` +
        'The bundled core handler (`createInferenceHandler`) answers the same request as a REST API event (the body base64, as the API passes every body with ' +
        "its `*/*` binary media types) and as a function URL event (JSON as text, binary tensor data base64), up to its answer. Both answers are checked against the model's reference first.",
      tables: [
        { columns: ['model, batch, encoding', 'REST API event p50 / p99 (µs)', 'function URL event p50 / p99 (µs)', 'URL ÷ REST p50 / p99'], rows },
        {
          caption:
            "Binary tensor answers through a function URL: buffered (the answer base64 in the payload, and the JSON of that payload, which Lambda's runtime writes) and streamed (RESPONSE_STREAM: its bytes written as they are), " +
            "the inference entry bundle with and without RESPONSE_STREAMING=1, the stream a sink as the runtime gives one. The request is base64 on both: Lambda's event is JSON.",
          columns: ['model, batch', 'answer bytes', 'buffered p50 / p99 (µs)', 'streamed p50 / p99 (µs)', 'streamed ÷ buffered p50 / p99'],
          rows: streamed.rows,
        },
      ],
      notes: ["API Gateway's own hop (its request handling and the network between it and Lambda) needs an AWS account and is not in these figures."],
      data: { blocks, perBlock, warmup, unit: 'ms per call', results, streamed: streamed.results },
    };
  },
};

function jsonEvents(matrix: number[][]): Record<Front, unknown> {
  const body = JSON.stringify({ inputs: [{ name: 'features', shape: [matrix.length, matrix[0].length], datatype: 'FP32', data: matrix.flat() }] });
  return { rest: restEvent('POST', '/v2/models/model/infer', body, { base64: true }), url: functionUrlEvent('POST', '/v2/models/model/infer', body) };
}

function binaryEvents(matrix: number[][]): Record<Front, unknown> {
  const values = Float32Array.from(matrix.flat());
  const header = Buffer.from(
    JSON.stringify({
      inputs: [{ name: 'features', shape: [matrix.length, matrix[0].length], datatype: 'FP32', parameters: { binary_data_size: values.byteLength } }],
      parameters: { binary_data_output: true },
    }),
  );
  const body = Buffer.concat([header, Buffer.from(values.buffer)]).toString('base64');
  const headers = { 'Content-Type': 'application/octet-stream', 'Inference-Header-Content-Length': String(header.length) };
  return {
    rest: { ...restEvent('POST', '/v2/models/model/infer', undefined, { headers }), body, isBase64Encoded: true },
    url: { ...functionUrlEvent('POST', '/v2/models/model/infer', undefined, { headers }), body, isBase64Encoded: true },
  };
}

/** The probabilities of an answer, JSON or binary (the bytes after its JSON header). */
function answerValues(response: { statusCode: number; body: string; isBase64Encoded?: boolean; headers?: Record<string, string> }): number[] | undefined {
  if (response.statusCode !== 200) return undefined;
  if (!response.isBase64Encoded) return (JSON.parse(response.body) as { outputs: { data: number[] }[] }).outputs[0].data;
  const bytes = Buffer.from(response.body, 'base64');
  const raw = bytes.subarray(Number(response.headers?.['Inference-Header-Content-Length']));
  return Array.from(new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length)));
}

/** A sink as Lambda's runtime gives a streaming handler: it keeps the chunks (no copy) for one check. */
class SinkStream extends Writable {
  chunks: Buffer[] = [];
  setContentType(_type: string): void {}
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.chunks.push(chunk);
    callback();
  }
}

/** `awslambda`'s streaming API, as the runtime's wire format has it: a JSON prelude and eight NUL bytes before the body. */
const RUNTIME = {
  streamifyResponse: <H>(handler: H): H => handler,
  HttpResponseStream: {
    from(stream: SinkStream, prelude: Record<string, unknown>): SinkStream {
      stream.chunks.push(Buffer.from(JSON.stringify(prelude)), Buffer.alloc(8));
      return stream;
    },
  },
};

type StreamHandler = (event: unknown, stream: Writable, context: { awsRequestId: string }) => Promise<void>;

/** The entry bundle's handler, imported afresh with `env` (it reads its environment when imported). */
async function importEntry(env: Record<string, string>, tag: string): Promise<unknown> {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    return (await import(`${pathToFileURL(path.join(inferenceHandlerDir(), 'index.mjs')).href}?${tag}`)).handler;
  } finally {
    process.env = saved;
  }
}

async function streamedRows(ctx: BenchContext, counts: { blocks: number; perBlock: number; warmup: number }): Promise<{ rows: string[][]; results: Record<string, unknown> }> {
  (globalThis as { awslambda?: unknown }).awslambda = RUNTIME;
  const lr = logisticRegressionModel({ features: 100, seed: 1 });
  const wide = matMulFp32Model({ k: 64, n: 4096, seed: 3 });
  const cases = [
    { label: 'logistic regression, 100 features, 64 rows', bytes: lr.bytes, width: 100, predict: (m: number[][]) => lr.predict(m) },
    {
      label: 'MatMul 64×4096, 64 rows',
      bytes: wide.bytes,
      width: 64,
      predict: (m: number[][]) => wide.predict({ rows: m.length, cols: 64, values: m.flat() }),
    },
  ];
  const rows: string[][] = [];
  const results: Record<string, unknown> = {};
  const random = mulberry32(8);
  const context = { awsRequestId: 'bench-fronts-stream' };
  try {
    for (const [i, c] of cases.entries()) {
      const file = path.join(ctx.tmpDir, `fronts-stream-${i}.onnx`);
      fs.writeFileSync(file, c.bytes);
      const env = { MODEL_PATH: file, MODEL_NAME: 'model' };
      const buffered = (await importEntry(env, `buffered-${i}`)) as Handler;
      const streaming = (await importEntry({ ...env, RESPONSE_STREAMING: '1' }, `streaming-${i}`)) as StreamHandler;
      const matrix = Array.from({ length: 64 }, () => Array.from({ length: c.width }, () => Math.fround(random() * 2 - 1)));
      const input = i === 0 ? 'features' : 'x';
      const event = binaryUrlEvent(matrix, input);
      const expected: readonly number[] = c.predict(matrix);
      const bufferedAnswer = await buffered(event, context);
      const sink = new SinkStream();
      await streaming(event, sink, context);
      const all = Buffer.concat(sink.chunks);
      const end = all.indexOf(Buffer.alloc(8));
      const prelude = JSON.parse(all.subarray(0, end).toString('utf8')) as { statusCode: number; headers: Record<string, string> };
      const streamedValues = answerValues({ statusCode: prelude.statusCode, headers: prelude.headers, body: all.subarray(end + 8).toString('base64'), isBase64Encoded: true });
      const close = (a: readonly number[] | undefined) => a?.length === expected.length && a.every((v, j) => Math.abs(v - expected[j]) < 1e-3);
      if (!close(answerValues(bufferedAnswer)) || !close(streamedValues)) throw new Error(`fronts, ${c.label}: an answer disagrees with the model's reference`);
      const answerBytes = all.length - end - 8;
      const paths = {
        // Lambda's runtime writes a buffered answer as JSON before it sends it: counted here too.
        buffered: async () => JSON.stringify(await buffered(event, context)),
        streamed: () => streaming(event, new SinkStream(), context),
      };
      const samples: Record<keyof typeof paths, number[]> = { buffered: [], streamed: [] };
      for (const p of ['buffered', 'streamed'] as const) for (let w = 0; w < counts.warmup; w++) await paths[p]();
      for (let b = 0; b < counts.blocks; b++) {
        for (const p of (b % 2 ? ['streamed', 'buffered'] : ['buffered', 'streamed']) as Array<keyof typeof paths>) {
          for (let n = 0; n < counts.perBlock; n++) {
            const t = process.hrtime.bigint();
            await paths[p]();
            samples[p].push(Number(process.hrtime.bigint() - t) / 1e6);
          }
        }
      }
      const s = { buffered: summarize(samples.buffered), streamed: summarize(samples.streamed) };
      results[c.label] = { ...s, answerBytes };
      rows.push([
        c.label,
        String(answerBytes),
        `${us(s.buffered.p50)} / ${us(s.buffered.p99)}`,
        `${us(s.streamed.p50)} / ${us(s.streamed.p99)}`,
        `${times(s.streamed.p50 / s.buffered.p50)} / ${times(s.streamed.p99 / s.buffered.p99)}`,
      ]);
      ctx.log(`fronts: ${c.label}, buffered and streamed, done`);
    }
  } finally {
    delete (globalThis as { awslambda?: unknown }).awslambda;
  }
  return { rows, results };
}

/** A function URL event of binary tensor data asking for binary outputs. */
function binaryUrlEvent(matrix: number[][], input: string): unknown {
  const values = Float32Array.from(matrix.flat());
  const header = Buffer.from(
    JSON.stringify({
      inputs: [{ name: input, shape: [matrix.length, matrix[0].length], datatype: 'FP32', parameters: { binary_data_size: values.byteLength } }],
      parameters: { binary_data_output: true },
    }),
  );
  const headers = { 'Content-Type': 'application/octet-stream', 'Inference-Header-Content-Length': String(header.length) };
  return {
    ...functionUrlEvent('POST', '/v2/models/model/infer', undefined, { headers }),
    body: Buffer.concat([header, Buffer.from(values.buffer)]).toString('base64'),
    isBase64Encoded: true,
  };
}
