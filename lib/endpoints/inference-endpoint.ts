import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import type { InferenceApi, InferenceApiOptions } from '../api/inference-api';
import type { InferenceFunctionUrl, InferenceFunctionUrlOptions } from '../api/inference-function-url';
import type { InferenceFunction } from '../function/inference-function';
import type { EndpointMonitoring, EndpointMonitoringOptions } from '../operations/endpoint-monitoring';
import type { IEndpointMetrics } from '../operations/endpoint-metrics';
import type { GradualRollout, GradualRolloutOptions } from '../operations/gradual-rollout';
import { validationError } from '../private/errors';
import type { WarmerOptions } from '../operations/warmer';

/**
 * An Open Inference Protocol API of one model, whatever serves it: the six endpoints of this
 * library, and your own. Every metric method means the same on each.
 */
export interface IInferenceEndpoint extends IEndpointMetrics {
  /** The API. */
  readonly api: InferenceApi;
  /** URL of the API's stage, ending in `/`. */
  readonly url: string;
  /** URL of `POST /v2/models/{model}/infer`. */
  readonly inferUrl: string;
  /** The version the API reports for the model. */
  readonly modelVersion: string;
  /**
   * Alarms and dashboard, with `monitoring`.
   * @default - none
   */
  readonly monitoring?: EndpointMonitoring;
  /**
   * The gradual rollout, with `rollout`.
   * @default - none
   */
  readonly rollout?: GradualRollout;
  /**
   * The function URL, with `functionUrl`.
   * @default - none
   */
  readonly functionUrl?: InferenceFunctionUrl;

  /**
   * Lets `grantee` call each route of the API (with IAM authorization, the default), and the
   * function URL where there is one (with `AWS_IAM`, its default).
   */
  grantInvoke(grantee: iam.IGrantable): iam.Grant;
}

/** What every endpoint lets its users choose about its API and operations. */
export interface InferenceEndpointOptions {
  /**
   * The model's name in the routes: `POST /v2/models/{modelName}/infer`.
   * @default 'model'
   */
  readonly modelName?: string;

  /**
   * The version reported by `GET /v2/models/{modelName}` and accepted in
   * `/v2/models/{modelName}/versions/{modelVersion}/...` routes.
   * @default - the model's identity where it is known at synth (the first 16 hex digits of its
   * content hash, or its pinned S3 version), else '1'
   */
  readonly modelVersion?: string;

  /**
   * The API in front: authorization (IAM by default), throttling, CORS, logging.
   * @default - InferenceApi's defaults
   */
  readonly api?: InferenceApiOptions;

  /**
   * A Lambda function URL in front of the function's `live` alias, beside the API: no API Gateway
   * price or hop, no 29-second limit, and with `api.responseTransferMode: STREAM` answers of up to
   * 200 MB. The URL streams when the API does (the function answers in one way for both). It has
   * no request validator, throttling or WAF: the handler validates each request as it does behind
   * the API, and `reservedConcurrentExecutions` bounds what callers can spend. Needs a function.
   * @default - none: the API is the only front
   */
  readonly functionUrl?: InferenceFunctionUrlOptions;

  /**
   * Alarms (5xx rate, p99 latency, and where there is a function throttles, cold-start rate and
   * function errors) sent to an SNS topic or your actions, and a CloudWatch dashboard.
   * `monitoring: {}` turns both on.
   * @default - none
   */
  readonly monitoring?: EndpointMonitoringOptions;

  /**
   * Shift each new version of the function (a new model or handler) to the live alias gradually
   * with CodeDeploy, rolled back by its own one-minute canary alarms (the new version's function
   * errors, the API's 5xx rate) and the endpoint's alarms, optionally checked with a sample request
   * before any traffic. Needs a function.
   * @default - each deploy moves the alias at once
   */
  readonly rollout?: GradualRolloutOptions;

  /**
   * Whether a warmer keeps instances of the function warm.
   * @default - true where there is a function, unless `provisionedConcurrency` is set and
   * `warmerOptions` are not
   */
  readonly warmer?: boolean;

  /**
   * How the warmer keeps instances warm.
   * @default - one instance pinged every 5 minutes
   */
  readonly warmerOptions?: WarmerOptions;
}

/**
 * The API-level half of every endpoint: grants and metrics read from `api`, and the function-level
 * metrics of its inference function where it has one.
 */
export abstract class InferenceEndpointBase extends Construct implements IInferenceEndpoint {
  public abstract readonly api: InferenceApi;
  public abstract readonly url: string;
  public abstract readonly inferUrl: string;
  public abstract readonly modelName: string;
  public abstract readonly modelVersion: string;
  public abstract readonly monitoring?: EndpointMonitoring;
  public abstract readonly rollout?: GradualRollout;
  public abstract readonly functionUrl?: InferenceFunctionUrl;

  /**
   * Lets `grantee` call each route of the API (with IAM authorization, the default), and the
   * function URL where there is one (with `AWS_IAM`, its default).
   */
  public grantInvoke(grantee: iam.IGrantable): iam.Grant {
    const api = this.api.grantInvoke(grantee);
    return this.functionUrl ? api.combine(this.functionUrl.grantInvoke(grantee)) : api;
  }

  /** A metric of the API's stage (`AWS/ApiGateway`, by API name and stage), over 5 minutes. */
  public metric(metricName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.api.metric(metricName, props);
  }

  /** Requests at the API (`Count`), summed. */
  public metricApiRequests(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.api.metricCount({ statistic: 'Sum', ...props });
  }

  /** 4XX answers at the API, summed: bad requests, auth failures, throttling. */
  public metricApiClientErrors(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.api.metricClientError({ statistic: 'Sum', ...props });
  }

  /** 5XX answers at the API, summed: model failures, load failures, timeouts, and throttled invocations (503). */
  public metricApiServerErrors(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.api.metricServerError({ statistic: 'Sum', ...props });
  }

  /** End-to-end latency at the API, p99 by default. */
  public metricLatency(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.api.metricLatency({ statistic: 'p99', ...props });
  }

  /** Time the backend (function or service) took, as API Gateway saw it, p99 by default. */
  public metricIntegrationLatency(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.api.metricIntegrationLatency({ statistic: 'p99', ...props });
  }

  /** Invocations of the function's `live` alias. */
  public metricInvocations(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.functionFor('metricInvocations').metricInvocations(props);
  }

  /** Function errors (unhandled failures; the handler answers bad requests without one). */
  public metricErrors(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.functionFor('metricErrors').metricErrors(props);
  }

  /** Throttled invocations of the function. */
  public metricThrottles(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.functionFor('metricThrottles').metricThrottles(props);
  }

  /** The function's duration, p99 by default. */
  public metricDuration(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.functionFor('metricDuration').metricDuration(props);
  }

  /** Use of the provisioned instances (0 to 1), with `provisionedConcurrency`. */
  public metricProvisionedConcurrencyUtilization(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.functionFor('metricProvisionedConcurrencyUtilization').metricProvisionedConcurrencyUtilization(props);
  }

  /** Cold starts of the function, from the handler's embedded metrics. */
  public metricColdStarts(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.functionFor('metricColdStarts').metricColdStarts(props);
  }

  /** Time to fetch and load the model at cold start, in milliseconds. */
  public metricModelLoadTime(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.functionFor('metricModelLoadTime').metricModelLoadTime(props);
  }

  /** Time of `session.run` per request, in milliseconds, p99 by default. */
  public metricInferenceTime(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.functionFor('metricInferenceTime').metricInferenceTime(props);
  }

  /** Failed model loads (each is retried by the next request). */
  public metricModelLoadFailures(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.functionFor('metricModelLoadFailures').metricModelLoadFailures(props);
  }

  /** `afterResponse` hooks that threw or were given up at the function's timeout (the answers were sent). */
  public metricAfterResponseFailures(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.functionFor('metricAfterResponseFailures').metricAfterResponseFailures(props);
  }

  /** The inference function behind the API, if there is one. */
  protected abstract inferenceFunctionOrUndefined(): InferenceFunction | undefined;

  private functionFor(method: string): InferenceFunction {
    const fn = this.inferenceFunctionOrUndefined();
    if (!fn) {
      throw validationError(this, `${method} reads the inference function's metrics, and this endpoint has none (API Gateway calls its backend directly)`);
    }
    return fn;
  }
}
