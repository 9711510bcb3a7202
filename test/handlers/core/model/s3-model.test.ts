/**
 * fetchS3Model against a real S3-compatible server (s3rver on 127.0.0.1) through the real SDK.
 * Most requests go through a small loopback proxy that records what crossed the wire and can
 * inject faults: cut the connection, stop sending, flip a byte, rewrite headers.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, truncate, utimes, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { Worker } from 'node:worker_threads';
import { Crc32, Crc32c, Crc64Nvme } from '@aws-sdk/checksums/crc';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { build, type BuildOptions } from 'esbuild';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type FetchS3ModelOptions, fetchS3Model, ModelFetchError, parseS3Uri, type ModelFetchErrorCode } from '../../../../handlers/core/model/s3-model';
import { startLocalS3, type LocalS3 } from '../../../../tools/local-s3';
import { startFaultProxy, type FaultProxy } from '../../../support/fault-proxy';

const BUCKET = 'models';
const MODULE_PATH = path.resolve(__dirname, '../../../../handlers/core/model/s3-model.ts');

/** The esbuild settings of scripts/build-handlers.ts that matter here: ESM, code splitting, a `require`. */
const HANDLER_BUILD_OPTIONS: BuildOptions = {
  bundle: true,
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
  outExtension: { '.js': '.mjs' },
  platform: 'node',
  format: 'esm',
  target: 'node20',
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  logLevel: 'silent',
};

function md5Hex(data: Buffer): string {
  return createHash('md5').update(data).digest('hex');
}

async function sha256OfFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) {
    hash.update(chunk as Buffer);
  }
  return hash.digest('hex');
}

async function expectFetchError(promise: Promise<unknown>, code: ModelFetchErrorCode): Promise<ModelFetchError> {
  const error = await promise.then(
    () => undefined,
    (rejection: unknown) => rejection,
  );
  expect(error, `expected a ModelFetchError with code ${code}`).toBeInstanceOf(ModelFetchError);
  expect((error as ModelFetchError).code).toBe(code);
  return error as ModelFetchError;
}

let s3: LocalS3;
let proxy: FaultProxy;
let workDir: string;
let cacheDir: string;
let testNumber = 0;
const originalEnv = { ...process.env };

beforeAll(async () => {
  s3 = await startLocalS3();
  await s3.createBucket(BUCKET);
  proxy = await startFaultProxy(s3.port);
  workDir = await mkdtemp(path.join(tmpdir(), 's3-model-test-'));
  // fetchS3Model builds its own client from the environment, as on Lambda, pointed at the proxy.
  Object.assign(process.env, s3.env(), { AWS_ENDPOINT_URL_S3: proxy.endpoint });
});

afterAll(async () => {
  process.env = originalEnv;
  await proxy?.close();
  await s3?.stop();
  if (workDir) {
    await rm(workDir, { recursive: true, force: true });
  }
});

beforeEach(() => {
  testNumber += 1;
  cacheDir = path.join(workDir, `cache-${testNumber}`);
  proxy.fault = undefined;
  proxy.headHeaders = undefined;
  proxy.etagSuffix = undefined;
  proxy.requests.length = 0;
  proxy.ranges.length = 0;
  proxy.resetConcurrency();
});

async function upload(key: string, body: Buffer): Promise<string> {
  const { etag } = await s3.putObject(BUCKET, key, body);
  return etag;
}

/** Waits until the local S3 server serves `body` whole for `key`: s3rver answers a PUT before its file is written. */
async function untilStored(key: string, body: Buffer): Promise<void> {
  const client = s3.client();
  for (const started = Date.now(); Date.now() - started < 10_000; ) {
    const answer = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    const stored = Buffer.from(await answer.Body!.transformToByteArray());
    if (stored.equals(body) && answer.ETag === `"${md5Hex(body)}"`) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`s3://${BUCKET}/${key} was not stored within 10 s`);
}

describe('parseS3Uri', () => {
  it('splits bucket and key, keeping slashes in the key', () => {
    expect(parseS3Uri('s3://my-bucket/models/v2/model.onnx')).toEqual({ bucket: 'my-bucket', key: 'models/v2/model.onnx' });
  });

  it.each(['my-bucket/model.onnx', 's3://my-bucket', 's3://my-bucket/', 's3:///model.onnx', 'https://b.s3.amazonaws.com/k'])(
    'rejects %s with InvalidUri naming the expected form',
    (uri) => {
      expect(() => parseS3Uri(uri)).toThrow(ModelFetchError);
      expect(() => parseS3Uri(uri)).toThrow(/expected s3:\/\/<bucket>\/<key>/);
    },
  );
});

describe('fetchS3Model', () => {
  it('downloads the object byte for byte and reports what it fetched', async () => {
    const content = randomBytes(300_000);
    await upload('plain/model.onnx', content);

    const result = await fetchS3Model({ uri: `s3://${BUCKET}/plain/model.onnx`, cacheDir });

    expect(result.downloaded).toBe(true);
    expect(result.sizeBytes).toBe(content.length);
    expect(result.etag).toBe(`"${md5Hex(content)}"`);
    expect(path.dirname(result.path)).toBe(cacheDir);
    expect(path.basename(result.path)).toMatch(/model\.onnx$/);
    expect((await readFile(result.path)).equals(content)).toBe(true);
    expect(Number.isInteger(result.durationMs) && result.durationMs >= 0).toBe(true);
    // Only the model and its ETag record remain: no temporary file.
    expect((await readdir(cacheDir)).sort()).toEqual([path.basename(result.path), `${path.basename(result.path)}.json`]);
  });

  it('reuses the cached file after a 304 without transferring the body again', async () => {
    const content = randomBytes(200_000);
    const etag = await upload('reuse/model.onnx', content);
    const uri = `s3://${BUCKET}/reuse/model.onnx`;
    const first = await fetchS3Model({ uri, cacheDir });
    const mtimeBefore = (await stat(first.path)).mtimeMs;
    proxy.requests.length = 0;

    const second = await fetchS3Model({ uri, cacheDir });

    expect(second).toMatchObject({ downloaded: false, path: first.path, etag, sizeBytes: content.length });
    expect(proxy.requests).toEqual([{ method: 'GET', url: expect.stringContaining('/reuse/model.onnx'), ifNoneMatch: etag, status: 304, bodyBytes: 0 }]);
    expect((await stat(first.path)).mtimeMs).toBe(mtimeBefore);
    expect((await readFile(second.path)).equals(content)).toBe(true);
  });

  it('downloads again when the object has changed (new ETag)', async () => {
    const uri = `s3://${BUCKET}/changing/model.onnx`;
    await upload('changing/model.onnx', randomBytes(100_000));
    const first = await fetchS3Model({ uri, cacheDir });
    const newContent = randomBytes(150_000);
    await upload('changing/model.onnx', newContent);

    const second = await fetchS3Model({ uri, cacheDir });

    expect(second.downloaded).toBe(true);
    expect(second.path).toBe(first.path);
    expect(second.etag).toBe(`"${md5Hex(newContent)}"`);
    expect(second.sizeBytes).toBe(newContent.length);
    expect((await readFile(second.path)).equals(newContent)).toBe(true);
    const third = await fetchS3Model({ uri, cacheDir });
    expect(third.downloaded).toBe(false);
  });

  it('keeps the cached file of the older object in place until the new one is renamed over it', async () => {
    const uri = `s3://${BUCKET}/replaced/model.onnx`;
    const oldContent = randomBytes(100_000);
    await upload('replaced/model.onnx', oldContent);
    const first = await fetchS3Model({ uri, cacheDir });
    const newContent = randomBytes(600_000);
    await upload('replaced/model.onnx', newContent);

    proxy.fault = { holdAfterBytes: 300_000 };
    const refreshing = fetchS3Model({ uri, cacheDir, concurrency: 1 });
    // Wait until the download writes to its partial file: past the answer, into the body.
    const writing = async () => {
      const partial = (await readdir(cacheDir)).find((name) => name.endsWith('.partial'));
      return partial !== undefined && (await stat(path.join(cacheDir, partial))).size > 0;
    };
    try {
      const started = Date.now();
      while (!(await writing()) && Date.now() - started < 10_000) await new Promise((resolve) => setTimeout(resolve, 5));
      expect(proxy.heldCount).toBe(1);
      expect(await writing()).toBe(true);
      // Mid-download, a path returned before still holds the whole older object.
      expect((await readFile(first.path)).equals(oldContent)).toBe(true);
    } finally {
      proxy.fault = undefined;
      proxy.releaseHeld();
      await refreshing.catch(() => undefined);
    }
    const second = await refreshing;

    expect(second.downloaded).toBe(true);
    expect((await readFile(second.path)).equals(newContent)).toBe(true);
    expect((await readdir(cacheDir)).sort()).toEqual([path.basename(first.path), `${path.basename(first.path)}.json`]);
  });

  it('removes the cached file of the older object first when the new one would not fit beside it', async () => {
    const uri = `s3://${BUCKET}/crowded/model.onnx`;
    const oldContent = randomBytes(100_000);
    await upload('crowded/model.onnx', oldContent);
    const first = await fetchS3Model({ uri, cacheDir });
    const newContent = randomBytes(150_000);
    await upload('crowded/model.onnx', newContent);
    // Room for the new object only once the older one is gone.
    const freeBytes = async () => ((await stat(first.path).catch(() => undefined)) ? newContent.length - 1 : newContent.length);

    const second = await fetchS3Model({ uri, cacheDir, freeBytes });

    expect(second.downloaded).toBe(true);
    expect((await readFile(second.path)).equals(newContent)).toBe(true);
    expect((await fetchS3Model({ uri, cacheDir })).downloaded).toBe(false);
  });

  it('downloads again when the cached file no longer has the recorded size', async () => {
    const content = randomBytes(120_000);
    await upload('truncated/model.onnx', content);
    const uri = `s3://${BUCKET}/truncated/model.onnx`;
    const first = await fetchS3Model({ uri, cacheDir });
    await truncate(first.path, 1000);

    const second = await fetchS3Model({ uri, cacheDir });

    expect(second.downloaded).toBe(true);
    expect((await readFile(second.path)).equals(content)).toBe(true);
  });

  it('removes a partial file that no attempt has written to for long, and does not use it', async () => {
    const content = randomBytes(50_000);
    await upload('leftover/model.onnx', content);
    const uri = `s3://${BUCKET}/leftover/model.onnx`;
    const first = await fetchS3Model({ uri, cacheDir });
    const leftover = `${first.path}.partial`;
    await writeFile(leftover, 'half a model');
    const anHourAgo = new Date(Date.now() - 3600_000);
    await utimes(leftover, anHourAgo, anHourAgo);

    const second = await fetchS3Model({ uri, cacheDir });

    expect(second.downloaded).toBe(false);
    expect((await readFile(second.path)).equals(content)).toBe(true);
    expect((await readdir(cacheDir)).sort()).toEqual([path.basename(first.path), `${path.basename(first.path)}.json`]);
  });

  it('shares one download between concurrent calls for the same object', async () => {
    await upload('concurrent/model.onnx', randomBytes(80_000));
    const uri = `s3://${BUCKET}/concurrent/model.onnx`;

    const [a, b] = await Promise.all([fetchS3Model({ uri, cacheDir }), fetchS3Model({ uri, cacheDir })]);

    expect(a).toBe(b);
    expect(proxy.requests.filter((request) => request.method === 'GET')).toHaveLength(1);
  });

  it('passes a pinned versionId to S3 and caches it apart from the current version', async () => {
    // s3rver has no versioning: it ignores versionId and returns no x-amz-version-id, so this
    // checks what reaches the wire and how the cache keys it, not S3's version selection.
    const content = randomBytes(40_000);
    await upload('versioned/model.onnx', content);
    const uri = `s3://${BUCKET}/versioned/model.onnx`;

    const pinned = await fetchS3Model({ uri, versionId: 'v-2024.1', cacheDir });
    const current = await fetchS3Model({ uri, cacheDir });

    // GETs only: the first fetch of each also sends a HEAD for the object's checksum.
    const gets = () => proxy.requests.filter((r) => r.method === 'GET');
    expect(gets()[0].url).toContain('versionId=v-2024.1');
    expect(gets()[1].url).not.toContain('versionId');
    expect(pinned.versionId).toBe('v-2024.1');
    expect(current.versionId).toBeUndefined();
    expect(pinned.path).not.toBe(current.path);
    expect((await readFile(pinned.path)).equals(content)).toBe(true);
    const pinnedAgain = await fetchS3Model({ uri, versionId: 'v-2024.1', cacheDir });
    expect(pinnedAgain).toMatchObject({ downloaded: false, versionId: 'v-2024.1' });
    expect(gets()[2].url).toContain('versionId=v-2024.1');
  });

  it('uses an injected client as is and leaves it usable', async () => {
    const content = randomBytes(30_000);
    await upload('injected/model.onnx', content);
    const client = s3.client();

    const result = await fetchS3Model({ uri: `s3://${BUCKET}/injected/model.onnx`, cacheDir, client });

    expect((await readFile(result.path)).equals(content)).toBe(true);
    expect(proxy.requests).toHaveLength(0);
    const again = await fetchS3Model({ uri: `s3://${BUCKET}/injected/model.onnx`, cacheDir, client });
    expect(again.downloaded).toBe(false);
  });

  it('fails with NotFound naming the URI for a missing object', async () => {
    const error = await expectFetchError(fetchS3Model({ uri: `s3://${BUCKET}/missing/model.onnx`, cacheDir }), 'NotFound');
    expect(error.message).toContain(`s3://${BUCKET}/missing/model.onnx does not exist`);
    expect(await readdir(cacheDir)).toEqual([]);
  });

  it('fails with NotFound for a missing bucket', async () => {
    const error = await expectFetchError(fetchS3Model({ uri: 's3://no-such-bucket/model.onnx', cacheDir }), 'NotFound');
    expect(error.message).toMatch(/bucket of s3:\/\/no-such-bucket\/model\.onnx does not exist/);
  });

  it('fails with AccessDenied and says which permission to grant', async () => {
    await upload('denied/model.onnx', randomBytes(1000));
    const client = s3.client({ credentials: { accessKeyId: 'NOT-A-KEY', secretAccessKey: 'wrong' } });

    const error = await expectFetchError(fetchS3Model({ uri: `s3://${BUCKET}/denied/model.onnx`, cacheDir, client }), 'AccessDenied');

    expect(error.message).toContain('s3:GetObject');
  });

  it('fails with a clear error when nothing listens at the endpoint', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const client = s3.client({ endpoint: `http://127.0.0.1:${port}`, maxAttempts: 1 });

    const error = await expectFetchError(fetchS3Model({ uri: `s3://${BUCKET}/any/model.onnx`, cacheDir, client }), 'Unknown');

    expect(error.message).toContain('Cannot reach S3');
    expect(error.message).toContain('ECONNREFUSED');
  });

  it('rejects a malformed URI before any request', async () => {
    await expectFetchError(fetchS3Model({ uri: 'models/model.onnx', cacheDir }), 'InvalidUri');
    expect(proxy.requests).toHaveLength(0);
  });

  it('fails with NoSpace naming both sizes when the cache dir is too small', async () => {
    const content = randomBytes(64_000);
    await upload('big/model.onnx', content);

    const error = await expectFetchError(fetchS3Model({ uri: `s3://${BUCKET}/big/model.onnx`, cacheDir, freeBytes: async () => content.length - 1 }), 'NoSpace');

    expect(error.message).toContain(`(${content.length} bytes)`);
    expect(error.message).toContain(`(${content.length - 1} bytes)`);
    expect(error.message).toContain('ephemeral storage');
    expect(await readdir(cacheDir)).toEqual([]);
  });

  describe('faults on the wire', () => {
    const content = randomBytes(1024 * 1024);
    const key = 'faulty/model.onnx';
    const uri = `s3://${BUCKET}/${key}`;

    beforeAll(async () => {
      await upload(key, content);
    });

    it('fails with Interrupted when the connection drops mid-body, keeps no file, then recovers', async () => {
      proxy.fault = { cutAfterBytes: 300_000 };

      const error = await expectFetchError(fetchS3Model({ uri, cacheDir }), 'Interrupted');

      expect(error.message).toMatch(/after \d+ of 1048576 bytes/);
      expect(await readdir(cacheDir)).toEqual([]);
      proxy.fault = undefined;
      const retry = await fetchS3Model({ uri, cacheDir });
      expect(retry.downloaded).toBe(true);
      expect((await readFile(retry.path)).equals(content)).toBe(true);
    });

    it('fails with Timeout within the idle timeout when the server stops sending mid-body', { timeout: 10_000 }, async () => {
      proxy.fault = { stallAfterBytes: 200_000 };
      const idleTimeoutMs = 600;
      const started = Date.now();

      const error = await expectFetchError(fetchS3Model({ uri, cacheDir, idleTimeoutMs }), 'Timeout');

      const elapsed = Date.now() - started;
      expect(elapsed).toBeGreaterThanOrEqual(idleTimeoutMs - 50);
      expect(elapsed).toBeLessThan(idleTimeoutMs + 1500);
      expect(error.message).toContain(`${idleTimeoutMs} ms`);
      expect(await readdir(cacheDir)).toEqual([]);
    });

    it('applies the idle timeout to an injected client that has none of its own', { timeout: 10_000 }, async () => {
      proxy.fault = { stallAfterBytes: 100_000 };
      const client = s3.client({ endpoint: proxy.endpoint });
      const idleTimeoutMs = 500;
      const started = Date.now();

      await expectFetchError(fetchS3Model({ uri, cacheDir, idleTimeoutMs, client }), 'Timeout');

      expect(Date.now() - started).toBeLessThan(idleTimeoutMs + 1500);
      expect(await readdir(cacheDir)).toEqual([]);
    });

    it('fails with Timeout when the server never answers (the SDK retries, each attempt bounded)', { timeout: 10_000 }, async () => {
      proxy.fault = { stallBeforeHeaders: true };
      const idleTimeoutMs = 400;
      const started = Date.now();

      await expectFetchError(fetchS3Model({ uri, cacheDir, idleTimeoutMs }), 'Timeout');

      const attempts = proxy.requests.length;
      expect(attempts).toBeGreaterThanOrEqual(1);
      expect(Date.now() - started).toBeLessThan(attempts * idleTimeoutMs + 3000);
    });

    it('fails with Corrupt when a byte changes in transit (MD5 differs from the ETag)', async () => {
      proxy.fault = { flipByteAt: 777_777 };

      const error = await expectFetchError(fetchS3Model({ uri, cacheDir }), 'Corrupt');

      expect(error.message).toContain(md5Hex(content));
      expect(await readdir(cacheDir)).toEqual([]);
    });

    it('fails with Corrupt when a Content-Length shorter than the object truncates the body', async () => {
      // Node's HTTP client stops reading at Content-Length, so the byte count matches it; the MD5
      // is what catches the truncation.
      proxy.fault = { setHeaders: { 'content-length': String(content.length - 10) } };

      const error = await expectFetchError(fetchS3Model({ uri, cacheDir }), 'Corrupt');

      expect(error.message).toContain(`the ETag says ${md5Hex(content)}`);
      expect(error.message).toContain(md5Hex(content.subarray(0, content.length - 10)));
      expect(await readdir(cacheDir)).toEqual([]);
    });

    it.each([
      ['a multipart ETag', { etag: `"${'0'.repeat(32)}-3"` }],
      ['an SSE-KMS object', { etag: `"${'0'.repeat(32)}"`, 'x-amz-server-side-encryption': 'aws:kms' }],
    ])('does not compare the content with %s, which is not an MD5', async (_name, headers) => {
      proxy.fault = { setHeaders: headers };

      const result = await fetchS3Model({ uri, cacheDir });

      expect(result.etag).toBe(headers.etag);
      expect((await readFile(result.path)).equals(content)).toBe(true);
    });
  });
});

describe('fetchS3Model in parallel ranges', () => {
  const partSizeBytes = 256 * 1024;
  // Eight whole ranges and a short ninth one.
  const content = randomBytes(8 * partSizeBytes + 1000);
  const key = 'ranged/model.onnx';
  const uri = `s3://${BUCKET}/${key}`;
  const rangeOf = (index: number) => `bytes=${index * partSizeBytes}-${Math.min((index + 1) * partSizeBytes, content.length) - 1}`;

  beforeAll(async () => {
    await upload(key, content);
  });

  it('fetches the object as ranges, several at once, into one whole file', async () => {
    // Every answer waits after its first 1000 bytes until several are waiting at once.
    proxy.fault = { holdAfterBytes: 1000 };
    const fetching = fetchS3Model({ uri, cacheDir, partSizeBytes, concurrency: 4 });
    const started = Date.now();
    while (proxy.heldCount < 4 && Date.now() - started < 10_000) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(proxy.heldCount).toBe(4);
    proxy.fault = undefined;
    proxy.releaseHeld();

    const result = await fetching;

    expect(result).toMatchObject({ downloaded: true, sizeBytes: content.length, etag: `"${md5Hex(content)}"` });
    expect((await readFile(result.path)).equals(content)).toBe(true);
    expect(proxy.maxConcurrentGets).toBe(4);
    expect([...proxy.ranges].sort()).toEqual(Array.from({ length: 9 }, (_, i) => rangeOf(i)).sort());
    expect((await readdir(cacheDir)).sort()).toEqual([path.basename(result.path), `${path.basename(result.path)}.json`]);
    // The cache record and If-None-Match work as for one GET.
    proxy.requests.length = 0;
    const again = await fetchS3Model({ uri, cacheDir, partSizeBytes, concurrency: 4 });
    expect(again.downloaded).toBe(false);
    expect(proxy.requests.map((r) => r.status)).toEqual([304]);
  });

  it('fetches an empty object, whose first range S3 refuses (416), with a GET of the whole object', async () => {
    // s3rver drops the connection for a range of an empty object; S3 answers 416 InvalidRange.
    const ranges: Array<string | undefined> = [];
    const client = {
      send: async (command: { input: { Range?: string } }) => {
        // The HEAD for the object's checksum: an object without one.
        if (command.constructor.name === 'HeadObjectCommand') return { ContentLength: 0, ETag: `"${md5Hex(Buffer.alloc(0))}"` };
        ranges.push(command.input.Range);
        if (command.input.Range) {
          throw Object.assign(new Error('The requested range is not satisfiable'), { name: 'InvalidRange', $metadata: { httpStatusCode: 416 } });
        }
        return { Body: Readable.from([]), ContentLength: 0, ETag: `"${md5Hex(Buffer.alloc(0))}"` };
      },
    } as unknown as FetchS3ModelOptions['client'];

    const result = await fetchS3Model({ uri: `s3://${BUCKET}/ranged/empty.onnx`, cacheDir, client, partSizeBytes, concurrency: 4 });

    expect(result).toMatchObject({ downloaded: true, sizeBytes: 0 });
    expect((await stat(result.path)).size).toBe(0);
    expect(ranges).toEqual([`bytes=0-${partSizeBytes - 1}`, undefined]);
  });

  it('calls onTransferStarted once the ranges are under way, before the fetch ends, and not when the cached file is current', async () => {
    const calls: number[] = [];
    let fetchedAt = 0;
    const fetching = fetchS3Model({ uri, cacheDir, partSizeBytes, concurrency: 4, onTransferStarted: () => calls.push(proxy.ranges.length) }).then((r) => {
      fetchedAt = calls.length;
      return r;
    });
    const result = await fetching;
    expect(result.downloaded).toBe(true);
    expect(fetchedAt).toBe(1);
    // Called with the four lanes' first ranges asked for.
    expect(calls[0]).toBeGreaterThanOrEqual(4);

    const again = await fetchS3Model({ uri, cacheDir, partSizeBytes, concurrency: 4, onTransferStarted: () => calls.push(-1) });
    expect(again.downloaded).toBe(false);
    const single = await fetchS3Model({ uri, cacheDir: `${cacheDir}-single`, concurrency: 1, onTransferStarted: () => calls.push(-2) });
    expect(single.downloaded).toBe(true);
    expect(calls.slice(1)).toEqual([-2]);
  });

  it('keeps one GET for an object no larger than a range', async () => {
    const result = await fetchS3Model({ uri, cacheDir, partSizeBytes: content.length, concurrency: 4 });

    expect((await readFile(result.path)).equals(content)).toBe(true);
    expect(proxy.ranges).toEqual([`bytes=0-${content.length - 1}`]);
  });

  it('asks again for a range whose connection drops, from where it stopped, and the file is whole', async () => {
    proxy.fault = { cutAfterBytes: 100_000, rangeMatching: new RegExp(`-${3 * partSizeBytes - 1}$`), times: 1 };

    const result = await fetchS3Model({ uri, cacheDir, partSizeBytes, concurrency: 4 });

    expect((await readFile(result.path)).equals(content)).toBe(true);
    const third = proxy.ranges.filter((range) => range.endsWith(`-${3 * partSizeBytes - 1}`));
    expect(third).toHaveLength(2);
    expect(third[0]).toBe(rangeOf(2));
    // The retry resumes past what had arrived (on loopback, some of the 100 kB at least).
    const resumedAt = Number(/^bytes=(\d+)-/.exec(third[1])![1]);
    expect(resumedAt).toBeGreaterThan(2 * partSizeBytes);
    expect(resumedAt).toBeLessThanOrEqual(2 * partSizeBytes + 100_000);
  });

  it('fails with Interrupted when a range keeps failing: no partial file left, nothing renamed', async () => {
    proxy.fault = { cutAfterBytes: 50_000, rangeMatching: new RegExp(`-${4 * partSizeBytes - 1}$`) };

    await expectFetchError(fetchS3Model({ uri, cacheDir, partSizeBytes, concurrency: 4, partAttempts: 3 }), 'Interrupted');

    // Three attempts of the range, each of which the SDK may itself retry when the drop comes before the headers.
    const attempts = proxy.ranges.filter((range) => range.endsWith(`-${4 * partSizeBytes - 1}`)).length;
    expect(attempts).toBeGreaterThanOrEqual(3);
    expect(attempts).toBeLessThanOrEqual(9);
    expect(await readdir(cacheDir)).toEqual([]);
  });

  it('fails with Corrupt when a byte of a later range changes in transit (MD5 of the whole file, off the main thread)', async () => {
    proxy.fault = { flipByteAt: 10, rangeMatching: new RegExp(`^bytes=${5 * partSizeBytes}-`) };

    const error = await expectFetchError(fetchS3Model({ uri, cacheDir, partSizeBytes, concurrency: 4 }), 'Corrupt');

    expect(error.message).toContain(`the ETag says ${md5Hex(content)}`);
    expect(await readdir(cacheDir)).toEqual([]);
  });

  it('fails with Timeout when a range stalls on every attempt', { timeout: 10_000 }, async () => {
    proxy.fault = { stallAfterBytes: 1000, rangeMatching: new RegExp(`-${5 * partSizeBytes - 1}$`) };

    const error = await expectFetchError(fetchS3Model({ uri, cacheDir, partSizeBytes, concurrency: 4, partAttempts: 2, idleTimeoutMs: 300 }), 'Timeout');

    expect(error.message).toContain('300 ms');
    expect(await readdir(cacheDir)).toEqual([]);
  });

  it("asks again for a range S3 answers 500 InternalError to, past the SDK's own retries", async () => {
    proxy.fault = { status: 500, rangeMatching: new RegExp(`^bytes=${3 * partSizeBytes}-`), times: 3 };

    const result = await fetchS3Model({ uri, cacheDir, partSizeBytes, concurrency: 4 });

    expect((await readFile(result.path)).equals(content)).toBe(true);
    // The SDK's three attempts answered 500, then the fetch's own second attempt at the range.
    expect(proxy.ranges.filter((range) => range === rangeOf(3))).toHaveLength(4);
  });

  it('fails with Corrupt when S3 answers a range with one of an object of another size', async () => {
    proxy.fault = {
      setHeaders: { 'content-range': `bytes ${2 * partSizeBytes}-${3 * partSizeBytes - 1}/${content.length + 1}` },
      rangeMatching: new RegExp(`^bytes=${2 * partSizeBytes}-`),
    };

    const error = await expectFetchError(fetchS3Model({ uri, cacheDir, partSizeBytes, concurrency: 4 }), 'Corrupt');

    expect(error.message).toContain(`with bytes ${2 * partSizeBytes}-${3 * partSizeBytes - 1}/${content.length + 1} (object of ${content.length} bytes)`);
    expect(await readdir(cacheDir)).toEqual([]);
  });

  it('fails with Interrupted when the object is replaced between its ranges, never keeping a mix of the two; the next fetch gets the new one', async () => {
    // Two objects of one size whose ETags are not their MD5s (uploaded in parts, as large models
    // are): If-Match on every range after the first is all that tells them apart.
    proxy.etagSuffix = '-2';
    const replacedKey = 'ranged/replaced.onnx';
    const replacedUri = `s3://${BUCKET}/${replacedKey}`;
    const before = randomBytes(2 * partSizeBytes);
    const after = randomBytes(2 * partSizeBytes);
    await upload(replacedKey, before);
    // The second range's GET waits at the proxy, with the first range sent whole, while the object is replaced.
    proxy.fault = { holdRequest: true, rangeMatching: new RegExp(`^bytes=${partSizeBytes}-`), times: 1 };
    const fetching = fetchS3Model({ uri: replacedUri, cacheDir, partSizeBytes, concurrency: 2 });
    const started = Date.now();
    const firstRangeSent = () => proxy.requests.some((r) => r.method === 'GET' && r.bodyBytes === partSizeBytes);
    while (!(proxy.heldCount === 1 && firstRangeSent()) && Date.now() - started < 10_000) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(proxy.heldCount).toBe(1);
    await upload(replacedKey, after);
    await untilStored(replacedKey, after);
    proxy.releaseHeld();

    const error = await expectFetchError(fetching, 'Interrupted');
    expect(error.message).toContain(`${replacedUri} changed while it was being downloaded`);
    expect(await readdir(cacheDir)).toEqual([]);
    proxy.fault = undefined;
    const again = await fetchS3Model({ uri: replacedUri, cacheDir, partSizeBytes, concurrency: 2 });
    expect(again.etag).toBe(`"${md5Hex(after)}-2"`);
    expect((await readFile(again.path)).equals(after)).toBe(true);
  });

  it('does not compare a multipart ETag with the MD5, and fetches every range', async () => {
    proxy.etagSuffix = '-9';

    const result = await fetchS3Model({ uri, cacheDir, partSizeBytes, concurrency: 3 });

    expect(result.etag).toBe(`"${md5Hex(content)}-9"`);
    expect((await readFile(result.path)).equals(content)).toBe(true);
  });
});

describe("fetchS3Model and S3's object checksums", () => {
  // s3rver keeps no checksums: the proxy adds them to the HEAD's answer, as S3 sends them with
  // ChecksumMode ENABLED, computed here with the AWS SDK's own CRC classes.
  const partSizeBytes = 256 * 1024;
  const content = randomBytes(6 * partSizeBytes + 777);
  const key = 'checksummed/model.onnx';
  const uri = `s3://${BUCKET}/${key}`;
  let etag: string;

  beforeAll(async () => {
    etag = await upload(key, content);
  });

  async function checksumOf(algorithm: 'CRC32' | 'CRC32C' | 'CRC64NVME', bytes: Buffer): Promise<Buffer> {
    const hash = algorithm === 'CRC32' ? new Crc32() : algorithm === 'CRC32C' ? new Crc32c() : new Crc64Nvme();
    hash.update(bytes);
    return Buffer.from(await hash.digest());
  }

  /** A multipart upload's composite checksum: the CRC of its parts' CRCs, `-<parts>`. */
  async function compositeOf(algorithm: 'CRC32' | 'CRC32C', bytes: Buffer, partBytes: number): Promise<string> {
    const crcs: Buffer[] = [];
    for (let at = 0; at < bytes.length; at += partBytes) crcs.push(await checksumOf(algorithm, bytes.subarray(at, at + partBytes)));
    return `${(await checksumOf(algorithm, Buffer.concat(crcs))).toString('base64')}-${crcs.length}`;
  }

  const fullObject = (algorithm: string, value: string) => () => ({ [`x-amz-checksum-${algorithm.toLowerCase()}`]: value, 'x-amz-checksum-type': 'FULL_OBJECT' });

  it.each(['CRC32', 'CRC32C', 'CRC64NVME'] as const)('checks a full-object %s, asked for with a HEAD beside the first range', async (algorithm) => {
    proxy.headHeaders = fullObject(algorithm, (await checksumOf(algorithm, content)).toString('base64'));

    const result = await fetchS3Model({ uri, cacheDir, partSizeBytes, concurrency: 4 });

    expect((await readFile(result.path)).equals(content)).toBe(true);
    expect(proxy.requests.filter((r) => r.method === 'HEAD')).toHaveLength(1);
    expect(proxy.requests.filter((r) => r.method === 'GET')).toHaveLength(7);
  });

  it.each(['CRC32', 'CRC32C', 'CRC64NVME'] as const)('fails with Corrupt when one byte of one range differs from the full-object %s', async (algorithm) => {
    proxy.headHeaders = fullObject(algorithm, (await checksumOf(algorithm, content)).toString('base64'));
    // The ETag is the content's MD5: with a CRC to check, the MD5 is not computed, so the CRC must catch it.
    proxy.fault = { flipByteAt: 1234, rangeMatching: new RegExp(`^bytes=${3 * partSizeBytes}-`) };

    const error = await expectFetchError(fetchS3Model({ uri, cacheDir, partSizeBytes, concurrency: 4 }), 'Corrupt');

    expect(error.message).toContain(`its ${algorithm} is`);
    expect(error.message).toContain('S3 says');
    expect(await readdir(cacheDir)).toEqual([]);
  });

  describe('a composite checksum (multipart upload), part size from a HEAD of part 1', () => {
    // Parts of 300 KiB: not the ranges' size, so ranges and parts do not line up.
    const uploadPart = 300 * 1024;
    const composite =
      (value: string) =>
      (url: string): Record<string, string> =>
        /partNumber=1/.test(url)
          ? { 'content-length': String(uploadPart), 'x-amz-mp-parts-count': String(Math.ceil(content.length / uploadPart)) }
          : { 'x-amz-checksum-crc32c': value, 'x-amz-checksum-type': 'COMPOSITE' };

    it('checks it, part by part', async () => {
      const value = await compositeOf('CRC32C', content, uploadPart);
      expect(value).toMatch(/-6$/);
      proxy.headHeaders = composite(value);

      const result = await fetchS3Model({ uri, cacheDir, partSizeBytes, concurrency: 4 });

      expect((await readFile(result.path)).equals(content)).toBe(true);
      expect(proxy.requests.filter((r) => r.method === 'HEAD').map((r) => /partNumber=1/.test(r.url))).toEqual([false, true]);
    });

    it('fails with Corrupt when one byte of one part differs', async () => {
      proxy.headHeaders = composite(await compositeOf('CRC32C', content, uploadPart));
      proxy.fault = { flipByteAt: 10, rangeMatching: new RegExp(`^bytes=${5 * partSizeBytes}-`) };

      const error = await expectFetchError(fetchS3Model({ uri, cacheDir, partSizeBytes, concurrency: 4 }), 'Corrupt');

      expect(error.message).toMatch(/its CRC32C is \S+-6 but S3 says \S+-6/);
    });

    it('is not used when the parts are not of one size (and the MD5 ETag still is)', async () => {
      // Part 1 says 100 KiB: six parts cannot be split that way, so the checksum cannot be checked.
      proxy.headHeaders = (url) => (/partNumber=1/.test(url) ? { 'content-length': String(100 * 1024) } : composite('AAAAAA==-6')(url));

      const result = await fetchS3Model({ uri, cacheDir, partSizeBytes, concurrency: 4 });

      expect((await readFile(result.path)).equals(content)).toBe(true);
    });
  });

  it("ignores a checksum whose HEAD described another object (another ETag): the GETs' ETag rules", async () => {
    proxy.headHeaders = () => ({ ...fullObject('CRC32', 'AAAAAA==')(), etag: `"${'1'.repeat(32)}"` });

    const result = await fetchS3Model({ uri, cacheDir, partSizeBytes, concurrency: 4 });

    expect(result.etag).toBe(etag);
    expect((await readFile(result.path)).equals(content)).toBe(true);
  });

  it('has the SDK check a full-object checksum on a GET of the whole object (one stream)', async () => {
    const value = (await checksumOf('CRC32C', content)).toString('base64');
    proxy.fault = { setHeaders: { 'x-amz-checksum-crc32c': value, 'x-amz-checksum-type': 'FULL_OBJECT' } };
    const result = await fetchS3Model({ uri, cacheDir, concurrency: 1 });
    expect((await readFile(result.path)).equals(content)).toBe(true);

    proxy.fault = { setHeaders: { 'x-amz-checksum-crc32c': (await checksumOf('CRC32C', content.subarray(1))).toString('base64') } };
    const error = await expectFetchError(fetchS3Model({ uri, cacheDir: `${cacheDir}-2`, concurrency: 1 }), 'Corrupt');
    expect(error.message).toContain('Checksum mismatch');
    expect(await readdir(`${cacheDir}-2`)).toEqual([]);
  });

  it('checks the MD5 as before when the object has no checksum, and when the HEAD fails', async () => {
    proxy.fault = { flipByteAt: 99, rangeMatching: new RegExp(`^bytes=${2 * partSizeBytes}-`) };
    const error = await expectFetchError(fetchS3Model({ uri, cacheDir, partSizeBytes, concurrency: 4 }), 'Corrupt');
    expect(error.message).toContain('MD5');
  });
});

describe('fetchS3Model in a separate process (bundled as the handler is)', () => {
  let bundleDir: string;

  beforeAll(async () => {
    bundleDir = await mkdtemp(path.join(tmpdir(), 's3-model-bundle-'));
  });

  afterAll(async () => {
    if (bundleDir) {
      await rm(bundleDir, { recursive: true, force: true });
    }
  });

  /** Writes `sizeBytes` of random data to a file, uploads it and returns the SHA-256 of what was uploaded. */
  async function uploadRandomFile(key: string, sizeBytes: number): Promise<string> {
    const source = path.join(workDir, 'upload-source');
    const sourceHash = createHash('sha256');
    const writer = createWriteStream(source);
    for (let written = 0; written < sizeBytes; written += 1024 * 1024) {
      const chunk = randomBytes(Math.min(1024 * 1024, sizeBytes - written));
      sourceHash.update(chunk);
      if (!writer.write(chunk)) {
        await new Promise<void>((resolve) => writer.once('drain', () => resolve()));
      }
    }
    await new Promise<void>((resolve, reject) => writer.end((error?: Error | null) => (error ? reject(error) : resolve())));
    await s3.putObject(BUCKET, key, source);
    await rm(source);
    return sourceHash.digest('hex');
  }

  /** Fetches in a fresh Node process from the bundled runner; returns the result and the peak RSS. */
  async function fetchInChildProcess(bundle: string, key: string, targetDir: string) {
    const { stdout } = await promisify(execFile)(process.execPath, [bundle, `s3://${BUCKET}/${key}`, targetDir], {
      env: { ...process.env, AWS_ENDPOINT_URL_S3: s3.endpoint },
      timeout: 60_000,
    });
    return JSON.parse(stdout) as { result: { path: string; sizeBytes: number }; maxRssBytes: number };
  }

  it('streams a 200 MB model to disk: peak RSS does not grow with the object size', { timeout: 120_000 }, async () => {
    const smallBytes = 20 * 1024 * 1024;
    const largeBytes = 200 * 1024 * 1024;
    const smallHash = await uploadRandomFile('small/model.onnx', smallBytes);
    const largeHash = await uploadRandomFile('large/model.onnx', largeBytes);
    const runner = path.join(bundleDir, 'runner.ts');
    await writeFile(
      runner,
      `import { fetchS3Model } from ${JSON.stringify(MODULE_PATH)};
const result = await fetchS3Model({ uri: process.argv[2], cacheDir: process.argv[3] });
process.stdout.write(JSON.stringify({ result, maxRssBytes: process.resourceUsage().maxRSS * 1024 }));
`,
    );
    await build({ ...HANDLER_BUILD_OPTIONS, entryPoints: [runner], outdir: bundleDir });
    const bundle = path.join(bundleDir, 'runner.mjs');

    const small = await fetchInChildProcess(bundle, 'small/model.onnx', cacheDir);
    const large = await fetchInChildProcess(bundle, 'large/model.onnx', cacheDir);

    expect(small.result.sizeBytes).toBe(smallBytes);
    expect(large.result.sizeBytes).toBe(largeBytes);
    expect(await sha256OfFile(small.result.path)).toBe(smallHash);
    expect(await sha256OfFile(large.result.path)).toBe(largeHash);
    // Measured: ~100 MiB for both (Node, the SDK and garbage buffers awaiting GC); reading the
    // body into memory first peaks at ~480 MiB for the large one.
    expect(large.maxRssBytes).toBeLessThan(small.maxRssBytes + 32 * 1024 * 1024);
    expect(large.maxRssBytes).toBeLessThan(largeBytes * 0.75);
  });

  it('fetches a 500 MB model in parallel ranges within 128 MiB of RSS over the process before the fetch', { timeout: 180_000 }, async () => {
    const bytes = 500 * 1024 * 1024;
    const hash = await uploadRandomFile('huge/model.onnx', bytes);
    await s3.putObject(BUCKET, 'huge/warm.onnx', randomBytes(1024));
    const runner = path.join(bundleDir, 'rss-runner.ts');
    await writeFile(
      runner,
      `import { fetchS3Model } from ${JSON.stringify(MODULE_PATH)};
// A first fetch loads the SDK, so that the RSS before the large one includes it.
await fetchS3Model({ uri: process.argv[2].replace('model.onnx', 'warm.onnx'), cacheDir: process.argv[3] });
const rssBefore = process.memoryUsage().rss;
const result = await fetchS3Model({ uri: process.argv[2], cacheDir: process.argv[3], concurrency: 16 });
process.stdout.write(JSON.stringify({ result, rssBefore, maxRssBytes: process.resourceUsage().maxRSS * 1024 }));
`,
    );
    await build({ ...HANDLER_BUILD_OPTIONS, entryPoints: [runner], outdir: bundleDir });
    const { stdout } = await promisify(execFile)(process.execPath, [path.join(bundleDir, 'rss-runner.mjs'), `s3://${BUCKET}/huge/model.onnx`, cacheDir], {
      env: { ...process.env, AWS_ENDPOINT_URL_S3: s3.endpoint },
      timeout: 120_000,
    });
    const run = JSON.parse(stdout) as { result: { path: string; sizeBytes: number }; rssBefore: number; maxRssBytes: number };

    expect(run.result.sizeBytes).toBe(bytes);
    expect(await sha256OfFile(run.result.path)).toBe(hash);
    expect(run.maxRssBytes - run.rssBefore).toBeLessThan(128 * 1024 * 1024);
    await rm(run.result.path);
  });

  /** A runner in its own process: fetches `uri` into `cacheDir` and prints the result (or the error) as JSON. */
  async function buildFetchRunner(): Promise<string> {
    const runner = path.join(bundleDir, 'fetch-runner.ts');
    await writeFile(
      runner,
      `import { fetchS3Model } from ${JSON.stringify(MODULE_PATH)};
try {
  const result = await fetchS3Model({ uri: process.argv[2], cacheDir: process.argv[3], idleTimeoutMs: 60_000 });
  process.stdout.write(JSON.stringify({ result }));
} catch (e) {
  process.stdout.write(JSON.stringify({ error: { code: e.code, message: e.message } }));
}
`,
    );
    await build({ ...HANDLER_BUILD_OPTIONS, entryPoints: [runner], outdir: bundleDir });
    return path.join(bundleDir, 'fetch-runner.mjs');
  }

  /** Starts the runner in a child process; `done` resolves with what it printed once it exits. */
  function startFetch(bundle: string, uri: string, dir: string): { child: ChildProcess; done: Promise<any> } {
    const child = spawn(process.execPath, [bundle, uri, dir], { env: { ...process.env, AWS_ENDPOINT_URL_S3: proxy.endpoint }, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    const done = new Promise<any>((resolve) => child.on('exit', () => resolve(out ? JSON.parse(out) : { exited: child.signalCode })));
    return { child, done };
  }

  async function partialsIn(dir: string): Promise<string[]> {
    return (await readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith('.partial'));
  }

  async function until(condition: () => Promise<boolean>, what: string): Promise<void> {
    const started = Date.now();
    while (!(await condition())) {
      if (Date.now() - started > 20_000) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  it('gives two processes fetching into one cache directory at once each a whole file of its own download', { timeout: 60_000 }, async () => {
    const content = randomBytes(2 * 1024 * 1024);
    await upload('shared/model.onnx', content);
    const uri = `s3://${BUCKET}/shared/model.onnx`;
    const bundle = await buildFetchRunner();

    // The other process gets 300 kB into its download, and waits there.
    proxy.fault = { holdAfterBytes: 300_000 };
    const other = startFetch(bundle, uri, cacheDir);
    await until(async () => proxy.heldCount === 1 && (await partialsIn(cacheDir)).length === 1, "the other process's download to start");
    proxy.fault = undefined;

    // This one fetches the same object meanwhile, then the other one finishes.
    const mine = await fetchS3Model({ uri, cacheDir });
    expect((await readFile(mine.path)).equals(content)).toBe(true);
    proxy.releaseHeld();
    const theirs = await other.done;

    expect(theirs.error).toBeUndefined();
    expect(theirs.result).toMatchObject({ path: mine.path, sizeBytes: content.length, downloaded: true });
    expect((await readFile(mine.path)).equals(content)).toBe(true);
    expect((await readdir(cacheDir)).sort()).toEqual([path.basename(mine.path), `${path.basename(mine.path)}.json`]);
  });

  it('leaves the partial file of a download running in another process alone, and removes it once that process is gone', { timeout: 60_000 }, async () => {
    const content = randomBytes(1024 * 1024);
    await upload('crashing/model.onnx', content);
    const uri = `s3://${BUCKET}/crashing/model.onnx`;
    const bundle = await buildFetchRunner();

    proxy.fault = { stallAfterBytes: 200_000 };
    const other = startFetch(bundle, uri, cacheDir);
    await until(async () => (await partialsIn(cacheDir)).length === 1, "the other process's partial file");
    const [theirs] = await partialsIn(cacheDir);
    proxy.fault = undefined;

    // Alive and stalled: its partial file stays, and is not what this fetch returns.
    const mine = await fetchS3Model({ uri, cacheDir });
    expect((await readFile(mine.path)).equals(content)).toBe(true);
    expect(await partialsIn(cacheDir)).toEqual([theirs]);

    // Killed mid-download, as a crashed runtime is: the next fetch removes what it left.
    other.child.kill('SIGKILL');
    await other.done;
    const again = await fetchS3Model({ uri, cacheDir });
    expect(again.downloaded).toBe(false);
    expect(await partialsIn(cacheDir)).toEqual([]);
    expect((await readFile(again.path)).equals(content)).toBe(true);
  });

  it('leaves the partial file of a download in another worker thread of this process alone', { timeout: 60_000 }, async () => {
    // As on Lambda Managed Instances: worker threads of one process load the same model at once.
    const content = randomBytes(1024 * 1024);
    await upload('threads/model.onnx', content);
    const uri = `s3://${BUCKET}/threads/model.onnx`;
    const bundle = await buildFetchRunner();

    proxy.fault = { stallAfterBytes: 200_000 };
    const worker = new Worker(bundle, { argv: [uri, cacheDir], env: { ...process.env, AWS_ENDPOINT_URL_S3: proxy.endpoint }, stdout: true });
    try {
      await until(async () => (await partialsIn(cacheDir)).length === 1, "the other thread's partial file");
      const [theirs] = await partialsIn(cacheDir);
      proxy.fault = undefined;
      // Same process id, another thread still writing: its file stays.
      const mine = await fetchS3Model({ uri, cacheDir });
      expect((await readFile(mine.path)).equals(content)).toBe(true);
      expect(await partialsIn(cacheDir)).toEqual([theirs]);
    } finally {
      await worker.terminate();
    }
  });

  it("never removes a file another worker thread's fetch has returned, when this thread's answer comes later", { timeout: 60_000 }, async () => {
    // As on Lambda Managed Instances (and `serve --workers`): two threads fetch the same object
    // into one cache directory from an empty cache; the answer to one of them is delayed.
    const content = randomBytes(4 * 1024 * 1024);
    await upload('late-answer/model.onnx', content);
    const uri = `s3://${BUCKET}/late-answer/model.onnx`;
    const bundle = await buildFetchRunner();

    // The worker thread's GET is held before its answer; the one of this thread is not.
    proxy.fault = { holdRequest: true, times: 1 };
    const worker = new Worker(bundle, { argv: [uri, cacheDir], env: { ...process.env, AWS_ENDPOINT_URL_S3: proxy.endpoint }, stdout: true });
    let out = '';
    worker.stdout.on('data', (d) => (out += d));
    const workerDone = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    try {
      await until(async () => proxy.heldCount === 1, "the worker thread's GET");
      const mine = await fetchS3Model({ uri, cacheDir });

      // From now on the returned file must be there, whole, until both fetches are done.
      const faults: string[] = [];
      let polling = true;
      const polls = (async () => {
        let reads = 0;
        while (polling) {
          const seen = await readFile(mine.path).catch((error: NodeJS.ErrnoException) => error.code ?? 'error');
          if (typeof seen === 'string') faults.push(`${Date.now()} ${seen}`);
          else if (!seen.equals(content)) faults.push(`${Date.now()} ${seen.length} other bytes`);
          reads += 1;
          await new Promise((resolve) => setTimeout(resolve, 2));
        }
        return reads;
      })();
      proxy.releaseHeld();
      await workerDone;
      polling = false;
      const reads = await polls;

      const theirs = JSON.parse(out);
      expect(theirs.error).toBeUndefined();
      expect(theirs.result).toMatchObject({ path: mine.path, sizeBytes: content.length, downloaded: true });
      expect(reads).toBeGreaterThan(1);
      expect(faults).toEqual([]);
      // The record pairs with the file left in place: the next fetch is a 304.
      const again = await fetchS3Model({ uri, cacheDir });
      expect(again.downloaded).toBe(false);
      expect((await readFile(again.path)).equals(content)).toBe(true);
    } finally {
      await worker.terminate();
    }
  });

  it('can be imported where @aws-sdk/client-s3 does not resolve (the SDK loads only when fetching)', async () => {
    const entry = path.join(bundleDir, 'import-only.ts');
    await writeFile(entry, `import { fetchS3Model } from ${JSON.stringify(MODULE_PATH)};\nconsole.log(typeof fetchS3Model);\n`);
    const bundle = path.join(bundleDir, 'import-only.mjs');
    // bundleDir has no node_modules: a static import of the SDK would fail to link.
    await build({ entryPoints: [entry], outfile: bundle, bundle: true, platform: 'node', format: 'esm', external: ['@aws-sdk/*'], logLevel: 'silent' });

    const { stdout } = await promisify(execFile)(process.execPath, [bundle], { timeout: 20_000 });

    expect(stdout.trim()).toBe('function');
    const source = await readFile(bundle, 'utf8');
    expect(source).toContain('import("@aws-sdk/client-s3")');
  });
});
