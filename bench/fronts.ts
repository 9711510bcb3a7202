/**
 * The handler's work per front: the same request as the REST API passes it (every body base64, as
 * `*` / `*` binary media types make it) and as a function URL passes it (JSON as text, binary
 * base64), through the bundled core handler, in one process, after warm-up. What the gateway's
 * own hop adds needs an AWS account and is not measured here.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { functionUrlEvent, restEvent } from '../fixtures/events';
import { importCoreBundle } from '../test/support/handler';
import { logisticRegressionModel, mulberry32 } from '../tools/onnx';
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
    return {
      method:
        `In the bench process, after ${warmup} warm-up calls of each: ${blocks} blocks of ${perBlock} timed calls per front, the fronts taking turns block by block. ` +
        'The bundled core handler (`createInferenceHandler`) answers the same request as a REST API event (the body base64, as the API passes every body with ' +
        "its `*/*` binary media types) and as a function URL event (JSON as text, binary tensor data base64), up to its answer. Both answers are checked against the model's reference first.",
      tables: [{ columns: ['model, batch, encoding', 'REST API event p50 / p99 (µs)', 'function URL event p50 / p99 (µs)', 'URL ÷ REST p50 / p99'], rows }],
      notes: ["API Gateway's own hop (its request handling and the network between it and Lambda) needs an AWS account and is not in these figures."],
      data: { blocks, perBlock, warmup, unit: 'ms per call', results },
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
