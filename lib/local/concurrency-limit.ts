import type { LambdaHandler } from './inference-server';

export interface ConcurrencyLimitOptions {
  /** Requests the handler runs at a time, as Lambda's max concurrency per execution environment. */
  readonly maxConcurrency: number;
  /** Requests that wait for a free slot; beyond them, a 503. */
  readonly maxQueue: number;
}

/** How long a client refused for lack of room is told to wait before it tries again, in seconds. */
export const RETRY_AFTER_SECONDS = 1;

/**
 * Lets `maxConcurrency` calls of the handler run at a time, as Lambda sends an execution environment
 * no more than its max concurrency. Lambda sends the rest to other environments, or throttles them
 * while it scales; here, with one environment, they wait in order, `maxQueue` of them at most, and
 * any more are answered at once with a 503 and `Retry-After`, without reaching the handler.
 */
export function limitConcurrency(handler: LambdaHandler, options: ConcurrencyLimitOptions): LambdaHandler {
  let running = 0;
  const waiting: Array<() => void> = [];
  const refusal = JSON.stringify({
    message: `Service Unavailable: ${options.maxConcurrency} requests in flight (--concurrency) and ${options.maxQueue} waiting (--queue); try again`,
  });
  return async (event, context) => {
    if (running >= options.maxConcurrency) {
      if (waiting.length >= options.maxQueue) {
        return { statusCode: 503, headers: { 'Content-Type': 'application/json', 'Retry-After': String(RETRY_AFTER_SECONDS) }, body: refusal };
      }
      // The slot of the request that finishes is handed over directly: `running` stays as it is.
      await new Promise<void>((resolve) => waiting.push(resolve));
    } else {
      running++;
    }
    try {
      return await handler(event, context);
    } finally {
      const next = waiting.shift();
      if (next) next();
      else running--;
    }
  };
}
