import type { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';

/** The metrics of a 5xx rate at the API, each a `Sum` over `period`. */
export interface ServerErrorRateMetrics {
  /** The API's 5xx answers. */
  readonly errors: cloudwatch.IMetric;
  /** The API's requests. */
  readonly requests: cloudwatch.IMetric;
  /** The function's throttled invocations, which the API answers 503 (INTEGRATION_FAILURE): not counted. */
  readonly throttles?: cloudwatch.IMetric;
  readonly period: Duration;
}

/**
 * The share of API requests answered 5xx, in percent (0 without requests). Throttles, when given,
 * are taken out: each is a 503 the API sends for an invocation Lambda refused, which its own alarm
 * watches and a retry gets through. Lambda counts every throttled invocation of the function, also
 * ones the API did not send, so the rate can only be underestimated while throttling: never below 0.
 */
export function serverErrorRate(m: ServerErrorRateMetrics): cloudwatch.MathExpression {
  const label = '5xx rate (%)';
  if (!m.throttles) {
    return new cloudwatch.MathExpression({
      label,
      expression: 'IF(requests > 0, 100 * errors / requests, 0)',
      usingMetrics: { errors: m.errors, requests: m.requests },
      period: m.period,
    });
  }
  // A period without throttles may have no datapoint: FILL makes it 0, not a gap in the difference.
  const unthrottled = new cloudwatch.MathExpression({
    label: '5xx answers that were not throttles',
    expression: 'errors - FILL(throttles, 0)',
    usingMetrics: { errors: m.errors, throttles: m.throttles },
    period: m.period,
  });
  const served = new cloudwatch.MathExpression({
    label: '5xx answers that were not throttles, at least 0',
    expression: 'IF(unthrottled > 0, unthrottled, 0)',
    usingMetrics: { unthrottled },
    period: m.period,
  });
  return new cloudwatch.MathExpression({
    label,
    expression: 'IF(requests > 0, 100 * served / requests, 0)',
    usingMetrics: { served, requests: m.requests },
    period: m.period,
  });
}
