import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Annotations, Duration, Token } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as codedeploy from 'aws-cdk-lib/aws-codedeploy';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { IEndpointMetrics } from './endpoint-metrics';
import { LAMBDA_MAX_PAYLOAD_BYTES } from '../../contract/defaults';
import { HOOK_TIMEOUT_HEADROOM_MS, PRE_TRAFFIC_ENV, PRE_TRAFFIC_FILES } from '../../contract/pre-traffic-check';
import { VARIANT_PARAMETER } from '../../contract/variants';
import { acknowledge, invokeAnyVersionFinding } from '../private/acknowledge';
import { createHelperFunction } from '../private/helper-function';
import { validationError } from '../private/errors';
import * as metricMath from '../private/metric-math';
import { builtAssetPath } from '../private/package-paths';
import { STAGING_EXCLUDE, stageFiles, stagingDir } from '../private/staging';

/** A gradual rollout of each new function version (a new model or handler) behind the live alias. */
export interface GradualRolloutOptions {
  /**
   * How traffic moves to the new version.
   * @default codedeploy.LambdaDeploymentConfig.CANARY_10PERCENT_5MINUTES
   */
  readonly deploymentConfig?: codedeploy.ILambdaDeploymentConfig;
  /**
   * An infer request sent to the new version before it gets any traffic; the deployment stops
   * (and nothing moves) unless the answer has the protocol's shape and every value is one its
   * datatype can hold (no NaN or infinity unless `expectedAnswer` has it). Plain JSON known at
   * synth, up to Lambda's 6 MiB invocation payload: it ships as a file in the check's code, so an
   * image model's sample fits.
   * @default - no check before traffic
   */
  // biome-ignore lint/suspicious/noExplicitAny: a JSON object, typed as aws-cdk-lib types them; jsii maps `any` to each language's object type
  readonly sampleRequest?: { [key: string]: any };
  /**
   * Output names the sample's answer must have.
   * @default - any non-empty outputs
   */
  readonly expectedOutputs?: string[];
  /**
   * The answer `sampleRequest` must get, in the protocol's shape: `{ outputs: [{ name, data,
   * datatype?, shape? }] }` for an `inputs` request (only the outputs named are compared),
   * `{ predictions: [...] }` for `instances`. Floats match within `answerTolerance`; `'NaN'`,
   * `'Infinity'` and `'-Infinity'` match only themselves; give INT64 values past 2^53 as decimal
   * strings, which JavaScript numbers cannot hold.
   * @default - any well-formed answer
   */
  // biome-ignore lint/suspicious/noExplicitAny: a JSON object, typed as aws-cdk-lib types them; jsii maps `any` to each language's object type
  readonly expectedAnswer?: { [key: string]: any };
  /**
   * How far a float of the answer may be from `expectedAnswer`'s: by this times the expected
   * value's magnitude, or by this itself when that magnitude is below 1.
   * @default 0.0001
   */
  readonly answerTolerance?: number;
  /**
   * More alarms that roll the deployment back, besides the rollout's canary alarms.
   * @default - the canary alarms only
   */
  readonly alarms?: cloudwatch.IAlarm[];
  /**
   * Let the endpoint's own alarms (those of `monitoring`) roll a deployment back too. They watch
   * the whole endpoint, every version together, over 5 and 15 minutes, and some go off on what
   * every new version does: its first requests load the model (cold-start rate, p99 latency) on
   * instances that start while the old ones stay warm (throttles under a concurrency limit). The
   * canary alarms watch what a broken version does and a healthy one does not.
   * @default false
   */
  readonly rollbackOnEndpointAlarms?: boolean;
  /**
   * Share of API requests answered 5xx, in percent, over two consecutive minutes, that rolls the
   * new version back. The function's throttles (answered 503) are not counted.
   * @default 1
   */
  readonly canaryServerErrorRatePercent?: number;
}

/** CodeDeploy's limit of alarms per deployment group. */
const MAX_DEPLOYMENT_GROUP_ALARMS = 10;

/** How long the pre-traffic check waits for the new version's answer, a cold start included. */
const CHECK_TIMEOUT = Duration.minutes(2);

/** Props of `GradualRollout`: the alias, the version it moves to, and the alarms that roll back. */
export interface GradualRolloutProps extends GradualRolloutOptions {
  /** The alias whose traffic moves. */
  readonly alias: lambda.Alias;
  /** The version being deployed (the function's current version). */
  readonly version: lambda.IVersion;
  /** The endpoint whose API's answers the canary alarms watch. */
  readonly endpoint: IEndpointMetrics;
  /**
   * The endpoint's own alarms, which roll a deployment back too with `rollbackOnEndpointAlarms`.
   * @default - none
   */
  readonly endpointAlarms?: cloudwatch.IAlarm[];
  /**
   * The function's A/B variants: the pre-traffic check sends the sample to each, naming it in the
   * sample's `parameters.variant`.
   * @default - no variants: the sample is sent once
   */
  readonly variantNames?: string[];
}

/**
 * CodeDeploy shifts the live alias to each new version gradually (a canary by default), rolls back
 * when an alarm goes off or the deployment fails, and, given a sample request, checks the new
 * version's answer before any traffic reaches it.
 */
export class GradualRollout extends Construct {
  /** The deployment group. */
  public readonly deploymentGroup: codedeploy.LambdaDeploymentGroup;
  /** The pre-traffic check, with `sampleRequest`. */
  public readonly preTrafficCheck?: lambda.Function;
  /**
   * Alarms on one-minute periods that can go off inside a canary window: the new version's
   * function errors, and the share of 5xx answers at the API.
   */
  public readonly canaryAlarms: cloudwatch.Alarm[];

  constructor(scope: Construct, id: string, props: GradualRolloutProps) {
    super(scope, id);
    const endpointAlarms = props.endpointAlarms ?? [];
    if (props.rollbackOnEndpointAlarms && endpointAlarms.length === 0) {
      throw validationError(this, "rollout.rollbackOnEndpointAlarms needs the endpoint's alarms, and it has none: set monitoring (with alarms)");
    }
    this.canaryAlarms = this.createCanaryAlarms(props);
    const alarms = [...this.canaryAlarms, ...(props.rollbackOnEndpointAlarms ? endpointAlarms : []), ...(props.alarms ?? [])];
    if (alarms.length > MAX_DEPLOYMENT_GROUP_ALARMS) {
      throw validationError(
        this,
        `rollout: CodeDeploy takes at most ${MAX_DEPLOYMENT_GROUP_ALARMS} alarms per deployment group, got: ${alarms.length} (${this.canaryAlarms.length} canary alarms, ` +
          `${props.rollbackOnEndpointAlarms ? endpointAlarms.length : 0} of the endpoint's with rollbackOnEndpointAlarms, ${props.alarms?.length ?? 0} in rollout.alarms)`,
      );
    }
    this.deploymentGroup = new codedeploy.LambdaDeploymentGroup(this, 'DeploymentGroup', {
      alias: props.alias,
      deploymentConfig: props.deploymentConfig ?? codedeploy.LambdaDeploymentConfig.CANARY_10PERCENT_5MINUTES,
      alarms,
      autoRollback: { failedDeployment: true, stoppedDeployment: true, deploymentInAlarm: alarms.length > 0 },
    });
    acknowledge(
      this.deploymentGroup.role,
      ['AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSCodeDeployRoleForLambdaLimited]'],
      "aws-cdk-lib gives CodeDeploy AWS's managed role policy for Lambda deployments: it may update aliases and read alarms, and invoke only the hooks granted to it.",
    );

    if (!props.sampleRequest) {
      Annotations.of(this).addWarningV2(
        'cdk-serverless-inference:rollout-without-check',
        'rollout has no sampleRequest: a broken version is caught only by alarms, so only if requests reach it during the canary; give a sampleRequest to check it before any traffic',
      );
    }
    for (const prop of ['expectedAnswer', 'answerTolerance'] as const) {
      if (props[prop] !== undefined && !props.sampleRequest) throw validationError(this, `rollout.${prop} applies to the answer to sampleRequest, which is not set`);
    }
    if (props.sampleRequest) {
      this.preTrafficCheck = this.createPreTrafficCheck(props);
      this.deploymentGroup.addPreHook(this.preTrafficCheck);
      acknowledge(
        this.deploymentGroup.role,
        [invokeAnyVersionFinding(this.preTrafficCheck)],
        'aws-cdk-lib lets CodeDeploy invoke any version of the one pre-traffic check it runs.',
      );
    }
  }

  /**
   * The endpoint's own alarms use 5-minute periods and 2 of 3 of them: they cannot go off before a
   * 5-minute canary ends. These use one-minute periods on what the new version does while it takes
   * its share of the traffic. Model failures come back as HTTP 5xx, not function errors, so the
   * API's 5xx rate is watched too (all versions together: a failing canary at 10 % of the traffic
   * still moves it past 1 %).
   */
  private createCanaryAlarms(props: GradualRolloutProps): cloudwatch.Alarm[] {
    const oneMinute = Duration.minutes(1);
    const fn = props.alias.version.lambda;
    // Lambda reports invocations through an alias by the version that ran them (ExecutedVersion).
    const newVersionErrors = new cloudwatch.Metric({
      namespace: 'AWS/Lambda',
      metricName: 'Errors',
      dimensionsMap: { FunctionName: fn.functionName, Resource: `${fn.functionName}:${props.alias.aliasName}`, ExecutedVersion: props.version.version },
      statistic: 'Sum',
      period: oneMinute,
    });
    // Throttles (503s) are not the new version's doing: a rollout starts new instances.
    const serverErrorRate = metricMath.serverErrorRate({
      errors: props.endpoint.metricApiServerErrors({ statistic: 'Sum', period: oneMinute }),
      requests: props.endpoint.metricApiRequests({ statistic: 'Sum', period: oneMinute }),
      throttles: fn.metricThrottles({ statistic: 'Sum', period: oneMinute }),
      period: oneMinute,
    });
    const alarm = (name: string, metric: cloudwatch.IMetric, threshold: number, periods: number, description: string) =>
      new cloudwatch.Alarm(this, name, {
        metric,
        threshold,
        evaluationPeriods: periods,
        datapointsToAlarm: periods,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription: `Rollout of ${props.endpoint.node.path}: ${description}`,
      });
    const functionErrors = alarm('CanaryFunctionErrors', newVersionErrors, 1, 1, 'function errors of the new version in one minute; rolls it back');
    // This alarm follows the version being deployed: it must watch the new one before CodeDeploy
    // starts moving traffic, which happens when the alias is updated. (The 5xx alarm reads the API,
    // which calls the alias: it cannot come first, and it does not change between versions.)
    props.alias.node.addDependency(functionErrors);
    const serverErrors = alarm(
      'CanaryServerErrorRate',
      serverErrorRate,
      props.canaryServerErrorRatePercent ?? 1,
      2,
      'share of API requests answered 5xx over two minutes, throttles (503) excepted, in percent; rolls the new version back',
    );
    return [functionErrors, serverErrors];
  }

  private createPreTrafficCheck(props: GradualRolloutProps): lambda.Function {
    const sample = literalJson(this, 'sampleRequest', props.sampleRequest);
    const sampleBytes = Buffer.byteLength(sample);
    if (sampleBytes > LAMBDA_MAX_PAYLOAD_BYTES) {
      throw validationError(
        this,
        `rollout.sampleRequest is ${sampleBytes} bytes as JSON, over Lambda's limit of ${LAMBDA_MAX_PAYLOAD_BYTES} bytes (6 MiB) for an invocation's payload: send a smaller sample`,
      );
    }
    const form = isObject(props.sampleRequest) && 'instances' in props.sampleRequest ? 'predictions' : 'outputs';
    if (props.expectedAnswer !== undefined && !Array.isArray(props.expectedAnswer[form])) {
      throw validationError(
        this,
        `rollout.expectedAnswer must have '${form}', the answer to a sampleRequest with '${form === 'outputs' ? 'inputs' : 'instances'}', got keys: ${JSON.stringify(Object.keys(props.expectedAnswer))}`,
      );
    }
    const tolerance = props.answerTolerance;
    if (tolerance !== undefined && !Token.isUnresolved(tolerance) && !(Number.isFinite(tolerance) && tolerance >= 0)) {
      throw validationError(this, `rollout.answerTolerance must be a number >= 0, got: ${tolerance}`);
    }
    const files: Record<string, string> = { [PRE_TRAFFIC_FILES.SAMPLE_REQUEST]: sample };
    // One sample per variant, each naming its variant, so that every variant answers it.
    const variantFiles: Record<string, string> = {};
    (props.variantNames ?? []).forEach((name, i) => {
      const request = props.sampleRequest as { parameters?: { [key: string]: unknown } };
      const file = `sample-request.variant-${i}.json`;
      files[file] = literalJson(this, 'sampleRequest', { ...request, parameters: { ...request.parameters, [VARIANT_PARAMETER]: name } });
      variantFiles[name] = file;
    });
    if (props.expectedAnswer !== undefined) files[PRE_TRAFFIC_FILES.EXPECTED_ANSWER] = literalJson(this, 'expectedAnswer', props.expectedAnswer);

    const { function: check } = createHelperFunction(this, {
      ids: { function: 'PreTrafficCheck', role: 'PreTrafficCheckRole', logGroup: 'PreTrafficCheckLogGroup' },
      description: 'Checks the new inference function version before it gets traffic',
      roleDescription: 'Sends the sample request to the new version and reports the verdict to CodeDeploy',
      // The sample (and expected answer) beside the code: Lambda allows 4 KB of variables in all.
      code: lambda.Code.fromAsset(checkCode(this, files), { exclude: STAGING_EXCLUDE }),
      memorySize: 256,
      // The new version's cold start (a model load) comes first, and the verdict must still be reported.
      timeout: CHECK_TIMEOUT.plus(Duration.millis(HOOK_TIMEOUT_HEADROOM_MS)),
      logGroup: { retention: logs.RetentionDays.ONE_MONTH },
      environment: {
        [PRE_TRAFFIC_ENV.TARGET_VERSION_ARN]: props.version.functionArn,
        [PRE_TRAFFIC_ENV.SAMPLE_REQUEST_FILE]: PRE_TRAFFIC_FILES.SAMPLE_REQUEST,
        [PRE_TRAFFIC_ENV.CHECK_TIMEOUT_MS]: String(CHECK_TIMEOUT.toMilliseconds()),
        ...(props.expectedOutputs ? { [PRE_TRAFFIC_ENV.EXPECTED_OUTPUTS]: JSON.stringify(props.expectedOutputs) } : {}),
        ...(props.expectedAnswer !== undefined ? { [PRE_TRAFFIC_ENV.EXPECTED_ANSWER_FILE]: PRE_TRAFFIC_FILES.EXPECTED_ANSWER } : {}),
        ...(tolerance !== undefined ? { [PRE_TRAFFIC_ENV.ANSWER_TOLERANCE]: String(tolerance) } : {}),
        ...(props.variantNames ? { [PRE_TRAFFIC_ENV.VARIANT_SAMPLE_FILES]: JSON.stringify(variantFiles) } : {}),
      },
      whyNoFailureCapture: 'CodeDeploy invokes the check once per deployment and fails the deployment when it does not report; there is nothing to retry or trace.',
      grant: (role) => props.version.grantInvoke(role),
    });
    return check;
  }
}

/**
 * The check's code: the prebuilt handler with `files` (name → text) beside it, staged by their
 * content, so that an unchanged sample keeps the same asset.
 */
function checkCode(scope: Construct, files: Record<string, string>): string {
  const names = Object.keys(files).sort();
  const key = createHash('sha256');
  for (const name of names) key.update(`${name}\0${files[name]}\0`);
  const dataDir = stagingDir(scope, 'pre-traffic-check-data', key.digest('hex').slice(0, 32));
  fs.mkdirSync(dataDir, { recursive: true });
  for (const name of names) {
    const file = path.join(dataDir, name);
    if (fs.existsSync(file)) continue;
    // Written beside and renamed, so a synth that stops halfway never leaves a partial file.
    fs.writeFileSync(`${file}.${process.pid}.partial`, files[name]);
    fs.renameSync(`${file}.${process.pid}.partial`, file);
  }
  return stageFiles(scope, 'pre-traffic-check', [
    { source: builtAssetPath('handlers', 'pre-traffic-check'), destination: '.' },
    ...names.map((name) => ({ source: path.join(dataDir, name), destination: name })),
  ]);
}

/** `value` as JSON text; a token in it fails the synth: the text is written into the check's code at synth. */
function literalJson(scope: Construct, prop: string, value: unknown): string {
  const token = findToken(value, '');
  if (token !== undefined) {
    throw validationError(scope, `rollout.${prop} must be plain JSON known at synth (it ships in the pre-traffic check's code), got a token at ${token || 'its root'}`);
  }
  return JSON.stringify(value);
}

function findToken(value: unknown, at: string): string | undefined {
  if (Token.isUnresolved(value)) return at;
  if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) {
      const found = findToken(v, `${at}[${i}]`);
      if (found !== undefined) return found;
    }
  } else if (isObject(value)) {
    for (const [k, v] of Object.entries(value)) {
      const found = findToken(v, at ? `${at}.${k}` : k);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
