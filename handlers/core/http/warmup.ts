import { MAX_HOLD_MS, WARMER_SOURCE } from '../../../contract/warmup';

export interface WarmupRequest {
  /** Who sent it, for the log. */
  readonly sender: 'cdk-serverless-inference' | 'serverless-plugin-warmup' | 'lambda-warmer' | 'eventbridge-schedule';
  /** How long this instance stays busy, so that concurrent warm-ups land on distinct instances. */
  readonly holdMs: number;
}

/**
 * Recognises a warm-up ping: ours (`{"source": "cdk-serverless-inference.warmer", "holdMs": 100}`),
 * serverless-plugin-warmup's (`{"source": "serverless-plugin-warmup"}`), lambda-warmer's
 * (`{"warmer": true, "concurrency": 3}`) and a plain EventBridge scheduled event aimed at the
 * function. None of them is ever run as an inference.
 */
export function readWarmup(event: unknown): WarmupRequest | undefined {
  if (typeof event !== 'object' || event === null) {
    return undefined;
  }
  const e = event as Record<string, unknown>;
  if (e.source === WARMER_SOURCE) {
    return { sender: 'cdk-serverless-inference', holdMs: clampHold(e.holdMs) };
  }
  if (e.source === 'serverless-plugin-warmup') {
    return { sender: 'serverless-plugin-warmup', holdMs: 0 };
  }
  if (e.warmer === true) {
    // lambda-warmer fans out itself when it has invoke rights; here, holding a little lets
    // concurrent pings spread over instances.
    const concurrency = typeof e.concurrency === 'number' ? e.concurrency : 1;
    return { sender: 'lambda-warmer', holdMs: concurrency > 1 ? 75 : 0 };
  }
  if (e.source === 'aws.events' && e['detail-type'] === 'Scheduled Event') {
    return { sender: 'eventbridge-schedule', holdMs: 0 };
  }
  return undefined;
}

function clampHold(v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
    return 0;
  }
  return Math.min(Math.floor(v), MAX_HOLD_MS);
}
