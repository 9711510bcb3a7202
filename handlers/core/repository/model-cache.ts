/**
 * The loaded models of a repository, least recently used first out, under a memory budget.
 *
 * - Keyed by (model, version): `ModelKey`. A request takes a lease on its model and releases it
 *   when its answer is built; a model with a lease (or still loading) is never unloaded. Other
 *   features that run a model (batching, variants, shadow traffic) take their own leases.
 * - One load per model: concurrent leases on a model that is not loaded wait for the same load.
 * - The budget is of bytes charged by the caller (the model file's size, see repository-handler.ts).
 *   A load first reserves its charge, unloading the least recently used models without a lease
 *   (models marked `preferred`, the warm ones, last); when every loaded model is leased, it waits
 *   for a release, up to `waitMs`, then fails with `CacheFullError`. The charged bytes never pass
 *   the budget, so `peakBytes` is at most `budgetBytes`.
 * - A model whose charge alone passes the budget fails at once with `TooLargeError`.
 *
 * Nothing here knows onnxruntime: a value is loaded and unloaded by the caller's functions.
 */

/** A model version of the repository. */
export interface ModelKey {
  readonly name: string;
  readonly version: string;
}

/** The cache's string form of a key: names cannot hold `/` (see REPOSITORY_NAME_PATTERN). */
export function keyOf(key: ModelKey): string {
  return `${key.name}/${key.version}`;
}

/** What a lease gives: the loaded value, whether it was loaded already, and its release. */
export interface ModelLease<T> {
  readonly value: T;
  /** True when the model was loaded before this lease asked for it. */
  readonly hit: boolean;
  /** Gives the lease back; the model may be unloaded once no lease holds it. Idempotent. */
  release(): void;
}

/** How a model is loaded and unloaded, and what it is charged. */
export interface ModelLoader<T> {
  /** Bytes the loaded model is charged against the budget. */
  readonly bytes: number;
  load(): Promise<T>;
  unload(value: T): void;
}

export interface ModelCacheOptions {
  readonly budgetBytes: number;
  /** How long a load waits for leased models to be released before it fails. */
  readonly waitMs: number;
  /** Unloaded last (the warm models). @default - none */
  readonly preferred?: (key: ModelKey) => boolean;
  /** Called after a model is unloaded to make room. */
  readonly onEvicted?: (key: ModelKey, bytes: number) => void;
}

/** A model whose charge alone is more than the whole budget. */
export class TooLargeError extends Error {
  constructor(
    readonly key: ModelKey,
    readonly bytes: number,
    readonly budgetBytes: number,
  ) {
    super(`model '${key.name}' version '${key.version}' needs ${bytes} bytes, more than the budget of ${budgetBytes} bytes`);
    this.name = 'TooLargeError';
  }
}

/** No room could be made in time: every loaded model was in use. */
export class CacheFullError extends Error {
  constructor(
    readonly key: ModelKey,
    readonly waitedMs: number,
  ) {
    super(`no room for model '${key.name}' version '${key.version}' within ${waitedMs} ms: every loaded model is serving a request`);
    this.name = 'CacheFullError';
  }
}

interface Entry<T> {
  readonly key: ModelKey;
  readonly id: string;
  readonly bytes: number;
  readonly unload: (value: T) => void;
  leases: number;
  lastUsed: number;
  /** The load in flight or done; cleared when it fails. */
  loading?: Promise<T>;
  value?: T;
  /** Its bytes are charged. */
  reserved?: boolean;
}

export interface ModelCacheStats {
  readonly budgetBytes: number;
  readonly usedBytes: number;
  /** The most bytes ever charged at once. */
  readonly peakBytes: number;
  readonly loads: number;
  readonly hits: number;
  readonly evictions: number;
  /** The keys loaded (or loading), least recently used first. */
  readonly loaded: readonly ModelKey[];
}

export class ModelCache<T> {
  private readonly entries = new Map<string, Entry<T>>();
  private usedBytes = 0;
  private peakBytes = 0;
  private loads = 0;
  private hits = 0;
  private evictions = 0;
  private tick = 0;
  private waiters: Array<() => void> = [];

  constructor(private readonly options: ModelCacheOptions) {}

  /** Whether the model is loaded (not only loading). */
  isLoaded(key: ModelKey): boolean {
    return this.entries.get(keyOf(key))?.value !== undefined;
  }

  /** Whether the model is loaded or loading (its bytes charged): its files must stay. */
  holds(key: ModelKey): boolean {
    return this.entries.get(keyOf(key))?.reserved === true;
  }

  stats(): ModelCacheStats {
    const loaded = [...this.entries.values()].sort((a, b) => a.lastUsed - b.lastUsed).map((e) => e.key);
    return { budgetBytes: this.options.budgetBytes, usedBytes: this.usedBytes, peakBytes: this.peakBytes, loads: this.loads, hits: this.hits, evictions: this.evictions, loaded };
  }

  /**
   * A lease on the model, loading it first when it is not loaded. Rejects with TooLargeError,
   * CacheFullError, or the load's own error (the model is then not kept, and its charge is freed).
   */
  async lease(key: ModelKey, loader: ModelLoader<T>): Promise<ModelLease<T>> {
    const id = keyOf(key);
    let entry = this.entries.get(id);
    if (entry?.value !== undefined) {
      this.hits++;
      return this.grant(entry, true);
    }
    if (!entry) {
      if (loader.bytes > this.options.budgetBytes) throw new TooLargeError(key, loader.bytes, this.options.budgetBytes);
      entry = { key, id, bytes: loader.bytes, unload: loader.unload, leases: 0, lastUsed: ++this.tick };
      // Held while it waits for room and loads: nobody evicts it, and a second request waits for this load.
      entry.leases++;
      this.entries.set(id, entry);
      entry.loading = this.reserveAndLoad(entry, loader);
    } else {
      entry.leases++;
    }
    const mine = entry;
    try {
      await mine.loading;
    } catch (e) {
      mine.leases--;
      throw e;
    }
    // The lease taken above (or the one held while loading) is this request's.
    return this.grant(mine, false, true);
  }

  private async reserveAndLoad(entry: Entry<T>, loader: ModelLoader<T>): Promise<T> {
    try {
      await this.reserve(entry);
      this.loads++;
      const value = await loader.load();
      entry.value = value;
      return value;
    } catch (e) {
      // Not kept: the next request tries again (the loader's own back-off decides when it may).
      if (this.entries.get(entry.id) === entry) {
        this.entries.delete(entry.id);
        if (entry.reserved) this.free(entry.bytes);
      }
      throw e;
    }
  }

  /** Makes room for the entry's bytes and charges them, waiting for releases when all else is leased. */
  private async reserve(entry: Entry<T>): Promise<void> {
    const started = performance.now();
    for (;;) {
      while (this.usedBytes + entry.bytes > this.options.budgetBytes) {
        const victim = this.victim(entry);
        if (!victim) break;
        this.evict(victim);
      }
      if (this.usedBytes + entry.bytes <= this.options.budgetBytes) {
        this.usedBytes += entry.bytes;
        this.peakBytes = Math.max(this.peakBytes, this.usedBytes);
        entry.reserved = true;
        return;
      }
      const left = this.options.waitMs - (performance.now() - started);
      if (left <= 0) throw new CacheFullError(entry.key, this.options.waitMs);
      await this.released(left);
    }
  }

  /** The least recently used loaded model without a lease, preferred ones last. */
  private victim(except: Entry<T>): Entry<T> | undefined {
    let best: Entry<T> | undefined;
    let bestPreferred = true;
    for (const e of this.entries.values()) {
      if (e === except || e.leases > 0 || e.value === undefined) continue;
      const preferred = this.options.preferred?.(e.key) ?? false;
      if (!best || (bestPreferred && !preferred) || (preferred === bestPreferred && e.lastUsed < best.lastUsed)) {
        best = e;
        bestPreferred = preferred;
      }
    }
    return best;
  }

  private evict(entry: Entry<T>): void {
    this.entries.delete(entry.id);
    this.free(entry.bytes);
    this.evictions++;
    try {
      entry.unload(entry.value as T);
    } finally {
      this.options.onEvicted?.(entry.key, entry.bytes);
    }
  }

  private free(bytes: number): void {
    this.usedBytes -= bytes;
  }

  private grant(entry: Entry<T>, hit: boolean, alreadyCounted = false): ModelLease<T> {
    if (!alreadyCounted) entry.leases++;
    entry.lastUsed = ++this.tick;
    let released = false;
    return {
      value: entry.value as T,
      hit,
      release: () => {
        if (released) return;
        released = true;
        entry.leases--;
        entry.lastUsed = ++this.tick;
        if (entry.leases === 0) this.wake();
      },
    };
  }

  /** Resolves at the next release, or after `ms`. */
  private released(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}
