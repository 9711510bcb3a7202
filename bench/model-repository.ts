/**
 * Many models behind one handler: a model repository of 100 MatMul models of about 10 MB (every
 * weight read), Zipf-distributed traffic (s = 1.1) and a memory budget that holds 10 of them,
 * against a warm single-model handler and the in-process cold-start floor of one such model, in
 * the same run.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPOSITORY_SESSION_MEMORY_RATIO } from '../contract/repository';
import { restEvent } from '../fixtures/events';
import { importCoreBundle } from '../test/support/handler';
import { type MatMulModelFile, mulberry32, writeMatMulModel } from '../tools/onnx';
import { mib, ms, summarize, times, type Summary } from './lib/stats';
import type { Bench, BenchContext, BenchOutput } from './lib/types';

const MODELS = 100;
const MODEL_BYTES = 10_000_000;
const HELD = 10;
const ZIPF_S = 1.1;

type Handler = (e: unknown, context?: { awsRequestId: string }) => Promise<{ statusCode: number; body: string }>;

/** A sampler of ranks 0..n-1 with P(r) ∝ 1/(r+1)^s. */
function zipf(n: number, s: number, random: () => number): () => number {
  const weights = Array.from({ length: n }, (_, r) => 1 / (r + 1) ** s);
  const total = weights.reduce((a, b) => a + b, 0);
  const cumulative: number[] = [];
  let sum = 0;
  for (const w of weights) {
    sum += w / total;
    cumulative.push(sum);
  }
  return () => {
    const u = random();
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid] < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

async function timedInfer(handler: Handler, name: string, model: MatMulModelFile): Promise<number> {
  const body = { inputs: [{ name: 'x', shape: [1, model.k], datatype: 'FP32', data: model.input }] };
  const started = performance.now();
  const answer = await handler(restEvent('POST', `/v2/models/${name}/infer`, body), { awsRequestId: 'bench' });
  const elapsed = performance.now() - started;
  if (answer.statusCode !== 200) throw new Error(`model ${name}: HTTP ${answer.statusCode} ${answer.body.slice(0, 300)}`);
  // A wrong model or a crossed answer would not match its reference.
  const y = (JSON.parse(answer.body) as { outputs: { data: number[] }[] }).outputs[0].data;
  for (const j of [0, Math.floor(model.n / 2), model.n - 1]) {
    if (Math.abs(y[j] - model.expected[j]) > 1e-3 * Math.max(1, Math.abs(model.expected[j])))
      throw new Error(`model ${name}: output ${j} is ${y[j]}, expected ${model.expected[j]}`);
  }
  return elapsed;
}

export const modelRepository: Bench = {
  name: 'model-repository',
  title: 'Many models behind one endpoint',
  async run(ctx: BenchContext): Promise<BenchOutput> {
    const requests = ctx.quick ? 400 : 2000;
    process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
    process.env.POWERTOOLS_METRICS_DISABLED = 'true';
    const { createInferenceHandler, createModelRepositoryEntry } = await importCoreBundle();

    const root = path.join(ctx.tmpDir, 'repository');
    const models: MatMulModelFile[] = [];
    ctx.log(`writing ${MODELS} models of ${mib(MODEL_BYTES)}...`);
    for (let i = 0; i < MODELS; i++) {
      const dir = path.join(root, `m${i}`, '1');
      fs.mkdirSync(dir, { recursive: true });
      models.push(writeMatMulModel(path.join(dir, 'model.onnx'), MODEL_BYTES, { seed: 1000 + i }));
    }
    const modelBytes = models[0].sizeBytes;
    // Each model is charged twice its file (REPOSITORY_SESSION_MEMORY_RATIO).
    const charge = REPOSITORY_SESSION_MEMORY_RATIO * modelBytes;
    const budgetMiB = Math.ceil((HELD * charge) / 2 ** 20);
    if (budgetMiB * 2 ** 20 >= (HELD + 1) * charge) throw new Error('the budget would hold more than 10 models');

    // Baseline 1: one model, warm, behind the single-model handler.
    const single = (await createInferenceHandler({ env: { MODEL_PATH: path.join(root, 'm0', '1', 'model.onnx'), MODEL_NAME: 'm0' } })) as Handler;
    for (let i = 0; i < 50; i++) await timedInfer(single, 'm0', models[0]);
    const warm: number[] = [];
    for (let i = 0; i < Math.min(requests, 1000); i++) warm.push(await timedInfer(single, 'm0', models[0]));

    // Baseline 2: the cold-start floor, in process: a new handler's load of one model and its first answer.
    const floor: number[] = [];
    for (let i = 0; i < (ctx.quick ? 5 : 10); i++) {
      const m = MODELS - 1 - i;
      const started = performance.now();
      const handler = (await createInferenceHandler({ env: { MODEL_PATH: path.join(root, `m${m}`, '1', 'model.onnx'), MODEL_NAME: `m${m}`, MODEL_INIT_WAIT_MS: '0' } })) as Handler;
      await timedInfer(handler, `m${m}`, models[m]);
      floor.push(performance.now() - started);
    }

    // The repository: Zipf traffic over 100 models, a budget for 10.
    global.gc?.();
    const rssBefore = process.memoryUsage().rss;
    const entry = await createModelRepositoryEntry({ env: { MODEL_REPOSITORY_PATH: root, MODEL_CACHE_MEMORY_MB: String(budgetMiB) } });
    const sample = zipf(MODELS, ZIPF_S, mulberry32(11));
    const hits: number[] = [];
    const misses: number[] = [];
    let rssPeak = rssBefore;
    for (let i = 0; i < requests; i++) {
      const m = sample();
      const loads = entry.stats().loads;
      const elapsed = await timedInfer(entry.handle, `m${m}`, models[m]);
      (entry.stats().loads > loads ? misses : hits).push(elapsed);
      rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
    }
    const stats = entry.stats();
    const all = summarize([...hits, ...misses]);
    const w = summarize(warm);
    const f = summarize(floor);
    const miss = summarize(misses);
    const hitRatio = hits.length / requests;
    const row = (label: string, s: Summary, ratio: string) => [label, String(s.n), ms(s.p50), ms(s.p99), ratio];
    return {
      method:
        `${MODELS} MatMul models of ${mib(modelBytes)} (x·W, W ${models[0].k}×${models[0].n} FP32, every weight read) in a directory repository, ` +
        `${requests} sequential requests drawn from a Zipf distribution (s = ${ZIPF_S}) over them, a memory budget of ${budgetMiB} MiB (${HELD} models). ` +
        'Baselines of the same run: the warm single-model handler serving one of these models, and the cold-start floor (a new single-model handler in this process: its load of one model and its first answer). Every answer is checked against its model.',
      tables: [
        {
          caption: 'Latency, in the handler (event in, answer out)',
          columns: ['', 'requests', 'p50', 'p99', 'against the baseline'],
          rows: [
            row('warm single-model handler (baseline)', w, '×1'),
            row('repository, every request', all, `p50 ${times(all.p50 / w.p50)}, p99 ${times(all.p99 / w.p99)}`),
            row('repository, hits', summarize(hits), `p50 ${times(summarize(hits).p50 / w.p50)}`),
            row('cold-start floor (baseline)', f, '×1'),
            row('repository, misses (load and answer)', miss, `p50 ${times(miss.p50 / f.p50)} the floor`),
          ],
        },
        {
          caption: 'Cache and memory',
          columns: ['', 'value'],
          rows: [
            ['cache-hit ratio', `${(hitRatio * 100).toFixed(1)} %`],
            ['loads, unloads', `${stats.loads}, ${stats.evictions}`],
            ['budget; most charged at once', `${mib(stats.budgetBytes)}; ${mib(stats.peakBytes)} (${((stats.peakBytes / stats.budgetBytes) * 100).toFixed(0)} % of the budget)`],
            ['resident memory, most above the start of the run', `${mib(rssPeak - rssBefore)} (${times((rssPeak - rssBefore) / stats.budgetBytes)} the budget)`],
          ],
        },
      ],
      notes: [
        'Misses are loads from a file in the page cache; on Lambda a model in S3 is also downloaded first (see the S3 fetch benchmark).',
        "Resident memory counts onnxruntime's copy of the weights and its prepacked form, plus what the V8 heap kept of the JSON answers: the budget charges each model twice its file.",
      ],
      data: {
        requests,
        models: MODELS,
        modelBytes,
        budgetBytes: stats.budgetBytes,
        hitRatio,
        warm: w,
        all,
        hits: summarize(hits),
        misses: miss,
        floor: f,
        stats,
        rssGrowthBytes: rssPeak - rssBefore,
      },
    };
  },
};
