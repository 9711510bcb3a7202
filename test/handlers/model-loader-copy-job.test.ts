/**
 * The EFS copy job's status file, as the loader writes it and the custom resource's check reads it:
 * the deadline comes from the loader's own invocation, a job's status survives other jobs (only old
 * ones are swept), and the check reads no file but a job's own.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { type LocalS3, startLocalS3 } from '../../tools/local-s3';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy';

const BUNDLE = path.resolve(__dirname, '../../assets/handlers/model-loader/index.mjs');
const BUCKET = 'copy-jobs';

type Handler = (event: unknown, context?: { getRemainingTimeInMillis(): number }) => Promise<any>;

let s3: LocalS3;
let proxy: FaultProxy;
let handler: Handler;
let isComplete: Handler;
let workDir: string;
let mount: string;
let testNumber = 0;
const originalEnv = { ...process.env };

beforeAll(async () => {
  if (!existsSync(BUNDLE)) {
    throw new Error(`${BUNDLE} is missing: run \`npm run build\` first`);
  }
  s3 = await startLocalS3();
  await s3.createBucket(BUCKET);
  proxy = await startFaultProxy(s3.port);
  workDir = await mkdtemp(path.join(process.env.CSI_TEST_TMP ?? tmpdir(), 'copy-job-test-'));
  Object.assign(process.env, s3.env(), { AWS_ENDPOINT_URL_S3: proxy.endpoint });
  ({ handler, isComplete } = await import(pathToFileURL(BUNDLE).href));
});

afterAll(async () => {
  process.env = originalEnv;
  await proxy?.close();
  await s3?.stop();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

beforeEach(async () => {
  testNumber += 1;
  mount = path.join(workDir, `mount-${testNumber}`);
  await mkdir(mount);
  proxy.fault = undefined;
  vi.spyOn(console, 'log').mockImplementation(() => undefined);
  vi.spyOn(console, 'error').mockImplementation(() => undefined);
});

afterEach(() => {
  vi.restoreAllMocks();
});

const properties = (key: string) => ({ ModelS3Uri: `s3://${BUCKET}/${key}`, MountPath: mount, ModelFileName: 'model.onnx' });

/** A copy job as the starter sends it to the loader. */
const job = (id: string, key: string) => ({ CopyJob: { Id: id, RequestType: 'Create', LogicalResourceId: 'ModelLoader', ResourceProperties: properties(key) } });

/** The provider framework's isComplete event for job `id`, requested now. */
const check = (id: string, key: string) => ({
  RequestType: 'Create',
  LogicalResourceId: 'ModelLoader',
  ResourceProperties: properties(key),
  PhysicalResourceId: path.join(mount, 'model.onnx'),
  Data: { ModelPath: path.join(mount, 'model.onnx'), CopyJobId: id, CopyRequestedAt: new Date().toISOString() },
});

const minutes = (n: number) => ({ getRemainingTimeInMillis: () => n * 60 * 1000 });

async function rejectionOf(promise: Promise<unknown>): Promise<Error> {
  const error = await promise.then(
    () => undefined,
    (rejection: unknown) => rejection,
  );
  expect(error, 'expected a rejection').toBeInstanceOf(Error);
  return error as Error;
}

describe('the copy job and its status', () => {
  it("gives up on a job past the loader's own remaining time, not a fixed 15 minutes", async () => {
    await s3.putObject(BUCKET, 'short/model.onnx', randomBytes(300_000));
    const id = randomUUID();
    proxy.fault = { holdAfterBytes: 50_000 };
    // The invocation had 2 minutes left when the job started (a loader given a shorter timeout).
    const running = handler(job(id, 'short/model.onnx'), minutes(2));
    await vi.waitFor(() => expect(proxy.heldCount).toBeGreaterThan(0));
    const later = Date.now() + 4 * 60 * 1000;
    vi.spyOn(Date, 'now').mockReturnValue(later);

    const error = await rejectionOf(isComplete(check(id, 'short/model.onnx')));

    vi.mocked(Date.now).mockRestore();
    expect(error.message).toMatch(/did not finish: the loader stopped at its 2-minute limit/);
    proxy.releaseHeld();
    await running;
  });

  it('keeps the status of other jobs that ended recently, and sweeps only those a day old', async () => {
    await s3.putObject(BUCKET, 'sweep/model.onnx', randomBytes(5_000));
    const [old, recent, next] = [randomUUID(), randomUUID(), randomUUID()];
    await handler(job(old, 'sweep/model.onnx'), minutes(15));
    await handler(job(recent, 'sweep/model.onnx'), minutes(15));
    const twoDaysAgo = new Date(Date.now() - 2 * 24 * 60 * 60 * 1000);
    await utimes(path.join(mount, '.copies', `${old}.json`), twoDaysAgo, twoDaysAgo);

    await handler(job(next, 'sweep/model.onnx'), minutes(15));

    expect((await readdir(path.join(mount, '.copies'))).sort()).toEqual([`${next}.json`, `${recent}.json`].sort());
    expect(await isComplete(check(recent, 'sweep/model.onnx'))).toMatchObject({ IsComplete: true, Data: { ModelPath: path.join(mount, 'model.onnx') } });
  });

  it('reads only a copy job’s own status: a CopyJobId that is not a job id is refused, naming it', async () => {
    // A file elsewhere on the file system that reads as a finished copy.
    await writeFile(path.join(mount, 'planted.json'), JSON.stringify({ state: 'succeeded', data: { ModelPath: '/elsewhere' } }));
    await mkdir(path.join(mount, '.copies'));

    for (const id of ['../planted', 'not-a-uuid']) {
      const error = await rejectionOf(isComplete(check(id, 'any/model.onnx')));
      expect(error.message).toMatch(/^CopyJobId must be the UUID of a copy job, got /);
    }
  });
});
