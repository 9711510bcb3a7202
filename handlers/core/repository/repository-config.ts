/**
 * The configuration of a handler serving a model repository: where the repository is, its budgets
 * and warm models, and the settings every model's session shares (read by config.ts's readConfig;
 * each model gets its own location, see repository-handler.ts).
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { ENV } from '../../../contract/environment';
import { REPOSITORY_SESSION_MEMORY_RATIO } from '../../../contract/repository';
import { DEFAULT_DOWNLOAD_IDLE_TIMEOUT_MS } from '../../../contract/defaults';
import { type HandlerConfig, type S3FetchSettings, readConfig, readS3FetchSettings } from '../config/config';
import { isValidName } from './model-repository';

export interface RepositoryConfig {
  /** Every model's session settings; its location, name and version are replaced per model. */
  readonly base: HandlerConfig;
  readonly source: { readonly kind: 'directory'; readonly root: string } | { readonly kind: 's3'; readonly uri: string };
  /** How S3 models are fetched (the single-model variables: MODEL_S3_*, MODEL_DOWNLOAD_TIMEOUT_MS). */
  readonly s3: { readonly fetchSettings: S3FetchSettings; readonly idleTimeoutMs: number };
  /** Where S3 models are fetched, a folder per model version. */
  readonly cacheDir: string;
  readonly memoryBudgetBytes: number;
  /** Unset: from the cache directory's file system when first needed. */
  readonly diskBudgetBytes?: number;
  /** Loaded by a warm-up, unloaded last. A key without version means the model's default version. */
  readonly warmModels: readonly { readonly name: string; readonly version?: string }[];
  readonly refreshMs: number;
  /** How long a load waits for models in use to be released before a 503. */
  readonly waitMs: number;
}

const MIB = 1024 * 1024;

/** What the function's memory keeps for the runtime, onnxruntime itself and requests (MiB). */
const MEMORY_RESERVE_MB = 256;

export const DEFAULT_REPOSITORY_REFRESH_MS = 10_000;
const DEFAULT_WAIT_MS = 10_000;

/** Whether the environment configures a repository rather than one model. */
export function isRepositoryEnvironment(env: NodeJS.ProcessEnv): boolean {
  return Boolean(env[ENV.MODEL_REPOSITORY_PATH] || env[ENV.MODEL_REPOSITORY_S3_URI]);
}

export function readRepositoryConfig(env: NodeJS.ProcessEnv = process.env): RepositoryConfig {
  const dir = env[ENV.MODEL_REPOSITORY_PATH];
  const uri = env[ENV.MODEL_REPOSITORY_S3_URI];
  if (dir && uri) throw new Error(`set either ${ENV.MODEL_REPOSITORY_PATH} or ${ENV.MODEL_REPOSITORY_S3_URI}, not both`);
  if (!dir && !uri) throw new Error(`no model repository configured: set ${ENV.MODEL_REPOSITORY_PATH} or ${ENV.MODEL_REPOSITORY_S3_URI}`);
  for (const single of [ENV.MODEL_PATH, ENV.MODEL_S3_URI]) {
    if (env[single])
      throw new Error(`${single} serves one model; a model repository (${dir ? ENV.MODEL_REPOSITORY_PATH : ENV.MODEL_REPOSITORY_S3_URI}) serves many: set one of them`);
  }
  if (uri && !/^s3:\/\/[^/]+(\/.*)?$/.test(uri)) throw new Error(`${ENV.MODEL_REPOSITORY_S3_URI} must be s3://bucket/prefix/, got: ${uri}`);
  // The session settings are read as for one model; the location given here is replaced per model.
  const base = readConfig({ ...env, [ENV.MODEL_PATH]: dir || '/', [ENV.MODEL_S3_URI]: '', [ENV.MODEL_PRECOMPILED_PATH]: '', [ENV.MODEL_PRECOMPILED_S3_URI]: '' });
  const memoryMb = optionalInt(env, 'AWS_LAMBDA_FUNCTION_MEMORY_SIZE');
  const budgetMb = optionalInt(env, ENV.MODEL_CACHE_MEMORY_MB);
  const memoryBudgetBytes = budgetMb !== undefined ? budgetMb * MIB : memoryMb !== undefined ? Math.max(0, (memoryMb - MEMORY_RESERVE_MB) * MIB) : Math.floor(os.totalmem() / 4);
  const diskMb = optionalInt(env, ENV.MODEL_CACHE_DISK_MB);
  // A loaded S3 model keeps its files in /tmp (a precompiled session maps its file): no more can be
  // loaded than /tmp holds, so the memory budget is at most what the disk budget's files are charged.
  const loadable = uri && diskMb !== undefined ? Math.min(memoryBudgetBytes, diskMb * MIB * REPOSITORY_SESSION_MEMORY_RATIO) : memoryBudgetBytes;
  return {
    base,
    source: dir ? { kind: 'directory', root: path.resolve(dir) } : { kind: 's3', uri: uri! },
    s3: { fetchSettings: readS3FetchSettings(env), idleTimeoutMs: optionalInt(env, ENV.MODEL_DOWNLOAD_TIMEOUT_MS) || DEFAULT_DOWNLOAD_IDLE_TIMEOUT_MS },
    cacheDir: env[ENV.MODEL_CACHE_DIR] || '/tmp/models',
    memoryBudgetBytes: loadable,
    ...(diskMb !== undefined ? { diskBudgetBytes: diskMb * MIB } : {}),
    warmModels: readWarmModels(env[ENV.MODEL_REPOSITORY_WARM_MODELS] ?? ''),
    refreshMs: optionalInt(env, ENV.MODEL_REPOSITORY_REFRESH_MS) ?? DEFAULT_REPOSITORY_REFRESH_MS,
    waitMs: DEFAULT_WAIT_MS,
  };
}

function readWarmModels(raw: string): { name: string; version?: string }[] {
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((s) => {
      const [name, version, ...rest] = s.split(':');
      if (rest.length > 0 || !isValidName(name) || (version !== undefined && !isValidName(version))) {
        throw new Error(`${ENV.MODEL_REPOSITORY_WARM_MODELS} must list model names, each optionally with :version, separated by commas, got: ${raw}`);
      }
      return version === undefined ? { name } : { name, version };
    });
}

/** A non-negative integer variable; empty counts as unset. */
function optionalInt(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got: ${raw}`);
  return n;
}
