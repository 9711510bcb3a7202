/** The handler's CloudWatch embedded metrics, which the constructs' `metric*` methods read. */

/** Namespace of the handler's metrics (POWERTOOLS_METRICS_NAMESPACE). */
export const METRICS_NAMESPACE = 'CdkServerlessInference';

/** Metric names and what each counts. */
export const METRIC = {
  /** 1 per invocation that started an instance. Count. */
  COLD_START: 'ColdStart',
  /** Time to fetch and load the model at cold start. Milliseconds. */
  MODEL_LOAD_MS: 'ModelLoadMs',
  /** Time of `session.run` per request. Milliseconds. */
  INFERENCE_MS: 'InferenceMs',
  /** 1 per failed model load (the next request retries). Count. */
  MODEL_LOAD_FAILED: 'ModelLoadFailed',
  /** 1 per `afterResponse` hook that threw or outlasted the function's remaining time (the response was already sent). Count. */
  AFTER_RESPONSE_FAILED: 'AfterResponseFailed',
  /** Items of Distributed Map batches the function answered (succeeded or failed). Count. */
  BATCH_ITEMS: 'BatchItems',
  /** Items of Distributed Map batches the model refused (written to the job's failures). Count. */
  BATCH_ITEMS_FAILED: 'BatchItemsFailed',
} as const;

export type MetricName = (typeof METRIC)[keyof typeof METRIC];

/** Dimensions every handler metric carries besides `service` (POWERTOOLS_SERVICE_NAME). */
export const METRIC_DIMENSION = {
  SERVICE: 'service',
  MODEL: 'model',
} as const;
