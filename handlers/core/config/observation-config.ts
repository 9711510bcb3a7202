/**
 * What data capture and the shadow read from the environment (see contract/environment.ts), read
 * once at init beside readConfig; like it, a bad value throws with the variable's name, so that a
 * misconfigured function says so in its first log.
 */
import { CAPTURE_MODE, type CaptureModeName, DEFAULT_SHADOW_TOLERANCE, SHADOW_AGREEMENT, type ShadowAgreementName } from '../../../contract/capture';
import { ENV } from '../../../contract/environment';
import { type HandlerConfig, readConfig } from './config';

/** Where capture records go: a Firehose stream, or a local folder (serve). */
export type CaptureDestination = { readonly kind: 'firehose'; readonly streamName: string } | { readonly kind: 'dir'; readonly dir: string };

export interface CaptureConfig {
  readonly destination: CaptureDestination;
  /** 0 to 100. */
  readonly samplingPercent: number;
  readonly mode: CaptureModeName;
}

export interface ShadowConfig {
  /**
   * The shadow model's own handler configuration: its location and version, the live one's
   * settings otherwise; absent when a shadow function runs it.
   */
  readonly model?: HandlerConfig;
  /** The shadow function to invoke instead (SHADOW_FUNCTION_NAME). */
  readonly functionName?: string;
  /** 0 to 100. */
  readonly samplingPercent: number;
  readonly agreement: ShadowAgreementName;
  readonly tolerance: number;
}

/** Data capture's configuration, or undefined when no destination is set. */
export function readCaptureConfig(env: NodeJS.ProcessEnv): CaptureConfig | undefined {
  const streamName = env[ENV.DATA_CAPTURE_FIREHOSE_STREAM];
  const dir = env[ENV.DATA_CAPTURE_DIR];
  if (streamName && dir) throw new Error(`set either ${ENV.DATA_CAPTURE_FIREHOSE_STREAM} or ${ENV.DATA_CAPTURE_DIR}, not both`);
  if (!streamName && !dir) return undefined;
  const mode = env[ENV.DATA_CAPTURE_MODE] || CAPTURE_MODE.INPUT_AND_OUTPUT;
  const modes: readonly string[] = Object.values(CAPTURE_MODE);
  if (!modes.includes(mode)) throw new Error(`${ENV.DATA_CAPTURE_MODE} must be one of ${modes.join(', ')}, got: ${mode}`);
  return {
    destination: streamName ? { kind: 'firehose', streamName } : { kind: 'dir', dir: dir! },
    samplingPercent: percent(env, ENV.DATA_CAPTURE_SAMPLING_PERCENT),
    mode: mode as CaptureModeName,
  };
}

/** The shadow's configuration, or undefined when no shadow model is set. */
export function readShadowConfig(env: NodeJS.ProcessEnv): ShadowConfig | undefined {
  const modelPath = env[ENV.SHADOW_MODEL_PATH];
  const s3Uri = env[ENV.SHADOW_MODEL_S3_URI];
  const functionName = env[ENV.SHADOW_FUNCTION_NAME] || undefined;
  if ((modelPath ? 1 : 0) + (s3Uri ? 1 : 0) + (functionName ? 1 : 0) > 1) {
    throw new Error(`set one of ${ENV.SHADOW_MODEL_PATH}, ${ENV.SHADOW_MODEL_S3_URI} and ${ENV.SHADOW_FUNCTION_NAME}, not several`);
  }
  if (!modelPath && !s3Uri && !functionName) return undefined;
  const common = { samplingPercent: percent(env, ENV.SHADOW_SAMPLING_PERCENT), ...readAgreementRule(env) };
  if (functionName) return { functionName, ...common };
  // The shadow model is read as the live one is, from its own location (never the live one's
  // precompiled copy), with its own cache folder so that the two downloads never meet.
  const model = readConfig({
    ...env,
    [ENV.MODEL_PATH]: modelPath || '',
    [ENV.MODEL_S3_URI]: s3Uri || '',
    [ENV.MODEL_S3_VERSION_ID]: env[ENV.SHADOW_MODEL_S3_VERSION_ID] || '',
    [ENV.MODEL_PRECOMPILED_PATH]: '',
    [ENV.MODEL_PRECOMPILED_S3_URI]: '',
    [ENV.MODEL_CACHE_DIR]: `${env[ENV.MODEL_CACHE_DIR] || '/tmp/models'}/shadow`,
    [ENV.MODEL_VERSION]: env[ENV.SHADOW_MODEL_VERSION] || 'shadow',
  });
  return { model, ...common };
}

function percent(env: NodeJS.ProcessEnv, name: string): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return 100;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0 || n > 100) throw new Error(`${name} must be a percentage between 0 and 100, got: ${raw}`);
  return n;
}

/** Whether this function is a shadow function, which takes the live function's shadow events (SHADOW_CANDIDATE). */
export function readShadowCandidate(env: NodeJS.ProcessEnv): boolean {
  const raw = env[ENV.SHADOW_CANDIDATE];
  if (raw === undefined || raw === '' || raw === 'false') return false;
  if (raw !== 'true') throw new Error(`${ENV.SHADOW_CANDIDATE} must be true or false, got: ${raw}`);
  return true;
}

/** How a shadow's answer is compared (SHADOW_AGREEMENT, SHADOW_TOLERANCE). */
export function readAgreementRule(env: NodeJS.ProcessEnv): { readonly agreement: ShadowAgreementName; readonly tolerance: number } {
  const agreement = env[ENV.SHADOW_AGREEMENT] || SHADOW_AGREEMENT.TOLERANCE;
  const agreements: readonly string[] = Object.values(SHADOW_AGREEMENT);
  if (!agreements.includes(agreement)) throw new Error(`${ENV.SHADOW_AGREEMENT} must be one of ${agreements.join(', ')}, got: ${agreement}`);
  const rawTolerance = env[ENV.SHADOW_TOLERANCE];
  const tolerance = rawTolerance === undefined || rawTolerance === '' ? DEFAULT_SHADOW_TOLERANCE : Number(rawTolerance);
  if (!Number.isFinite(tolerance) || tolerance < 0) throw new Error(`${ENV.SHADOW_TOLERANCE} must be a number of at least 0, got: ${rawTolerance}`);
  return { agreement: agreement as ShadowAgreementName, tolerance };
}
