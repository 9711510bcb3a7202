import { Duration, RemovalPolicy, Token } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { acknowledge } from '../private/acknowledge';
import { defaultNodeRuntime } from '../private/node-runtime';
import { builtAssetPath } from '../private/package-paths';
import { METRICS_NAMESPACE } from '../../contract/metrics';
import { MAX_HOLD_MS, MAX_WARMER_CONCURRENCY, WARMER_ENV, WARMER_METRIC, WARMER_METRIC_DIMENSION, WARMER_SOURCE, WARMER_TIMEOUT_HEADROOM_MS } from '../../contract/warmup';
import { validationError } from '../private/errors';

/** How long a warm-up call holds its instance when `concurrency` > 1, unless `holdTime` says otherwise. */
const DEFAULT_HOLD_WHEN_CONCURRENT = Duration.millis(100);

/** Longest `holdTime` accepted: what the inference handler honours. */
const MAX_HOLD_TIME = Duration.millis(MAX_HOLD_MS);

/** Lambda's longest timeout, the fan-out's included. */
const MAX_TIMEOUT = Duration.minutes(15);

/** Lambda's timeout for a function created without one. */
const LAMBDA_DEFAULT_TIMEOUT = Duration.seconds(3);

/** How a warmer keeps its target warm: everything but the target. */
export interface WarmerOptions {
  /**
   * How many execution environments to keep warm: the number of concurrent calls per run.
   * Between 1 and 100.
   *
   * @default 1
   */
  readonly concurrency?: number;

  /**
   * When to run.
   *
   * @default events.Schedule.rate(Duration.minutes(5))
   */
  readonly schedule?: events.Schedule;

  /**
   * How long each warmed instance stays busy before answering. While one instance is busy, Lambda
   * must send the other concurrent calls to other instances, so N calls reach N instances.
   * Whole milliseconds, at most 5 seconds (the inference handler clamps longer holds).
   *
   * @default - 100 milliseconds when `concurrency` > 1, none when it is 1
   */
  readonly holdTime?: Duration;

  /**
   * Retention of the fan-out function's log group.
   *
   * @default logs.RetentionDays.ONE_WEEK
   */
  readonly logRetention?: logs.RetentionDays;
}

/** Props of a `Warmer`: its options, what to keep warm, and whether a schedule runs it. */
export interface WarmerProps extends WarmerOptions {
  /**
   * Whether a schedule invokes the fan-out. `false` keeps the fan-out function, to be invoked by
   * hand or by a rule of your own, and creates no rule.
   *
   * @default true
   */
  readonly scheduled?: boolean;

  /**
   * What to keep warm: a function, a version or an alias. The warmer invokes exactly this ARN
   * (an unqualified function ARN means `$LATEST`) and may invoke nothing else.
   */
  readonly target: lambda.IFunction;

  /**
   * The target's timeout: how long one warm-up call may take, a cold start's model load included.
   * The fan-out function gets this plus 15 seconds (Lambda's 10-second init phase comes first, and
   * the summary must still be logged), at most 15 minutes; calls still running when its time is
   * nearly up are counted as unanswered.
   *
   * @default - the target's own timeout when it is a `lambda.Function` of this app, or a version
   * or alias of one; otherwise 15 minutes
   */
  readonly targetTimeout?: Duration;
}

/**
 * Keeps N execution environments of a function warm, best-effort and cheaply.
 *
 * On a schedule, a small fan-out function invokes the target N times at once with the warm-up event
 * `{"source": "cdk-serverless-inference.warmer", "holdMs": ...}`; the inference handler answers it
 * without running the model. Instances Lambda recycled since the last run are re-created then,
 * so the cold start is paid by the warmer instead of a user.
 *
 * Cost and guarantees: each run costs N short invocations of the target (billed for `holdTime`
 * plus the answer) and one of the fan-out, so every 5 minutes about 8,640·N target invocations a
 * month — usually cents. It is best-effort: Lambda may still recycle an instance between runs or
 * route a burst above N to new instances. When cold starts must not reach users, use provisioned
 * concurrency instead: `new lambda.Alias(this, 'Live', { version, provisionedConcurrentExecutions: N })`,
 * optionally with `alias.addAutoScaling({ minCapacity, maxCapacity }).scaleOnSchedule(...)` to pay
 * for it only in busy hours. Provisioned instances are initialised ahead of time and always
 * ready, but billed for every second they exist, busy or idle. Point the warmer at that alias
 * and it only touches instances that are already warm; the two are rarely worth combining.
 *
 * A call counts as warmed only when the instance answers that its model is loaded. Each run logs
 * one summary line (calls warmed, failed, answered with the model not loaded, unanswered, and why),
 * which is also the source of `metricSucceeded()`, `metricFailed()` and `metricModelNotReady()`.
 *
 * The fan-out runs on arm64 with 128 MB; its role may write its own log group and call
 * `lambda:InvokeFunction` on the target's ARN, nothing more.
 */
export class Warmer extends Construct {
  /** `source` of the warm-up event; the inference handler answers such an event without running the model. */
  public static readonly EVENT_SOURCE = WARMER_SOURCE;

  /** The fan-out function the schedule invokes. */
  public readonly function: lambda.Function;

  /** The schedule, or `undefined` when `scheduled` is `false`. */
  public readonly rule?: events.Rule;

  /** The fan-out function's log group. */
  public readonly logGroup: logs.LogGroup;

  /** Concurrent calls per run. */
  public readonly concurrency: number;

  /** How long each call holds its instance. */
  public readonly holdTime: Duration;

  /** The ARN invoked, the dimension of the warmer's metrics. */
  private readonly targetArn: string;

  constructor(scope: Construct, id: string, props: WarmerProps) {
    super(scope, id);

    this.concurrency = props.concurrency ?? 1;
    validateConcurrency(this, this.concurrency);
    this.holdTime = props.holdTime ?? (this.concurrency > 1 ? DEFAULT_HOLD_WHEN_CONCURRENT : Duration.millis(0));
    validateHoldTime(this, this.holdTime);

    this.targetArn = props.target.functionArn;
    if (props.targetTimeout) validateTargetTimeout(this, props.targetTimeout);

    this.logGroup = new logs.LogGroup(this, 'LogGroup', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_WEEK,
      // Warm-up summaries are worth nothing once the stack is gone.
      removalPolicy: RemovalPolicy.DESTROY,
    });

    // An own role instead of the default one: the default attaches AWSLambdaBasicExecutionRole,
    // which may write to every log group in the account.
    const role = new iam.Role(this, 'ServiceRole', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'Writes the warmer logs and invokes the one function it keeps warm',
    });
    this.logGroup.grantWrite(role);
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['lambda:InvokeFunction'],
        resources: [props.target.functionArn],
      }),
    );

    this.function = new lambda.Function(this, 'Function', {
      runtime: defaultNodeRuntime(),
      architecture: lambda.Architecture.ARM_64,
      handler: 'index.handler',
      code: lambda.Code.fromAsset(builtAssetPath('handlers', 'warmer')),
      memorySize: 128,
      timeout: fanOutTimeout(props.targetTimeout ?? timeoutOf(props.target), this.holdTime),
      role,
      logGroup: this.logGroup,
      // A late retry of a warm-up run is worthless: the next scheduled run comes anyway.
      retryAttempts: 0,
      description: 'Invokes its target concurrently to keep execution environments warm',
      environment: {
        [WARMER_ENV.TARGET_ARN]: props.target.functionArn,
        [WARMER_ENV.CONCURRENCY]: String(this.concurrency),
        [WARMER_ENV.HOLD_MS]: String(this.holdTime.toMilliseconds()),
      },
    });

    if (props.scheduled ?? true) {
      this.rule = new events.Rule(this, 'Schedule', {
        schedule: props.schedule ?? events.Schedule.rate(Duration.minutes(5)),
        description: 'Keeps Lambda execution environments warm',
        targets: [new targets.LambdaFunction(this.function, { retryAttempts: 0 })],
      });
      acknowledge(this.rule, ['Serverless-EventBusDLQ'], MISSED_PING);
    }
    acknowledge(this.function, ['Serverless-LambdaDLQ', 'Serverless-LambdaAsyncFailureDestination'], MISSED_PING);
    acknowledge(this.function, ['Serverless-LambdaTracing'], 'Tracing a keep-warm ping would cost a trace per ping and show nothing of interest.');
  }

  /**
   * Warm-up calls answered by an instance whose model is loaded, summed.
   *
   * @default - sum over 5 minutes
   */
  public metricSucceeded(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(WARMER_METRIC.WARMED, props);
  }

  /**
   * Warm-up calls that warmed nothing (the model not loaded, a function error, a throttle, no
   * answer in time), summed. Each run's log line says why, per call.
   *
   * @default - sum over 5 minutes
   */
  public metricFailed(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(WARMER_METRIC.FAILED, props);
  }

  /**
   * Of the failed warm-up calls, those an instance answered without its model loaded, summed.
   *
   * @default - sum over 5 minutes
   */
  public metricModelNotReady(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(WARMER_METRIC.MODEL_NOT_READY, props);
  }

  private metric(metricName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: METRICS_NAMESPACE,
      metricName,
      dimensionsMap: { [WARMER_METRIC_DIMENSION]: this.targetArn },
      statistic: 'Sum',
      ...props,
    });
  }
}

/** The timeout of the function behind `target` (itself, or the function of a version or alias), when this app defines it. */
function timeoutOf(target: lambda.IFunction): Duration | undefined {
  const fn = target instanceof lambda.Alias ? target.version.lambda : target instanceof lambda.Version ? target.lambda : target;
  return fn instanceof lambda.Function ? (fn.timeout ?? LAMBDA_DEFAULT_TIMEOUT) : undefined;
}

/** The target's timeout and the headroom, the hold on top (it adds to each call), within Lambda's 15 minutes. */
function fanOutTimeout(targetTimeout: Duration | undefined, holdTime: Duration): Duration {
  if (!targetTimeout || targetTimeout.isUnresolved() || holdTime.isUnresolved()) return MAX_TIMEOUT;
  const seconds = Math.ceil((targetTimeout.toMilliseconds() + WARMER_TIMEOUT_HEADROOM_MS + holdTime.toMilliseconds()) / 1000);
  return Duration.seconds(Math.min(seconds, MAX_TIMEOUT.toSeconds()));
}

function validateTargetTimeout(scope: Construct, timeout: Duration): void {
  if (timeout.isUnresolved()) return;
  if (timeout.toMilliseconds() <= 0 || timeout.toMilliseconds() > MAX_TIMEOUT.toMilliseconds()) {
    throw validationError(scope, `Warmer: targetTimeout must be more than 0 and at most ${MAX_TIMEOUT.toHumanString()} (Lambda's limit), got: ${timeout.toHumanString()}`);
  }
}

/** Why the Serverless pack's failure-capture rules do not fit a warm-up ping. */
const MISSED_PING = 'A missed warm-up ping is harmless and worthless to replay: the next scheduled run replaces it, so retries and failure capture are off on purpose.';

function validateConcurrency(scope: Construct, concurrency: number): void {
  if (Token.isUnresolved(concurrency)) {
    throw validationError(scope, 'Warmer: concurrency must be a literal number, got a token');
  }
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > MAX_WARMER_CONCURRENCY) {
    throw validationError(scope, `Warmer: concurrency must be a whole number between 1 and ${MAX_WARMER_CONCURRENCY}, got: ${concurrency}`);
  }
}

function validateHoldTime(scope: Construct, holdTime: Duration): void {
  if (holdTime.isUnresolved()) return;
  const ms = holdTime.toMilliseconds({ integral: false });
  if (!Number.isInteger(ms)) {
    throw validationError(scope, `Warmer: holdTime must be a whole number of milliseconds, got: ${ms} milliseconds`);
  }
  if (ms > MAX_HOLD_TIME.toMilliseconds()) {
    throw validationError(scope, `Warmer: holdTime must be at most ${MAX_HOLD_TIME.toHumanString()}, got: ${holdTime.toHumanString()}`);
  }
}
