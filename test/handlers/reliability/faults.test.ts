/**
 * Faults around the model, over the bundled handler: broken model files, and an S3 model that is
 * missing, cut off mid-download, corrupted, stalled, or bigger than the cache directory's free space.
 * Each is answered with a 503 that says what kind of failure it is (the file, the S3 object and the
 * cause are in the log only), reported by the readiness routes, never served from a partial file,
 * and recovered from once the cause is gone and the back-off pause has passed.
 *
 * Already covered elsewhere (test/handler-errors.test.ts), so not repeated: a not-ONNX file's 503,
 * its /v2/health/ready and its recovery once fixed; a missing MODEL_PATH file's 503.
 */
import { execFile, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { notOnnxBytes, paddedModel, truncatedModel, unknownOpModel } from '../../../tools/onnx';
import { startLocalS3, type LocalS3 } from '../../../tools/local-s3';
import { call, infer, restEvent } from '../../../fixtures/events';
import { type Handler, createHandler, tempDir, writeModel } from '../../support/handler';
import { startFaultProxy, type FaultProxy } from '../../support/fault-proxy';
import { type CapturedLogs, captureLogs, withLogLevel } from '../../support/logs';
import { answerMismatch, mlpUnderTest, render } from '../../support/reliability-requests';

const mlp = mlpUnderTest('m');
const mlpRequest = render(mlp, mlp.fixed);
const expectMlpAnswer = (r: { status: number; text: string }) => expect(answerMismatch(mlp, mlp.fixed, r.status, r.text)).toBeUndefined();

/** A handler whose logger writes INFO and above (the test setup silences it otherwise). */
function loggingHandler(env: Record<string, string>): Promise<Handler> {
  return withLogLevel(() => createHandler(env));
}

const ready = (h: Handler) => call(h, restEvent('GET', '/v2/health/ready'));
const modelReady = (h: Handler, name: string) => call(h, restEvent('GET', `/v2/models/${name}/ready`));

describe('a model file onnxruntime cannot load', () => {
  let logs: CapturedLogs | undefined;
  afterEach(() => logs?.stop());

  it.each([
    ['a truncated model', truncatedModel(), 'Protobuf parsing failed'],
    ['a model with an op no runtime has', unknownOpModel().bytes, 'No Op registered for NoSuchOp'],
  ])('%s: a 503 saying so, not ready, the cause logged; served once the file is replaced and the pause is over', async (_what, bytes, cause) => {
    const file = writeModel(bytes);
    logs = captureLogs();
    const handler = await loggingHandler({ MODEL_PATH: file, MODEL_NAME: 'm', MODEL_LOAD_RETRY_MS: '1000' });

    const r = await infer(handler, mlpRequest, 'm');
    expect(r.status).toBe(503);
    expect(r.body.error).toMatch(/^model 'm' is not available: onnxruntime cannot load the model; the next attempt to load it is in 1 s \(request id rest-request-id\)$/);
    expect(r.headers['Retry-After']).toBe('1');

    for (const notReady of [await ready(handler), await modelReady(handler, 'm')]) {
      expect(notReady.status).toBe(400);
      expect(notReady.body.ready).toBe(false);
      expect(notReady.body.error).toMatch(/^onnxruntime cannot load the model; the next attempt to load it is in 1 s \(request id rest-request-id\)$/);
    }
    expect((await modelReady(handler, 'm')).body.name).toBe('m');
    // Neither answer names the file or repeats onnxruntime's words.
    for (const a of [r, await ready(handler)]) {
      expect(a.text).not.toContain(file);
      expect(a.text).not.toContain(cause);
    }

    // One attempt so far, the init phase's: the request and the probes within the pause made none.
    const failures = () => logs!.lines().filter((l) => l.message === 'model failed to load; the next request retries');
    expect(failures()).toHaveLength(1);
    expect(failures()[0]).toMatchObject({ level: 'ERROR', model: 'm' });
    expect(failures()[0].error).toContain(file);
    expect(failures()[0].cause.message).toContain(cause);
    expect(logs.lines().find((l) => l.message === 'request failed')).toMatchObject({
      level: 'ERROR',
      status: 503,
      requestId: 'rest-request-id',
      detail: expect.stringContaining(cause),
    });
    expect(logs.lines().find((l) => l.message === 'model not ready')).toMatchObject({ requestId: 'rest-request-id', error: expect.stringContaining(file) });

    fs.writeFileSync(file, mlp.bytes);
    await new Promise((resolve) => setTimeout(resolve, 1050));
    expectMlpAnswer(await infer(handler, mlpRequest, 'm'));
    expect((await ready(handler)).status).toBe(200);
    expect((await modelReady(handler, 'm')).body).toEqual({ name: 'm', ready: true });
    expect(logs.lines().filter((l) => l.message === 'model loaded')).toHaveLength(1);
  });

  it('a file that is not ONNX: /v2/models/{name}/ready says what failed, the log says why', async () => {
    const file = writeModel(notOnnxBytes());
    logs = captureLogs();
    const handler = await loggingHandler({ MODEL_PATH: file, MODEL_NAME: 'm' });
    const r = await modelReady(handler, 'm');
    expect(r.status).toBe(400);
    expect(r.body).toEqual({ name: 'm', ready: false, error: expect.stringMatching(/^onnxruntime cannot load the model; .* \(request id rest-request-id\)$/) });
    const failure = logs.lines().find((l) => l.level === 'ERROR');
    expect(failure.error).toContain(`onnxruntime cannot load the model ${file}`);
    expect(failure.cause.message).toContain('Protobuf parsing failed');
  });
});

describe('a model that keeps failing to load', () => {
  it('is loaded again only after a pause that doubles with each failure, whatever the probes and requests meanwhile', { timeout: 20_000 }, async () => {
    const file = writeModel(truncatedModel());
    const logs = captureLogs();
    try {
      const handler = await loggingHandler({ MODEL_PATH: file, MODEL_NAME: 'm', MODEL_LOAD_RETRY_MS: '300' });
      const attempts = () => logs.lines().filter((l) => l.message === 'model failed to load; the next request retries').length;
      // Probes and requests as fast as they come, for ~1.6 s: 0 (init), 0.3, 0.9 (+0.6), 2.1 (+1.2) s.
      const started = performance.now();
      let calls = 0;
      while (performance.now() - started < 1600) {
        const a = calls % 2 === 0 ? await ready(handler) : await infer(handler, mlpRequest, 'm');
        expect(a.status).toBe(calls % 2 === 0 ? 400 : 503);
        calls++;
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      expect(calls).toBeGreaterThan(100);
      expect(attempts()).toBe(3);
      // Retry-After says when the next attempt is (1.2 s after the third failure, at ~0.9 s).
      const wait = Number((await infer(handler, mlpRequest, 'm')).headers['Retry-After']);
      expect(wait).toBeGreaterThanOrEqual(1);
      expect(wait).toBeLessThanOrEqual(2);

      fs.writeFileSync(file, mlp.bytes);
      await new Promise((resolve) => setTimeout(resolve, 900));
      expectMlpAnswer(await infer(handler, mlpRequest, 'm'));
      expect(attempts()).toBe(3);
      expect(logs.lines().filter((l) => l.message === 'model loaded')).toHaveLength(1);
    } finally {
      logs.stop();
    }
  });
});

describe('an S3 model, through the handler, with faults on the way', () => {
  const BUCKET = 'models';
  const model = paddedModel({ sizeBytes: 1024 * 1024 });
  const x = [1, -2.5, 0.25];
  const request = { inputs: [{ name: 'x', datatype: 'FP32', shape: [3], data: x }] };
  const savedEnv = { ...process.env };
  let s3: LocalS3;
  let proxy: FaultProxy;

  beforeAll(async () => {
    s3 = await startLocalS3();
    await s3.createBucket(BUCKET);
    proxy = await startFaultProxy(s3.port);
    // The handler's S3 client reads the endpoint and credentials from the environment, as on Lambda.
    Object.assign(process.env, s3.env(), { AWS_ENDPOINT_URL_S3: proxy.endpoint });
  });
  afterAll(async () => {
    process.env = savedEnv;
    await proxy?.close();
    await s3?.stop();
  });
  afterEach(() => {
    proxy.fault = undefined;
  });

  async function upload(key: string, bytes: Uint8Array): Promise<string> {
    await s3.putObject(BUCKET, key, Buffer.from(bytes));
    return `s3://${BUCKET}/${key}`;
  }

  async function expectServed(handler: Handler) {
    const r = await infer(handler, request, 'm');
    expect(r.status, r.text).toBe(200);
    expect(r.body.outputs[0].data).toEqual(x.map((v) => v + model.addend));
  }

  /** The cache holds the whole object and its ETag record, and nothing else (no partial file). */
  function expectCachedWhole(cacheDir: string) {
    const files = fs.readdirSync(cacheDir).sort();
    expect(files).toHaveLength(2);
    expect(files[1]).toBe(`${files[0]}.json`);
    expect(fs.statSync(path.join(cacheDir, files[0])).size).toBe(model.sizeBytes);
  }

  it('fetches in the ranges its environment sets: MODEL_S3_PART_SIZE_MB and MODEL_S3_CONCURRENCY reach the download', async () => {
    const uri = await upload('settings/model.onnx', model.bytes);
    const rangesOf = async (env: Record<string, string>) => {
      const before = proxy.ranges.length;
      await expectServed(await createHandler({ MODEL_S3_URI: uri, MODEL_CACHE_DIR: tempDir(), MODEL_NAME: 'm', ...env }));
      return proxy.ranges.slice(before);
    };

    // By default, a first range of 8 MiB (the whole of this object); one GET without a range at concurrency 1.
    expect(await rangesOf({})).toEqual(['bytes=0-8388607']);
    expect(await rangesOf({ MODEL_S3_CONCURRENCY: '1' })).toEqual(['']);
    expect((await rangesOf({ MODEL_S3_PART_SIZE_MB: '1', MODEL_S3_CONCURRENCY: '2' }))[0]).toBe('bytes=0-1048575');
  });

  it('answers 503 while the object is missing (the URI in the log only), and serves it once it is uploaded', async () => {
    const uri = `s3://${BUCKET}/late/model.onnx`;
    const cacheDir = tempDir();
    const logs = captureLogs();
    let r: Awaited<ReturnType<typeof infer>>;
    let notReady: Awaited<ReturnType<typeof ready>>;
    let handler: Handler;
    try {
      handler = await loggingHandler({ MODEL_S3_URI: uri, MODEL_CACHE_DIR: cacheDir, MODEL_NAME: 'm', MODEL_LOAD_RETRY_MS: '0' });
      r = await infer(handler, request, 'm');
      notReady = await ready(handler);
    } finally {
      logs.stop();
    }
    expect(r.status).toBe(503);
    expect(r.body.error).toBe("model 'm' is not available: the model cannot be fetched from S3 (NotFound); the next request retries the load (request id rest-request-id)");
    expect(notReady.body).toEqual({ ready: false, error: 'the model cannot be fetched from S3 (NotFound); the next request retries the load (request id rest-request-id)' });
    expect(logs.lines().find((l) => l.message === 'request failed')?.detail).toContain(`${uri} does not exist`);
    expect(logs.lines().find((l) => l.message === 'model not ready')?.error).toContain(`${uri} does not exist`);

    await upload('late/model.onnx', model.bytes);
    await expectServed(handler);
    expectCachedWhole(cacheDir);
  });

  it('never serves a download cut off mid-body, nor a stale file, and recovers once the connection holds', async () => {
    const uri = await upload('cut/model.onnx', model.bytes);
    const fetched = tempDir();
    await expectServed(await createHandler({ MODEL_S3_URI: uri, MODEL_CACHE_DIR: fetched, MODEL_NAME: 'm' }));
    const [cachedName] = fs.readdirSync(fetched).filter((f) => !f.endsWith('.json'));

    // A new instance whose cache holds what a crashed one left an hour ago: a valid model of
    // another signature, as a partial file and as the model file without its record. Serving
    // either would answer a 400 (unknown input 'x'), not a 503.
    const cacheDir = tempDir();
    const leftover = path.join(cacheDir, `${cachedName}.partial`);
    fs.writeFileSync(leftover, mlp.bytes);
    const anHourAgo = new Date(Date.now() - 3600_000);
    fs.utimesSync(leftover, anHourAgo, anHourAgo);
    fs.writeFileSync(path.join(cacheDir, cachedName), mlp.bytes);
    proxy.fault = { cutAfterBytes: 300_000 };
    const handler = await createHandler({ MODEL_S3_URI: uri, MODEL_CACHE_DIR: cacheDir, MODEL_NAME: 'm', MODEL_LOAD_RETRY_MS: '0' });
    // The dead download's partial file goes. The model file without a record stays until a whole
    // download replaces it by a rename: removing a cached file could pull it from under another
    // thread that has its path. Without its record it is never served.
    const leftovers = () => fs.readdirSync(cacheDir).sort();
    expect(leftovers()).toEqual([cachedName]);

    // Concurrent requests share one attempt: one GET on the wire, the same 503 for all.
    const getsBefore = proxy.gets.length;
    const answers = await Promise.all([1, 2, 3, 4].map(() => infer(handler, request, 'm')));
    expect(proxy.gets.length - getsBefore).toBe(1);
    for (const a of answers) {
      expect(a.status).toBe(503);
      expect(a.body.error).toContain('the model cannot be fetched from S3 (Interrupted)');
    }
    // No partial file, no record, and the cut download never took the model's name.
    expect(leftovers()).toEqual([cachedName]);
    expect(fs.readFileSync(path.join(cacheDir, cachedName)).equals(Buffer.from(mlp.bytes))).toBe(true);

    proxy.fault = undefined;
    await expectServed(handler);
    expectCachedWhole(cacheDir);
  });

  it('refuses a download corrupted in transit (MD5 against the ETag) and recovers', async () => {
    const uri = await upload('flipped/model.onnx', model.bytes);
    const cacheDir = tempDir();
    proxy.fault = { flipByteAt: 500_000 };
    const handler = await createHandler({ MODEL_S3_URI: uri, MODEL_CACHE_DIR: cacheDir, MODEL_NAME: 'm', MODEL_LOAD_RETRY_MS: '0' });

    const r = await infer(handler, request, 'm');
    expect(r.status).toBe(503);
    expect(r.body.error).toContain('the model cannot be fetched from S3 (Corrupt)');
    expect(fs.readdirSync(cacheDir)).toEqual([]);

    proxy.fault = undefined;
    await expectServed(handler);
    expectCachedWhole(cacheDir);
  });

  it('answers within the idle timeout when S3 stops sending mid-body, and recovers', { timeout: 20_000 }, async () => {
    const uri = await upload('stalled/model.onnx', model.bytes);
    const cacheDir = tempDir();
    proxy.fault = { stallAfterBytes: 200_000 };
    const handler = await createHandler({
      MODEL_S3_URI: uri,
      MODEL_CACHE_DIR: cacheDir,
      MODEL_NAME: 'm',
      MODEL_DOWNLOAD_TIMEOUT_MS: '500',
      // The first request, not the init phase, meets the stalled download.
      MODEL_INIT_WAIT_MS: '0',
      MODEL_LOAD_RETRY_MS: '0',
    });

    const started = performance.now();
    const r = await infer(handler, request, 'm');
    expect(performance.now() - started).toBeLessThan(5000);
    expect(r.status).toBe(503);
    expect(r.body.error).toContain('the model cannot be fetched from S3 (Timeout)');
    expect(fs.readdirSync(cacheDir)).toEqual([]);

    proxy.fault = undefined;
    await expectServed(handler);
  });

  /**
   * The handler has no way to inject the free-space check, so the cache directory is a real tiny
   * file system: a 256 KiB tmpfs, mounted in a user and mount namespace of a child process (no
   * root needed where unprivileged user namespaces are allowed). Growing it stands for raising the
   * function's ephemeral storage.
   */
  const canMountTmpfs = (() => {
    const dir = tempDir('csi-tmpfs-probe-');
    return spawnSync('unshare', ['--user', '--map-root-user', '--mount', 'mount', '-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir]).status === 0;
  })();

  it.skipIf(!canMountTmpfs)('answers 503 when the cache directory is too small (the log names both sizes), and recovers once it grows', async () => {
    const uri = await upload('nospace/model.onnx', model.bytes);
    const work = tempDir();
    const mountPoint = path.join(work, 'tmp');
    fs.mkdirSync(mountPoint);
    const script = path.join(work, 'run.mjs');
    fs.writeFileSync(
      script,
      `import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
const [bundle, mountPoint, uri, body] = process.argv.slice(2);
execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', mountPoint]);
const { createInferenceHandler } = await import(bundle);
const cacheDir = mountPoint + '/models';
const handler = await createInferenceHandler({ env: { MODEL_S3_URI: uri, MODEL_CACHE_DIR: cacheDir, MODEL_NAME: 'm', MODEL_LOAD_RETRY_MS: '0' } });
const ask = async () => {
  const r = await handler({ httpMethod: 'POST', path: '/v2/models/m/infer', headers: {}, requestContext: { requestId: 'r' }, body, isBase64Encoded: false });
  return { status: r.statusCode, body: JSON.parse(r.body), files: readdirSync(cacheDir) };
};
const tooSmall = await ask();
execFileSync('mount', ['-o', 'remount,size=4m', mountPoint]);
const grown = await ask();
process.stdout.write('\\n' + JSON.stringify({ tooSmall, grown }));
`,
    );
    const bundle = path.resolve(__dirname, '../../../assets/handlers/core/index.mjs');
    const { stdout, stderr } = await promisify(execFile)(
      'unshare',
      ['--user', '--map-root-user', '--mount', process.execPath, script, bundle, mountPoint, uri, JSON.stringify(request)],
      {
        env: { ...process.env, POWERTOOLS_LOG_LEVEL: 'ERROR' },
        timeout: 30_000,
      },
    );
    const lines = stdout.split('\n').filter((l) => l.startsWith('{'));
    const { tooSmall, grown } = JSON.parse(lines.at(-1)!);
    const logged = [...lines.slice(0, -1), ...stderr.split('\n').filter((l) => l.startsWith('{'))].map((l) => JSON.parse(l));

    expect(tooSmall.status).toBe(503);
    expect(tooSmall.body.error).toContain('the model cannot be fetched from S3 (NoSpace)');
    expect(tooSmall.body.error).not.toContain(mountPoint);
    const detail = logged.find((l) => l.message === 'request failed')?.detail;
    expect(detail).toContain(`Not enough space in ${mountPoint}/models for ${uri}`);
    expect(detail).toContain(`(${model.sizeBytes} bytes)`);
    expect(detail).toContain('ephemeral storage');
    expect(tooSmall.files).toEqual([]);

    expect(grown.status, JSON.stringify(grown.body)).toBe(200);
    expect(grown.body.outputs[0].data).toEqual(x.map((v) => v + model.addend));
    expect(grown.files).toHaveLength(2);
  });
});
