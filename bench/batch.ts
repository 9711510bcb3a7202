/**
 * Batch inference: rows per second of one function instance scoring a dataset of a small model
 * through the handler's Distributed Map batches (the events the state machine sends, rows stacked
 * into one session.run), against a bare loop of `session.run` over the same rows, one row a run,
 * in the same process and run.
 */
import * as fs from 'node:fs';
import { availableParallelism } from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { distributedMapBatchEvent } from '../fixtures/batch-events';
import { demoModel } from '../fixtures/demo-model';
import { importCoreBundle } from '../test/support/handler';
import { mulberry32 } from '../tools/onnx';
import { count, times } from './lib/stats';
import type { Bench, BenchContext, BenchOutput } from './lib/types';

interface Row {
  readonly label: string;
  readonly rowsPerSecond: number;
  readonly runs?: number;
}

export const batch: Bench = {
  name: 'batch',
  title: 'Batch inference: rows per second of one instance',
  async run(ctx: BenchContext): Promise<BenchOutput> {
    const total = ctx.quick ? 20_000 : 100_000;
    process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
    process.env.POWERTOOLS_METRICS_DISABLED = 'true';
    const model = demoModel();
    const file = path.join(ctx.tmpDir, 'batch-demo.onnx');
    fs.writeFileSync(file, model.bytes);
    const random = mulberry32(24);
    const rows = Array.from({ length: total }, () => Array.from({ length: 4 }, () => Math.fround(random() * 6 - 3)));
    const labels = model.predictLabels(rows);

    // The handler's own session options, so that only what surrounds session.run differs.
    const session = await ort.InferenceSession.create(file, {
      intraOpNumThreads: availableParallelism(),
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
    });
    const timed = async (fn: () => Promise<void>): Promise<number> => {
      const started = performance.now();
      await fn();
      return (performance.now() - started) / 1000;
    };
    const results: Row[] = [];

    // Warm both paths once before timing.
    await session.run({ input: new ort.Tensor('float32', Float32Array.from(rows[0]), [1, 4]) });
    const bareSeconds = await timed(async () => {
      for (let i = 0; i < total; i++) {
        const out = await session.run({ input: new ort.Tensor('float32', Float32Array.from(rows[i]), [1, 4]) });
        if (i % 9973 === 0 && Number((out.label.data as BigInt64Array)[0]) !== labels[i]) throw new Error(`bare loop: row ${i} differs from the reference`);
      }
    });
    results.push({ label: 'bare loop of session.run, one row a run (baseline)', rowsPerSecond: total / bareSeconds, runs: total });

    const stacked = 500;
    const stackedSeconds = await timed(async () => {
      for (let first = 0; first < total; first += stacked) {
        const slice = rows.slice(first, first + stacked);
        await session.run({ input: new ort.Tensor('float32', Float32Array.from(slice.flat()), [slice.length, 4]) });
      }
    });
    results.push({ label: `bare session.run, ${stacked} rows a run (no JSON: the ceiling)`, rowsPerSecond: total / stackedSeconds, runs: Math.ceil(total / stacked) });

    const { createInferenceHandler } = await importCoreBundle();
    const handler = (await createInferenceHandler({ env: { MODEL_PATH: file, MODEL_NAME: 'demo' } })) as (e: unknown) => Promise<{ lines: string[]; runs: number }>;
    for (const perBatch of [100, 500]) {
      await handler(distributedMapBatchEvent(rows.slice(0, perBatch)));
      let runs = 0;
      const seconds = await timed(async () => {
        for (let first = 0; first < total; first += perBatch) {
          const answer = await handler(distributedMapBatchEvent(rows.slice(first, first + perBatch), { firstIndex: first }));
          runs += answer.runs;
          const check = JSON.parse(answer.lines[0]) as { outputs: { name: string; data: number[] }[] };
          if (check.outputs.find((o) => o.name === 'label')!.data[0] !== labels[first]) throw new Error(`handler: row ${first} differs from the reference`);
        }
      });
      results.push({ label: `the handler, Distributed Map batches of ${perBatch} rows (JSON Lines rows in, output lines out)`, rowsPerSecond: total / seconds, runs });
    }
    const base = results[0].rowsPerSecond;
    return {
      method: `${count(total)} rows of the demo model (an MLP 4-16-3), one process, after a warm-up. The baseline is a bare loop of session.run over the same rows, one row a run; the handler's rows go through the events a BatchInference state machine sends (items {index, value} of plain rows), stacked into one session.run per batch, and come back as the output lines the job writes (no S3 in the timing). Labels checked against the model's plain-JS reference along the way.`,
      tables: [
        {
          columns: ['path', 'rows/s', 'session.run calls', 'vs the bare loop'],
          rows: results.map((r) => [r.label, count(Math.round(r.rowsPerSecond)), r.runs === undefined ? '' : count(r.runs), times(r.rowsPerSecond / base)]),
        },
      ],
      notes: [
        "One function instance scores one batch at a time; a job runs maxConcurrency instances at once (50 by default), so a job of N rows takes about N / (rows/s × concurrency) seconds of scoring, plus the Distributed Map's own start-up and the assembling step.",
      ],
      data: { total, results },
    };
  },
};
