// One fetch of an S3 object in a fresh process through the bandwidth-limited stand-in; prints its
// time and the process's peak RSS over its RSS before the fetch.
// BENCH_LOADER: `one-stream` (fetchS3Model with concurrency 1, as MODEL_S3_CONCURRENCY=1: one GetObject stream),
// `parallel` (fetchS3Model's parallel ranges, its defaults) or `raw` (the same ranges by node:http,
// no SDK, no checks: the transfer floor).
import { close, ftruncate, mkdirSync, open, write } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { promisify } from 'node:util';
import { fetchS3ModelLoader, reportTimedFetch } from './timed-fetch.mjs';

const dest = process.env.BENCH_DEST_DIR;
const loader = process.env.BENCH_LOADER;
let load;
if (loader === 'raw') {
  const partBytes = Number(process.env.BENCH_RAW_PART_BYTES);
  const concurrency = Number(process.env.BENCH_RAW_CONCURRENCY);
  const endpoint = new URL(process.env.AWS_ENDPOINT_URL_S3);
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const writeAt = promisify(write);
  const get = (key, start, end, onData) =>
    new Promise((resolve, reject) => {
      const req = http.get({ host: endpoint.hostname, port: endpoint.port, path: `/${key}`, agent, headers: { range: `bytes=${start}-${end}` } }, (res) => {
        if (res.statusCode !== 206) return reject(new Error(`status ${res.statusCode}`));
        const total = Number(/\/(\d+)$/.exec(res.headers['content-range'])[1]);
        let chain = Promise.resolve();
        let position = start;
        res.on('data', (chunk) => {
          const at = position;
          position += chunk.length;
          res.pause();
          chain = chain.then(() => onData(chunk, at)).then(() => res.resume(), reject);
        });
        res.on('end', () => chain.then(() => resolve(total)));
        res.on('error', reject);
      });
      req.on('error', reject);
    });
  load = async (uri, dir) => {
    const key = uri.slice('s3://'.length);
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, path.basename(key));
    const fd = await promisify(open)(file, 'w');
    try {
      const total = await get(key, 0, partBytes - 1, (chunk, at) => writeAt(fd, chunk, 0, chunk.length, at));
      await promisify(ftruncate)(fd, total);
      let next = partBytes;
      const lane = async () => {
        while (next < total) {
          const start = next;
          next += partBytes;
          await get(key, start, Math.min(start + partBytes, total) - 1, (chunk, at) => writeAt(fd, chunk, 0, chunk.length, at));
        }
      };
      await Promise.all(Array.from({ length: concurrency }, lane));
    } finally {
      await promisify(close)(fd);
    }
    return file;
  };
} else {
  load = await fetchS3ModelLoader(loader === 'one-stream' ? { concurrency: 1 } : {});
}

await reportTimedFetch(load, dest);
