/**
 * The EFS model loader (custom resource onEvent handler), as bundled, against s3rver through a
 * loopback proxy that records requests and can break a download; a temp dir stands in for the mount.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { functionError, startLocalLambda, type LocalLambda } from '../../tools/local-lambda';
import { startLocalS3, type LocalS3 } from '../../tools/local-s3';
import { type Fault, type FaultProxy, startFaultProxy } from '../support/fault-proxy';

const BUNDLE = path.resolve(__dirname, '../../assets/handlers/model-loader/index.mjs');
const BUCKET = 'models';
const SERVICE_TOKEN = 'arn:aws:lambda:us-east-1:123456789012:function:provider-framework-onEvent';

type RequestType = 'Create' | 'Update' | 'Delete';
type Handler = (event: unknown, context?: { getRemainingTimeInMillis(): number }) => Promise<any>;

let s3: LocalS3;
let proxy: FaultProxy;
let handler: Handler;
let start: Handler;
let isComplete: Handler;
let workDir: string;
/** The stand-in for the EFS mount, fresh for each test. */
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
  workDir = await mkdtemp(path.join(tmpdir(), 'model-loader-test-'));
  // The loader builds its S3 client from the environment, as on Lambda.
  Object.assign(process.env, s3.env(), { AWS_ENDPOINT_URL_S3: proxy.endpoint });
  ({ handler, start, isComplete } = await import(pathToFileURL(BUNDLE).href));
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
  proxy.requests.length = 0;
  // One JSON line per event is the handler's whole output; tests that read it use the spies.
  vi.spyOn(console, 'log').mockImplementation(() => undefined);
  vi.spyOn(console, 'error').mockImplementation(() => undefined);
});

afterEach(() => {
  vi.restoreAllMocks();
});

function event(requestType: RequestType, properties: Record<string, unknown>, physicalResourceId?: string, oldProperties?: Record<string, unknown>) {
  return {
    RequestType: requestType,
    ServiceToken: SERVICE_TOKEN,
    ResponseURL: 'https://cloudformation-custom-resource-response.example/',
    StackId: 'arn:aws:cloudformation:us-east-1:123456789012:stack/Stack/guid',
    RequestId: 'b4ae5b6c-0c1f-4e47-9e5a-4c4d3c1b2a10',
    LogicalResourceId: 'ModelLoader',
    ResourceType: 'Custom::ModelLoader',
    ResourceProperties: { ServiceToken: SERVICE_TOKEN, ...properties },
    ...(physicalResourceId === undefined ? {} : { PhysicalResourceId: physicalResourceId }),
    ...(oldProperties === undefined ? {} : { OldResourceProperties: { ServiceToken: SERVICE_TOKEN, ...oldProperties } }),
  };
}

function props(key: string, fileName = 'model.onnx', extra: Record<string, unknown> = {}) {
  return { ModelS3Uri: `s3://${BUCKET}/${key}`, MountPath: mount, ModelFileName: fileName, ...extra };
}

async function upload(key: string, content: Buffer): Promise<void> {
  await s3.putObject(BUCKET, key, content);
}

const md5Hex = (data: Buffer) => createHash('md5').update(data).digest('hex');

async function rejectionOf(promise: Promise<unknown>): Promise<Error> {
  const error = await promise.then(
    () => undefined,
    (rejection: unknown) => rejection,
  );
  expect(error, 'expected the handler to throw').toBeInstanceOf(Error);
  return error as Error;
}

function loggedLines(spy: 'log' | 'error'): Record<string, unknown>[] {
  const calls = vi.mocked(console[spy]).mock.calls;
  return calls.map((args) => JSON.parse(String(args[0])) as Record<string, unknown>);
}

describe('Create and Update', () => {
  it('copies the object byte for byte to MountPath/ModelFileName and returns the documented response', async () => {
    const content = randomBytes(300_000);
    await upload('create/model.onnx', content);
    const modelPath = path.join(mount, 'model.onnx');

    const response = await handler(event('Create', props('create/model.onnx')));

    expect(response).toEqual({
      PhysicalResourceId: modelPath,
      Data: { ModelPath: modelPath, SizeBytes: content.length, ETag: `"${md5Hex(content)}"` },
    });
    expect((await readFile(modelPath)).equals(content)).toBe(true);
    // The staging directory is removed with everything in it: only the model remains.
    expect(await readdir(mount)).toEqual(['model.onnx']);
    const lines = loggedLines('log');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      requestType: 'Create',
      source: `s3://${BUCKET}/create/model.onnx`,
      modelPath,
      sizeBytes: content.length,
    });
    expect(lines[0].durationMs).toEqual(expect.any(Number));
  });

  it('accepts a MountPath with a trailing slash and normalizes the physical id', async () => {
    await upload('slash/model.onnx', randomBytes(1000));

    const response = await handler(event('Create', props('slash/model.onnx', 'm.onnx', { MountPath: `${mount}/` })));

    expect(response.PhysicalResourceId).toBe(path.join(mount, 'm.onnx'));
  });

  it('an Update to the same file name replaces the file with the new object', async () => {
    const first = randomBytes(100_000);
    const second = randomBytes(150_000);
    await upload('v1/model.onnx', first);
    await upload('v2/model.onnx', second);
    await handler(event('Create', props('v1/model.onnx')));

    const response = await handler(event('Update', props('v2/model.onnx'), path.join(mount, 'model.onnx')));

    expect(response.Data.SizeBytes).toBe(second.length);
    expect((await readFile(path.join(mount, 'model.onnx'))).equals(second)).toBe(true);
    expect(await readdir(mount)).toEqual(['model.onnx']);
  });

  it('an Update to a new file name writes the new file and leaves the old one for the later Delete', async () => {
    const first = randomBytes(80_000);
    const second = randomBytes(90_000);
    await upload('rename/a.onnx', first);
    await upload('rename/b.onnx', second);
    const oldPath = path.join(mount, 'a.onnx');
    await handler(event('Create', props('rename/a.onnx', 'a.onnx')));

    const response = await handler(event('Update', props('rename/b.onnx', 'b.onnx'), oldPath));

    expect(response.PhysicalResourceId).toBe(path.join(mount, 'b.onnx'));
    expect((await readFile(path.join(mount, 'b.onnx'))).equals(second)).toBe(true);
    expect((await readFile(oldPath)).equals(first)).toBe(true);
    expect((await readdir(mount)).sort()).toEqual(['a.onnx', 'b.onnx']);
  });

  it('passes a pinned ModelS3VersionId to S3', async () => {
    // s3rver has no versioning and ignores versionId: this checks what reaches the wire.
    const content = randomBytes(20_000);
    await upload('pinned/model.onnx', content);

    const response = await handler(event('Create', props('pinned/model.onnx', 'model.onnx', { ModelS3VersionId: 'v-2024.1' })));

    expect(proxy.gets).toHaveLength(1);
    expect(proxy.gets[0]).toContain('versionId=v-2024.1');
    expect(response.Data.SizeBytes).toBe(content.length);
    expect(loggedLines('log')[0]).toMatchObject({ versionId: 'v-2024.1' });
  });

  it('sends no versionId when ModelS3VersionId is absent or empty', async () => {
    await upload('unpinned/model.onnx', randomBytes(5_000));

    await handler(event('Create', props('unpinned/model.onnx')));
    await handler(event('Create', props('unpinned/model.onnx', 'model.onnx', { ModelS3VersionId: '' })));

    expect(proxy.gets).toHaveLength(2);
    for (const url of proxy.gets) expect(url).not.toContain('versionId');
  });

  it('removes staging directories left by attempts that died, and keeps recent ones', async () => {
    await upload('sweep/model.onnx', randomBytes(5_000));
    const staging = path.join(mount, '.incoming');
    const dead = path.join(staging, 'dead-attempt');
    const running = path.join(staging, 'running-attempt');
    await mkdir(dead, { recursive: true });
    await mkdir(running);
    await writeFile(path.join(dead, 'x.onnx.partial'), randomBytes(1000));
    await writeFile(path.join(running, 'y.onnx.partial'), randomBytes(1000));
    const twoHoursAgo = new Date(Date.now() - 2 * 60 * 60 * 1000);
    await utimes(dead, twoHoursAgo, twoHoursAgo);

    await handler(event('Create', props('sweep/model.onnx')));

    expect(await readdir(staging)).toEqual(['running-attempt']);
  });
});

describe('failures', () => {
  it('fails for a missing object with an error naming the URI, writing nothing', async () => {
    const uri = `s3://${BUCKET}/missing/model.onnx`;

    const error = await rejectionOf(handler(event('Create', props('missing/model.onnx'))));

    expect(error.message).toContain(uri);
    expect(error.message).toContain('NotFound');
    expect(await readdir(mount)).toEqual([]);
    expect(loggedLines('error')).toEqual([expect.objectContaining({ requestType: 'Create', error: error.message })]);
  });

  describe('a broken download leaves the previous file at the final name intact', () => {
    const good = randomBytes(200_000);
    const next = randomBytes(1024 * 1024);

    beforeAll(async () => {
      await upload('broken/good.onnx', good);
      await upload('broken/next.onnx', next);
    });

    it.each<[string, Fault, RegExp]>([
      ['the connection drops mid-body', { cutAfterBytes: 300_000 }, /Interrupted/],
      ['a byte changes in transit', { flipByteAt: 500_000 }, /Corrupt.*MD5/],
    ])('when %s', async (_name, fault, reason) => {
      const modelPath = path.join(mount, 'model.onnx');
      await handler(event('Create', props('broken/good.onnx')));
      proxy.fault = fault;

      const error = await rejectionOf(handler(event('Update', props('broken/next.onnx'), modelPath)));

      expect(error.message).toMatch(reason);
      expect(error.message).toContain(`s3://${BUCKET}/broken/next.onnx`);
      expect((await readFile(modelPath)).equals(good)).toBe(true);
      expect(await readdir(mount)).toEqual(['model.onnx']);
    });

    it('when the first copy breaks, no file exists at the final name', async () => {
      proxy.fault = { cutAfterBytes: 100_000 };

      await rejectionOf(handler(event('Create', props('broken/next.onnx'))));

      expect(await readdir(mount)).toEqual([]);
    });
  });

  it.each<[string, Record<string, unknown>, string]>([
    ['a relative MountPath', { MountPath: 'mnt/models' }, 'MountPath'],
    ['a missing MountPath', { MountPath: undefined }, 'MountPath'],
    ['a ModelFileName with a /', { ModelFileName: 'sub/model.onnx' }, 'ModelFileName'],
    ['a ModelFileName climbing out', { ModelFileName: '../model.onnx' }, 'ModelFileName'],
    ['a ModelFileName with ..', { ModelFileName: 'model..onnx' }, 'ModelFileName'],
    ['a ModelFileName with a backslash', { ModelFileName: '..\\model.onnx' }, 'ModelFileName'],
    ['a ModelFileName not ending in .onnx', { ModelFileName: 'model.bin' }, 'ModelFileName'],
    ['an empty ModelFileName', { ModelFileName: '' }, 'ModelFileName'],
    ['a ModelS3Uri that is not s3://bucket/key', { ModelS3Uri: 'https://models.s3.amazonaws.com/model.onnx' }, 'ModelS3Uri'],
    ['a non-string ModelS3VersionId', { ModelS3VersionId: 3 }, 'ModelS3VersionId'],
  ])('rejects %s with a message naming the property, before any request', async (_name, override, property) => {
    for (const requestType of ['Create', 'Update'] as const) {
      const error = await rejectionOf(handler(event(requestType, { ...props('any/model.onnx'), ...override }, path.join(mount, 'model.onnx'))));
      expect(error.message.startsWith(property)).toBe(true);
    }
    expect(proxy.gets).toEqual([]);
    expect(await readdir(mount)).toEqual([]);
  });

  it('fails naming MountPath when nothing is mounted there', async () => {
    const absent = path.join(mount, 'not-mounted');

    const error = await rejectionOf(handler(event('Create', props('any/model.onnx', 'model.onnx', { MountPath: absent }))));

    expect(error.message).toContain(`MountPath ${absent}`);
    expect(existsSync(absent)).toBe(false);
    expect(proxy.gets).toEqual([]);
  });
});

describe('the S3 fetch settings', () => {
  /** A loader of its own, whose first event meets `env`: it reads its settings then, once. */
  async function firstEventWith(env: Record<string, string>, properties: Record<string, unknown>) {
    const { handler: fresh } = (await import(`${pathToFileURL(BUNDLE).href}?settings-${testNumber}`)) as { handler: Handler };
    Object.assign(process.env, env);
    try {
      return await fresh(event('Create', properties));
    } finally {
      for (const name of Object.keys(env)) delete process.env[name];
    }
  }

  it('reads MODEL_S3_CONCURRENCY as the inference handler does: 1 fetches the object with one GET', async () => {
    await upload('settings/model.onnx', randomBytes(200_000));
    proxy.ranges.length = 0;

    await firstEventWith({ MODEL_S3_CONCURRENCY: '1' }, props('settings/model.onnx'));

    expect(proxy.ranges).toEqual(['']);
  });

  it('fails the event with a bad MODEL_S3_CONCURRENCY, naming it, and writes nothing', async () => {
    const error = await rejectionOf(firstEventWith({ MODEL_S3_CONCURRENCY: 'abc' }, props('settings/model.onnx')));

    expect(error.message).toBe('MODEL_S3_CONCURRENCY must be a non-negative integer, got: abc');
    expect(await readdir(mount)).toEqual([]);
    expect(loggedLines('error')).toEqual([expect.objectContaining({ requestType: 'Create', error: error.message })]);
  });
});

describe('a precompiled model beside the model', () => {
  it('copies it to MountPath/PrecompiledFileName and deletes it with the model', async () => {
    const model = randomBytes(20_000);
    const precompiled = randomBytes(30_000);
    await upload('pre/model.onnx', model);
    await upload('pre/model.ort', precompiled);
    const properties = props('pre/model.onnx', 'm-1.onnx', { PrecompiledS3Uri: `s3://${BUCKET}/pre/model.ort`, PrecompiledFileName: 'm-1.ort' });
    const response = await handler(event('Create', properties));
    expect(response.Data).toMatchObject({ ModelPath: path.join(mount, 'm-1.onnx'), PrecompiledPath: path.join(mount, 'm-1.ort') });
    expect((await readFile(path.join(mount, 'm-1.ort'))).equals(precompiled)).toBe(true);
    expect((await readFile(path.join(mount, 'm-1.onnx'))).equals(model)).toBe(true);
    expect((await readdir(mount)).sort()).toEqual(['m-1.onnx', 'm-1.ort']);
    await handler(event('Delete', properties, response.PhysicalResourceId));
    expect(await readdir(mount)).toEqual([]);
  });

  it.each([
    ['a name that is not .ort', { PrecompiledS3Uri: `s3://${BUCKET}/pre/model.ort`, PrecompiledFileName: 'm.onnx' }, /PrecompiledFileName must end in \.ort/],
    ['a path', { PrecompiledS3Uri: `s3://${BUCKET}/pre/model.ort`, PrecompiledFileName: '../m.ort' }, /PrecompiledFileName must be a plain file name/],
    ['a name without its source', { PrecompiledFileName: 'm.ort' }, /PrecompiledS3Uri is required/],
  ])('refuses %s', async (_what, extra, message) => {
    await upload('pre/model.onnx', randomBytes(1000));
    const error = await rejectionOf(handler(event('Create', props('pre/model.onnx', 'm.onnx', extra))));
    expect(error.message).toMatch(message);
    expect(await readdir(mount)).toEqual([]);
  });
});

describe('a precompiled model and its model: both or neither', () => {
  /** The properties of a model and its precompiled copy, named `<name>.onnx` and `<name>.ort`. */
  const paired = (modelKey: string, precompiledKey: string, name = 'm') =>
    props(modelKey, `${name}.onnx`, { PrecompiledS3Uri: `s3://${BUCKET}/${precompiledKey}`, PrecompiledFileName: `${name}.ort` });

  it('a Create whose model is missing fails naming it, and leaves no precompiled copy for a Delete that will never come', async () => {
    await upload('pair/only.ort', randomBytes(20_000));
    const properties = paired('pair/missing.onnx', 'pair/only.ort');

    const error = await rejectionOf(handler(event('Create', properties)));

    expect(error.message).toContain(`s3://${BUCKET}/pair/missing.onnx`);
    expect(error.message).toContain('NotFound');
    expect(await readdir(mount)).toEqual([]);
  });

  it('a failed copy removes a precompiled copy an earlier attempt left without its model', async () => {
    await upload('pair/only.ort', randomBytes(20_000));
    await writeFile(path.join(mount, 'm.ort'), 'left by an earlier attempt');

    await rejectionOf(handler(event('Create', paired('pair/missing.onnx', 'pair/only.ort'))));

    expect(await readdir(mount)).toEqual([]);
  });

  it('a failed Update to the same names leaves the old model and its precompiled copy as they were', async () => {
    const oldModel = randomBytes(30_000);
    const oldPrecompiled = randomBytes(40_000);
    await upload('pair/v1.onnx', oldModel);
    await upload('pair/v1.ort', oldPrecompiled);
    await upload('pair/v2.ort', randomBytes(40_000));
    const modelPath = path.join(mount, 'm.onnx');
    const before = paired('pair/v1.onnx', 'pair/v1.ort');
    await handler(event('Create', before));

    await rejectionOf(handler(event('Update', paired('pair/v2-missing.onnx', 'pair/v2.ort'), modelPath, before)));

    expect((await readFile(modelPath)).equals(oldModel)).toBe(true);
    expect((await readFile(path.join(mount, 'm.ort'))).equals(oldPrecompiled)).toBe(true);
    expect((await readdir(mount)).sort()).toEqual(['m.onnx', 'm.ort']);
  });

  it('a download of the precompiled copy that breaks leaves neither file, though the model came whole', async () => {
    await upload('pair/model.onnx', randomBytes(30_000));
    await upload('pair/big.ort', randomBytes(1024 * 1024));
    // The model's answer is shorter than this: only the precompiled copy's is cut.
    proxy.fault = { cutAfterBytes: 200_000 };

    const error = await rejectionOf(handler(event('Create', paired('pair/model.onnx', 'pair/big.ort'))));

    expect(error.message).toMatch(/Interrupted/);
    expect(proxy.gets).toHaveLength(2);
    expect(await readdir(mount)).toEqual([]);
  });

  it('an Update that keeps the model but drops its precompiled copy deletes that copy, so the stack leaves nothing behind', async () => {
    const model = randomBytes(30_000);
    await upload('pair/model.onnx', model);
    await upload('pair/model.ort', randomBytes(40_000));
    const modelPath = path.join(mount, 'm.onnx');
    const before = paired('pair/model.onnx', 'pair/model.ort');
    await handler(event('Create', before));
    const after = props('pair/model.onnx', 'm.onnx');

    const response = await handler(event('Update', after, modelPath, before));

    expect(response.PhysicalResourceId).toBe(modelPath);
    expect(response.Data.PrecompiledPath).toBeUndefined();
    expect(await readdir(mount)).toEqual(['m.onnx']);
    expect((await readFile(modelPath)).equals(model)).toBe(true);
    expect(loggedLines('log')).toContainEqual(expect.objectContaining({ message: 'replaced precompiled model deleted', path: path.join(mount, 'm.ort') }));
    // The stack's deletion sends the new properties, which name no precompiled copy.
    await handler(event('Delete', after, modelPath));
    expect(await readdir(mount)).toEqual([]);
  });

  it('an Update to a new model name leaves the old pair to the Delete of the old resource, which removes both', async () => {
    await upload('pair/a.onnx', randomBytes(30_000));
    await upload('pair/a.ort', randomBytes(40_000));
    await upload('pair/b.onnx', randomBytes(30_000));
    const before = paired('pair/a.onnx', 'pair/a.ort', 'a');
    const { PhysicalResourceId: oldId } = await handler(event('Create', before));

    const response = await handler(event('Update', props('pair/b.onnx', 'b.onnx'), oldId, before));

    // Older function versions still read a.onnx and a.ort until the update succeeds.
    expect((await readdir(mount)).sort()).toEqual(['a.onnx', 'a.ort', 'b.onnx']);
    expect(response.PhysicalResourceId).toBe(path.join(mount, 'b.onnx'));
    await handler(event('Delete', before, oldId));
    expect(await readdir(mount)).toEqual(['b.onnx']);
  });
});

describe('Delete', () => {
  it('removes the file the physical id names, and succeeds again once it is gone', async () => {
    await upload('delete/model.onnx', randomBytes(10_000));
    const { PhysicalResourceId } = await handler(event('Create', props('delete/model.onnx', 'keep.onnx')));
    await handler(event('Create', props('delete/model.onnx', 'gone.onnx')));
    const gone = path.join(mount, 'gone.onnx');

    expect(await handler(event('Delete', props('delete/model.onnx', 'gone.onnx'), gone))).toEqual({ PhysicalResourceId: gone });
    expect(await readdir(mount)).toEqual([path.basename(PhysicalResourceId)]);
    expect(await handler(event('Delete', props('delete/model.onnx', 'gone.onnx'), gone))).toEqual({ PhysicalResourceId: gone });
    expect(proxy.gets).toHaveLength(2);
  });

  it.each<[string, (outside: string) => string]>([
    ['a path outside MountPath', (outside) => path.join(outside, 'model.onnx')],
    ['a path climbing out of MountPath', (outside) => `${mount}/../${path.basename(outside)}/model.onnx`],
    ['a file in a subdirectory of MountPath', () => path.join(mount, 'sub', 'model.onnx')],
    ['a file inside MountPath that is not a model', () => path.join(mount, 'notes.txt')],
    ['the default id of a failed Create', () => 'b4ae5b6c-0c1f-4e47-9e5a-4c4d3c1b2a10'],
    ['an empty id', () => ''],
  ])('leaves everything in place for %s', async (_name, physicalIdFor) => {
    const outside = path.join(workDir, `outside-${testNumber}`);
    const files = [path.join(outside, 'model.onnx'), path.join(mount, 'sub', 'model.onnx'), path.join(mount, 'notes.txt')];
    for (const file of files) {
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, 'keep me');
    }
    const physicalId = physicalIdFor(outside);

    const response = await handler(event('Delete', props('any/model.onnx', 'model.onnx'), physicalId));

    expect(response).toEqual({ PhysicalResourceId: physicalId });
    for (const file of files) expect(await readFile(file, 'utf8')).toBe('keep me');
    expect(loggedLines('log')).toEqual([expect.objectContaining({ requestType: 'Delete', message: 'nothing deleted' })]);
  });

  it('leaves the file in place when the Delete event carries an invalid MountPath', async () => {
    const file = path.join(mount, 'model.onnx');
    await writeFile(file, 'keep me');

    await handler(event('Delete', { ...props('any/model.onnx'), MountPath: 'relative' }, file));

    expect(await readFile(file, 'utf8')).toBe('keep me');
  });
});

describe('the copy as an asynchronous job: start, the loader, isComplete', () => {
  const LOADER_ARN = 'arn:aws:lambda:eu-west-1:123456789012:function:model-loader';
  const FIFTEEN_MINUTES = { getRemainingTimeInMillis: () => 15 * 60 * 1000 };
  let lambda: LocalLambda;

  beforeAll(async () => {
    lambda = await startLocalLambda();
    // Only Lambda's endpoint: the S3 client keeps the local S3's region and credentials.
    Object.assign(process.env, { AWS_ENDPOINT_URL_LAMBDA: lambda.url, MODEL_LOADER_FUNCTION_ARN: LOADER_ARN });
  });

  afterAll(async () => {
    await lambda?.stop();
  });

  /** Lambda's asynchronous invocation accepted, as it answers it: 202, nothing run yet. */
  const accepted = () => ({ status: 202 });
  /** The job `start` sent the loader, asynchronously. */
  function sentJob(): any {
    expect(lambda.invocations).toHaveLength(1);
    const [invocation] = lambda.invocations;
    expect(invocation.functionName).toBe(LOADER_ARN);
    expect(invocation.headers['x-amz-invocation-type']).toBe('Event');
    return JSON.parse(invocation.text);
  }
  /** The provider framework's isComplete event: the resource event and what start answered. */
  const checkEvent = (created: any, properties: Record<string, unknown>) => ({
    ...event('Create', properties),
    PhysicalResourceId: created.PhysicalResourceId,
    Data: created.Data,
  });

  it('start answers at once; the loader copies in its own invocation; isComplete waits for it, then returns its data', async () => {
    const content = randomBytes(400_000);
    await upload('job/model.onnx', content);
    lambda.respondWith(accepted);
    const properties = props('job/model.onnx');
    const modelPath = path.join(mount, 'model.onnx');

    const started = await start(event('Create', properties));

    expect(started).toEqual({
      PhysicalResourceId: modelPath,
      Data: { ModelPath: modelPath, CopyJobId: expect.stringMatching(/^[0-9a-f-]{36}$/), CopyRequestedAt: expect.any(String) },
    });
    const job = sentJob();
    expect(job).toEqual({
      CopyJob: { Id: started.Data.CopyJobId, RequestType: 'Create', LogicalResourceId: 'ModelLoader', ResourceProperties: expect.objectContaining(properties) },
    });
    // Nothing is copied until Lambda runs the job.
    expect(await readdir(mount)).toEqual([]);
    expect(await isComplete(checkEvent(started, properties))).toEqual({ IsComplete: false });

    // Lambda runs the job: the loader is held mid-download, and isComplete still waits.
    proxy.fault = { holdAfterBytes: 100_000 };
    const running = handler(job, FIFTEEN_MINUTES);
    await vi.waitFor(() => expect(proxy.heldCount).toBeGreaterThan(0));
    expect(await isComplete(checkEvent(started, properties))).toEqual({ IsComplete: false });
    proxy.releaseHeld();
    expect(await running).toBeUndefined();

    expect(await isComplete(checkEvent(started, properties))).toEqual({
      IsComplete: true,
      Data: { ModelPath: modelPath, SizeBytes: content.length, ETag: `"${md5Hex(content)}"` },
    });
    expect((await readFile(modelPath)).equals(content)).toBe(true);
    expect((await readdir(mount)).sort()).toEqual(['.copies', 'model.onnx']);
  });

  it('a copy that fails fails the deploy, with the reason, through isComplete', async () => {
    lambda.respondWith(accepted);
    const properties = props('job/missing.onnx');
    const started = await start(event('Create', properties));

    expect(await handler(sentJob(), FIFTEEN_MINUTES)).toBeUndefined();

    const error = await rejectionOf(isComplete(checkEvent(started, properties)));
    expect(error.message).toContain(`s3://${BUCKET}/job/missing.onnx`);
    expect(error.message).toContain('NotFound');
    expect(await readdir(mount)).toEqual(['.copies']);
  });

  it("reports a copy that outlived the loader's invocation, instead of waiting for the provider's timeout", async () => {
    await upload('job/slow.onnx', randomBytes(300_000));
    lambda.respondWith(accepted);
    const properties = props('job/slow.onnx');
    const started = await start(event('Create', properties));
    proxy.fault = { holdAfterBytes: 50_000 };
    // The loader's invocation has 15 minutes left when the job starts; the check comes 17 minutes later.
    const running = handler(sentJob(), FIFTEEN_MINUTES);
    await vi.waitFor(() => expect(proxy.heldCount).toBeGreaterThan(0));
    const later = Date.now() + 17 * 60 * 1000;
    vi.spyOn(Date, 'now').mockReturnValue(later);

    const error = await rejectionOf(isComplete(checkEvent(started, properties)));

    vi.mocked(Date.now).mockRestore();
    expect(error.message).toMatch(new RegExp(`Copying s3://${BUCKET}/job/slow.onnx to .*model.onnx did not finish: the loader stopped at its 15-minute limit`));
    expect(error.message).toContain('throughputMode');
    proxy.releaseHeld();
    await running;
  });

  it('fails a job that never started once Lambda would have dropped it', async () => {
    const properties = props('job/never.onnx');
    const requestedAt = new Date(Date.now() - 10 * 60 * 1000).toISOString();
    const stale = {
      ...event('Create', properties),
      PhysicalResourceId: path.join(mount, 'model.onnx'),
      Data: { CopyJobId: '0f8fad5b-d9cb-469f-a165-70867728950e', CopyRequestedAt: requestedAt },
    };

    const error = await rejectionOf(isComplete(stale));

    expect(error.message).toMatch(/never started: the loader did not record it within 300 s/);
    const recent = { ...stale, Data: { ...stale.Data, CopyRequestedAt: new Date().toISOString() } };
    expect(await isComplete(recent)).toEqual({ IsComplete: false });
  });

  it('an Update job carries what it replaces, so the loader deletes the precompiled copy the new properties drop', async () => {
    await upload('job/pair.onnx', randomBytes(20_000));
    await upload('job/pair.ort', randomBytes(30_000));
    const modelPath = path.join(mount, 'model.onnx');
    const before = props('job/pair.onnx', 'model.onnx', { PrecompiledS3Uri: `s3://${BUCKET}/job/pair.ort`, PrecompiledFileName: 'model.ort' });
    await handler(event('Create', before));
    lambda.respondWith(accepted);
    const after = props('job/pair.onnx');
    const update = event('Update', after, modelPath, before);

    const started = await start(update);

    const job = sentJob();
    expect(job.CopyJob).toMatchObject({ RequestType: 'Update', PhysicalResourceId: modelPath, OldResourceProperties: expect.objectContaining(before) });
    expect(await handler(job, FIFTEEN_MINUTES)).toBeUndefined();
    expect(await isComplete({ ...update, Data: started.Data })).toMatchObject({ IsComplete: true, Data: { ModelPath: modelPath } });
    expect((await readdir(mount)).sort()).toEqual(['.copies', 'model.onnx']);
  });

  it('start refuses bad properties before any job exists, naming the property', async () => {
    lambda.respondWith(accepted);

    const error = await rejectionOf(start(event('Create', props('job/model.onnx', '../model.onnx'))));

    expect(error.message.startsWith('ModelFileName')).toBe(true);
    expect(lambda.invocations).toEqual([]);
  });

  it('isComplete fails naming MountPath when nothing is mounted there', async () => {
    const absent = path.join(mount, 'not-mounted');
    const properties = props('job/model.onnx', 'model.onnx', { MountPath: absent });

    const error = await rejectionOf(
      isComplete({ ...event('Create', properties), Data: { CopyJobId: '0f8fad5b-d9cb-469f-a165-70867728950e', CopyRequestedAt: new Date().toISOString() } }),
    );

    expect(error.message).toContain(`MountPath ${absent}`);
  });

  it('a Delete goes to the loader synchronously, and is complete once it answers', async () => {
    await upload('job/delete.onnx', randomBytes(10_000));
    const { PhysicalResourceId } = await handler(event('Create', props('job/delete.onnx')));
    lambda.respondWith(async (invocation) => ({ payload: await handler(JSON.parse(invocation.text)) }));
    const deletion = event('Delete', props('job/delete.onnx'), PhysicalResourceId);

    expect(await start(deletion)).toEqual({ PhysicalResourceId });

    expect(lambda.invocations).toHaveLength(1);
    expect(lambda.invocations[0].headers['x-amz-invocation-type']).toBe('RequestResponse');
    expect(await readdir(mount)).toEqual([]);
    expect(await isComplete({ ...deletion })).toEqual({ IsComplete: true });
  });

  it("a Delete the loader fails fails with the loader's message", async () => {
    lambda.respondWith(() => functionError('Error', 'Deleting /mnt/models/m.onnx failed: EACCES'));

    const error = await rejectionOf(start(event('Delete', props('job/x.onnx'), path.join(mount, 'm.onnx'))));

    expect(error.message).toBe('Deleting /mnt/models/m.onnx failed: EACCES');
  });
});

/** Time left in the loader's invocation, as Lambda's context gives it. */
const minutes = (n: number) => ({ getRemainingTimeInMillis: () => n * 60 * 1000 });

/** A copy job as the starter sends it to the loader. */
const copyJob = (id: string, key: string) => ({ CopyJob: { Id: id, RequestType: 'Create', LogicalResourceId: 'ModelLoader', ResourceProperties: props(key) } });

/** The provider framework's isComplete event for copy job `id`, requested now. */
const copyJobCheck = (id: string, key: string) => ({
  RequestType: 'Create',
  LogicalResourceId: 'ModelLoader',
  ResourceProperties: props(key),
  PhysicalResourceId: path.join(mount, 'model.onnx'),
  Data: { ModelPath: path.join(mount, 'model.onnx'), CopyJobId: id, CopyRequestedAt: new Date().toISOString() },
});

/**
 * The copy job's status file, as the loader writes it and the custom resource's check reads it: the
 * deadline comes from the loader's own invocation, a job's status survives other jobs (only old ones
 * are swept), and the check reads no file but a job's own.
 */
describe('the copy job and its status', () => {
  it("gives up on a job past the loader's own remaining time, not a fixed 15 minutes", async () => {
    await s3.putObject(BUCKET, 'short/model.onnx', randomBytes(300_000));
    const id = randomUUID();
    proxy.fault = { holdAfterBytes: 50_000 };
    // The invocation had 2 minutes left when the job started (a loader given a shorter timeout).
    const running = handler(copyJob(id, 'short/model.onnx'), minutes(2));
    await vi.waitFor(() => expect(proxy.heldCount).toBeGreaterThan(0));
    const later = Date.now() + 4 * 60 * 1000;
    vi.spyOn(Date, 'now').mockReturnValue(later);

    const error = await rejectionOf(isComplete(copyJobCheck(id, 'short/model.onnx')));

    vi.mocked(Date.now).mockRestore();
    expect(error.message).toMatch(/did not finish: the loader stopped at its 2-minute limit/);
    proxy.releaseHeld();
    await running;
  });

  it('keeps the status of other jobs that ended recently, and sweeps only those a day old', async () => {
    await s3.putObject(BUCKET, 'sweep/model.onnx', randomBytes(5_000));
    const [old, recent, next] = [randomUUID(), randomUUID(), randomUUID()];
    await handler(copyJob(old, 'sweep/model.onnx'), minutes(15));
    await handler(copyJob(recent, 'sweep/model.onnx'), minutes(15));
    const twoDaysAgo = new Date(Date.now() - 2 * 24 * 60 * 60 * 1000);
    await utimes(path.join(mount, '.copies', `${old}.json`), twoDaysAgo, twoDaysAgo);

    await handler(copyJob(next, 'sweep/model.onnx'), minutes(15));

    expect((await readdir(path.join(mount, '.copies'))).sort()).toEqual([`${next}.json`, `${recent}.json`].sort());
    expect(await isComplete(copyJobCheck(recent, 'sweep/model.onnx'))).toMatchObject({ IsComplete: true, Data: { ModelPath: path.join(mount, 'model.onnx') } });
  });

  it('reads only a copy job’s own status: a CopyJobId that is not a job id is refused, naming it', async () => {
    // A file elsewhere on the file system that reads as a finished copy.
    await writeFile(path.join(mount, 'planted.json'), JSON.stringify({ state: 'succeeded', data: { ModelPath: '/elsewhere' } }));
    await mkdir(path.join(mount, '.copies'));

    for (const id of ['../planted', 'not-a-uuid']) {
      const error = await rejectionOf(isComplete(copyJobCheck(id, 'any/model.onnx')));
      expect(error.message).toMatch(/^CopyJobId must be the UUID of a copy job, got /);
    }
  });
});
