// One model fetch from S3 in a fresh process, by the handler's fetchS3Model (the chunk the Lambda
// bundle runs) or by a naive loader; prints its time and the process's peak RSS.
import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';

const dest = process.env.BENCH_DEST_DIR;
let load;
if (process.env.BENCH_LOADER === 'fetchS3Model') {
  const chunks = new URL('../../assets/handlers/inference/chunks/', import.meta.url);
  const chunk = readdirSync(chunks).find((f) => /^s3-model-.*\.mjs$/.test(f));
  const { fetchS3Model } = await import(new URL(chunk, chunks).href);
  load = async (uri, dir) => (await fetchS3Model({ uri, cacheDir: dir })).path;
} else {
  const { S3Client, GetObjectCommand } = await import('@aws-sdk/client-s3');
  // GetObject, the whole body gathered into one Buffer, written with writeFile: the loader many
  // Lambda functions start with.
  load = async (uri, dir) => {
    const [, Bucket, Key] = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri);
    const client = new S3Client({ forcePathStyle: process.env.MODEL_S3_FORCE_PATH_STYLE === 'true' });
    try {
      const response = await client.send(new GetObjectCommand({ Bucket, Key }));
      const parts = [];
      for await (const part of response.Body) parts.push(part);
      mkdirSync(dir, { recursive: true });
      const file = path.join(dir, path.basename(Key));
      await writeFile(file, Buffer.concat(parts));
      return file;
    } finally {
      client.destroy();
    }
  };
}

// A tiny object first: the SDK's code gets loaded and compiled before the clock starts, so the
// timed fetch compares downloads rather than module loading (each loader loads a different SDK build).
await load(process.env.BENCH_WARM_URI, path.join(dest, 'warm'));
const rssBefore = process.memoryUsage().rss;
const t = process.hrtime.bigint();
const file = await load(process.env.BENCH_URI, path.join(dest, 'model'));
const ms = Number(process.hrtime.bigint() - t) / 1e6;
const peakRss = process.resourceUsage().maxRSS * 1024;
process.stdout.write(`BENCH_RESULT ${JSON.stringify({ ms, bytes: statSync(file).size, rssBefore, peakRss })}\n`);
process.exit(0);
