import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { METRIC, METRIC_DIMENSION, type MetricName } from '../../contract/metrics';
import type { ServiceConfig } from './config/config';

export type { MetricName };

/**
 * Structured JSON logs and CloudWatch embedded metrics, through Powertools for AWS Lambda. The
 * service name and namespace come from the handler's configuration (POWERTOOLS_SERVICE_NAME,
 * POWERTOOLS_METRICS_NAMESPACE, read by config.ts); Powertools reads its other variables itself
 * (POWERTOOLS_LOG_LEVEL, POWERTOOLS_METRICS_DISABLED).
 */
export interface Telemetry {
  readonly logger: Logger;
  /** Records a figure of the current invocation; sent with `flush()`. */
  record(name: MetricName, value: number): void;
  /** Sends the invocation's figures as one embedded-metrics log line. */
  flush(): void;
}

const UNITS: Record<MetricName, (typeof MetricUnit)[keyof typeof MetricUnit]> = {
  [METRIC.COLD_START]: MetricUnit.Count,
  [METRIC.MODEL_LOAD_FAILED]: MetricUnit.Count,
  [METRIC.AFTER_RESPONSE_FAILED]: MetricUnit.Count,
  [METRIC.BATCH_REQUESTS]: MetricUnit.Count,
  [METRIC.MODEL_LOAD_MS]: MetricUnit.Milliseconds,
  [METRIC.INFERENCE_MS]: MetricUnit.Milliseconds,
  [METRIC.MODEL_CACHE_HIT]: MetricUnit.Count,
  [METRIC.MODEL_EVICTED]: MetricUnit.Count,
  [METRIC.MODEL_REQUEST_MS]: MetricUnit.Milliseconds,
  [METRIC.MODEL_REQUEST_FAILED]: MetricUnit.Count,
  [METRIC.BATCH_ITEMS]: MetricUnit.Count,
  [METRIC.BATCH_ITEMS_FAILED]: MetricUnit.Count,
  [METRIC.CAPTURED]: MetricUnit.Count,
  [METRIC.CAPTURE_FAILED]: MetricUnit.Count,
  [METRIC.SHADOW_AGREEMENT]: MetricUnit.NoUnit,
  [METRIC.SHADOW_FAILED]: MetricUnit.Count,
  [METRIC.SHADOW_INFERENCE_MS]: MetricUnit.Milliseconds,
  [METRIC.SHADOW_LATENCY_RATIO]: MetricUnit.NoUnit,
};

/** Powertools' Metrics, with its own verdict on whether it is disabled (protected there) made readable. */
class HandlerMetrics extends Metrics {
  get disabledByEnvironment(): boolean {
    return this.isDisabled();
  }
}

export function createTelemetry(config: Pick<ServiceConfig, 'modelName' | 'serviceName' | 'metricsNamespace'>): Telemetry {
  const { modelName, serviceName } = config;
  const logger = new Logger({ serviceName, persistentKeys: { [METRIC_DIMENSION.MODEL]: modelName } });
  const metrics = new HandlerMetrics({
    namespace: config.metricsNamespace,
    serviceName,
    defaultDimensions: { [METRIC_DIMENSION.MODEL]: modelName },
  });
  // Powertools reads process.env and its invocation store on every addMetric (a few microseconds
  // each): the figures wait here and reach it only at flush, and not at all when it is disabled
  // (POWERTOOLS_METRICS_DISABLED, read once when Metrics is created), when it would discard them.
  if (metrics.disabledByEnvironment) {
    return { logger, record() {}, flush() {} };
  }
  const pending: Array<[MetricName, number]> = [];
  return {
    logger,
    record(name, value) {
      pending.push([name, value]);
    },
    flush() {
      if (pending.length === 0) return;
      for (const [name, value] of pending) metrics.addMetric(name, UNITS[name], value);
      pending.length = 0;
      metrics.publishStoredMetrics();
    },
  };
}
