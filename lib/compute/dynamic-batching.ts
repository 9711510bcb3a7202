import { Annotations, type Duration, Token } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { DEFAULT_BATCH_MAX_QUEUE_DELAY_MS } from '../../contract/defaults';
import { ENV } from '../../contract/environment';
import { validationError } from '../private/errors';

/**
 * Dynamic batching in the handler: the requests for the model that one worker has in flight run as
 * one `session.run`, stacked along the model's batch dimension, and each caller gets its own rows
 * of the answer. One merged run at a time per worker: the requests that arrive while it runs form
 * the next batch, and a request that finds the model idle waits `maxQueueDelay` for others.
 *
 * It applies where every input of the model has the same symbolic first dimension (a dynamic
 * batch axis, `[batch, 100]`) and the requests agree on the other dimensions; a request that
 * cannot merge (another shape, an output without the batch dimension, more rows than
 * `maxBatchSize`) runs alone, as without batching. The model's rows must be independent of each
 * other, as a model exported with a dynamic batch axis computes them.
 */
export interface DynamicBatchingOptions {
  /**
   * The most rows (the batch dimension, summed over the merged requests) one run takes, from 2 to
   * 1024. A batch runs as soon as it is full.
   * @default 16
   */
  readonly maxBatchSize?: number;

  /**
   * How long a request that finds the model idle waits for others, in whole milliseconds up to 1
   * second (under load, batches form while the model runs, with no delay). Zero merges only the
   * requests that arrive together.
   * @default Duration.millis(2)
   */
  readonly maxQueueDelay?: Duration;
}

/** The batch size where `maxBatchSize` is not given. */
export const DEFAULT_MAX_BATCH_SIZE = 16;
/** The largest `maxBatchSize` taken: past it a batch's inputs and outputs, not its run, dominate. */
const MAX_BATCH_SIZE = 1024;
/** The longest `maxQueueDelay` taken. */
const MAX_QUEUE_DELAY_MS = 1000;

/** How requests reach a worker on Managed Instances, as the sizing decided it. */
export interface BatchingCapacity {
  readonly workers: number;
  readonly maxConcurrency: number;
}

/**
 * The handler's batching variables for `batching`, checked. On-demand Lambda (`capacity`
 * undefined) sends an execution environment one request at a time: nothing could ever merge, and
 * each request would wait the delay for nothing, so the synth refuses it there rather than deploy
 * a setting that only costs latency.
 */
export function dynamicBatchingEnvironment(scope: Construct, batching: DynamicBatchingOptions | undefined, capacity: BatchingCapacity | undefined): Record<string, string> {
  if (!batching) return {};
  if (!capacity) {
    throw validationError(
      scope,
      'batching: dynamic batching merges requests that one execution environment has in flight at once, and on-demand Lambda gives an ' +
        'environment one request at a time, so nothing would merge and every request would wait maxQueueDelay for nothing: ' +
        'run on Lambda Managed Instances (compute: InferenceCompute.managedInstances(...)), or leave batching out',
    );
  }
  const size = batching.maxBatchSize ?? DEFAULT_MAX_BATCH_SIZE;
  if (!Token.isUnresolved(size) && (!Number.isInteger(size) || size < 2 || size > MAX_BATCH_SIZE)) {
    throw validationError(scope, `batching.maxBatchSize must be a whole number from 2 to ${MAX_BATCH_SIZE}, got: ${size}`);
  }
  let delayMs = DEFAULT_BATCH_MAX_QUEUE_DELAY_MS;
  if (batching.maxQueueDelay !== undefined) {
    const ms = batching.maxQueueDelay.toMilliseconds({ integral: false });
    if (!Token.isUnresolved(ms) && (!Number.isInteger(ms) || ms < 0 || ms > MAX_QUEUE_DELAY_MS)) {
      throw validationError(scope, `batching.maxQueueDelay must be whole milliseconds from 0 to ${MAX_QUEUE_DELAY_MS} ms, got: ${batching.maxQueueDelay.toHumanString()}`);
    }
    delayMs = ms;
  }
  const perWorker = Math.floor(capacity.maxConcurrency / capacity.workers);
  if (!Token.isUnresolved(size) && perWorker < size) {
    Annotations.of(scope).addWarningV2(
      'cdk-serverless-inference:batching-concurrency',
      `batching: each of the ${capacity.workers} workers takes at most ${perWorker} request(s) at a time (maxConcurrencyPerEnvironment ${capacity.maxConcurrency}), ` +
        `so a batch merges at most ${perWorker} requests, not maxBatchSize ${size}${perWorker < 2 ? ': nothing merges' : ''}; ` +
        'raise maxConcurrencyPerEnvironment, or leave it out (with batching its default is maxBatchSize per worker)',
    );
  }
  return { [ENV.BATCH_MAX_SIZE]: String(size), [ENV.BATCH_MAX_QUEUE_DELAY_MS]: String(delayMs) };
}
