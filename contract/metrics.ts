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
  /** A model repository: 1 per request whose model was loaded already, 0 when it had to load (Average: the hit ratio). Count. */
  MODEL_CACHE_HIT: 'ModelCacheHit',
  /** A model repository: 1 per model unloaded to make room under the memory budget. Count. */
  MODEL_EVICTED: 'ModelEvicted',
  /** A model repository: 1 per model request (SampleCount of it: the requests), its time in the handler. Milliseconds. */
  MODEL_REQUEST_MS: 'ModelRequestMs',
  /** A model repository: 1 per model request answered with a 5xx. Count. */
  MODEL_REQUEST_FAILED: 'ModelRequestFailed',
  /** With dynamic batching: requests answered by the run that answered this one (1 when it ran alone), per request. Count. */
  BATCH_REQUESTS: 'BatchRequests',
  /** Items of Distributed Map batches the function answered (succeeded or failed). Count. */
  BATCH_ITEMS: 'BatchItems',
  /** Items of Distributed Map batches the model refused (written to the job's failures). Count. */
  BATCH_ITEMS_FAILED: 'BatchItemsFailed',
  /** 1 per capture record written (data capture, or a shadowed request). Count. */
  CAPTURED: 'Captured',
  /** 1 per capture record that could not be written and was dropped (the answer was sent). Count. */
  CAPTURE_FAILED: 'CaptureFailed',
  /** 1 when the shadow model's answer agreed with the live one, 0 when not: its average is the share that agreed. None. */
  SHADOW_AGREEMENT: 'ShadowAgreement',
  /** 1 per shadow run that failed (not loaded, refused the request, threw, or ran out of time); the caller never sees it. Count. */
  SHADOW_FAILED: 'ShadowFailed',
  /** Time of the shadow model's `session.run`. Milliseconds. */
  SHADOW_INFERENCE_MS: 'ShadowInferenceMs',
  /** The shadow model's inference time over the live model's, per shadowed request. None. */
  SHADOW_LATENCY_RATIO: 'ShadowLatencyRatio',
} as const;

export type MetricName = (typeof METRIC)[keyof typeof METRIC];

/** Dimensions every handler metric carries besides `service` (POWERTOOLS_SERVICE_NAME). */
export const METRIC_DIMENSION = {
  SERVICE: 'service',
  MODEL: 'model',
} as const;
