/**
 * What the warmer's fan-out function and the function it keeps warm agree on. Plain constants and
 * types only: the construct, the fan-out handler and the inference handler all import this module.
 */

import { MAX_HOLD_MS, WARMER_SOURCE } from '../handlers/core/warmup';

/** `source` of the warm-up event. The inference handler answers it without running the model. */
export const WARMUP_EVENT_SOURCE: typeof WARMER_SOURCE = WARMER_SOURCE;

/** Longest `holdMs` the inference handler honours (it clamps longer ones). */
export const MAX_WARMUP_HOLD_MS = MAX_HOLD_MS;

/** The payload the fan-out function sends to the target, once per concurrent call. */
export interface WarmupEvent {
  readonly source: typeof WARMUP_EVENT_SOURCE;
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

/** Largest `concurrency` the warmer accepts: one run opens this many sockets at once. */
export const MAX_WARMER_CONCURRENCY = 100;
