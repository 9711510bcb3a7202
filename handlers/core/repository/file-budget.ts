/**
 * The /tmp budget of a repository served from S3: each model version's files are fetched into a
 * folder of their own under the cache directory, charged the sizes the listing gave. Before a
 * fetch, the least recently used folders of models that are not loaded are removed until the new
 * files fit. The files of a loaded (or loading) model are never removed: a precompiled model's
 * session maps its file.
 */
import { rm } from 'node:fs/promises';
import { type ModelKey, TooLargeError, keyOf } from './model-cache';

/** Every folder holds files of loaded models: no room can be made. */
export class FilesInUseError extends Error {
  constructor(readonly key: ModelKey) {
    super(`no room in the model cache directory for model '${key.name}' version '${key.version}': the files there belong to loaded models`);
    this.name = 'FilesInUseError';
  }
}

interface Folder {
  readonly key: ModelKey;
  readonly dir: string;
  bytes: number;
  lastUsed: number;
}

export class FileBudget {
  private readonly folders = new Map<string, Folder>();
  private usedBytes = 0;
  private tick = 0;
  private removals = 0;

  constructor(
    readonly budgetBytes: number,
    /** Whether a model's files must stay (it is loaded or loading). */
    private readonly inUse: (key: ModelKey) => boolean,
  ) {}

  stats(): { budgetBytes: number; usedBytes: number; removals: number } {
    return { budgetBytes: this.budgetBytes, usedBytes: this.usedBytes, removals: this.removals };
  }

  /** Makes room for the model's files in `dir` and charges them; a folder already charged is only touched (and re-sized). */
  async reserve(key: ModelKey, dir: string, bytes: number): Promise<void> {
    if (bytes > this.budgetBytes) throw new TooLargeError(key, bytes, this.budgetBytes);
    const id = keyOf(key);
    const existing = this.folders.get(id);
    const extra = bytes - (existing?.bytes ?? 0);
    while (this.usedBytes + extra > this.budgetBytes) {
      const victim = [...this.folders.values()].filter((f) => f !== existing && !this.inUse(f.key)).sort((a, b) => a.lastUsed - b.lastUsed)[0];
      if (!victim) throw new FilesInUseError(key);
      this.folders.delete(keyOf(victim.key));
      this.usedBytes -= victim.bytes;
      this.removals++;
      await rm(victim.dir, { recursive: true, force: true });
    }
    if (existing) {
      existing.bytes = bytes;
      existing.lastUsed = ++this.tick;
    } else {
      this.folders.set(id, { key, dir, bytes, lastUsed: ++this.tick });
    }
    this.usedBytes += extra;
  }
}
