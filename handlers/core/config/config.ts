import * as os from 'node:os';
import * as path from 'node:path';
import {
  DEFAULT_BATCH_MAX_QUEUE_DELAY_MS,
  DEFAULT_DOWNLOAD_IDLE_TIMEOUT_MS,
  DEFAULT_MODEL_INIT_WAIT_MS,
  DEFAULT_MODEL_LOAD_RETRY_MS,
  DEFAULT_MODEL_NAME,
  DEFAULT_MODEL_VERSION,
  DEFAULT_SAGEMAKER_CONTENT_TYPE,
  DEFAULT_SAGEMAKER_TIMEOUT_MS,
  GraphOptimizationLevel,
  LAMBDA_MAX_PAYLOAD_BYTES,
  LAMBDA_MAX_STREAMED_RESPONSE_BYTES,
} from '../../../contract/defaults';
import { ENV } from '../../../contract/environment';
import { METRICS_NAMESPACE } from '../../../contract/metrics';
import { type AsyncConfig, readAsyncConfig } from './async-config';

export type { GraphOptimizationLevel };

/**
 * How an S3 model is fetched, beside where from: the S3 client's addressing and the download's
 * tuning. What is unset here, fetchS3Model chooses per object (the part size) or from the
 * function's memory (the concurrency).
 */
export interface S3FetchSettings {
  /** MODEL_S3_FORCE_PATH_STYLE: path-style addressing, which S3-compatible servers need. */
  readonly forcePathStyle: boolean;
  /** MODEL_S3_PART_SIZE_MB, in bytes. */
  readonly partSizeBytes?: number;
  /** MODEL_S3_CONCURRENCY. */
  readonly concurrency?: number;
  /** MODEL_S3_PART_ATTEMPTS. */
  readonly partAttempts?: number;
  /** The function's memory in MB (Lambda's AWS_LAMBDA_FUNCTION_MEMORY_SIZE); unset outside Lambda. */
  readonly memoryMb?: number;
}

/** Where the model file comes from: exactly one of a local path or an S3 object. */
export type ModelLocation =
  | { readonly kind: 'file'; readonly path: string; readonly precompiledPath?: string }
  | {
      readonly kind: 's3';
      readonly uri: string;
      readonly versionId?: string;
      readonly precompiledUri?: string;
      readonly cacheDir: string;
      readonly idleTimeoutMs: number;
      readonly fetchSettings: S3FetchSettings;
    };

/** What every handler reads: the served model's name and version (routes), the payload limits and the telemetry's names. */
export interface ServiceConfig {
  readonly modelName: string;
  readonly modelVersion: string;
  readonly maxBodyBytes: number;
  /** The largest answer, as Lambda counts it (the JSON of the whole HTTP answer). */
  readonly maxResponseBytes: number;
  /** Powertools' service name of the logs and metrics (POWERTOOLS_SERVICE_NAME). */
  readonly serviceName: string;
  /** The namespace of the embedded metrics (POWERTOOLS_METRICS_NAMESPACE). */
  readonly metricsNamespace: string;
  /** Asynchronous inference (ASYNC_BUCKET and the rest), when it is on. */
  readonly async?: AsyncConfig;
}

export interface HandlerConfig extends ServiceConfig {
  readonly location: ModelLocation;
  readonly intraOpThreads: number;
  readonly interOpThreads: number;
  readonly graphOptimizationLevel: GraphOptimizationLevel;
  readonly initWaitMs: number;
  /** The first pause after a failed load before the next attempt (0: no pause). */
  readonly loadRetryMs: number;
  /**
   * What onnxruntime's own ORT_DISABLE_TELEMETRY is set to before onnxruntime loads: the
   * environment's value, else `1` (its usage telemetry off).
   */
  readonly ortDisableTelemetry: string;
  /** Dynamic batching (BATCH_MAX_SIZE, BATCH_MAX_QUEUE_DELAY_MS); undefined: each request runs alone. */
  readonly batching?: BatchingSettings;
}

/** How the dynamic batcher merges requests. */
export interface BatchingSettings {
  /** The most rows one merged run takes (at least 2). */
  readonly maxBatchSize: number;
  /** How long the first request of a batch waits for others, in milliseconds (0: the same turn of the event loop). */
  readonly maxQueueDelayMs: number;
}

/** The SageMaker proxy's configuration: the endpoint it invokes and how. */
export interface SageMakerProxyConfig extends ServiceConfig {
  readonly endpointName: string;
  readonly contentType: string;
  readonly accept: string;
  readonly timeoutMs: number;
  readonly maxAttempts: number;
}

const OPTIMIZATION_LEVELS: readonly string[] = Object.values(GraphOptimizationLevel);

/** The service name of the logs and metrics where POWERTOOLS_SERVICE_NAME is unset (the constructs set it). */
const DEFAULT_SERVICE_NAME = 'cdk-serverless-inference';

/** Lambda's own variable (not one of the contract's): the memory the function was given, in MB. */
const LAMBDA_MEMORY_SIZE = 'AWS_LAMBDA_FUNCTION_MEMORY_SIZE';

const MIB = 1024 * 1024;

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
  const precompiledPath = env[ENV.MODEL_PRECOMPILED_PATH];
  const precompiledUri = env[ENV.MODEL_PRECOMPILED_S3_URI];
  const location: ModelLocation = modelPath
    ? { kind: 'file', path: resolveModelPath(modelPath, env), precompiledPath: precompiledPath ? resolveModelPath(precompiledPath, env) : undefined }
    : {
        kind: 's3',
        uri: s3Uri!,
        versionId: env[ENV.MODEL_S3_VERSION_ID] || undefined,
        precompiledUri: precompiledUri || undefined,
        cacheDir: env[ENV.MODEL_CACHE_DIR] || '/tmp/models',
        idleTimeoutMs: positiveInt(env, ENV.MODEL_DOWNLOAD_TIMEOUT_MS, DEFAULT_DOWNLOAD_IDLE_TIMEOUT_MS),
        fetchSettings: readS3FetchSettings(env),
      };

  const level = (env[ENV.ORT_GRAPH_OPTIMIZATION_LEVEL] || GraphOptimizationLevel.ALL) as GraphOptimizationLevel;
  if (!OPTIMIZATION_LEVELS.includes(level)) {
    throw new Error(`${ENV.ORT_GRAPH_OPTIMIZATION_LEVEL} must be one of ${OPTIMIZATION_LEVELS.join(', ')}, got: ${level}`);
  }

  return {
    ...readServiceConfig(env),
    location,
    // onnxruntime defaults to half the cores; Lambda's vCPUs are all ours.
    intraOpThreads: positiveInt(env, ENV.ORT_INTRA_OP_THREADS, os.availableParallelism()),
    interOpThreads: positiveInt(env, ENV.ORT_INTER_OP_THREADS, 1),
    graphOptimizationLevel: level,
    initWaitMs: nonNegativeInt(env, ENV.MODEL_INIT_WAIT_MS, DEFAULT_MODEL_INIT_WAIT_MS),
    loadRetryMs: nonNegativeInt(env, ENV.MODEL_LOAD_RETRY_MS, DEFAULT_MODEL_LOAD_RETRY_MS),
    ortDisableTelemetry: env[ENV.ORT_DISABLE_TELEMETRY] || '1',
    batching: readBatching(env),
  };
}

/** BATCH_MAX_SIZE of 2 or more turns batching on; 1 or unset leaves it off. */
function readBatching(env: NodeJS.ProcessEnv): BatchingSettings | undefined {
  const maxBatchSize = optionalPositiveInt(env, ENV.BATCH_MAX_SIZE);
  if (maxBatchSize === undefined || maxBatchSize < 2) return undefined;
  return { maxBatchSize, maxQueueDelayMs: nonNegativeInt(env, ENV.BATCH_MAX_QUEUE_DELAY_MS, DEFAULT_BATCH_MAX_QUEUE_DELAY_MS) };
}

/**
 * Reads how an S3 model is fetched (MODEL_S3_FORCE_PATH_STYLE, MODEL_S3_PART_SIZE_MB,
 * MODEL_S3_CONCURRENCY, MODEL_S3_PART_ATTEMPTS and the function's memory), for the inference
 * handler (through readConfig) and the EFS model loader alike. Like readConfig, a bad value throws
 * with the variable's name: a number must be a positive integer, MODEL_S3_FORCE_PATH_STYLE `true`
 * or `false`; an empty variable counts as unset.
 */
export function readS3FetchSettings(env: NodeJS.ProcessEnv = process.env): S3FetchSettings {
  const partSizeMb = optionalPositiveInt(env, ENV.MODEL_S3_PART_SIZE_MB);
  return {
    forcePathStyle: booleanOf(env, ENV.MODEL_S3_FORCE_PATH_STYLE, false),
    partSizeBytes: partSizeMb === undefined ? undefined : partSizeMb * MIB,
    concurrency: optionalPositiveInt(env, ENV.MODEL_S3_CONCURRENCY),
    partAttempts: optionalPositiveInt(env, ENV.MODEL_S3_PART_ATTEMPTS),
    memoryMb: optionalPositiveInt(env, LAMBDA_MEMORY_SIZE),
  };
}

/** SageMaker's own rule for endpoint names; anything else (an ARN, a URL) is a wiring mistake. */
const ENDPOINT_NAME = /^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/;

/** Reads the SageMaker proxy's configuration; like readConfig, a bad value throws with the variable's name. */
export function readSageMakerProxyConfig(env: NodeJS.ProcessEnv = process.env): SageMakerProxyConfig {
  const endpointName = env[ENV.SAGEMAKER_ENDPOINT_NAME];
  if (!endpointName) {
    throw new Error(`no SageMaker endpoint configured: set ${ENV.SAGEMAKER_ENDPOINT_NAME} to the name of the endpoint to invoke`);
  }
  if (!ENDPOINT_NAME.test(endpointName)) {
    throw new Error(`${ENV.SAGEMAKER_ENDPOINT_NAME} must be an endpoint name (letters, digits and hyphens, at most 63), got: ${endpointName}`);
  }
  return {
    ...readServiceConfig(env),
    endpointName,
    contentType: env[ENV.SAGEMAKER_CONTENT_TYPE] || DEFAULT_SAGEMAKER_CONTENT_TYPE,
    accept: env[ENV.SAGEMAKER_ACCEPT] || DEFAULT_SAGEMAKER_CONTENT_TYPE,
    timeoutMs: positiveInt(env, ENV.SAGEMAKER_TIMEOUT_MS, DEFAULT_SAGEMAKER_TIMEOUT_MS),
    maxAttempts: positiveInt(env, ENV.SAGEMAKER_MAX_ATTEMPTS, 2),
  };
}

function readServiceConfig(env: NodeJS.ProcessEnv): ServiceConfig {
  return {
    modelName: env[ENV.MODEL_NAME] || DEFAULT_MODEL_NAME,
    modelVersion: env[ENV.MODEL_VERSION] || DEFAULT_MODEL_VERSION,
    maxBodyBytes: positiveInt(env, ENV.MAX_BODY_BYTES, LAMBDA_MAX_PAYLOAD_BYTES),
    // A streamed answer goes through InvokeWithResponseStream, whose limit is Lambda's streamed one.
    maxResponseBytes: positiveInt(env, ENV.MAX_RESPONSE_BYTES, env[ENV.RESPONSE_STREAMING] === '1' ? LAMBDA_MAX_STREAMED_RESPONSE_BYTES : LAMBDA_MAX_PAYLOAD_BYTES),
    serviceName: env[ENV.POWERTOOLS_SERVICE_NAME] || DEFAULT_SERVICE_NAME,
    metricsNamespace: env[ENV.POWERTOOLS_METRICS_NAMESPACE] || METRICS_NAMESPACE,
    async: readAsyncConfig(env),
  };
}

/** A relative MODEL_PATH is relative to the function's code (LAMBDA_TASK_ROOT), as a bundled model is. */
function resolveModelPath(p: string, env: NodeJS.ProcessEnv): string {
  return path.isAbsolute(p) ? p : path.resolve(env.LAMBDA_TASK_ROOT || process.cwd(), p);
}

function positiveInt(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  return optionalPositiveInt(env, name) ?? fallback;
}

function nonNegativeInt(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  return optionalNonNegativeInt(env, name) ?? fallback;
}

function optionalPositiveInt(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const n = optionalNonNegativeInt(env, name);
  if (n === 0) {
    throw new Error(`${name} must be a positive integer, got: 0`);
  }
  return n;
}

function optionalNonNegativeInt(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') {
    return undefined;
  }
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) {
    throw new Error(`${name} must be a non-negative integer, got: ${raw}`);
  }
  return n;
}

function booleanOf(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') {
    return fallback;
  }
  if (raw !== 'true' && raw !== 'false') {
    throw new Error(`${name} must be true or false, got: ${raw}`);
  }
  return raw === 'true';
}
