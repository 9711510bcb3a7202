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
 * What a warmed instance answers (as the invocation result, or as the JSON `body` of a proxy-style
 * response). `instanceId` identifies the execution environment, so the fan-out can count how many
 * distinct instances answered.
 */
export interface WarmupResponse {
  /** `false` when the instance could not get ready (its model failed to load, say). */
  readonly warmed: boolean;
  readonly instanceId?: string;
  readonly coldStart?: boolean;
  /** Why `warmed` is `false`. */
  readonly error?: string;
}

/** The environment variables the construct sets on the fan-out function. */
export const WARMER_ENV = {
  /** ARN of the function, version or alias to invoke (exactly this ARN). */
  TARGET_ARN: 'WARMER_TARGET_ARN',
  /** How many concurrent invocations to make per run. */
  CONCURRENCY: 'WARMER_CONCURRENCY',
  /** `holdMs` to put in each warm-up event. */
  HOLD_MS: 'WARMER_HOLD_MS',
} as const;
