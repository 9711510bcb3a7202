/**
 * A model repository: the models under one root, in Triton's layout `<name>/<version>/model.onnx`
 * (with `model.ort`, the precompiled copy, beside it when there is one, and an optional
 * `<name>/config.json`). The root is a local directory (an EFS mount, `serve`) or an S3 prefix.
 *
 * A model's listing is reused for `refreshMs`; a model not known yet is looked up at once, so a
 * model uploaded after the function started answers its first request (a new version of a known
 * model is seen within `refreshMs`). Names are checked (REPOSITORY_NAME_PATTERN) before any path
 * or key is built from them. The S3 store is in s3-store.ts, loaded only for a repository in S3.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPOSITORY_MODEL_CONFIG_FILE, REPOSITORY_MODEL_FILE, REPOSITORY_NAME_PATTERN, REPOSITORY_PRECOMPILED_FILE } from '../../../contract/repository';

/** A file of a model version: a local path or an `s3://` URI, and its size. */
export interface RepositoryFile {
  readonly location: string;
  readonly sizeBytes: number;
}

export interface RepositoryVersion {
  readonly name: string;
  readonly version: string;
  readonly model: RepositoryFile;
  readonly precompiled?: RepositoryFile;
}

export interface RepositoryModel {
  readonly name: string;
  /** Its versions, by name. */
  readonly versions: ReadonlyMap<string, RepositoryVersion>;
  /** The version that routes without a version serve. */
  readonly defaultVersion: string;
}

/** Where the repository's files are: a directory or an S3 prefix. */
export interface RepositoryStore {
  /** A description for logs: the directory or the `s3://` prefix. */
  readonly root: string;
  /** The names of the models (folders under the root). */
  listModels(): Promise<string[]>;
  /** The model's versions (only those with a model.onnx) and config, or undefined when it has none. */
  readModel(name: string): Promise<{ versions: RepositoryVersion[]; config?: unknown } | undefined>;
}

/** Whether a model or version name may be used to build a path or key. */
export function isValidName(name: string): boolean {
  return REPOSITORY_NAME_PATTERN.test(name);
}

export class ModelRepository {
  private readonly known = new Map<string, { model: RepositoryModel | undefined; readAt: number }>();

  constructor(
    readonly store: RepositoryStore,
    private readonly refreshMs: number,
  ) {}

  /** The model, or undefined when the repository has no such model (or it has no version). */
  async model(name: string): Promise<RepositoryModel | undefined> {
    if (!isValidName(name)) throw new Error(`invalid model name ${JSON.stringify(name)}`);
    const cached = this.known.get(name);
    if (cached?.model && performance.now() - cached.readAt < this.refreshMs) return cached.model;
    const read = await this.store.readModel(name);
    const model = read && read.versions.length > 0 ? toModel(name, read.versions, read.config) : undefined;
    // A model that is not there is not remembered: its upload is seen at the next request.
    if (model) {
      this.known.set(name, { model, readAt: performance.now() });
    } else {
      this.known.delete(name);
    }
    return model;
  }

  /** Every model with at least one version. */
  async models(): Promise<RepositoryModel[]> {
    const names = (await this.store.listModels()).filter(isValidName).sort();
    const models = await Promise.all(names.map((n) => this.model(n)));
    return models.filter((m): m is RepositoryModel => m !== undefined);
  }
}

function toModel(name: string, versions: RepositoryVersion[], config: unknown): RepositoryModel {
  const byName = new Map(versions.map((v) => [v.version, v]));
  const wanted = (config as { defaultVersion?: unknown } | undefined)?.defaultVersion;
  const configured = typeof wanted === 'string' || typeof wanted === 'number' ? String(wanted) : undefined;
  const defaultVersion = configured !== undefined && byName.has(configured) ? configured : latestVersion([...byName.keys()]);
  return { name, versions: byName, defaultVersion };
}

/** The highest numbered version (Triton's `latest` policy); names that are not numbers sort after, by name. */
export function latestVersion(versions: readonly string[]): string {
  const numeric = (v: string) => (/^\d+$/.test(v) ? Number(v) : Number.NaN);
  return [...versions].sort((a, b) => {
    const na = numeric(a);
    const nb = numeric(b);
    if (!Number.isNaN(na) && !Number.isNaN(nb)) return na - nb;
    if (Number.isNaN(na) !== Number.isNaN(nb)) return Number.isNaN(na) ? 1 : -1;
    return a < b ? -1 : a > b ? 1 : 0;
  })[versions.length - 1];
}

/** A repository in a local directory: an EFS mount, a layer, or `serve --model-repository`. */
export class DirectoryStore implements RepositoryStore {
  constructor(readonly root: string) {}

  async listModels(): Promise<string[]> {
    const entries = await fs.promises.readdir(this.root, { withFileTypes: true });
    return entries.filter((e) => e.isDirectory()).map((e) => e.name);
  }

  async readModel(name: string): Promise<{ versions: RepositoryVersion[]; config?: unknown } | undefined> {
    const dir = path.join(this.root, name);
    let entries: fs.Dirent[];
    try {
      entries = await fs.promises.readdir(dir, { withFileTypes: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
      throw e;
    }
    const versions: RepositoryVersion[] = [];
    for (const e of entries) {
      if (!e.isDirectory() || !isValidName(e.name)) continue;
      const model = await statFile(path.join(dir, e.name, REPOSITORY_MODEL_FILE));
      if (!model) continue;
      const precompiled = await statFile(path.join(dir, e.name, REPOSITORY_PRECOMPILED_FILE));
      versions.push({ name, version: e.name, model, ...(precompiled ? { precompiled } : {}) });
    }
    let config: unknown;
    try {
      config = JSON.parse(await fs.promises.readFile(path.join(dir, REPOSITORY_MODEL_CONFIG_FILE), 'utf8'));
    } catch {
      // No config, or one that does not parse: the defaults apply.
    }
    return { versions, config };
  }
}

async function statFile(file: string): Promise<RepositoryFile | undefined> {
  try {
    const stat = await fs.promises.stat(file);
    return stat.isFile() ? { location: file, sizeBytes: stat.size } : undefined;
  } catch {
    return undefined;
  }
}
