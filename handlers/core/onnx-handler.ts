import { METRIC } from '../../contract/metrics';
import { type HandlerConfig, readConfig } from './config/config';
import { type InferenceEntry, type InferenceHandler, InferenceService, describeCause, misconfiguredEntry, sleep } from './handler';
import type { InferenceHooks } from './hooks/hooks';
import { ModelRuntime } from './model/model-runtime';
import { OnnxBackend } from './backends/onnx-backend';
import { createTelemetry } from './telemetry';
import { observerOf } from './shadow/observer-of';
import { withShadowEvents } from './shadow-entry';
import { type VariantsConfig, readVariantsConfig } from './variants/variant-config';
import { createVariantBackend } from './variants/variants';

export interface InferenceHandlerOptions {
  /** Pre- and post-processing around inference. @default - none */
  readonly hooks?: InferenceHooks;
  /**
   * Where the handler's configuration (MODEL_*, ORT_*, POWERTOOLS_SERVICE_NAME, ...) is read from.
   * The AWS SDK reads its own settings (region, credentials, AWS_ENDPOINT_URL_S3) and Powertools its
   * log level and metrics switch from process.env whatever this says.
   * @default process.env
   */
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * Creates the Lambda handler. The model starts loading at once, during the function's init phase;
 * the returned promise resolves when it is loaded or after MODEL_INIT_WAIT_MS (8 s by default),
 * whichever comes first, so that a model too big to load within Lambda's 10 s init limit finishes
 * loading during the first request instead of failing every cold start. A failed load is answered
 * with a clear 503 and retried by the next request. Use it as
 * `export const handler = await createInferenceHandler();` in an ES module.
 */
export async function createInferenceHandler(options: InferenceHandlerOptions = {}): Promise<InferenceHandler> {
  return (await createInferenceEntry(options)).handle;
}

/** createInferenceHandler's handler in both forms: buffered, and for response streaming. */
export async function createInferenceEntry(options: InferenceHandlerOptions = {}): Promise<InferenceEntry> {
  let config: HandlerConfig;
  let observer: ReturnType<typeof observerOf> | undefined;
  try {
    config = readConfig(options.env ?? process.env);
    observer = observerOf(config, options.env ?? process.env);
  } catch (e) {
    return misconfiguredEntry(e as Error);
  }
  const telemetry = createTelemetry(config);
  const observation = observer?.(telemetry);
  let variants: VariantsConfig | undefined;
  try {
    variants = readVariantsConfig(options.env ?? process.env);
  } catch (e) {
    return misconfiguredEntry(e as Error);
  }
  if (variants) {
    const { backend, loading } = createVariantBackend(config, variants, telemetry);
    await Promise.race([loading, sleep(config.initWaitMs, { unref: true })]);
    if (observation?.preload) void loading.then(observation.preload);
    return new InferenceService(config, backend, telemetry, options.hooks ?? {}, observation?.observer);
  }
  const runtime = new ModelRuntime(config, {
    onLoaded: (m) => {
      if (m.source.precompiledRefused !== undefined) {
        telemetry.logger.warn('precompiled model not used; loaded the .onnx instead', { reason: m.source.precompiledRefused });
      }
      telemetry.logger.info('model loaded', { source: m.source, loadMs: m.loadMs, signature: m.signature });
      telemetry.record(METRIC.MODEL_LOAD_MS, m.loadMs);
    },
    onFailed: (e) => {
      telemetry.logger.error('model failed to load; the next request retries', { error: e.message, cause: describeCause(e.cause) });
      telemetry.record(METRIC.MODEL_LOAD_FAILED, 1);
    },
  });
  const loading = runtime.ensureLoaded().catch(() => undefined);
  // The timer must not keep a process alive on its own (tests, `serve`); Lambda's runtime does not care.
  await Promise.race([loading, sleep(config.initWaitMs, { unref: true })]);
  // A shadow model loads once the live one has, so that the two never compete at cold start.
  if (observation?.preload) void loading.then(observation.preload);
  const backend = new OnnxBackend(config, runtime);
  const service = new InferenceService(config, backend, telemetry, options.hooks ?? {}, observation?.observer);
  return observation?.candidate ? withShadowEvents(service, observation.candidate(backend), telemetry) : service;
}
