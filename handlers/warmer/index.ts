/**
 * The warmer's fan-out function: invokes one target (function, version or alias ARN) N times at
 * once with the warm-up event, so that N execution environments exist when real traffic arrives.
 *
 * Best-effort by design: a failed call is counted and logged, never retried and never thrown, so
 * the other calls of the run still count and the schedule does not pile up retries. A call counts
 * as warmed only when the instance says its model is loaded. Calls still running when the
 * function's own time is nearly up are given up, so that a summary is always logged.
 */
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { METRICS_NAMESPACE } from '../../contract/metrics';
import {
  MAX_WARMER_CONCURRENCY,
  WARMER_ENV,
  WARMER_METRIC,
  WARMER_METRIC_DIMENSION,
  WARMER_SOURCE,
  WARMER_SUMMARY_MARGIN_MS,
  type WarmupEvent,
  type WarmupResponse,
} from '../../contract/warmup';

export interface WarmerConfig {
  readonly targetArn: string;
  readonly concurrency: number;
  readonly holdMs: number;
}

/** What one run did; also written to the log as one JSON line, which carries the run's metrics. */
export interface WarmerSummary {
  readonly target: string;
  readonly requested: number;
  /** Calls answered by an instance whose model is loaded. */
  readonly succeeded: number;
  /** Calls that warmed nothing: `modelNotReady`, `unanswered`, and those that failed otherwise. */
  readonly failed: number;
  /** Calls an instance answered without its model loaded (counted in `failed`). */
  readonly modelNotReady: number;
  /** Calls given up with no answer when the function's time ran out (counted in `failed`). */
  readonly unanswered: number;
  /** Distinct `instanceId`s among the warmed answers: how many environments are known to be warm. */
  readonly distinctInstances: number;
  /** Warmed answers that reported a cold start: environments this run created. */
  readonly coldStarts: number;
  readonly durationMs: number;
  /** One message per failed call. */
  readonly errors: string[];
}

type CallResult =
  | { readonly kind: 'warmed'; readonly answer: WarmupResponse }
  | { readonly kind: 'not-ready'; readonly error: string }
  | { readonly kind: 'unanswered'; readonly error: string }
  | { readonly kind: 'failed'; readonly error: string };

/** The part of Lambda's context the fan-out uses; absent when called outside Lambda. */
interface WarmerContext {
  getRemainingTimeInMillis?(): number;
}

export function readConfig(env: NodeJS.ProcessEnv): WarmerConfig {
  const targetArn = env[WARMER_ENV.TARGET_ARN];
  if (!targetArn) {
    throw new Error(`${WARMER_ENV.TARGET_ARN} is not set: expected the ARN of the function to warm`);
  }
  const concurrency = parseWhole(env, WARMER_ENV.CONCURRENCY, 1);
  if (concurrency < 1 || concurrency > MAX_WARMER_CONCURRENCY) {
    throw new Error(`${WARMER_ENV.CONCURRENCY} must be between 1 and ${MAX_WARMER_CONCURRENCY}, got: ${concurrency}`);
  }
  const holdMs = parseWhole(env, WARMER_ENV.HOLD_MS, 0);
  return { targetArn, concurrency, holdMs };
}

function parseWhole(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) {
    throw new Error(`${name} must be a whole number >= 0, got: ${JSON.stringify(raw)}`);
  }
  return value;
}

let client: LambdaClient | undefined;
let clientSockets = 0;

/**
 * One client per environment, re-created only if it has too few sockets: the SDK queues requests
 * beyond `maxSockets`, and a queued call starts only after an earlier one has finished, so it would
 * land on an instance that is already warm.
 */
function lambdaClient(concurrency: number): LambdaClient {
  if (!client || clientSockets < concurrency) {
    client?.destroy();
    const agent = { keepAlive: true, maxSockets: concurrency };
    client = new LambdaClient({
      // A retry would arrive after the others were answered and prove nothing.
      maxAttempts: 1,
      requestHandler: { httpAgent: agent, httpsAgent: agent },
    });
    clientSockets = concurrency;
  }
  return client;
}

async function warmOnce(lambda: LambdaClient, config: WarmerConfig, payload: Uint8Array, signal: AbortSignal | undefined): Promise<CallResult> {
  try {
    const out = await lambda.send(
      new InvokeCommand({
        FunctionName: config.targetArn,
        InvocationType: 'RequestResponse',
        Payload: payload,
      }),
      { abortSignal: signal },
    );
    const text = out.Payload ? Buffer.from(out.Payload).toString('utf8') : '';
    if (out.FunctionError) {
      return { kind: 'failed', error: `function error (${out.FunctionError}): ${text.slice(0, 500)}` };
    }
    return readAnswer(text);
  } catch (err) {
    const e = err as Error;
    return { kind: 'failed', error: `${e.name}: ${e.message}` };
  }
}

/** What an answer says: warmed only when the instance says so and its model is loaded. */
function readAnswer(text: string): CallResult {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = undefined;
  }
  if (!isObject(value) || typeof value.warmed !== 'boolean') {
    return { kind: 'failed', error: `not a warm-up answer: ${text.slice(0, 200)}` };
  }
  const answer = value as unknown as WarmupResponse;
  if (answer.warmed && answer.modelReady !== false) return { kind: 'warmed', answer };
  const reason = typeof answer.error === 'string' ? answer.error : 'no reason given';
  return answer.modelReady === false ? { kind: 'not-ready', error: `model not ready: ${reason}` } : { kind: 'failed', error: `not warmed: ${reason}` };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * One run: every call at once, each raced against the deadline (ms since the epoch) when there is
 * one. A call still running then is aborted and counted as unanswered.
 */
export async function warm(config: WarmerConfig, deadline?: number): Promise<WarmerSummary> {
  const started = Date.now();
  const event: WarmupEvent = { source: WARMER_SOURCE, holdMs: config.holdMs };
  const payload = new TextEncoder().encode(JSON.stringify(event));
  const lambda = lambdaClient(config.concurrency);

  const abort = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timeUp =
    deadline === undefined
      ? undefined
      : new Promise<CallResult>((resolve) => {
          const ms = Math.max(0, deadline - Date.now());
          timer = setTimeout(() => {
            // Settled before the abort, so that a call's own abort error cannot come first.
            resolve({ kind: 'unanswered', error: `no answer within ${ms} ms, the time the fan-out function had left` });
            abort.abort();
          }, ms);
        });
  const calls = Array.from({ length: config.concurrency }, () => {
    const call = warmOnce(lambda, config, payload, timeUp ? abort.signal : undefined);
    return timeUp ? Promise.race([call, timeUp]) : call;
  });
  const results = await Promise.all(calls);
  clearTimeout(timer);

  const instances = new Set<string>();
  let succeeded = 0;
  let coldStarts = 0;
  let modelNotReady = 0;
  let unanswered = 0;
  const errors: string[] = [];
  for (const r of results) {
    if (r.kind === 'warmed') {
      succeeded++;
      if (typeof r.answer.instanceId === 'string') instances.add(r.answer.instanceId);
      if (r.answer.coldStart === true) coldStarts++;
      continue;
    }
    if (r.kind === 'not-ready') modelNotReady++;
    if (r.kind === 'unanswered') unanswered++;
    errors.push(r.error);
  }
  return {
    target: config.targetArn,
    requested: config.concurrency,
    succeeded,
    failed: errors.length,
    modelNotReady,
    unanswered,
    distinctInstances: instances.size,
    coldStarts,
    durationMs: Date.now() - started,
    errors,
  };
}

/**
 * The summary as one log line that is also a CloudWatch embedded-metric document: CloudWatch
 * Logs turns its WARMER_METRIC fields into metrics, with no API call.
 */
export function summaryLine(summary: WarmerSummary, now = Date.now()): string {
  return JSON.stringify({
    message: 'warm-up run',
    _aws: {
      Timestamp: now,
      CloudWatchMetrics: [
        {
          Namespace: METRICS_NAMESPACE,
          Dimensions: [[WARMER_METRIC_DIMENSION]],
          Metrics: Object.values(WARMER_METRIC).map((name) => ({ Name: name, Unit: 'Count' })),
        },
      ],
    },
    [WARMER_METRIC_DIMENSION]: summary.target,
    [WARMER_METRIC.WARMED]: summary.succeeded,
    [WARMER_METRIC.FAILED]: summary.failed,
    [WARMER_METRIC.MODEL_NOT_READY]: summary.modelNotReady,
    ...summary,
  });
}

export const handler = async (_event?: unknown, context?: WarmerContext): Promise<WarmerSummary> => {
  const config = readConfig(process.env);
  const remaining = context?.getRemainingTimeInMillis?.();
  const deadline = remaining === undefined ? undefined : Date.now() + Math.max(0, remaining - WARMER_SUMMARY_MARGIN_MS);
  const summary = await warm(config, deadline);
  const line = summaryLine(summary);
  if (summary.failed > 0) console.warn(line);
  else console.log(line);
  return summary;
};
