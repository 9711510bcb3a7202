// One model fetch from S3 in a fresh process, by the handler's fetchS3Model (the chunk the Lambda
// bundle runs) or by a naive loader; prints its time and the process's peak RSS.
import { mkdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fetchS3ModelLoader, reportTimedFetch } from './timed-fetch.mjs';

const dest = process.env.BENCH_DEST_DIR;
let load;
if (process.env.BENCH_LOADER === 'fetchS3Model') {
  load = await fetchS3ModelLoader();
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

await reportTimedFetch(load, dest);
