import * as fs from 'node:fs';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MatMulFp32Model, matMulFp32Model } from '../../../tools/onnx';
import { type LocalS3, startLocalS3 } from '../../../tools/local-s3';
import { call, restEvent } from '../../../fixtures/events';
import { importCoreBundle, tempDir } from '../../support/handler';
import { logged } from '../../support/logs';

/*
 * A model repository behind one handler (the bundle Lambda runs): five models of about 1.5 MB each
 * (MatMul, every weight read), a memory budget of 7 MiB that holds two of them (each is charged twice its file), and requests for all
 * of them, one after another and at once. Every answer is checked against its model's plain-JS
 * reference, with an input of its own, so that an answer from the wrong model or version shows.
 */

interface RepoModel {
  readonly name: string;
  readonly version: string;
  readonly model: MatMulFp32Model;
  readonly k: number;
}

const N = 600;
/** Distinct input widths: each model's requests only fit that model's signature. */
const MODELS: RepoModel[] = Array.from({ length: 5 }, (_, i) => {
  const k = 600 + 20 * i;
  return { name: `model-${i}`, version: '1', k, model: matMulFp32Model({ k, n: N, seed: 100 + i }) };
});
/** A second version of model-0, with other weights. */
const MODEL_0_V2: RepoModel = { name: 'model-0', version: '2', k: 600, model: matMulFp32Model({ k: 600, n: N, seed: 999 }) };
/** Each model is charged twice its file (2.9 to 3.3 MB): 7 MiB holds two of them, never three. */
const BUDGET_MB = 7;
const BUDGET_BYTES = BUDGET_MB * 1024 * 1024;

function writeRepository(root: string, models: readonly RepoModel[]): void {
  for (const m of models) {
    fs.mkdirSync(path.join(root, m.name, m.version), { recursive: true });
    fs.writeFileSync(path.join(root, m.name, m.version, 'model.onnx'), m.model.bytes);
  }
}

function request(m: RepoModel, i: number) {
  const input = m.model.sampleInput(1, 7 + i);
  return { input, body: { id: `${m.name}-${i}`, inputs: [{ name: 'x', shape: [1, m.k], datatype: 'FP32', data: input.values }] } };
}

/** Routes without a version serve model-0's version 2: its version 1 is asked for by version. */
async function inferAndCheck(handler: (e: unknown) => Promise<any>, m: RepoModel, i: number, versioned = m === MODELS[0]): Promise<void> {
  const { input, body } = request(m, i);
  const route = versioned ? `/v2/models/${m.name}/versions/${m.version}/infer` : `/v2/models/${m.name}/infer`;
  const answer = await call(handler, restEvent('POST', route, body));
  expect(answer.status, JSON.stringify(answer.body)).toBe(200);
  expect(answer.body.model_name).toBe(m.name);
  expect(answer.body.model_version).toBe(m.version);
  expect(answer.body.id).toBe(`${m.name}-${i}`);
  const y = answer.body.outputs[0].data as number[];
  const expected = m.model.predict(input);
  expect(y).toHaveLength(N);
  for (let j = 0; j < N; j += 37) expect(y[j]).toBeCloseTo(expected[j], 3);
}

async function repositoryEntry(env: Record<string, string>) {
  const { createModelRepositoryEntry } = await importCoreBundle();
  return createModelRepositoryEntry({ env: { MODEL_CACHE_MEMORY_MB: String(BUDGET_MB), ...env } });
}

/** Shuffled deterministically, so that requests for the five models interleave. */
function interleaved(rounds: number): Array<{ m: RepoModel; i: number }> {
  const out: Array<{ m: RepoModel; i: number }> = [];
  for (let r = 0; r < rounds; r++) for (const [j, m] of MODELS.entries()) out.push({ m, i: r * 10 + j });
  let seed = 5;
  for (let i = out.length - 1; i > 0; i--) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    const j = seed % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

function describeRepository(kind: 'directory' | 'S3', setup: () => Promise<{ env: Record<string, string>; add(models: readonly RepoModel[]): Promise<void> }>) {
  describe(`a model repository in ${kind === 'S3' ? 'S3' : 'a local directory'}, with a budget for two of its five models`, () => {
    let repo: Awaited<ReturnType<typeof setup>>;
    let entry: any;
    let handler: (e: unknown) => Promise<any>;

    beforeAll(async () => {
      repo = await setup();
      await repo.add([...MODELS, MODEL_0_V2]);
      entry = await repositoryEntry(repo.env);
      handler = entry.handle;
    });

    it('answers interleaved requests for every model right, unloading the least recently used within the budget', async () => {
      for (const { m, i } of interleaved(3)) await inferAndCheck(handler, m, i);
      const stats = entry.stats();
      expect(stats.budgetBytes).toBe(BUDGET_BYTES);
      expect(stats.peakBytes).toBeLessThanOrEqual(BUDGET_BYTES);
      expect(stats.usedBytes).toBeLessThanOrEqual(BUDGET_BYTES);
      expect(stats.loaded.length).toBeLessThanOrEqual(2);
      // 15 requests over 5 models, 2 of which fit: most requests load, and every load past the
      // second unloads one.
      expect(stats.loads).toBeGreaterThan(5);
      expect(stats.evictions).toBe(stats.loads - stats.loaded.length);
      if (kind === 'S3') {
        // The files of unloaded models were removed to keep /tmp within its budget.
        expect(stats.diskUsedBytes).toBeLessThanOrEqual(stats.diskBudgetBytes);
        expect(stats.diskRemovals).toBeGreaterThan(0);
      }
    });

    it('answers concurrent requests for all five models right, never over the budget', async () => {
      const before = entry.stats();
      const answers = interleaved(8).map(({ m, i }) => inferAndCheck(handler, m, i));
      await Promise.all(answers);
      const stats = entry.stats();
      expect(stats.peakBytes).toBeLessThanOrEqual(BUDGET_BYTES);
      expect(stats.loaded.length).toBeLessThanOrEqual(2);
      expect(stats.evictions).toBeGreaterThan(before.evictions);
      // Loads that waited for a model in use still happened one per model at a time.
      expect(stats.loads - before.loads).toBeLessThanOrEqual(40);
    });

    it('loads a model once for many concurrent requests', async () => {
      // Make model-4 cold: load two others after it.
      await inferAndCheck(handler, MODELS[4], 1);
      await inferAndCheck(handler, MODELS[0], 2);
      await inferAndCheck(handler, MODELS[1], 3);
      expect(entry.stats().loaded.map((k: any) => k.name)).not.toContain('model-4');
      const before = entry.stats().loads;
      await Promise.all(Array.from({ length: 30 }, (_, i) => inferAndCheck(handler, MODELS[4], 100 + i)));
      expect(entry.stats().loads - before).toBe(1);
    });

    it('serves each version, the highest by default', async () => {
      await inferAndCheck(handler, MODEL_0_V2, 1);
      await inferAndCheck(handler, MODEL_0_V2, 2, true);
      await inferAndCheck(handler, MODELS[0], 3, true);
      const missing = await call(handler, restEvent('GET', '/v2/models/model-0/versions/7'));
      expect(missing.status).toBe(404);
      expect(missing.body.error).toContain("model 'model-0' has no version '7'; it has versions 1, 2");
    });

    it('checks each request against its own model, with the single-model messages', async () => {
      // model-1's request (k = 620) sent to model-2 (k = 640).
      const answer = await call(handler, restEvent('POST', '/v2/models/model-2/infer', request(MODELS[1], 1).body));
      expect(answer.status).toBe(400);
      expect(answer.body.error).toMatch(/'x'/);
      const metadata = await call(handler, restEvent('GET', '/v2/models/model-2'));
      expect(metadata.status).toBe(200);
      expect(metadata.body).toMatchObject({ name: 'model-2', versions: ['1'], inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 640] }] });
    });

    it('answers 404 naming an unknown model, and 400 for a name that would leave the repository', async () => {
      const unknown = await call(handler, restEvent('POST', '/v2/models/nope/infer', request(MODELS[0], 1).body));
      expect(unknown.status).toBe(404);
      expect(unknown.body.error).toContain("unknown model 'nope'");
      for (const p of [
        '/v2/models/../infer',
        '/v2/models/..%2Fmodel-0/infer',
        '/v2/models/%2E%2E/infer',
        '/v2/models/model-0/versions/..%2F..%2F1/infer',
        '/v2/models/a%5Cb/infer',
        '/v2/models/.hidden/infer',
      ]) {
        const answer = await call(handler, restEvent('POST', p, request(MODELS[0], 1).body));
        expect(answer.status, p).toBe(400);
        expect(answer.body.error, p).toMatch(/is not valid.*cannot leave the model repository/);
      }
    });

    it('lists the models in the index, loaded ones READY', async () => {
      const answer = await call(handler, restEvent('POST', '/v2/repository/index', {}));
      expect(answer.status).toBe(200);
      const names = answer.body.map((e: any) => `${e.name}/${e.version}`);
      expect(names).toEqual(['model-0/1', 'model-0/2', 'model-1/1', 'model-2/1', 'model-3/1', 'model-4/1']);
      const ready = answer.body.filter((e: any) => e.state === 'READY').map((e: any) => `${e.name}/${e.version}`);
      expect(ready).toEqual(
        entry
          .stats()
          .loaded.map((k: any) => `${k.name}/${k.version}`)
          .sort(),
      );
    });

    it('answers a model uploaded after it started, with no restart', async () => {
      const late: RepoModel = { name: 'late-model', version: '3', k: 610, model: matMulFp32Model({ k: 610, n: N, seed: 31 }) };
      expect((await call(handler, restEvent('POST', '/v2/models/late-model/infer', request(late, 1).body))).status).toBe(404);
      await repo.add([late]);
      await inferAndCheck(handler, late, 2);
    });

    it('refuses a model larger than the whole budget with a 507, loading nothing', async () => {
      const big: RepoModel = { name: 'too-big', version: '1', k: 1800, model: matMulFp32Model({ k: 1800, n: N, seed: 5 }) };
      await repo.add([big]);
      const before = entry.stats().loads;
      const answer = await call(handler, restEvent('POST', '/v2/models/too-big/infer', request(big, 1).body));
      expect(answer.status).toBe(507);
      expect(answer.body.error).toContain("model 'too-big' version '1' needs about");
      expect(answer.body.error).toContain(`more than this function's model budget of ${BUDGET_BYTES} bytes`);
      expect(entry.stats().loads).toBe(before);
      await inferAndCheck(handler, MODELS[3], 1);
    });
  });
}

describeRepository('directory', async () => {
  const root = tempDir('csi-repository-');
  return { env: { MODEL_REPOSITORY_PATH: root }, add: async (models) => writeRepository(root, models) };
});

let s3: LocalS3 | undefined;
afterAll(async () => {
  await s3?.stop();
});

describeRepository('S3', async () => {
  s3 = await startLocalS3();
  await s3.createBucket('repo');
  const local = s3;
  // The AWS SDK reads its region, credentials and endpoint from the process's environment.
  Object.assign(process.env, local.env());
  // The /tmp budget holds the files of three models: evicted models' files are removed too.
  return {
    env: { ...local.env(), MODEL_REPOSITORY_S3_URI: 's3://repo/models/', MODEL_CACHE_DIR: tempDir('csi-repository-cache-'), MODEL_CACHE_DISK_MB: '5' },
    add: async (models) => {
      for (const m of models) await local.putObject('repo', `models/${m.name}/${m.version}/model.onnx`, Buffer.from(m.model.bytes));
    },
  };
});

describe('warm-ups and direct invocations of a model repository', () => {
  it('loads the warm models on a warm-up, and reports one it cannot load', async () => {
    const root = tempDir('csi-repository-');
    writeRepository(root, MODELS);
    const entry = await repositoryEntry({ MODEL_REPOSITORY_PATH: root, MODEL_REPOSITORY_WARM_MODELS: 'model-1, model-2:1' });
    const warm = await entry.handle({ source: 'cdk-serverless-inference.warmer', holdMs: 0 });
    expect(warm).toMatchObject({ warmed: true, modelReady: true, coldStart: true });
    expect(entry.stats().loaded.map((k: any) => k.name)).toEqual(['model-1', 'model-2']);
    // Warm models are unloaded last: model-0 takes model-1's room (both models loaded are warm),
    // then model-3 and model-4 take model-0's and model-3's, though model-2 was used less recently.
    for (const [i, m] of [MODELS[0], MODELS[3], MODELS[4]].entries()) await inferAndCheck(entry.handle, m, i);
    expect(entry.stats().loaded.map((k: any) => k.name)).toEqual(['model-2', 'model-4']);

    const broken = await repositoryEntry({ MODEL_REPOSITORY_PATH: root, MODEL_REPOSITORY_WARM_MODELS: 'model-1,missing' });
    const answer = await broken.handle({ source: 'cdk-serverless-inference.warmer', holdMs: 0 });
    expect(answer).toMatchObject({ warmed: false, modelReady: false });
    expect(answer.error).toContain("unknown model 'missing'");
  });

  it('answers a direct invocation that names its model in the body', async () => {
    const root = tempDir('csi-repository-');
    writeRepository(root, MODELS);
    const entry = await repositoryEntry({ MODEL_REPOSITORY_PATH: root });
    const { input, body } = request(MODELS[2], 4);
    const answer = await entry.handle({ ...body, model_name: 'model-2' });
    expect(answer.model_name).toBe('model-2');
    const expected = MODELS[2].model.predict(input);
    for (let j = 0; j < N; j += 37) expect(answer.outputs[0].data[j]).toBeCloseTo(expected[j], 3);
    await expect(entry.handle(body)).rejects.toThrow(/\[400\] a direct invocation of a model repository names its model/);
  });

  it('is misconfigured, with the variable named, when a single model is set too', async () => {
    const { createModelRepositoryEntry } = await importCoreBundle();
    const entry = await createModelRepositoryEntry({ env: { MODEL_REPOSITORY_PATH: tempDir(), MODEL_PATH: '/x.onnx' } });
    const answer = await call(entry.handle, restEvent('GET', '/v2/health/ready'));
    expect(answer.status).toBe(500);
    expect(answer.body.error).toContain('misconfigured');
  });
});

describe('per-model metrics of a model repository', () => {
  it('records requests, cache hits, loads and evictions with the model as a dimension', async () => {
    const root = tempDir('csi-repository-');
    writeRepository(root, MODELS.slice(1, 4));
    // Powertools reads it when each model's metrics are made: on the model's first request.
    const saved = process.env.POWERTOOLS_METRICS_DISABLED;
    process.env.POWERTOOLS_METRICS_DISABLED = 'false';
    let logs: any[];
    try {
      const entry = await repositoryEntry({ MODEL_REPOSITORY_PATH: root });
      ({ logs } = await logged(async () => {
        // model-1 twice (a miss, then a hit), model-2, then model-3, which unloads model-1.
        for (const [i, m] of [MODELS[1], MODELS[1], MODELS[2], MODELS[3]].entries()) await inferAndCheck(entry.handle, m, i);
      }));
    } finally {
      process.env.POWERTOOLS_METRICS_DISABLED = saved;
    }
    const emf = logs.filter((l: any) => l._aws?.CloudWatchMetrics);
    const of = (model: string, metric: string) => emf.filter((l: any) => l.model === model && l[metric] !== undefined).flatMap((l: any) => [l[metric]].flat());
    expect(of('model-1', 'ModelCacheHit')).toEqual([0, 1]);
    expect(of('model-1', 'ModelRequestMs')).toHaveLength(2);
    expect(of('model-1', 'ModelLoadMs')).toHaveLength(1);
    expect(of('model-1', 'ModelEvicted')).toEqual([1]);
    expect(of('model-3', 'ModelCacheHit')).toEqual([0]);
    expect(of('model-2', 'InferenceMs')).toHaveLength(1);
    // The instance's cold start is counted once, not once per model.
    expect(emf.flatMap((l: any) => (l.ColdStart === undefined ? [] : [l.ColdStart]))).toEqual([1]);
  });
});

/** A response stream as Lambda's runtime hands it over: its bytes, after the HTTP prelude and eight NULs. */
class CapturedStream extends Writable {
  private readonly chunks: Buffer[] = [];
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.chunks.push(chunk);
    callback();
  }
  http(): { statusCode: number; body: any } {
    const bytes = Buffer.concat(this.chunks);
    const end = bytes.indexOf(Buffer.alloc(8));
    return { statusCode: JSON.parse(bytes.subarray(0, end).toString()).statusCode, body: JSON.parse(bytes.subarray(end + 8).toString()) };
  }
}

/** `awslambda.HttpResponseStream.from` as the runtime writes it: the JSON prelude, then eight NULs, before the body. */
const RUNTIME = {
  streamifyResponse: <H>(h: H) => h,
  HttpResponseStream: {
    from(stream: Writable, prelude: Record<string, unknown>) {
      let first = true;
      const write = stream.write.bind(stream);
      stream.write = ((chunk: Buffer | string, ...rest: unknown[]) => {
        const bytes = first ? Buffer.concat([Buffer.from(JSON.stringify(prelude)), Buffer.alloc(8), Buffer.from(chunk)]) : chunk;
        first = false;
        return (write as (c: unknown, ...r: unknown[]) => boolean)(bytes, ...rest);
      }) as typeof stream.write;
      return stream;
    },
  },
};

describe('a model repository answering through response streaming', () => {
  it("streams a model's answer, and the repository's own errors", async () => {
    const root = tempDir('csi-repository-');
    writeRepository(root, MODELS.slice(0, 2));
    (globalThis as { awslambda?: unknown }).awslambda = RUNTIME;
    try {
      const entry = await repositoryEntry({ MODEL_REPOSITORY_PATH: root });
      const { input, body } = request(MODELS[1], 3);
      const ok = new CapturedStream();
      await entry.handleStream(restEvent('POST', '/v2/models/model-1/infer', body), ok);
      const answer = ok.http();
      expect(answer.statusCode).toBe(200);
      const expected = MODELS[1].model.predict(input);
      for (let j = 0; j < N; j += 53) expect(answer.body.outputs[0].data[j]).toBeCloseTo(expected[j], 3);
      const missing = new CapturedStream();
      await entry.handleStream(restEvent('POST', '/v2/models/nope/infer', body), missing);
      expect(missing.http()).toMatchObject({ statusCode: 404, body: { error: expect.stringContaining("unknown model 'nope'") } });
      const outside = new CapturedStream();
      await entry.handleStream(restEvent('GET', '/v2/models/..%2F..%2Fetc'), outside);
      expect(outside.http().statusCode).toBe(400);
      const index = new CapturedStream();
      await entry.handleStream(restEvent('POST', '/v2/repository/index', {}), index);
      expect(index.http().body.map((e: any) => e.name)).toEqual(['model-0', 'model-1']);
    } finally {
      delete (globalThis as { awslambda?: unknown }).awslambda;
    }
  });
});
