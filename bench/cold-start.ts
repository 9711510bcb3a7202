import * as fs from 'node:fs';
import * as path from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { handlerOrtOptionsEnv } from './lib/session-options';
import { precompileModel } from '../lib/packaging/precompiled-model';
import { restEvent } from '../fixtures/events';
import { startLocalS3 } from '../tools/local-s3';
import { writeMatMulModel, writePaddedModel } from '../tools/onnx';
import { coldStartChart, type ChartGroup } from './lib/chart';
import { runChild } from './lib/child';
import { mib, ms, spread, summarize, times, type Summary } from './lib/stats';
import type { Bench, BenchContext, BenchOutput } from './lib/types';

/**
 * Padded models carry an initializer no operator reads, which onnxruntime drops at load: they show
 * what moving the bytes costs. MatMul models are read whole (loaded, prepacked, multiplied): they
 * show what a session of that size costs.
 */
const MODELS = [
  { label: '1 MB padded', kind: 'padded', bytes: 1_000_000 },
  { label: '100 MB padded', kind: 'padded', bytes: 100_000_000 },
  { label: '100 MB MatMul', kind: 'matmul', bytes: 100_000_000 },
  { label: '500 MB MatMul', kind: 'matmul', bytes: 500_000_000, full: true },
] as const;

const VARIANTS = [
  { id: 'floor', label: 'floor: onnxruntime alone, local .onnx' },
  { id: 'disk', label: 'handler, model on local disk (layer, EFS, image, bundled)' },
  { id: 'precompiled', label: 'handler, precompiled .ort on local disk' },
  { id: 's3', label: 'handler, model fetched from S3' },
  { id: 's3-precompiled', label: 'handler, precompiled .ort fetched from S3' },
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
  /** Bytes resident once the first answer is out. */
  readonly memory: { readonly rssAnon: number; readonly rssFile: number; readonly maxRss: number };
}

interface Sample extends ColdStartTimes {
  readonly parentMs: number;
}

const X = [1, 2];

interface Model {
  readonly label: string;
  readonly path: string;
  readonly sizeBytes: number;
  readonly precompiled: { readonly path: string; readonly sizeBytes: number; readonly convertMs: number; readonly cachedMs: number };
  /** One request's input `x`, and the answer `y` it must get. */
  readonly input: { readonly shape: number[]; readonly data: number[] };
  readonly expected: readonly number[];
  /** Float32 sums in onnxruntime's order against float64 in ours: a MatMul's answer is checked within rounding. */
  readonly tolerance: number;
  readonly eventFile: string;
  readonly inputFile: string;
}

/**
 * The model's copy in ORT format, as synth makes it (`precompileModel`), timed twice: into an empty
 * cache (the conversion) and again (a cache hit: the model's content hash).
 */
function precompile(ctx: BenchContext, file: string): Model['precompiled'] {
  const savedTmp = process.env.TMPDIR;
  process.env.TMPDIR = fs.mkdtempSync(path.join(ctx.tmpDir, 'synth-tmp-'));
  try {
    const convert = () => {
      const started = performance.now();
      const precompiled = precompileModel(new Stack(new App(), 'Bench'), file);
      if (!precompiled) throw new Error(`cold start: ${file} was not precompiled`);
      return { precompiled, ms: performance.now() - started };
    };
    const first = convert();
    const again = convert();
    return { path: first.precompiled.path, sizeBytes: first.precompiled.sizeBytes, convertMs: first.ms, cachedMs: again.ms };
  } finally {
    if (savedTmp === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = savedTmp;
  }
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
      for (const m of MODELS.filter((m) => !('full' in m && m.full) || !ctx.quick)) {
        const file = path.join(ctx.tmpDir, `cold-${m.kind}-${m.bytes}.onnx`);
        let input: Model['input'];
        let expected: readonly number[];
        let tolerance = 0;
        let sizeBytes: number;
        if (m.kind === 'padded') {
          const padded = writePaddedModel(file, m.bytes);
          input = { shape: [X.length], data: X };
          expected = X.map((x) => x + padded.addend);
          sizeBytes = padded.sizeBytes;
        } else {
          const matmul = writeMatMulModel(file, m.bytes);
          input = { shape: [1, matmul.k], data: [...matmul.input] };
          expected = matmul.expected;
          tolerance = 1e-3;
          sizeBytes = matmul.sizeBytes;
        }
        const precompiled = precompile(ctx, file);
        await s3.putObject('bench', `cold/${path.basename(file)}`, fs.readFileSync(file));
        await s3.putObject('bench', `cold/${path.basename(file, '.onnx')}.ort`, fs.readFileSync(precompiled.path));
        const eventFile = `${file}.event.json`;
        fs.writeFileSync(eventFile, JSON.stringify(restEvent('POST', '/v2/models/model/infer', { inputs: [{ name: 'x', datatype: 'FP32', ...input }] })));
        const inputFile = `${file}.input.json`;
        fs.writeFileSync(inputFile, JSON.stringify({ name: 'x', ...input }));
        models.push({ label: m.label, path: file, sizeBytes, precompiled, input, expected, tolerance, eventFile, inputFile });
        ctx.log(`cold start: ${m.label} written and precompiled (${Math.round(precompiled.convertMs)} ms)`);
      }
      await s3.putObject('bench', 'cold/warm.bin', Buffer.alloc(1024));
      const envFor = (variant: VariantId, model: Model, run: number): Record<string, string> => {
        const s3Env = () => ({
          ...s3.env(),
          MODEL_S3_URI: `s3://bench/cold/${path.basename(model.path)}`,
          // An empty /tmp, as a new Lambda instance has.
          MODEL_CACHE_DIR: path.join(ctx.tmpDir, `cold-cache-${run}`),
        });
        switch (variant) {
          case 'floor':
            return { BENCH_MODE: 'floor', BENCH_MODEL_PATH: model.path, BENCH_INPUT_FILE: model.inputFile, ...handlerOrtOptionsEnv(model.path) };
          case 'disk':
            return { BENCH_MODE: 'handler', BENCH_EVENT_FILE: model.eventFile, MODEL_PATH: model.path };
          case 'precompiled':
            return { BENCH_MODE: 'handler', BENCH_EVENT_FILE: model.eventFile, MODEL_PATH: model.path, MODEL_PRECOMPILED_PATH: model.precompiled.path };
          case 's3':
            return { BENCH_MODE: 'handler', BENCH_EVENT_FILE: model.eventFile, ...s3Env() };
          case 's3-precompiled':
            return {
              BENCH_MODE: 'handler',
              BENCH_EVENT_FILE: model.eventFile,
              ...s3Env(),
              MODEL_PRECOMPILED_S3_URI: `s3://bench/cold/${path.basename(model.path, '.onnx')}.ort`,
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
            checkAnswer(result, model, `${variant} ${model.label}`);
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
              BENCH_URI: `s3://bench/cold/${path.basename(model.path)}`,
              BENCH_WARM_URI: 's3://bench/cold/warm.bin',
            },
          });
          fs.rmSync(dest, { recursive: true, force: true });
          const objectBytes = fs.statSync(model.path).size;
          if (result.bytes !== objectBytes) throw new Error(`cold start raw transfer ${model.label}: ${result.bytes} bytes, expected ${objectBytes}`);
          if (round >= 0) raw.set(model.label, [...(raw.get(model.label) ?? []), result.ms]);
        }
        ctx.log(round < 0 ? 'cold start: warm-up round done' : `cold start: round ${round + 1}/${repetitions} done`);
      }

      const rows: string[][] = [];
      const precompiledRows: string[][] = [];
      const synthRows: string[][] = [];
      const groups: ChartGroup[] = [];
      const transfers: string[] = [];
      const rawData: Record<string, Summary> = {};
      type Stats = { started: Summary; ready: Summary; answered: Summary; parentMs: Summary; rssAnon: Summary; rssFile: Summary; maxRss: Summary };
      const data: Record<string, Record<VariantId, Stats> & { precompiledBytes: number; convertMs: number; cachedMs: number }> = {};
      for (const model of models) {
        const stats = Object.fromEntries(
          VARIANTS.map(({ id }) => {
            const list = samples.get(`${model.label}/${id}`)!;
            const of = (f: (s: Sample) => number) => summarize(list.map(f));
            return [
              id,
              {
                started: of((s) => s.started),
                ready: of((s) => s.ready),
                answered: of((s) => s.answered),
                parentMs: of((s) => s.parentMs),
                rssAnon: of((s) => s.memory.rssAnon),
                rssFile: of((s) => s.memory.rssFile),
                maxRss: of((s) => s.memory.maxRss),
              },
            ];
          }),
        ) as Record<VariantId, Stats>;
        data[model.label] = { ...stats, precompiledBytes: model.precompiled.sizeBytes, convertMs: model.precompiled.convertMs, cachedMs: model.precompiled.cachedMs };
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
            mib(s.rssAnon.p50),
          ]);
        }
        const pre = stats.precompiled;
        precompiledRows.push([
          model.label,
          `${ms(pre.ready.p50)} / ${ms(stats.floor.ready.p50)}`,
          times(pre.ready.p50 / stats.floor.ready.p50),
          `${ms(pre.answered.p50)} / ${ms(floor)}`,
          times(pre.answered.p50 / floor),
          times(pre.answered.p50 / stats.disk.answered.p50),
          `${mib(pre.rssAnon.p50)} / ${mib(stats.floor.rssAnon.p50)} / ${mib(stats.disk.rssAnon.p50)}`,
          times(pre.rssAnon.p50 / stats.floor.rssAnon.p50),
          times(stats['s3-precompiled'].answered.p50 / stats.s3.answered.p50),
        ]);
        synthRows.push([model.label, mib(model.sizeBytes), mib(model.precompiled.sizeBytes), ms(model.precompiled.convertMs), ms(model.precompiled.cachedMs)]);
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
          'answered. The floor requires onnxruntime-node, creates a session with the same options from the local .onnx and runs ' +
          'once. The S3 runs fetch from a local S3 server (s3rver in the bench process) into an empty cache directory each time. ' +
          'The precompiled runs give the handler the model saved in ORT format by synth (`precompileModel`), which it maps ' +
          'instead of parsing the .onnx. Anonymous RSS is read from /proc/self/status once the first answer is out.',
        tables: [
          {
            columns: [
              'model',
              'packaging',
              'node up p50 (ms)',
              'model ready p50 (ms)',
              'first answer min / median / max (ms)',
              'vs floor',
              'over floor (ms)',
              'anon RSS p50 (MiB)',
            ],
            rows,
          },
          {
            caption: 'Precompiled model: the handler with the .ort against the floor on the .onnx (goal: first answer ≤ ×0.6, anonymous RSS not higher)',
            columns: [
              'model',
              'model ready p50, .ort / floor (ms)',
              'vs floor',
              'first answer p50, .ort / floor (ms)',
              'vs floor',
              'vs handler on the .onnx',
              'anon RSS p50, .ort / floor / handler .onnx (MiB)',
              'anon RSS vs floor',
              'S3: .ort vs .onnx, first answer',
            ],
            rows: precompiledRows,
          },
          {
            caption: 'Precompiling at synth: what `precompileModel` costs a synth (a child process converts; the result is cached by content)',
            columns: ['model', '.onnx (MiB)', '.ort (MiB)', 'first synth: conversion (ms)', 'later synth: cache hit (ms)'],
            rows: synthRows,
          },
        ],
        notes: [
          `What fetching from S3 adds to a cold start (first answer, medians), against the raw transfer of the same bytes from the same server ` +
            `(node:http ranged GETs, 8 MiB, 8 at a time, into a file, in a fresh process after a warm-up GET; median of ${repetitions}): ` +
            `${transfers.join('; ')}.`,
          'Model files are in the page cache (the warm-up round read them): a real cold start from a layer, an image or EFS ' +
            'also reads them from storage, which local disk hides, and the S3 figures are a loopback server, not the network.',
          "A padded model's .ort is near empty (onnxruntime drops the initializer no operator reads before saving), so its " +
            'precompiled figures show the handler without the bytes, not a faster parse of them: the MatMul rows are the ones to read.',
          `The parent saw each answer's line arrive a median ${ms(
            summarize(Object.values(data).flatMap((d) => [d.floor.parentMs.p50 - d.floor.answered.p50])).p50,
          )} ms after the child's own timestamp (stdout pipe and scheduling).`,
        ],
        data: { repetitions, models: models.map((m) => ({ label: m.label, sizeBytes: m.sizeBytes })), unit: 'ms since spawn(); bytes', results: data, rawTransferMs: rawData },
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

function checkAnswer(result: ColdStartTimes, model: Model, what: string): void {
  const output = result.answer.body.outputs?.find((o) => o.name === 'y');
  const right =
    result.answer.status === 200 &&
    output?.data.length === model.expected.length &&
    output.data.every((v, i) => Math.abs(v - model.expected[i]) <= model.tolerance * (1 + Math.abs(model.expected[i])));
  if (!right) {
    throw new Error(`cold start ${what}: wrong answer ${JSON.stringify(result.answer).slice(0, 500)}, expected y = ${JSON.stringify(model.expected.slice(0, 8))}...`);
  }
}
