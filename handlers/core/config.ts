import * as os from 'node:os';
import * as path from 'node:path';
import { ENV } from './environment';

export type GraphOptimizationLevel = 'disabled' | 'basic' | 'extended' | 'all';

/** Where the model file comes from: exactly one of a local path or an S3 object. */
export type ModelLocation =
  | { readonly kind: 'file'; readonly path: string }
  | { readonly kind: 's3'; readonly uri: string; readonly versionId?: string; readonly cacheDir: string; readonly idleTimeoutMs: number };

export interface HandlerConfig {
  readonly modelName: string;
  readonly modelVersion: string;
  readonly location: ModelLocation;
  readonly intraOpThreads: number;
  readonly interOpThreads: number;
  readonly graphOptimizationLevel: GraphOptimizationLevel;
  readonly maxBodyBytes: number;
  readonly initWaitMs: number;
}

const OPTIMIZATION_LEVELS: readonly GraphOptimizationLevel[] = ['disabled', 'basic', 'extended', 'all'];

/**
 * Reads the handler's configuration from environment variables (see `environment.ts`). A bad value
 * throws at once with the variable's name: a misconfigured function should say so in its first log.
 */
export function readConfig(env: NodeJS.ProcessEnv = process.env): HandlerConfig {
  const modelPath = env[ENV.MODEL_PATH];
  const s3Uri = env[ENV.MODEL_S3_URI];
  if (modelPath && s3Uri) {
    throw new Error(`set either ${ENV.MODEL_PATH} or ${ENV.MODEL_S3_URI}, not both`);
  }
  if (!modelPath && !s3Uri) {
    throw new Error(`no model configured: set ${ENV.MODEL_PATH} (a local .onnx file) or ${ENV.MODEL_S3_URI} (s3://bucket/key)`);
  }
  const location: ModelLocation = modelPath
    ? { kind: 'file', path: resolveModelPath(modelPath, env) }
    : {
        kind: 's3',
        uri: s3Uri!,
        versionId: env[ENV.MODEL_S3_VERSION_ID] || undefined,
        cacheDir: env[ENV.MODEL_CACHE_DIR] || '/tmp/models',
        idleTimeoutMs: positiveInt(env, ENV.MODEL_DOWNLOAD_TIMEOUT_MS, 30_000),
      };

  const level = (env[ENV.ORT_GRAPH_OPTIMIZATION_LEVEL] || 'all') as GraphOptimizationLevel;
  if (!OPTIMIZATION_LEVELS.includes(level)) {
    throw new Error(`${ENV.ORT_GRAPH_OPTIMIZATION_LEVEL} must be one of ${OPTIMIZATION_LEVELS.join(', ')}, got: ${level}`);
  }

  return {
    modelName: env[ENV.MODEL_NAME] || 'model',
    modelVersion: env[ENV.MODEL_VERSION] || '1',
    location,
    // onnxruntime defaults to half the cores; Lambda's vCPUs are all ours.
    intraOpThreads: positiveInt(env, ENV.ORT_INTRA_OP_THREADS, os.availableParallelism()),
    interOpThreads: positiveInt(env, ENV.ORT_INTER_OP_THREADS, 1),
    graphOptimizationLevel: level,
    maxBodyBytes: positiveInt(env, ENV.MAX_BODY_BYTES, 6 * 1024 * 1024),
    initWaitMs: nonNegativeInt(env, ENV.MODEL_INIT_WAIT_MS, 8_000),
  };
}

/** A relative MODEL_PATH is relative to the function's code (LAMBDA_TASK_ROOT), as a bundled model is. */
function resolveModelPath(p: string, env: NodeJS.ProcessEnv): string {
  return path.isAbsolute(p) ? p : path.resolve(env.LAMBDA_TASK_ROOT || process.cwd(), p);
}

function positiveInt(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const n = nonNegativeInt(env, name, fallback);
  if (n === 0) {
    throw new Error(`${name} must be a positive integer, got: 0`);
  }
  return n;
}

function nonNegativeInt(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') {
    return fallback;
  }
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) {
    throw new Error(`${name} must be a non-negative integer, got: ${raw}`);
  }
  return n;
}
