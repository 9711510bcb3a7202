import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { METRIC_DIMENSION } from '../../../contract/metrics';
import { VARIANT_METRIC, VARIANT_METRIC_DIMENSION } from '../../../contract/variants';

/** What a variant's answer counts. */
export interface VariantOutcome {
  readonly failed: boolean;
  /** The variant's `session.run` time, when the model ran. */
  readonly inferenceMs?: number;
}

/** Per-variant figures: one embedded-metrics line per infer request, with the `variant` dimension. */
export interface VariantMetrics {
  record(variant: string, outcome: VariantOutcome): void;
}

/** Powertools' Metrics, with its verdict on whether it is disabled (POWERTOOLS_METRICS_DISABLED) readable. */
class SwitchableMetrics extends Metrics {
  get disabledByEnvironment(): boolean {
    return this.isDisabled();
  }
}

/**
 * One Powertools Metrics per variant, its dimensions `service`, `model` and `variant`, published at
 * once: the handler's own figures (ColdStart, InferenceMs...) keep their dimensions, and these sit
 * beside them, so a dashboard compares variants without changing what existing alarms read.
 */
export function createVariantMetrics(options: {
  readonly names: readonly string[];
  readonly modelName: string;
  readonly serviceName: string;
  readonly namespace: string;
}): VariantMetrics {
  const byName = new Map<string, SwitchableMetrics>();
  for (const name of options.names) {
    byName.set(
      name,
      new SwitchableMetrics({
        namespace: options.namespace,
        serviceName: options.serviceName,
        defaultDimensions: { [METRIC_DIMENSION.MODEL]: options.modelName, [VARIANT_METRIC_DIMENSION]: name },
      }),
    );
  }
  if ([...byName.values()].some((m) => m.disabledByEnvironment)) return { record() {} };
  return {
    record(variant, outcome) {
      const m = byName.get(variant)!;
      m.addMetric(VARIANT_METRIC.REQUESTS, MetricUnit.Count, 1);
      m.addMetric(VARIANT_METRIC.ERRORS, MetricUnit.Count, outcome.failed ? 1 : 0);
      if (outcome.inferenceMs !== undefined) m.addMetric(VARIANT_METRIC.INFERENCE_MS, MetricUnit.Milliseconds, outcome.inferenceMs);
      m.publishStoredMetrics();
    },
  };
}
