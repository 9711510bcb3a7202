/**
 * Faults around the model, over the bundled handler: broken model files, and an S3 model that is
 * missing, cut off mid-download, corrupted, stalled, or bigger than the cache directory's free space.
 * Each is answered with a 503 that names the cause, reported by the readiness routes and the log,
 * never served from a partial file, and recovered from by the next request once the cause is gone.
 *
 * Already covered elsewhere (test/handler-errors.test.ts), so not repeated: a not-ONNX file's 503,
 * its /v2/health/ready and its recovery once fixed; a missing MODEL_PATH file's 503.
 */
import { execFile, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { notOnnxBytes, paddedModel, truncatedModel, unknownOpModel } from '../tools/onnx';
import { startLocalS3, type LocalS3 } from '../tools/local-s3';
import { call, infer, restEvent } from './support/events';
import { type Handler, createHandler, tempDir, writeModel } from './support/handler';
import { startFaultProxy, type FaultProxy } from './support/fault-proxy';
import { answerMismatch, mlpUnderTest, render } from './support/reliability-requests';

const mlp = mlpUnderTest('m');
const mlpRequest = render(mlp, mlp.fixed);
const expectMlpAnswer = (r: { status: number; text: string }) => expect(answerMismatch(mlp, mlp.fixed, r.status, r.text)).toBeUndefined();

/** Collects the handler's structured log (JSON lines on stdout and stderr) until `stop()`. */
function captureLogs() {
  let text = '';
  const grab = ((chunk: unknown) => {
    text += String(chunk);
    return true;
  }) as typeof process.stdout.write;
  const out = vi.spyOn(process.stdout, 'write').mockImplementation(grab);
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(grab);
  return {
    lines: (): any[] =>
      text
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l)),
    stop: () => {
      out.mockRestore();
      err.mockRestore();
    },
  };
}

/** A handler whose logger writes INFO and above (the test setup silences it otherwise). */
async function loggingHandler(env: Record<string, string>): Promise<Handler> {
  const saved = process.env.POWERTOOLS_LOG_LEVEL;
  process.env.POWERTOOLS_LOG_LEVEL = 'INFO';
  try {
    return await createHandler(env);
  } finally {
    if (saved === undefined) delete process.env.POWERTOOLS_LOG_LEVEL;
    else process.env.POWERTOOLS_LOG_LEVEL = saved;
  }
}

const ready = (h: Handler) => call(h, restEvent('GET', '/v2/health/ready'));
const modelReady = (h: Handler, name: string) => call(h, restEvent('GET', `/v2/models/${name}/ready`));

describe('a model file onnxruntime cannot load', () => {
  let logs: ReturnType<typeof captureLogs> | undefined;
  afterEach(() => logs?.stop());

  it.each([
    ['a truncated model', truncatedModel(), 'Protobuf parsing failed'],
    ['a model with an op no runtime has', unknownOpModel().bytes, 'No Op registered for NoSuchOp'],
  ])('%s: a 503 with the cause, not ready, logged; served once the file is replaced', async (_what, bytes, cause) => {
    const file = writeModel(bytes);
    logs = captureLogs();
    const handler = await loggingHandler({ MODEL_PATH: file, MODEL_NAME: 'm' });

    const r = await infer(handler, mlpRequest, 'm');
    expect(r.status).toBe(503);
    expect(r.body.error).toContain(`onnxruntime cannot load the model ${file}`);
    expect(r.body.error).toContain(cause);
    expect(r.body.error).toContain('the next request retries');

    for (const notReady of [await ready(handler), await modelReady(handler, 'm')]) {
      expect(notReady.status).toBe(400);
      expect(notReady.body.ready).toBe(false);
      expect(notReady.body.error).toContain(file);
      expect(notReady.body.error).toContain(cause);
    }
    expect((await modelReady(handler, 'm')).body.name).toBe('m');

    // The init phase's attempt and each request's retry are logged with onnxruntime's own error.
    const failures = logs.lines().filter((l) => l.message === 'model failed to load; the next request retries');
    expect(failures.length).toBeGreaterThanOrEqual(2);
    for (const f of failures) {
      expect(f).toMatchObject({ level: 'ERROR', model: 'm' });
      expect(f.error).toContain(file);
      expect(f.cause.message).toContain(cause);
    }
    expect(logs.lines().find((l) => l.message === 'request failed')).toMatchObject({ level: 'ERROR', status: 503, error: expect.stringContaining(cause) });

    fs.writeFileSync(file, mlp.bytes);
    expectMlpAnswer(await infer(handler, mlpRequest, 'm'));
    expect((await ready(handler)).status).toBe(200);
    expect((await modelReady(handler, 'm')).body).toEqual({ name: 'm', ready: true });
    expect(logs.lines().filter((l) => l.message === 'model loaded')).toHaveLength(1);
  });

  it('a file that is not ONNX: /v2/models/{name}/ready says why, and so does the log', async () => {
    const file = writeModel(notOnnxBytes());
    logs = captureLogs();
    const handler = await loggingHandler({ MODEL_PATH: file, MODEL_NAME: 'm' });
    const r = await modelReady(handler, 'm');
    expect(r.status).toBe(400);
    expect(r.body).toEqual({ name: 'm', ready: false, error: expect.stringContaining(`onnxruntime cannot load the model ${file}`) });
    const failure = logs.lines().find((l) => l.level === 'ERROR');
    expect(failure.error).toBe(r.body.error);
    expect(failure.cause.message).toContain('Protobuf parsing failed');
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

  it('answers 503 naming the URI while the object is missing, and serves it once it is uploaded', async () => {
    const uri = `s3://${BUCKET}/late/model.onnx`;
    const cacheDir = tempDir();
    const handler = await createHandler({ MODEL_S3_URI: uri, MODEL_CACHE_DIR: cacheDir, MODEL_NAME: 'm' });

    const r = await infer(handler, request, 'm');
    expect(r.status).toBe(503);
    expect(r.body.error).toContain(`${uri} does not exist`);
    expect((await ready(handler)).body).toEqual({ ready: false, error: expect.stringContaining(uri) });

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
    const handler = await createHandler({ MODEL_S3_URI: uri, MODEL_CACHE_DIR: cacheDir, MODEL_NAME: 'm' });
    expect(fs.readdirSync(cacheDir)).toEqual([]);

    // Concurrent requests share one attempt: one GET on the wire, the same 503 for all.
    const getsBefore = proxy.gets.length;
    const answers = await Promise.all([1, 2, 3, 4].map(() => infer(handler, request, 'm')));
    expect(proxy.gets.length - getsBefore).toBe(1);
    for (const a of answers) {
      expect(a.status).toBe(503);
      expect(a.body.error).toMatch(new RegExp(`connection to S3 dropped after \\d+ of ${model.sizeBytes} bytes of ${uri}`));
    }
    expect(fs.readdirSync(cacheDir)).toEqual([]);

    proxy.fault = undefined;
    await expectServed(handler);
    expectCachedWhole(cacheDir);
  });

  it('refuses a download corrupted in transit (MD5 against the ETag) and recovers', async () => {
    const uri = await upload('flipped/model.onnx', model.bytes);
    const cacheDir = tempDir();
    proxy.fault = { flipByteAt: 500_000 };
    const handler = await createHandler({ MODEL_S3_URI: uri, MODEL_CACHE_DIR: cacheDir, MODEL_NAME: 'm' });

    const r = await infer(handler, request, 'm');
    expect(r.status).toBe(503);
    expect(r.body.error).toContain(`The download of ${uri} is corrupt`);
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
    });

    const started = performance.now();
    const r = await infer(handler, request, 'm');
    expect(performance.now() - started).toBeLessThan(5000);
    expect(r.status).toBe(503);
    expect(r.body.error).toMatch(/Timed out fetching .* \(idle timeout 500 ms\)/);
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

  it.skipIf(!canMountTmpfs)('answers 503 naming both sizes when the cache directory is too small, and recovers once it grows', async () => {
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
const handler = await createInferenceHandler({ env: { MODEL_S3_URI: uri, MODEL_CACHE_DIR: cacheDir, MODEL_NAME: 'm' } });
const ask = async () => {
  const r = await handler({ httpMethod: 'POST', path: '/v2/models/m/infer', headers: {}, requestContext: { requestId: 'r' }, body, isBase64Encoded: false });
  return { status: r.statusCode, body: JSON.parse(r.body), files: readdirSync(cacheDir) };
};
const tooSmall = await ask();
execFileSync('mount', ['-o', 'remount,size=4m', mountPoint]);
const grown = await ask();
process.stdout.write(JSON.stringify({ tooSmall, grown }));
`,
    );
    const bundle = path.resolve(__dirname, '../assets/handlers/core/index.mjs');
    const { stdout } = await promisify(execFile)('unshare', ['--user', '--map-root-user', '--mount', process.execPath, script, bundle, mountPoint, uri, JSON.stringify(request)], {
      env: process.env,
      timeout: 30_000,
    });
    const { tooSmall, grown } = JSON.parse(stdout);

    expect(tooSmall.status).toBe(503);
    expect(tooSmall.body.error).toContain(`Not enough space in ${mountPoint}/models for ${uri}`);
    expect(tooSmall.body.error).toContain(`(${model.sizeBytes} bytes)`);
    expect(tooSmall.body.error).toContain('ephemeral storage');
    expect(tooSmall.files).toEqual([]);

    expect(grown.status, JSON.stringify(grown.body)).toBe(200);
    expect(grown.body.outputs[0].data).toEqual(x.map((v) => v + model.addend));
    expect(grown.files).toHaveLength(2);
  });
});
