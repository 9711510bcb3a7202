/** What the warmer's fan-out function, the construct that deploys it and the warmed handler agree on. */

/** `source` of the warm-up event. The inference handler answers it without running the model. */
export const WARMER_SOURCE = 'cdk-serverless-inference.warmer';

/** Longest hold a warm-up may ask for: enough to overlap N concurrent calls, never a real cost. */
export const MAX_HOLD_MS = 5_000;

/** Largest `concurrency` the warmer accepts: one run opens this many sockets at once. */
export const MAX_WARMER_CONCURRENCY = 100;

/** The payload the fan-out function sends to the target, once per concurrent call. */
export interface WarmupEvent {
  readonly source: typeof WARMER_SOURCE;
  /**
   * How long the receiving instance should stay busy before answering, in milliseconds. While one
   * instance holds, Lambda must route the other concurrent calls to other instances.
   */
  readonly holdMs: number;
}

/**
 * What the inference handler answers a warm-up (as the invocation's result). `instanceId`
 * identifies the execution environment, so the fan-out can count how many distinct instances
 * answered.
 */
export interface WarmupResponse {
  /**
   * `true` only when the instance is ready to answer requests: its model is loaded. `false` when
   * it is not (its model failed to load, the function is misconfigured): the warmer counts such an
   * instance as failed, never as warmed.
   */
  readonly warmed: boolean;
  /**
   * Whether the model is loaded: the same as `warmed` in this release. Earlier handlers answered
   * `warmed: true` with `modelReady: false` when their model could not load, so the warmer reads
   * both (an alias may still point at such a version).
   */
  readonly modelReady?: boolean;
  readonly instanceId?: string;
  readonly coldStart?: boolean;
  /** Why the instance is not ready. */
  readonly error?: string;
}

/**
 * How much longer than the target's timeout the fan-out may run: Lambda's on-demand init phase
 * (10 s) comes before a cold instance's invocation, then the summary must still be logged.
 */
export const WARMER_TIMEOUT_HEADROOM_MS = 15_000;

/** What the fan-out keeps of its remaining time for the summary: calls still running then are given up. */
export const WARMER_SUMMARY_MARGIN_MS = 1_000;

/**
 * The fan-out's summary log line is also a CloudWatch embedded-metric document: these metrics, in
 * METRICS_NAMESPACE (contract/metrics.ts), with the target's ARN as the one dimension.
 */
export const WARMER_METRIC = {
  /** Calls answered by an instance whose model is loaded. Count. */
  WARMED: 'WarmupSucceeded',
  /** Calls that did not warm an instance: not ready, failed, throttled, or no answer in time. Count. */
  FAILED: 'WarmupFailed',
  /** Of the failed calls, those an instance answered without its model loaded. Count. */
  MODEL_NOT_READY: 'WarmupModelNotReady',
} as const;

/** The dimension of the warmer's metrics: the ARN it invokes (WARMER_ENV.TARGET_ARN). */
export const WARMER_METRIC_DIMENSION = 'WarmerTarget';

/** The environment variables the construct sets on the fan-out function. */
export const WARMER_ENV = {
  /** ARN of the function, version or alias to invoke (exactly this ARN). */
  TARGET_ARN: 'WARMER_TARGET_ARN',
  /** How many concurrent invocations to make per run. */
  CONCURRENCY: 'WARMER_CONCURRENCY',
  /** `holdMs` to put in each warm-up event. */
  HOLD_MS: 'WARMER_HOLD_MS',
} as const;
