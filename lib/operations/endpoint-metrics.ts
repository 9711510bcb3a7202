import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type { IConstruct } from 'constructs';

/**
 * What alarms, dashboards and rollouts read of an endpoint: its model's name and its API's metrics.
 * Every `IInferenceEndpoint` is one; operations take this narrower interface so that they depend on
 * the metrics, not on the endpoints that own them.
 */
export interface IEndpointMetrics extends IConstruct {
  /** The model's name in the routes. */
  readonly modelName: string;

  /** A metric of the API's stage (`AWS/ApiGateway`, by API name and stage), over 5 minutes. */
  metric(metricName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric;
  /** Requests at the API (`Count`), summed. */
  metricApiRequests(props?: cloudwatch.MetricOptions): cloudwatch.Metric;
  /** 4XX answers at the API, summed: bad requests, auth failures, throttling. */
  metricApiClientErrors(props?: cloudwatch.MetricOptions): cloudwatch.Metric;
  /** 5XX answers at the API, summed: model failures, load failures, timeouts, and throttled invocations (503). */
  metricApiServerErrors(props?: cloudwatch.MetricOptions): cloudwatch.Metric;
  /** End-to-end latency at the API, p99 by default. */
  metricLatency(props?: cloudwatch.MetricOptions): cloudwatch.Metric;
  /** Time the backend (function or service) took, as API Gateway saw it, p99 by default. */
  metricIntegrationLatency(props?: cloudwatch.MetricOptions): cloudwatch.Metric;
}
