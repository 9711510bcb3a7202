import { describe, expect, it } from 'vitest';
import { CacheFullError, ModelCache, type ModelKey, TooLargeError } from '../../../../handlers/core/repository/model-cache';

/** A model whose load resolves when the test says so; unloads are recorded. */
function loader(bytes: number, unloaded: string[], name: string) {
  let resolve!: (v: string) => void;
  let loads = 0;
  const loaded = new Promise<string>((r) => {
    resolve = r;
  });
  return {
    bytes,
    load: () => {
      loads++;
      return loaded;
    },
    unload: (v: string) => unloaded.push(v),
    finish: () => resolve(name),
    get loads() {
      return loads;
    },
  };
}

const key = (name: string, version = '1'): ModelKey => ({ name, version });

describe('ModelCache', () => {
  it('loads once for concurrent leases, and unloads the least recently used model without a lease', async () => {
    const unloaded: string[] = [];
    const cache = new ModelCache<string>({ budgetBytes: 200, waitMs: 1000 });
    const a = loader(100, unloaded, 'a');
    const leases = [cache.lease(key('a'), a), cache.lease(key('a'), a), cache.lease(key('a'), a)];
    a.finish();
    const got = await Promise.all(leases);
    expect(a.loads).toBe(1);
    expect(got.map((l) => [l.value, l.hit])).toEqual([
      ['a', false],
      ['a', false],
      ['a', false],
    ]);
    for (const l of got) l.release();
    const b = loader(100, unloaded, 'b');
    b.finish();
    (await cache.lease(key('b'), b)).release();
    (await cache.lease(key('a'), a)).release(); // a is now the most recently used
    const c = loader(100, unloaded, 'c');
    c.finish();
    (await cache.lease(key('c'), c)).release();
    expect(unloaded).toEqual(['b']);
    expect(cache.stats()).toMatchObject({ usedBytes: 200, peakBytes: 200, loads: 3, evictions: 1 });
  });

  it('never unloads a model with a lease: a load waits for a release, then takes the room', async () => {
    const unloaded: string[] = [];
    const cache = new ModelCache<string>({ budgetBytes: 100, waitMs: 5000 });
    const a = loader(100, unloaded, 'a');
    a.finish();
    const leaseA = await cache.lease(key('a'), a);
    const b = loader(100, unloaded, 'b');
    b.finish();
    let bReady = false;
    const leaseB = cache.lease(key('b'), b).then((l) => {
      bReady = true;
      return l;
    });
    await new Promise((r) => setTimeout(r, 50));
    expect(bReady).toBe(false);
    expect(unloaded).toEqual([]);
    leaseA.release();
    expect((await leaseB).value).toBe('b');
    expect(unloaded).toEqual(['a']);
    expect(cache.stats().peakBytes).toBe(100);
  });

  it('gives up with CacheFullError after waitMs when every model stays in use', async () => {
    const cache = new ModelCache<string>({ budgetBytes: 100, waitMs: 50 });
    const a = loader(100, [], 'a');
    a.finish();
    await cache.lease(key('a'), a);
    const b = loader(60, [], 'b');
    await expect(cache.lease(key('b'), b)).rejects.toBeInstanceOf(CacheFullError);
    expect(b.loads).toBe(0);
    expect(cache.stats().usedBytes).toBe(100);
  });

  it('refuses a model larger than the whole budget at once', async () => {
    const cache = new ModelCache<string>({ budgetBytes: 100, waitMs: 1000 });
    await expect(cache.lease(key('big'), loader(101, [], 'big'))).rejects.toBeInstanceOf(TooLargeError);
    expect(cache.stats().usedBytes).toBe(0);
  });

  it('frees the charge of a failed load and loads again on the next lease', async () => {
    const cache = new ModelCache<string>({ budgetBytes: 100, waitMs: 1000 });
    let attempts = 0;
    const flaky = {
      bytes: 100,
      load: async () => {
        attempts++;
        if (attempts === 1) throw new Error('no such file');
        return 'ok';
      },
      unload: () => undefined,
    };
    await expect(cache.lease(key('m'), flaky)).rejects.toThrow('no such file');
    expect(cache.stats().usedBytes).toBe(0);
    expect((await cache.lease(key('m'), flaky)).value).toBe('ok');
  });

  it('unloads the preferred (warm) models last, and keys versions apart', async () => {
    const unloaded: string[] = [];
    const cache = new ModelCache<string>({ budgetBytes: 200, waitMs: 1000, preferred: (k) => k.name === 'warm' });
    for (const [name, version] of [
      ['warm', '1'],
      ['m', '1'],
      ['m', '2'],
    ]) {
      const l = loader(100, unloaded, `${name}/${version}`);
      l.finish();
      (await cache.lease(key(name, version), l)).release();
    }
    expect(unloaded).toEqual(['m/1']);
    expect(cache.stats().loaded.map((k) => `${k.name}/${k.version}`)).toEqual(['warm/1', 'm/2']);
  });
});
