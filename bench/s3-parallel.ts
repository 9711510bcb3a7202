/**
 * S3 at the link's speed: one GetObject stream against fetchS3Model's parallel ranged GETs and a
 * raw parallel ranged GET of the same bytes (node:http, no SDK, no checks: the transfer floor),
 * through a stand-in that paces each connection and delays each answer's first byte as S3 does.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startLocalS3 } from '../tools/local-s3';
import { startThrottleProxy } from '../tools/throttle-proxy';
import { runChild } from './lib/child';
import { mib, spread, summarize, times, type Summary } from './lib/stats';
import type { Bench, BenchContext, BenchOutput } from './lib/types';

const LOADERS = ['one-stream', 'parallel', 'raw'] as const;
type Loader = (typeof LOADERS)[number];
const LOADER_LABELS: Record<Loader, string> = {
  'one-stream': 'fetchS3Model, one GetObject stream (MODEL_S3_CONCURRENCY=1)',
  parallel: 'fetchS3Model, parallel ranges (defaults)',
  raw: 'raw parallel ranged GET (node:http, no SDK, no checks)',
};
/** fetchS3Model's defaults outside Lambda (no AWS_LAMBDA_FUNCTION_MEMORY_SIZE), for objects under 1 GiB. */
const RAW_PART_BYTES = 8 * 1024 * 1024;
const RAW_CONCURRENCY = 8;
const FIRST_BYTE_LATENCY_MS = 20;

interface FetchResult {
  readonly ms: number;
  readonly bytes: number;
  readonly rssBefore: number;
  readonly peakRss: number;
}

export const s3Parallel: Bench = {
  name: 's3-parallel',
  title: 'S3 fetch through a bandwidth-limited stand-in: one stream, parallel ranges, the raw floor',
  async run(ctx: BenchContext): Promise<BenchOutput> {
    const rates = [50, 100].map((mb) => ({ label: `${mb} MB/s`, bytesPerSecond: mb * 1e6 }));
    const sizes = [{ label: '100 MB', bytes: 100_000_000, repetitions: ctx.quick ? 1 : 3 }, ...(ctx.quick ? [] : [{ label: '1 GB', bytes: 1_000_000_000, repetitions: 1 }])];
    const s3 = await startLocalS3();
    try {
      await s3.createBucket('bench');
      await s3.putObject('bench', 'parallel/warm.bin', Buffer.alloc(1024));
      for (const size of sizes) {
        // A sparse file: the bytes' values do not matter to a transfer, and it is written at once.
        const file = path.join(ctx.tmpDir, `parallel-${size.bytes}.bin`);
        fs.closeSync(fs.openSync(file, 'w'));
        fs.truncateSync(file, size.bytes);
        await s3.putObject('bench', `parallel/${size.bytes}.bin`, file);
        fs.rmSync(file);
      }
      ctx.log(`s3 parallel: ${sizes.length} objects uploaded`);

      const rows: string[][] = [];
      const data: Record<string, Record<string, Record<Loader, { ms: Summary; rssOverBefore: Summary }>>> = {};
      for (const rate of rates) {
        const proxy = await startThrottleProxy({ targetPort: s3.port, bytesPerSecond: rate.bytesPerSecond, firstByteLatencyMs: FIRST_BYTE_LATENCY_MS });
        try {
          for (const size of sizes) {
            const samples = new Map<Loader, FetchResult[]>();
            for (let round = 0; round < size.repetitions; round++) {
              for (const loader of round % 2 === 0 ? LOADERS : [...LOADERS].reverse()) {
                const dest = path.join(ctx.tmpDir, `parallel-dest-${loader}`);
                const { result } = await runChild<FetchResult>('s3-parallel.mjs', {
                  repoRoot: ctx.repoRoot,
                  env: {
                    ...s3.env(),
                    AWS_ENDPOINT_URL_S3: proxy.endpoint,
                    BENCH_LOADER: loader,
                    BENCH_URI: `s3://bench/parallel/${size.bytes}.bin`,
                    BENCH_WARM_URI: 's3://bench/parallel/warm.bin',
                    BENCH_DEST_DIR: dest,
                    BENCH_RAW_PART_BYTES: String(RAW_PART_BYTES),
                    BENCH_RAW_CONCURRENCY: String(RAW_CONCURRENCY),
                  },
                  timeoutMs: 600_000,
                });
                fs.rmSync(dest, { recursive: true, force: true });
                if (result.bytes !== size.bytes) {
                  throw new Error(`s3 parallel: ${loader} wrote ${result.bytes} bytes of a ${size.bytes}-byte object`);
                }
                samples.set(loader, [...(samples.get(loader) ?? []), result]);
                ctx.log(`s3 parallel: ${rate.label}, ${size.label}, ${loader}: ${result.ms.toFixed(0)} ms`);
              }
            }
            const stats = Object.fromEntries(
              LOADERS.map((loader) => {
                const list = samples.get(loader)!;
                return [loader, { ms: summarize(list.map((r) => r.ms)), rssOverBefore: summarize(list.map((r) => r.peakRss - r.rssBefore)) }];
              }),
            ) as Record<Loader, { ms: Summary; rssOverBefore: Summary }>;
            data[rate.label] = { ...data[rate.label], [size.label]: stats };
            for (const loader of LOADERS) {
              const s = stats[loader];
              rows.push([
                rate.label,
                size.label,
                LOADER_LABELS[loader],
                spread(s.ms),
                (size.bytes / 1e6 / (s.ms.p50 / 1000)).toFixed(0),
                times(stats['one-stream'].ms.p50 / s.ms.p50),
                times(s.ms.p50 / stats.raw.ms.p50),
                mib(s.rssOverBefore.max),
              ]);
            }
          }
        } finally {
          await proxy.close();
        }
      }
      return {
        method:
          'Each run is a fresh `node` process that fetches one object from s3rver through a proxy in the bench process that ' +
          `waits ${FIRST_BYTE_LATENCY_MS} ms before each answer's headers and paces each connection's body to the rate shown. ` +
          'Before the clock starts, the child fetches a 1 KiB object the same way (the SDK loaded). fetchS3Model is the chunk of ' +
          "the Lambda bundle; 'one stream' is the same code with MODEL_S3_CONCURRENCY=1. The raw GET asks for the same ranges " +
          `(${RAW_PART_BYTES / 2 ** 20} MiB, ${RAW_CONCURRENCY} at a time) with node:http and writes them at their offsets, with ` +
          "no SDK and no checks. 'RSS over before' is the peak RSS minus the RSS just before the timed fetch.",
        tables: [
          {
            columns: [
              'per-connection rate',
              'object',
              'loader',
              'time min / median / max (ms)',
              'MB/s (median)',
              'speed-up vs one stream',
              'time vs raw floor',
              'peak RSS over before (max)',
            ],
            rows,
          },
        ],
        notes: [
          'Goals (issue 13), 1 GB: ≥ 4× one stream, ≤ 1.15× the raw floor, peak RSS ≤ 128 MiB over the base. The client, the ' +
            'proxy and s3rver share this machine’s cores, so past a few hundred MB/s the figures measure CPU, not the pacing.',
          ...(ctx.quick ? ['The 1 GB object is left out of a `--quick` run.'] : ['1 GB is fetched once per loader and rate, 100 MB three times.']),
        ],
        data: { firstByteLatencyMs: FIRST_BYTE_LATENCY_MS, results: data },
      };
    } finally {
      await s3.stop();
    }
  },
};
