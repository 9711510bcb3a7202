import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import { METRIC, METRIC_DIMENSION, METRICS_NAMESPACE } from '../../contract/metrics';
import { ModelRepositoryPackaging, type ModelRepositoryPackagingProps } from '../packaging/model-repository-packaging';
import type { IInferenceEndpoint } from './inference-endpoint';
import { ModelEndpoint, type ModelEndpointOptions } from './model-endpoint';
import { validationError } from '../private/errors';

/** Props of a `ModelRepositoryEndpoint`: every endpoint's options, the repository and its budgets. */
export interface ModelRepositoryEndpointProps extends ModelEndpointOptions, ModelRepositoryPackagingProps {}

/** An endpoint that serves the models of a repository, with grants and metrics per model. */
export interface IModelRepositoryEndpoint extends IInferenceEndpoint {
  /** Lets `grantee` call the named models (`name`, or `name:version` for that version's routes too), and the server's routes. */
  grantInvokeModels(grantee: iam.IGrantable, models: string[]): iam.Grant;
  /** Requests for one model (the handler's `ModelRequestMs`, SampleCount). */
  metricRequestsForModel(model: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric;
  /** Requests for one model answered with a 5xx. */
  metricErrorsForModel(model: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric;
  /** The time the handler took for one model's requests, in milliseconds, p99 by default. */
  metricLatencyForModel(model: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric;
  /** Loads of one model (SampleCount of its load time). */
  metricLoadsForModel(model: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric;
  /** Time to load one model, in milliseconds, Maximum by default. */
  metricLoadTimeForModel(model: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric;
  /** Times one model was unloaded to make room. */
  metricEvictionsForModel(model: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric;
  /** The share of one model's requests that found it loaded (0 to 1). */
  metricCacheHitsForModel(model: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric;
}

/**
 * Many ONNX models behind one function and one API: a model repository in S3 (or on EFS) in
 * Triton's layout (`<name>/<version>/model.onnx`). Each model loads on its first request (once,
 * however many requests come together) and the least recently used are unloaded under a memory
 * budget; adding a model or a version is an upload, not a deploy. `POST /v2/repository/index`
 * lists the models; requests are checked against each model's inputs by the function.
 *
 * @example
 * import { Size } from 'aws-cdk-lib';
 * import { ModelRepositoryEndpoint } from 'cdk-serverless-inference';
 *
 * const models = new ModelRepositoryEndpoint(this, 'Models', {
 *   memorySize: 3008,
 *   memoryBudget: Size.gibibytes(1),
 *   warmModels: ['churn'],
 * });
 * models.grantInvokeModels(backendRole, ['churn', 'fraud']);
 */
export class ModelRepositoryEndpoint extends ModelEndpoint implements IModelRepositoryEndpoint {
  /** The bucket of the repository; none on EFS. */
  public readonly bucket?: s3.IBucket;
  /** The repository's prefix in `bucket`, ending in `/` (empty on EFS). */
  public readonly prefix: string;

  constructor(scope: Construct, id: string, props: ModelRepositoryEndpointProps = {}) {
    const packaging = new ModelRepositoryPackaging(props);
    super(scope, id, { ...props, modelName: props.modelName ?? 'repository', packaging });
    // The repository's handler serves each model with its own session; it runs no variants, capture or shadow.
    for (const prop of ['variants', 'dataCapture', 'shadow'] as const) {
      if (props[prop] !== undefined) {
        throw validationError(
          this,
          `${prop} is not supported by a model repository: it serves one model of the repository per request; serve that model with an endpoint of its own for ${prop}`,
        );
      }
    }
    this.bucket = packaging.bucket;
    this.prefix = packaging.prefix;
    if (this.monitoring?.dashboard) {
      this.monitoring.dashboard.addWidgets(this.topModelsWidget());
    }
  }

  public grantInvokeModels(grantee: iam.IGrantable, models: string[]): iam.Grant {
    return this.api.grantInvokeModels(grantee, models);
  }

  public metricRequestsForModel(model: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.modelMetric(model, METRIC.MODEL_REQUEST_MS, { statistic: 'SampleCount', ...props });
  }

  public metricErrorsForModel(model: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.modelMetric(model, METRIC.MODEL_REQUEST_FAILED, { statistic: 'Sum', ...props });
  }

  public metricLatencyForModel(model: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.modelMetric(model, METRIC.MODEL_REQUEST_MS, { statistic: 'p99', ...props });
  }

  public metricLoadsForModel(model: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.modelMetric(model, METRIC.MODEL_LOAD_MS, { statistic: 'SampleCount', ...props });
  }

  public metricLoadTimeForModel(model: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.modelMetric(model, METRIC.MODEL_LOAD_MS, { statistic: 'Maximum', ...props });
  }

  public metricEvictionsForModel(model: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.modelMetric(model, METRIC.MODEL_EVICTED, { statistic: 'Sum', ...props });
  }

  public metricCacheHitsForModel(model: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.modelMetric(model, METRIC.MODEL_CACHE_HIT, { statistic: 'Average', ...props });
  }

  /** A dashboard widget of the ten models with the most requests (CloudWatch Metrics Insights). */
  public topModelsWidget(): cloudwatch.GraphWidget {
    const service = this.inferenceFunction.metric(METRIC.MODEL_REQUEST_MS).dimensions?.[METRIC_DIMENSION.SERVICE];
    return new cloudwatch.GraphWidget({
      title: 'Top models by requests',
      width: 24,
      left: [
        new cloudwatch.MathExpression({
          expression: `SELECT COUNT(${METRIC.MODEL_REQUEST_MS}) FROM SCHEMA("${METRICS_NAMESPACE}", ${METRIC_DIMENSION.MODEL}, ${METRIC_DIMENSION.SERVICE}) WHERE ${METRIC_DIMENSION.SERVICE} = '${service}' GROUP BY ${METRIC_DIMENSION.MODEL} ORDER BY COUNT() DESC LIMIT 10`,
          label: '',
          period: Duration.minutes(5),
        }),
      ],
    });
  }

  private modelMetric(model: string, metricName: string, props: cloudwatch.MetricOptions): cloudwatch.Metric {
    const base = this.inferenceFunction.metric(metricName);
    return new cloudwatch.Metric({
      namespace: base.namespace,
      metricName,
      period: Duration.minutes(5),
      ...props,
      dimensionsMap: { ...base.dimensions, [METRIC_DIMENSION.MODEL]: model } as Record<string, string>,
    });
  }
}
