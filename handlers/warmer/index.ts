/**
 * The warmer's fan-out function: invokes one target (function, version or alias ARN) N times at
 * once with the warm-up event, so that N execution environments exist when real traffic arrives.
 *
 * Best-effort by design: a failed call is counted and logged, never retried and never thrown, so
 * the other calls of the run still count and the schedule does not pile up retries.
 */
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { MAX_WARMER_CONCURRENCY, WARMER_ENV, WARMER_SOURCE, type WarmupEvent, type WarmupResponse } from '../../contract/warmup';

export interface WarmerConfig {
  readonly targetArn: string;
  readonly concurrency: number;
  readonly holdMs: number;
}

/** What one run did; also written to the log as one JSON line. */
export interface WarmerSummary {
  readonly target: string;
  readonly requested: number;
  readonly succeeded: number;
  readonly failed: number;
  /** Distinct `instanceId`s among the answers: how many environments are known to be warm. */
  readonly distinctInstances: number;
  /** Answers that reported a cold start: environments this run created. */
  readonly coldStarts: number;
  readonly durationMs: number;
  /** One message per failed call. */
  readonly errors: string[];
}

type CallResult = { ok: true; answer: WarmupResponse | undefined } | { ok: false; error: string };

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

async function warmOnce(lambda: LambdaClient, config: WarmerConfig, payload: Uint8Array): Promise<CallResult> {
  try {
    const out = await lambda.send(
      new InvokeCommand({
        FunctionName: config.targetArn,
        InvocationType: 'RequestResponse',
        Payload: payload,
      }),
    );
    const text = out.Payload ? Buffer.from(out.Payload).toString('utf8') : '';
    if (out.FunctionError) {
      return { ok: false, error: `function error (${out.FunctionError}): ${text.slice(0, 500)}` };
    }
    const answer = parseAnswer(text);
    if (answer?.warmed === false) {
      return { ok: false, error: `not warmed: ${answer.error ?? 'no reason given'}` };
    }
    return { ok: true, answer };
  } catch (err) {
    const e = err as Error;
    return { ok: false, error: `${e.name}: ${e.message}` };
  }
}

/** The answer is either the warm-up response itself or a proxy-style `{ statusCode, body }`. */
function parseAnswer(text: string): WarmupResponse | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (isObject(value) && typeof value.body === 'string') {
    try {
      value = JSON.parse(value.body);
    } catch {
      return undefined;
    }
  }
  return isObject(value) ? (value as unknown as WarmupResponse) : undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export async function warm(config: WarmerConfig): Promise<WarmerSummary> {
  const started = Date.now();
  const event: WarmupEvent = { source: WARMER_SOURCE, holdMs: config.holdMs };
  const payload = new TextEncoder().encode(JSON.stringify(event));
  const lambda = lambdaClient(config.concurrency);

  const results = await Promise.all(Array.from({ length: config.concurrency }, () => warmOnce(lambda, config, payload)));

  const instances = new Set<string>();
  let coldStarts = 0;
  const errors: string[] = [];
  for (const r of results) {
    if (!r.ok) {
      errors.push(r.error);
      continue;
    }
    if (typeof r.answer?.instanceId === 'string') instances.add(r.answer.instanceId);
    if (r.answer?.coldStart === true) coldStarts++;
  }
  return {
    target: config.targetArn,
    requested: config.concurrency,
    succeeded: results.length - errors.length,
    failed: errors.length,
    distinctInstances: instances.size,
    coldStarts,
    durationMs: Date.now() - started,
    errors,
  };
}

export const handler = async (): Promise<WarmerSummary> => {
  const summary = await warm(readConfig(process.env));
  const line = JSON.stringify({ message: 'warm-up run', ...summary });
  if (summary.failed > 0) console.warn(line);
  else console.log(line);
  return summary;
};
