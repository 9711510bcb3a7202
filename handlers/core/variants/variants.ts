import type { Logger } from '@aws-lambda-powertools/logger';
import { METRIC } from '../../../contract/metrics';
import { OnnxBackend } from '../backends/onnx-backend';
import type { HandlerConfig } from '../config/config';
import { ModelRuntime } from '../model/model-runtime';
import { VariantBackend } from './variant-backend';
import type { VariantsConfig } from './variant-config';
import { createVariantMetrics } from './variant-metrics';
import { VariantRouter } from './variant-router';

/** The telemetry a variant's load reports to: the handler's logger and its ModelLoadMs / ModelLoadFailed. */
export interface VariantLoadTelemetry {
  readonly logger: Pick<Logger, 'info' | 'warn' | 'error'>;
  record(name: typeof METRIC.MODEL_LOAD_MS | typeof METRIC.MODEL_LOAD_FAILED, value: number): void;
}

/**
 * The backend of a function with variants: one ModelRuntime and OnnxBackend per variant (each
 * loading its own model, with its own back-off), the router and the per-variant metrics. Every
 * variant starts loading at once; `loading` settles when all have.
 */
export function createVariantBackend(config: HandlerConfig, variants: VariantsConfig, telemetry: VariantLoadTelemetry): { backend: VariantBackend; loading: Promise<unknown> } {
  const served = variants.variants.map((v) => {
    const runtime = new ModelRuntime(v.config, {
      onLoaded: (m) => {
        if (m.source.precompiledRefused !== undefined) {
          telemetry.logger.warn('precompiled model not used; loaded the .onnx instead', { variant: v.name, reason: m.source.precompiledRefused });
        }
        telemetry.logger.info('model loaded', { variant: v.name, source: m.source, loadMs: m.loadMs, signature: m.signature });
        telemetry.record(METRIC.MODEL_LOAD_MS, m.loadMs);
      },
      onFailed: (e) => {
        telemetry.logger.error('model failed to load; the next request retries', { variant: v.name, error: e.message });
        telemetry.record(METRIC.MODEL_LOAD_FAILED, 1);
      },
    });
    return { name: v.name, runtime, backend: new OnnxBackend(v.config, runtime) };
  });
  const router = new VariantRouter(variants.variants, config.modelName, variants.stickyHeader);
  const metrics = createVariantMetrics({
    names: variants.variants.map((v) => v.name),
    modelName: config.modelName,
    serviceName: config.serviceName,
    namespace: config.metricsNamespace,
  });
  const backend = new VariantBackend(served, router, metrics);
  telemetry.logger.info('serving variants', {
    variants: variants.variants.map((v) => ({ name: v.name, weight: v.weight, version: v.config.modelVersion })),
    stickyHeader: variants.stickyHeader,
  });
  return { backend, loading: Promise.all(served.map((s) => s.runtime.ensureLoaded().catch(() => undefined))) };
}
