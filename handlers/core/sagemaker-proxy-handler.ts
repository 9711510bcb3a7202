import { type SageMakerProxyConfig, readSageMakerProxyConfig } from './config/config';
import { type InferenceEntry, type InferenceHandler, InferenceService, misconfiguredEntry } from './handler';
import type { SageMakerProxyHooks } from './hooks/hooks';
import { createSageMakerBackend } from './backends/sagemaker-backend';
import { createTelemetry } from './telemetry';

export interface SageMakerProxyOptions {
  /** Pre- and post-processing around the endpoint's invocation. @default - none */
  readonly hooks?: SageMakerProxyHooks;
  /**
   * Where the handler's configuration (SAGEMAKER_*, MODEL_NAME, POWERTOOLS_SERVICE_NAME, ...) is
   * read from. The AWS SDK reads its own settings (region, credentials,
   * AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME) and Powertools its log level and metrics switch from
   * process.env whatever this says.
   * @default process.env
   */
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * Creates the Lambda handler of a SageMaker proxy: the same Open Inference Protocol API, events,
 * errors, warm-up, hooks and telemetry as createInferenceHandler, with each inference request sent
 * to the SageMaker endpoint named by SAGEMAKER_ENDPOINT_NAME. Use it as
 * `export const handler = await createSageMakerProxyHandler();` in an ES module.
 */
export async function createSageMakerProxyHandler(options: SageMakerProxyOptions = {}): Promise<InferenceHandler> {
  return (await createSageMakerProxyEntry(options)).handle;
}

/** createSageMakerProxyHandler's handler in both forms: buffered, and for response streaming. */
export async function createSageMakerProxyEntry(options: SageMakerProxyOptions = {}): Promise<InferenceEntry> {
  let config: SageMakerProxyConfig;
  try {
    config = readSageMakerProxyConfig(options.env ?? process.env);
  } catch (e) {
    return misconfiguredEntry(e as Error);
  }
  const telemetry = createTelemetry(config);
  // Awaited here, in the init phase, so that loading the SDK does not slow the first request.
  const backend = await createSageMakerBackend(config);
  return new InferenceService(config, backend, telemetry, options.hooks ?? {});
}
