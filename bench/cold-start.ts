/**
 * Cold start per packaging: a fresh node process imports the inference handler bundle and answers
 * its first request, against a floor process that only loads onnxruntime, creates the session
 * from the same file and runs once.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { restEvent } from '../test/support/events';
import { startLocalS3 } from '../tools/local-s3';
import { writePaddedModel, type PaddedModelFile } from '../tools/onnx';
import { coldStartChart, type ChartGroup } from './lib/chart';
import { runChild } from './lib/child';
import { ms, spread, summarize, times, type Summary } from './lib/stats';
import type { Bench, BenchContext, BenchOutput } from './lib/types';

const SIZES = [
  { label: '1 MB', bytes: 1_000_000 },
  { label: '100 MB', bytes: 100_000_000 },
];

const VARIANTS = [
  { id: 'floor', label: 'floor: onnxruntime alone, local file' },
  { id: 'disk', label: 'handler, model on local disk (layer, EFS, image, bundled)' },
  { id: 's3', label: 'handler, model fetched from S3' },
] as const;

type VariantId = (typeof VARIANTS)[number]['id'];

/** What bench/children/cold-start.mjs prints: milliseconds since spawn(), as the child's clock saw them. */
interface ColdStartTimes {
  /** The child's first statement ran: node itself is up. */
  readonly started: number;
  /** The handler module finished its init (model loaded), or the floor's session exists. */
  readonly ready: number;
  /** The first answer is in hand. */
  readonly answered: number;
  readonly answer: { status: number; body: { outputs: { name: string; data: number[] }[] } };
}

interface Sample extends ColdStartTimes {
  readonly parentMs: number;
}

const X = [1, 2];

interface Model {
  readonly label: string;
  readonly bytes: number;
  readonly file: PaddedModelFile;
  /** y = x + addend, computed here from what the model maker says it adds. */
  readonly expected: number[];
}

export const coldStart: Bench = {
  name: 'cold-start',
  title: 'Cold start per packaging',
  async run(ctx: BenchContext): Promise<BenchOutput> {
    const repetitions = ctx.quick ? 5 : 20;
    const s3 = await startLocalS3();
    try {
      await s3.createBucket('bench');
      const models: Model[] = [];
      for (const size of SIZES) {
        const file = writePaddedModel(path.join(ctx.tmpDir, `cold-${size.bytes}.onnx`), size.bytes);
        await s3.putObject('bench', `cold/${path.basename(file.path)}`, file.path);
        models.push({ ...size, file, expected: X.map((x) => x + file.addend) });
      }
      await s3.putObject('bench', 'cold/warm.bin', Buffer.alloc(1024));
      const event = JSON.stringify(restEvent('POST', '/v2/models/model/infer', { inputs: [{ name: 'x', shape: [X.length], datatype: 'FP32', data: X }] }));
      const envFor = (variant: VariantId, model: Model, run: number): Record<string, string> => {
        switch (variant) {
          case 'floor':
            return { BENCH_MODE: 'floor', BENCH_MODEL_PATH: model.file.path, BENCH_INPUT: JSON.stringify({ name: 'x', shape: [X.length], data: X }) };
          case 'disk':
            return { BENCH_MODE: 'handler', BENCH_EVENT: event, MODEL_PATH: model.file.path };
          case 's3':
            return {
              BENCH_MODE: 'handler',
              BENCH_EVENT: event,
              ...s3.env(),
              MODEL_S3_URI: `s3://bench/cold/${path.basename(model.file.path)}`,
              // An empty /tmp, as a new Lambda instance has.
              MODEL_CACHE_DIR: path.join(ctx.tmpDir, `cold-cache-${run}`),
            };
        }
      };

      const samples = new Map<string, Sample[]>();
      /** The raw transfer of each model's bytes: the floor an S3 cold start's extra time is compared with. */
      const raw = new Map<string, number[]>();
      let run = 0;
      // Round one is a warm-up, not kept: it puts the files in the page cache for every later run.
      for (let round = -1; round < repetitions; round++) {
        for (const model of models) {
          // The order of the variants rotates so that none always follows the same one.
          for (let v = 0; v < VARIANTS.length; v++) {
            const variant = VARIANTS[(v + Math.max(round, 0)) % VARIANTS.length].id;
            const env = envFor(variant, model, run++);
            const { result, parentMs } = await runChild<ColdStartTimes>('cold-start.mjs', { repoRoot: ctx.repoRoot, env });
            checkAnswer(result, model.expected, `${variant} ${model.label}`);
            if (env.MODEL_CACHE_DIR) fs.rmSync(env.MODEL_CACHE_DIR, { recursive: true, force: true });
            if (round >= 0) {
              const key = `${model.label}/${variant}`;
              samples.set(key, [...(samples.get(key) ?? []), { ...result, parentMs }]);
            }
          }
          // The same bytes by plain node:http ranged GETs (8 MiB, 8 at a time, as fetchS3Model's defaults), in a fresh
          // process after a warm-up GET: no SDK, no checks, no rename. bench/children/s3-parallel.mjs's raw loader.
          const dest = path.join(ctx.tmpDir, `cold-raw-${run++}`);
          const { result } = await runChild<{ ms: number; bytes: number }>('s3-parallel.mjs', {
            repoRoot: ctx.repoRoot,
            env: {
              ...s3.env(),
              BENCH_LOADER: 'raw',
              BENCH_RAW_PART_BYTES: String(8 * 1024 * 1024),
              BENCH_RAW_CONCURRENCY: '8',
              BENCH_DEST_DIR: dest,
              BENCH_URI: `s3://bench/cold/${path.basename(model.file.path)}`,
              BENCH_WARM_URI: 's3://bench/cold/warm.bin',
            },
          });
          fs.rmSync(dest, { recursive: true, force: true });
          if (result.bytes !== model.bytes) throw new Error(`cold start raw transfer ${model.label}: ${result.bytes} bytes, expected ${model.bytes}`);
          if (round >= 0) raw.set(model.label, [...(raw.get(model.label) ?? []), result.ms]);
        }
        ctx.log(round < 0 ? 'cold start: warm-up round done' : `cold start: round ${round + 1}/${repetitions} done`);
      }

      const rows: string[][] = [];
      const groups: ChartGroup[] = [];
      const transfers: string[] = [];
      const rawData: Record<string, Summary> = {};
      const data: Record<string, Record<VariantId, { started: Summary; ready: Summary; answered: Summary; parentMs: Summary }>> = {};
      for (const model of models) {
        const stats = Object.fromEntries(
          VARIANTS.map(({ id }) => {
            const list = samples.get(`${model.label}/${id}`)!;
            return [
              id,
              {
                started: summarize(list.map((s) => s.started)),
                ready: summarize(list.map((s) => s.ready)),
                answered: summarize(list.map((s) => s.answered)),
                parentMs: summarize(list.map((s) => s.parentMs)),
              },
            ];
          }),
        ) as (typeof data)[string];
        data[model.label] = stats;
        const floor = stats.floor.answered.p50;
        for (const { id, label } of VARIANTS) {
          const s = stats[id];
          rows.push([
            model.label,
            label,
            ms(s.started.p50),
            ms(s.ready.p50),
            spread(s.answered),
            id === 'floor' ? '1' : times(s.answered.p50 / floor),
            id === 'floor' ? '0' : `+${ms(s.answered.p50 - floor)}`,
          ]);
        }
        groups.push({ label: model.label, bars: VARIANTS.map(({ id, label }) => ({ label, summary: stats[id].answered })) });
        const transfer = summarize(raw.get(model.label)!);
        const extra = stats.s3.answered.p50 - stats.disk.answered.p50;
        transfers.push(
          `${model.label}: S3 − local disk ${ms(extra)} ms against a raw transfer of ${ms(transfer.p50)} ms (${times(extra / transfer.p50)}; min / max ${ms(transfer.min)} / ${ms(transfer.max)} ms)`,
        );
        rawData[model.label] = transfer;
      }

      return {
        method:
          `Each figure is one fresh \`node\` process (spawned from the bench, cwd the repository), ${repetitions} runs per cell after one ` +
          'warm-up round, the variants interleaved. Times are taken inside the child with `process.hrtime`, relative to the ' +
          "parent's `process.hrtime` just before `spawn()` (one monotonic clock for all processes), so they include process " +
          "creation and node's own start but not the exit. The handler runs are the bundle Lambda runs " +
          '(`assets/handlers/inference/index.mjs`): its top-level await loads the model, then one API Gateway REST event is ' +
          'answered. The floor requires onnxruntime-node, creates a session with the same options from the local file and runs ' +
          'once. The S3 runs fetch from a local S3 server (s3rver in the bench process) into an empty cache directory each time.',
        tables: [
          {
            columns: ['model', 'packaging', 'node up p50 (ms)', 'model ready p50 (ms)', 'first answer min / median / max (ms)', 'vs floor', 'over floor (ms)'],
            rows,
          },
        ],
        notes: [
          `What fetching from S3 adds to a cold start (first answer, medians), against the raw transfer of the same bytes from the same server ` +
            `(node:http ranged GETs, 8 MiB, 8 at a time, into a file, in a fresh process after a warm-up GET; median of ${repetitions}): ` +
            `${transfers.join('; ')}.`,
          'Model files are in the page cache (the warm-up round read them): a real cold start from a layer, an image or EFS ' +
            'also reads them from storage, which local disk hides, and the S3 figures are a loopback server, not the network.',
          `The parent saw each answer's line arrive a median ${ms(
            summarize(Object.values(data).flatMap((d) => [d.floor.parentMs.p50 - d.floor.answered.p50])).p50,
          )} ms after the child's own timestamp (stdout pipe and scheduling).`,
        ],
        data: { repetitions, sizes: SIZES, unit: 'ms since spawn()', results: data, rawTransferMs: rawData },
        files: {
          'cold-start.svg': coldStartChart(groups, {
            title: 'Cold start to first answer, by packaging and model size',
            unit: 'ms from spawn() to first answer',
            baseline: 'floor median',
          }),
        },
      };
    } finally {
      await s3.stop();
    }
  },
};

function checkAnswer(result: ColdStartTimes, expected: number[], what: string): void {
  const output = result.answer.body.outputs?.find((o) => o.name === 'y');
  if (result.answer.status !== 200 || JSON.stringify(output?.data) !== JSON.stringify(expected)) {
    throw new Error(`cold start ${what}: wrong answer ${JSON.stringify(result.answer)}, expected y = ${JSON.stringify(expected)}`);
  }
}
