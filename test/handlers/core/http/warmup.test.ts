/**
 * The warm-up pings the handler recognises, and how long each holds the instance: never longer
 * than MAX_HOLD_MS, whatever the ping asks, so that no event can keep an instance busy for long.
 */
import { describe, expect, it } from 'vitest';
import { MAX_HOLD_MS, WARMER_SOURCE } from '../../../../contract/warmup';
import { readWarmup } from '../../../../handlers/core/http/warmup';

describe('readWarmup', () => {
  it.each<[string, unknown, number]>([
    ['the asked time', 150, 150],
    ['a whole number of milliseconds', 12.7, 12],
    ['at most MAX_HOLD_MS', MAX_HOLD_MS, MAX_HOLD_MS],
    ['MAX_HOLD_MS for a millisecond more', MAX_HOLD_MS + 1, MAX_HOLD_MS],
    ['MAX_HOLD_MS for 11 days', 1e9, MAX_HOLD_MS],
    ['nothing for a negative time', -5, 0],
    ['nothing for a time that is not a number', '100', 0],
    ['nothing for an infinite time', Number.POSITIVE_INFINITY, 0],
  ])("holds for %s (this library's warmer, holdMs %s)", (_what, holdMs, held) => {
    expect(readWarmup({ source: WARMER_SOURCE, holdMs })).toEqual({ sender: 'cdk-serverless-inference', holdMs: held });
  });

  it('holds for nothing at the pings of other warmers, and sees no ping in an inference request', () => {
    expect(readWarmup({ source: 'serverless-plugin-warmup' })).toEqual({ sender: 'serverless-plugin-warmup', holdMs: 0 });
    expect(readWarmup({ warmer: true, concurrency: 1 })).toEqual({ sender: 'lambda-warmer', holdMs: 0 });
    expect(readWarmup({ source: 'aws.events', 'detail-type': 'Scheduled Event' })).toEqual({ sender: 'eventbridge-schedule', holdMs: 0 });
    expect(readWarmup({ inputs: [] })).toBeUndefined();
  });
});
