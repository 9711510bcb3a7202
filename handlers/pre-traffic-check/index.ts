/**
 * CodeDeploy's pre-traffic hook for a gradual rollout of an inference function: invokes the new
 * version once with a sample infer request, checks that the answer is well formed (every value one
 * its datatype can hold, no NaN or infinity unless expected) and, when an expected answer is given,
 * that it matches it, and reports the verdict to CodeDeploy, which shifts traffic on `Succeeded`
 * and rolls back on `Failed`.
 *
 * A verdict is reported whatever goes wrong before it (bad configuration, a failed or hung
 * invocation): without one, CodeDeploy waits up to an hour before giving up on the hook.
 */
import { CodeDeployClient, PutLifecycleEventHookExecutionStatusCommand } from '@aws-sdk/client-codedeploy';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { checkAnswer, type AnswerSummary, type InvokeAnswer } from './check';
import { isObject, readConfig, type PreTrafficConfig } from './config';
import { REPORT_TIMEOUT_MS } from '../../contract/pre-traffic-check';

/** CodeDeploy's refusal of a second status for one hook execution. */
const ALREADY_COMPLETED = 'LifecycleEventAlreadyCompletedException';

/** What CodeDeploy passes to a lifecycle hook function. */
export interface HookEvent {
  readonly DeploymentId: string;
  readonly LifecycleEventHookExecutionId: string;
}

export type Verdict = 'Succeeded' | 'Failed';

export interface PreTrafficResult {
  readonly status: Verdict;
  readonly problems: string[];
}

interface Outcome {
  readonly problems: string[];
  readonly config?: PreTrafficConfig;
  readonly budgetMs?: number;
  readonly answer?: AnswerSummary;
}

/** The part of Lambda's context the hook uses; absent when called outside Lambda. */
interface HookContext {
  getRemainingTimeInMillis?(): number;
}

export const handler = async (event: unknown, context?: HookContext): Promise<PreTrafficResult> => {
  const started = Date.now();
  const ids = readHookEvent(event);
  const outcome = await check(process.env, context);
  const status: Verdict = outcome.problems.length === 0 ? 'Succeeded' : 'Failed';

  let reportError: string | undefined;
  let alreadyCompleted = false;
  try {
    await report(ids, status);
  } catch (e) {
    // The SDK retries a report whose answer was lost; CodeDeploy then refuses the retry because
    // the first attempt was recorded. An earlier run of this hook may have reported too. Either
    // way CodeDeploy has its verdict, and nothing is left to do.
    if ((e as Error)?.name === ALREADY_COMPLETED) alreadyCompleted = true;
    else reportError = messageOf(e);
  }

  const line = JSON.stringify({
    message: 'pre-traffic check',
    deploymentId: ids.DeploymentId,
    lifecycleEventHookExecutionId: ids.LifecycleEventHookExecutionId,
    status,
    problems: outcome.problems,
    checked: outcome.config && {
      target: outcome.config.targetVersionArn,
      request: outcome.config.sample,
      expectedOutputs: outcome.config.expectedOutputs,
      expectedAnswer: outcome.config.expectedAnswer !== undefined,
      tolerance: outcome.config.expectedAnswer !== undefined ? outcome.config.tolerance : undefined,
      timeoutMs: outcome.budgetMs,
    },
    answer: outcome.answer,
    reported: reportError === undefined,
    ...(alreadyCompleted ? { alreadyCompleted: 'CodeDeploy had already recorded a status for this hook execution (an earlier attempt of this report, or of this hook)' } : {}),
    ...(reportError ? { reportError } : {}),
    durationMs: Date.now() - started,
  });
  if (status === 'Succeeded' && !reportError) console.log(line);
  else console.error(line);

  if (reportError) {
    // A failed invocation is visible in the hook's metrics and makes CodeDeploy's wait explainable.
    throw new Error(`could not report ${status} to CodeDeploy for deployment ${ids.DeploymentId}: ${reportError}`);
  }
  return { status, problems: outcome.problems };
};

function readHookEvent(event: unknown): HookEvent {
  const e = isObject(event) ? event : {};
  if (typeof e.DeploymentId !== 'string' || !e.DeploymentId || typeof e.LifecycleEventHookExecutionId !== 'string' || !e.LifecycleEventHookExecutionId) {
    // Without the ids there is nothing to report to: failing loudly is all that is left.
    throw new Error(`not a CodeDeploy lifecycle hook event: expected DeploymentId and LifecycleEventHookExecutionId, got keys ${JSON.stringify(Object.keys(e))}`);
  }
  return { DeploymentId: e.DeploymentId, LifecycleEventHookExecutionId: e.LifecycleEventHookExecutionId };
}

async function check(env: NodeJS.ProcessEnv, context: HookContext | undefined): Promise<Outcome> {
  const read = readConfig(env);
  if (!read.ok) return { problems: read.problems.map((p) => `configuration: ${p}`) };
  const config = read.config;
  const budgetMs = invokeBudget(config.checkTimeoutMs, context);
  if (config.variantSamples) return checkVariants(config, config.variantSamples, budgetMs);
  let answer: InvokeAnswer;
  try {
    answer = await invokeTarget(config, budgetMs);
  } catch (e) {
    return { config, budgetMs, problems: [`the invocation of ${config.targetVersionArn} failed: ${messageOf(e)}`] };
  }
  const result = checkAnswer(config, answer);
  return { config, budgetMs, problems: result.problems, answer: result.summary };
}

/**
 * A function with A/B variants: the sample goes to each variant in turn (it names the variant in
 * its parameters), within one budget, and every problem names its variant. The first invocation
 * loads every variant, so the later ones are quick.
 */
async function checkVariants(config: PreTrafficConfig, samples: NonNullable<PreTrafficConfig['variantSamples']>, budgetMs: number): Promise<Outcome> {
  const deadline = Date.now() + budgetMs;
  const problems: string[] = [];
  let summary: AnswerSummary | undefined;
  for (const { variant, text } of samples) {
    const left = deadline - Date.now();
    if (left <= 0) {
      problems.push(`variant '${variant}': not checked, the budget of ${budgetMs} ms was spent on the variants before it`);
      continue;
    }
    let answer: InvokeAnswer;
    try {
      answer = await invokeTarget({ ...config, sampleRequest: text }, left);
    } catch (e) {
      problems.push(`variant '${variant}': the invocation of ${config.targetVersionArn} failed: ${messageOf(e)}`);
      continue;
    }
    const result = checkAnswer(config, answer);
    summary ??= result.summary;
    problems.push(...result.problems.map((p) => `variant '${variant}': ${p}`));
  }
  return { config, budgetMs, problems, answer: summary };
}

/** The configured budget, shortened when the function's own timeout would not leave time to report. */
function invokeBudget(configuredMs: number, context: HookContext | undefined): number {
  const remaining = context?.getRemainingTimeInMillis?.();
  if (remaining === undefined) return configuredMs;
  return Math.max(1_000, Math.min(configuredMs, remaining - REPORT_TIMEOUT_MS - 1_000));
}

async function invokeTarget(config: PreTrafficConfig, budgetMs: number): Promise<InvokeAnswer> {
  const lambda = new LambdaClient({
    // One retry for a dropped connection or a throttle; the abort signal bounds both attempts together.
    maxAttempts: 2,
    // Without throwOnRequestTimeout the SDK only logs a warning when requestTimeout passes.
    requestHandler: { connectionTimeout: Math.min(5_000, budgetMs), requestTimeout: budgetMs, throwOnRequestTimeout: true },
  });
  const signal = AbortSignal.timeout(budgetMs);
  try {
    const out = await lambda.send(
      new InvokeCommand({
        FunctionName: config.targetVersionArn,
        InvocationType: 'RequestResponse',
        Payload: new TextEncoder().encode(config.sampleRequest),
      }),
      { abortSignal: signal },
    );
    return { functionError: out.FunctionError, payload: out.Payload ? Buffer.from(out.Payload).toString('utf8') : '' };
  } catch (e) {
    if (signal.aborted) throw Object.assign(new Error(`no answer within ${budgetMs} ms (${messageOf(e)})`), { name: 'TimeoutError' });
    throw e;
  } finally {
    lambda.destroy();
  }
}

async function report(ids: HookEvent, status: Verdict): Promise<void> {
  const codedeploy = new CodeDeployClient({
    maxAttempts: 3,
    requestHandler: { connectionTimeout: 2_000, requestTimeout: 4_000, throwOnRequestTimeout: true },
  });
  try {
    await codedeploy.send(
      new PutLifecycleEventHookExecutionStatusCommand({
        deploymentId: ids.DeploymentId,
        lifecycleEventHookExecutionId: ids.LifecycleEventHookExecutionId,
        status,
      }),
      { abortSignal: AbortSignal.timeout(REPORT_TIMEOUT_MS) },
    );
  } finally {
    codedeploy.destroy();
  }
}

function messageOf(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return String(e);
}
