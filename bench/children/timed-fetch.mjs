// What the S3 fetch children share: the handler's fetchS3Model (the chunk the Lambda bundle runs),
// and the timed fetch they report.
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

/**
 * fetchS3Model from the built inference bundle, as a loader `(uri, dir) => path`, with `options`
 * of its own (`{ concurrency: 1 }`): fetchS3Model reads no environment, the handler passes it what
 * its configuration read.
 */
export async function fetchS3ModelLoader(options = {}) {
  const chunks = new URL('../../assets/handlers/inference/chunks/', import.meta.url);
  const chunk = readdirSync(chunks).find((f) => /^s3-model-.*\.mjs$/.test(f));
  const { fetchS3Model } = await import(new URL(chunk, chunks).href);
  // The stand-in's environment asks for path-style addressing, as MODEL_S3_FORCE_PATH_STYLE does the handler's.
  const settings = { forcePathStyle: process.env.MODEL_S3_FORCE_PATH_STYLE === 'true', ...options };
  return async (uri, dir) => (await fetchS3Model({ ...settings, uri, cacheDir: dir })).path;
}

/**
 * Fetches BENCH_URI into `dest` with `load`, timed, and prints the result line; then exits. A tiny
 * object (BENCH_WARM_URI) goes first: the loader's code gets loaded and compiled before the clock
 * starts, so the timed fetch compares downloads rather than module loading.
 */
export async function reportTimedFetch(load, dest) {
  await load(process.env.BENCH_WARM_URI, path.join(dest, 'warm'));
  const rssBefore = process.memoryUsage().rss;
  const t = process.hrtime.bigint();
  const file = await load(process.env.BENCH_URI, path.join(dest, 'model'));
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  const peakRss = process.resourceUsage().maxRSS * 1024;
  process.stdout.write(`BENCH_RESULT ${JSON.stringify({ ms, bytes: statSync(file).size, rssBefore, peakRss })}\n`, () => process.exit(0));
}
