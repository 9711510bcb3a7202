/**
 * Warm overhead: the bundled handler's whole path (API Gateway REST event in, JSON decode,
 * inference, JSON encode, response out) against a bare `session.run` on the same tensor, in one
 * process, after warm-up.
 */
import * as fs from 'node:fs';
import { availableParallelism } from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { restEvent } from '../test/support/events';
import { importCoreBundle } from '../test/support/handler';
import { logisticRegressionModel, mlpModel, mulberry32 } from '../tools/onnx';
import { summarize, times, us, type Summary } from './lib/stats';
import type { Bench, BenchContext, BenchOutput } from './lib/types';

interface Case {
  readonly label: string;
  readonly bytes: Uint8Array;
  readonly input: string;
  readonly output: string;
  readonly rows: number;
  readonly width: number;
  /** The model's plain-JS reference, to check both paths compute the same thing. */
  predict(rows: number[][]): number[];
}

function cases(): Case[] {
  const lr = logisticRegressionModel({ features: 100, seed: 1 });
  const mlp = mlpModel({ seed: 2 });
  const lrCase = (rows: number): Case => ({
    label: `logistic regression, 100 features, ${rows} row${rows > 1 ? 's' : ''}`,
    bytes: lr.bytes,
    input: 'features',
    output: 'probability',
    rows,
    width: lr.features,
    predict: (r) => lr.predict(r),
  });
  return [
    lrCase(1),
    lrCase(64),
    {
      label: `MLP ${mlp.inputs}-${mlp.hidden}-${mlp.classes}, 1 row`,
      bytes: mlp.bytes,
      input: 'input',
      output: 'probabilities',
      rows: 1,
      width: mlp.inputs,
      predict: (r) => mlp.predict(r).flat(),
    },
  ];
}

type Path = 'bare' | 'json' | 'handler';

export const warmOverhead: Bench = {
  name: 'warm-overhead',
  title: 'Warm overhead of the handler',
  async run(ctx: BenchContext): Promise<BenchOutput> {
    const blocks = ctx.quick ? 4 : 10;
    const perBlock = ctx.quick ? 250 : 500;
    const warmup = 300;
    // As the constructs leave a quiet function: no per-request log lines or metrics in the figures.
    process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
    process.env.POWERTOOLS_METRICS_DISABLED = 'true';
    const { createInferenceHandler } = await importCoreBundle();
    const random = mulberry32(6);

    const rows: string[][] = [];
    const data: Record<string, Record<Path, Summary> & { bodyBytes: number }> = {};
    for (const c of cases()) {
      const file = path.join(ctx.tmpDir, `warm-${c.input}-${c.width}.onnx`);
      fs.writeFileSync(file, c.bytes);
      const handler = (await createInferenceHandler({ env: { MODEL_PATH: file, MODEL_NAME: 'model' } })) as (
        e: unknown,
        context: { awsRequestId: string },
      ) => Promise<{ statusCode: number; body: string }>;
      // The handler's own session options, so that only what surrounds session.run differs.
      const session = await ort.InferenceSession.create(file, {
        intraOpNumThreads: availableParallelism(),
        interOpNumThreads: 1,
        graphOptimizationLevel: 'all',
        executionMode: 'sequential',
      });

      const matrix = Array.from({ length: c.rows }, () => Array.from({ length: c.width }, () => Math.fround(random() * 2 - 1)));
      const flat = matrix.flat();
      const tensor = new ort.Tensor('float32', Float32Array.from(flat), [c.rows, c.width]);
      const body = JSON.stringify({ inputs: [{ name: c.input, shape: [c.rows, c.width], datatype: 'FP32', data: flat }] });
      const event = restEvent('POST', '/v2/models/model/infer', body);
      const context = { awsRequestId: 'bench-warm' };

      const paths: Record<Path, () => Promise<unknown>> = {
        bare: () => session.run({ [c.input]: tensor }),
        // What any JSON-over-HTTP server must do at least: a reference between the two.
        json: async () => {
          const request = JSON.parse(event.body!) as { inputs: { name: string; shape: number[]; data: number[] }[] };
          const [input] = request.inputs;
          const out = await session.run({ [input.name]: new ort.Tensor('float32', Float32Array.from(input.data), input.shape) });
          const value = out[c.output];
          return { statusCode: 200, body: JSON.stringify({ outputs: [{ name: c.output, datatype: 'FP32', shape: value.dims, data: Array.from(value.data as Float32Array) }] }) };
        },
        handler: () => handler(event, context),
      };
      await checkAgreement(c, matrix, paths, session, tensor);

      const samples: Record<Path, number[]> = { bare: [], json: [], handler: [] };
      for (const p of Object.keys(paths) as Path[]) {
        for (let i = 0; i < warmup; i++) await paths[p]();
      }
      // Blocks, not one call of each in turn: onnxruntime's worker threads spin for a while after a run,
      // and a call right after another session's run would pay for that spinning.
      for (let b = 0; b < blocks; b++) {
        for (const p of rotate(Object.keys(paths) as Path[], b)) {
          const run = paths[p];
          for (let i = 0; i < perBlock; i++) {
            const t = process.hrtime.bigint();
            await run();
            samples[p].push(Number(process.hrtime.bigint() - t) / 1e6);
          }
        }
      }
      const s = { bare: summarize(samples.bare), json: summarize(samples.json), handler: summarize(samples.handler) };
      data[c.label] = { ...s, bodyBytes: Buffer.byteLength(body) };
      rows.push([
        c.label,
        `${us(s.bare.p50)} / ${us(s.bare.p99)}`,
        `${us(s.json.p50)} / ${us(s.json.p99)}`,
        `${us(s.handler.p50)} / ${us(s.handler.p99)}`,
        `${times(s.handler.p50 / s.bare.p50)} / ${times(s.handler.p99 / s.bare.p99)}`,
        times(s.handler.p50 / s.json.p50),
        us(s.handler.p50 - s.bare.p50),
      ]);
      ctx.log(`warm overhead: ${c.label} done`);
    }
    return {
      method:
        `In the bench process, after ${warmup} warm-up calls of each path: ${blocks} blocks of ${perBlock} timed calls per path ` +
        '(`process.hrtime` around each awaited call), the paths taking turns block by block. **bare** is `session.run` on a ' +
        'prebuilt tensor; **handler** is the bundled core handler (`createInferenceHandler`, the code the Lambda bundle runs) ' +
        'given an API Gateway REST event whose body is the same tensor as JSON, up to its JSON response; **JSON minimum** is ' +
        'a reference in between: `JSON.parse`, a tensor from the array, `session.run`, `JSON.stringify` of the output. ' +
        'The three share one onnxruntime setting (threads = cores, inter-op 1, all graph optimisations); ' +
        'POWERTOOLS_LOG_LEVEL=SILENT, POWERTOOLS_METRICS_DISABLED=true.',
      tables: [
        {
          columns: [
            'model, batch',
            'bare session.run p50 / p99 (µs)',
            'JSON minimum p50 / p99 (µs)',
            'handler p50 / p99 (µs)',
            'handler ÷ bare p50 / p99',
            'handler ÷ JSON minimum p50',
            'handler − bare p50 (µs)',
          ],
          rows,
        },
      ],
      notes: [
        `Samples per path and model: ${blocks * perBlock}. p99 includes garbage collection pauses, which the handler's allocations cause and a bare run mostly does not.`,
        'Request body sizes: ' +
          Object.entries(data)
            .map(([label, d]) => `${label}: ${d.bodyBytes} bytes`)
            .join('; ') +
          '.',
      ],
      data: { blocks, perBlock, warmup, unit: 'ms per call', results: data },
    };
  },
};

function rotate<T>(items: readonly T[], by: number): T[] {
  return items.map((_, i) => items[(i + by) % items.length]);
}

/** Both paths and the model's own JS reference must agree before anything is timed. */
async function checkAgreement(c: Case, matrix: number[][], paths: Record<Path, () => Promise<unknown>>, session: ort.InferenceSession, tensor: ort.Tensor): Promise<void> {
  const expected = c.predict(matrix);
  const bare = Array.from((await session.run({ [c.input]: tensor }))[c.output].data as Float32Array);
  const response = (await paths.handler()) as { statusCode: number; body: string };
  const handled = (JSON.parse(response.body) as { outputs?: { name: string; data: number[] }[] }).outputs?.find((o) => o.name === c.output)?.data;
  const close = (a: readonly number[] | undefined) => a?.length === expected.length && a.every((v, i) => Math.abs(v - expected[i]) < 1e-5);
  if (response.statusCode !== 200 || !close(handled) || !close(bare)) {
    throw new Error(`warm overhead, ${c.label}: the paths disagree with the model's reference (status ${response.statusCode}, ${response.body.slice(0, 300)})`);
  }
}
