/**
 * Model fetch from S3: the handler's `fetchS3Model` (streamed to disk, checked, renamed) against a
 * naive loader (GetObject, one Buffer, writeFile), each run in a fresh process for its peak RSS.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startLocalS3 } from '../tools/local-s3';
import { writePaddedModel } from '../tools/onnx';
import { runChild } from './lib/child';
import { mib, spread, summarize, times, type Summary } from './lib/stats';
import type { Bench, BenchContext, BenchOutput } from './lib/types';

const LOADERS = ['fetchS3Model', 'naive'] as const;
type Loader = (typeof LOADERS)[number];

interface FetchResult {
  readonly ms: number;
  readonly bytes: number;
  /** RSS right before the timed fetch, SDK loaded. */
  readonly rssBefore: number;
  /** process.resourceUsage().maxRSS, in bytes: the process's peak. */
  readonly peakRss: number;
}

export const s3Fetch: Bench = {
  name: 's3-fetch',
  title: 'Model fetch from S3',
  async run(ctx: BenchContext): Promise<BenchOutput> {
    const repetitions = ctx.quick ? 3 : 7;
    const sizes = [{ label: '1 MB', bytes: 1_000_000 }, { label: '100 MB', bytes: 100_000_000 }, ...(ctx.quick ? [] : [{ label: '500 MB', bytes: 500_000_000 }])];
    const s3 = await startLocalS3();
    try {
      await s3.createBucket('bench');
      await s3.putObject('bench', 'fetch/warm.bin', Buffer.alloc(1024));
      for (const size of sizes) {
        const file = writePaddedModel(path.join(ctx.tmpDir, `fetch-${size.bytes}.onnx`), size.bytes).path;
        await s3.putObject('bench', `fetch/${size.bytes}.onnx`, file);
        // s3rver keeps its own copy; this one would only take disk space.
        fs.rmSync(file);
      }
      ctx.log(`s3 fetch: ${sizes.length} objects uploaded`);

      const samples = new Map<string, FetchResult[]>();
      for (let round = 0; round < repetitions; round++) {
        for (const size of sizes) {
          for (const loader of round % 2 === 0 ? LOADERS : [...LOADERS].reverse()) {
            const dest = path.join(ctx.tmpDir, `fetch-dest-${round}-${loader}`);
            const { result } = await runChild<FetchResult>('s3-fetch.mjs', {
              repoRoot: ctx.repoRoot,
              env: {
                ...s3.env(),
                BENCH_LOADER: loader,
                BENCH_URI: `s3://bench/fetch/${size.bytes}.onnx`,
                BENCH_WARM_URI: 's3://bench/fetch/warm.bin',
                BENCH_DEST_DIR: dest,
              },
              timeoutMs: 300_000,
            });
            fs.rmSync(dest, { recursive: true, force: true });
            if (result.bytes !== size.bytes) {
              throw new Error(`s3 fetch: ${loader} wrote ${result.bytes} bytes of a ${size.bytes}-byte object`);
            }
            const key = `${size.label}/${loader}`;
            samples.set(key, [...(samples.get(key) ?? []), result]);
          }
        }
        ctx.log(`s3 fetch: round ${round + 1}/${repetitions} done`);
      }

      const rows: string[][] = [];
      const data: Record<string, Record<Loader, { ms: Summary; peakRss: Summary; rssBefore: Summary }>> = {};
      for (const size of sizes) {
        const stats = Object.fromEntries(
          LOADERS.map((loader) => {
            const list = samples.get(`${size.label}/${loader}`)!;
            return [
              loader,
              {
                ms: summarize(list.map((r) => r.ms)),
                peakRss: summarize(list.map((r) => r.peakRss)),
                rssBefore: summarize(list.map((r) => r.rssBefore)),
              },
            ];
          }),
        ) as Record<Loader, { ms: Summary; peakRss: Summary; rssBefore: Summary }>;
        data[size.label] = stats;
        for (const loader of LOADERS) {
          const s = stats[loader];
          const baseline = stats.naive;
          rows.push([
            size.label,
            loader === 'naive' ? 'naive: GetObject → one Buffer → writeFile' : 'fetchS3Model (handler)',
            spread(s.ms),
            (size.bytes / 1e6 / (s.ms.p50 / 1000)).toFixed(0),
            loader === 'naive' ? '1' : times(s.ms.p50 / baseline.ms.p50),
            `${mib(s.peakRss.min)} / **${mib(s.peakRss.p50)}** / ${mib(s.peakRss.max)}`,
            mib(s.peakRss.p50 - s.rssBefore.p50),
            loader === 'naive' ? '1' : times(s.peakRss.p50 / baseline.peakRss.p50),
          ]);
        }
      }
      return {
        method:
          `Each run is a fresh \`node\` process that fetches one object from a local S3 server (s3rver in the bench process) ` +
          `into an empty directory; ${repetitions} runs per cell, the loaders alternating. Before the clock starts, each child ` +
          "fetches a 1 KiB object with the same loader, so that the SDK's code is loaded and the timed part is the download: " +
          'client creation, GetObject, the body to disk. Peak RSS is `process.resourceUsage().maxRSS` at the end, the peak of ' +
          "the child's whole life; 'over RSS before' subtracts the RSS just before the timed fetch. fetchS3Model is the chunk of " +
          'the Lambda bundle (`assets/handlers/inference/chunks/s3-model-*.mjs`); it also checks free space, counts bytes, ' +
          'computes the MD5 the ETag is compared with, and renames a `.partial` file. The naive loader uses `@aws-sdk/client-s3` ' +
          'from node_modules.',
        tables: [
          {
            columns: [
              'object',
              'loader',
              'time min / median / max (ms)',
              'MB/s (median)',
              'time vs naive',
              'peak RSS min / median / max',
              'peak over RSS before (median)',
              'peak RSS vs naive',
            ],
            rows,
          },
        ],
        notes: [
          'The server is on loopback and its files are in the page cache, so the figures are CPU and memory costs of the ' +
            'client, not S3 throughput: in Lambda, the network usually sets the time and this difference shrinks; the memory ' +
            'difference does not.',
          ...(ctx.quick ? ['The 500 MB object is left out of a `--quick` run.'] : []),
        ],
        data: { repetitions, unit: { ms: 'ms', rss: 'bytes' }, results: data },
      };
    } finally {
      await s3.stop();
    }
  },
};
