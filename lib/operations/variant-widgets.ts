import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type { InferenceFunction } from '../function/inference-function';

/**
 * The dashboard's row of A/B variants: each variant's requests, its error rate (its 422 and 5xx
 * answers over its requests) and its inference time, one line per variant on each graph, so that
 * the variants are read side by side.
 */
export function variantWidgets(fn: InferenceFunction, names: readonly string[]): cloudwatch.IWidget[] {
  const graph = (title: string, left: cloudwatch.IMetric[]) => new cloudwatch.GraphWidget({ title, left, width: 8, height: 6 });
  return [
    graph(
      'Requests by variant',
      names.map((n) => fn.metricVariantRequests(n, { label: n })),
    ),
    graph(
      'Error rate by variant (%)',
      names.map(
        (n, i) =>
          new cloudwatch.MathExpression({
            expression: `IF(requests${i} > 0, 100 * errors${i} / requests${i}, 0)`,
            usingMetrics: { [`requests${i}`]: fn.metricVariantRequests(n), [`errors${i}`]: fn.metricVariantErrors(n) },
            label: n,
          }),
      ),
    ),
    graph(
      'Inference time by variant (ms, p99)',
      names.map((n) => fn.metricVariantInferenceTime(n, { label: n })),
    ),
  ];
}
