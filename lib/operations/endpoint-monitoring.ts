import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import type { IEndpointMetrics } from './endpoint-metrics';
import type { InferenceFunction } from '../function/inference-function';
import * as metricMath from '../private/metric-math';
import { variantWidgets } from './variant-widgets';

/** Thresholds of the endpoint's alarms. */
export interface EndpointAlarmThresholds {
  /**
   * Share of API requests answered 5xx, in percent, over 5 minutes (2 of 3 periods). With a
   * function, its throttles (answered 503 with `Retry-After`, and watched by `throttles`) are not
   * counted.
   * @default 1
   */
  readonly serverErrorRatePercent?: number;
  /**
   * p99 latency at the API, over 5 minutes (2 of 3 periods).
   * @default Duration.seconds(5)
   */
  readonly latencyP99?: Duration;
  /**
   * Throttled invocations in 5 minutes.
   * @default 1
   */
  readonly throttles?: number;
  /**
   * Share of invocations that started an instance, in percent, over 15 minutes (2 of 2 periods).
   * A high rate means users wait for model loads: warm more instances or provision them.
   * @default 20
   */
  readonly coldStartRatePercent?: number;
  /**
   * Function errors in 5 minutes (crashes: the handler answers bad requests without one).
   * @default 1
   */
  readonly functionErrors?: number;
}

/**
 * The thresholds an alarm gets when `thresholds` leaves it out. Each `@default` above says the same:
 * a test holds the two together (jsii takes the documentation as written, so it cannot read these).
 */
const DEFAULT_THRESHOLDS = {
  serverErrorRatePercent: 1,
  latencyP99: Duration.seconds(5),
  throttles: 1,
  coldStartRatePercent: 20,
  functionErrors: 1,
} as const satisfies Required<EndpointAlarmThresholds>;

/** Alarms and a dashboard for an endpoint. `monitoring: {}` turns on both with their defaults. */
export interface EndpointMonitoringOptions {
  /**
   * Create the alarms.
   * @default true
   */
  readonly alarms?: boolean;
  /**
   * The alarms' thresholds.
   * @default - see `EndpointAlarmThresholds`
   */
  readonly thresholds?: EndpointAlarmThresholds;
  /**
   * Where alarms (and their return to OK) are sent. Give a topic, or `alarmActions` for any other
   * action. A topic of your own that is encrypted needs a customer-managed key whose policy lets
   * `cloudwatch.amazonaws.com` use it (`kms:Decrypt`, `kms:GenerateDataKey*`); one with a topic
   * policy needs a statement in it that lets `cloudwatch.amazonaws.com` publish (`sns:Publish`).
   * @default - a new SNS topic, without subscriptions (subscribe to `endpoint.monitoring.alarmTopic`),
   * TLS-only, which these alarms (and only they) may publish to, encrypted with a new
   * customer-managed key that CloudWatch may use, rotated yearly (about 1 USD a month)
   */
  readonly alarmTopic?: sns.ITopic;
  /**
   * Actions instead of a topic.
   * @default - the topic's
   */
  readonly alarmActions?: cloudwatch.IAlarmAction[];
  /**
   * Create a CloudWatch dashboard of the endpoint.
   * @default true
   */
  readonly dashboard?: boolean;
}

/** Props of `EndpointMonitoring`: the endpoint to watch, and how. */
export interface EndpointMonitoringProps extends EndpointMonitoringOptions {
  /** The endpoint whose API is watched. */
  readonly endpoint: IEndpointMetrics;
  /**
   * The function behind the API, whose throttles, errors, cold starts and durations are watched too.
   * @default - none: the API's alarms and graphs only
   */
  readonly inferenceFunction?: InferenceFunction;
  /**
   * Shown on the dashboard and in the alarms' descriptions.
   * @default - names the model and the endpoint's path
   */
  readonly title?: string;
}

/**
 * Alarms with sane thresholds (5xx rate and p99 latency at the API; with a function, throttles,
 * cold-start rate and function errors too) sent to an SNS topic or your actions, and a dashboard
 * of the endpoint.
 */
export class EndpointMonitoring extends Construct {
  /** The alarms, by name. */
  public readonly alarms: Record<string, cloudwatch.Alarm> = {};
  /** The topic alarms go to, when actions are not given. */
  public readonly alarmTopic?: sns.ITopic;
  /** The key of the topic this construct created, which lets CloudWatch publish to it. */
  public readonly alarmTopicKey?: kms.Key;
  /** The dashboard. */
  public readonly dashboard?: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: EndpointMonitoringProps) {
    super(scope, id);
    const e = props.endpoint;
    const fn = props.inferenceFunction;
    const title = props.title ?? `Model ${e.modelName} (${e.node.path})`;
    const fiveMinutes = Duration.minutes(5);
    if (props.alarms ?? true) {
      const t = props.thresholds ?? {};
      const alarm = (name: string, metric: cloudwatch.IMetric, threshold: number, evaluationPeriods: number, datapointsToAlarm: number, description: string) => {
        this.alarms[name] = new cloudwatch.Alarm(this, name, {
          metric,
          threshold,
          evaluationPeriods,
          datapointsToAlarm,
          comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          // No traffic is not a failure.
          treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
          alarmDescription: `${title}: ${description}`,
        });
      };
      // Throttles reach callers as 503s (retryable), watched by their own alarm: not counted here.
      const serverErrorRate = metricMath.serverErrorRate({
        errors: e.metricApiServerErrors({ statistic: 'Sum', period: fiveMinutes }),
        requests: e.metricApiRequests({ statistic: 'Sum', period: fiveMinutes }),
        throttles: fn?.metricThrottles({ statistic: 'Sum', period: fiveMinutes }),
        period: fiveMinutes,
      });
      alarm(
        'ServerErrorRate',
        serverErrorRate,
        t.serverErrorRatePercent ?? DEFAULT_THRESHOLDS.serverErrorRatePercent,
        3,
        2,
        fn ? 'share of API requests answered 5xx, throttles (503) excepted, in percent' : 'share of API requests answered 5xx, in percent',
      );
      alarm(
        'LatencyP99',
        e.metricLatency({ statistic: 'p99', period: fiveMinutes }),
        (t.latencyP99 ?? DEFAULT_THRESHOLDS.latencyP99).toMilliseconds(),
        3,
        2,
        'p99 latency at the API, in milliseconds',
      );
      if (fn) {
        const coldStartRate = new cloudwatch.MathExpression({
          label: 'cold-start rate (%)',
          expression: 'IF(invocations > 0, 100 * cold / invocations, 0)',
          usingMetrics: {
            cold: fn.metricColdStarts({ statistic: 'Sum', period: Duration.minutes(15) }),
            invocations: fn.metricInvocations({ statistic: 'Sum', period: Duration.minutes(15) }),
          },
          period: Duration.minutes(15),
        });
        alarm(
          'Throttles',
          fn.metricThrottles({ statistic: 'Sum', period: fiveMinutes }),
          t.throttles ?? DEFAULT_THRESHOLDS.throttles,
          1,
          1,
          'throttled invocations: raise reserved concurrency or the account limit',
        );
        // Managed Instances load the model when an environment starts, never for a request.
        if (!fn.capacityProvider) {
          alarm(
            'ColdStartRate',
            coldStartRate,
            t.coldStartRatePercent ?? DEFAULT_THRESHOLDS.coldStartRatePercent,
            2,
            2,
            'share of invocations that loaded the model, in percent: warm or provision more instances',
          );
        }
        alarm(
          'FunctionErrors',
          fn.metricErrors({ statistic: 'Sum', period: fiveMinutes }),
          t.functionErrors ?? DEFAULT_THRESHOLDS.functionErrors,
          1,
          1,
          'function errors (crashes), see its logs',
        );
      }

      // Data capture's own alarm goes where the endpoint's alarms go.
      if (fn?.dataCapture) this.alarms.CaptureFailures = fn.dataCapture.failureAlarm;

      let alarmActions = props.alarmActions;
      if (!alarmActions) {
        if (props.alarmTopic) {
          this.alarmTopic = props.alarmTopic;
        } else {
          this.alarmTopicKey = alarmTopicKey(this, title);
          const topic = new sns.Topic(this, 'AlarmTopic', { displayName: `${title} alarms`, masterKey: this.alarmTopicKey, enforceSSL: true });
          allowAlarmsToPublish(topic, Object.values(this.alarms));
          this.alarmTopic = topic;
        }
        alarmActions = [new actions.SnsAction(this.alarmTopic)];
      }
      for (const a of Object.values(this.alarms)) {
        a.addAlarmAction(...alarmActions);
        a.addOkAction(...alarmActions);
      }
    }

    if (props.dashboard ?? true) {
      this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', { defaultInterval: Duration.hours(3) });
      const graph = (graphTitle: string, left: cloudwatch.IMetric[], right?: cloudwatch.IMetric[]) =>
        new cloudwatch.GraphWidget({ title: graphTitle, left, right, width: 12, height: 6 });
      const percentiles = (metric: (props: cloudwatch.MetricOptions) => cloudwatch.IMetric) => ['p50', 'p90', 'p99'].map((statistic) => metric({ statistic, label: statistic }));
      this.dashboard.addWidgets(
        graph(
          'Requests at the API',
          [e.metricApiRequests({ statistic: 'Sum', label: 'requests' })],
          [e.metricApiClientErrors({ statistic: 'Sum', label: '4xx' }), e.metricApiServerErrors({ statistic: 'Sum', label: '5xx' })],
        ),
        graph(
          'Latency at the API (ms)',
          percentiles((o) => e.metricLatency(o)),
        ),
      );
      if (fn) {
        this.dashboard.addWidgets(
          graph(
            'Invocations',
            [fn.metricInvocations({ statistic: 'Sum', label: 'invocations' })],
            [fn.metricErrors({ statistic: 'Sum', label: 'errors' }), fn.metricThrottles({ statistic: 'Sum', label: 'throttles' })],
          ),
          graph(
            'Function duration (ms)',
            percentiles((o) => fn.metricDuration(o)),
          ),
        );
        this.dashboard.addWidgets(
          graph('Cold starts', [fn.metricColdStarts({ label: 'cold starts' })], [fn.metricModelLoadTime({ label: 'model load (ms, max)' })]),
          graph(
            'Inference time (ms)',
            percentiles((o) => fn.metricInferenceTime(o)),
          ),
        );
      } else {
        this.dashboard.addWidgets(
          graph(
            'Backend latency as API Gateway saw it (ms)',
            percentiles((o) => e.metricIntegrationLatency(o)),
          ),
        );
      }
      if (fn?.dataCapture) {
        const agreement = new cloudwatch.MathExpression({
          label: 'agreed (%)',
          expression: '100 * agreement',
          usingMetrics: { agreement: fn.metricShadowAgreement() },
        });
        this.dashboard.addWidgets(
          graph('Data capture', [fn.metricCaptured({ label: 'captured' })], [fn.metricCaptureFailures({ label: 'failed, dropped' })]),
          ...(fn.shadowEnabled
            ? [
                graph('Shadow: answers that agreed with the live ones (%)', [agreement], [fn.metricShadowFailures({ label: 'shadow errors' })]),
                graph('Shadow: inference time over the live model’s', [fn.metricShadowLatencyRatio({ label: 'latency ratio (average)' })]),
              ]
            : []),
        );
      }
      if (fn?.variantNames) this.dashboard.addWidgets(...variantWidgets(fn, fn.variantNames));
      const alarms = Object.values(this.alarms);
      if (alarms.length > 0) {
        this.dashboard.addWidgets(new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms, width: 24, height: 3 }));
      }
    }
  }
}

/**
 * Lets CloudWatch publish these alarms to the topic. A topic policy replaces SNS's default one,
 * which let the account publish: the policy `enforceSSL` creates holds only its Deny, and every
 * alarm action would fail with "not authorized to perform: SNS:Publish", seen only in the alarm's
 * history. CloudWatch publishes as its service principal, with the alarm as the source.
 */
function allowAlarmsToPublish(topic: sns.Topic, alarms: cloudwatch.Alarm[]): void {
  topic.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: 'CloudWatchAlarmsPublish',
      principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
      actions: ['sns:Publish'],
      resources: [topic.topicArn],
      conditions: {
        StringEquals: { 'aws:SourceAccount': Stack.of(topic).account },
        ArnLike: { 'aws:SourceArn': alarms.map((a) => a.alarmArn) },
      },
    }),
  );
}

/**
 * A key for the alarm topic that CloudWatch may use. SNS's AWS-managed key (`alias/aws/sns`) cannot
 * be: its key policy cannot be changed to let CloudWatch use it, so every alarm action on a topic
 * encrypted with it fails with KMS AccessDenied, seen only in the alarm's history.
 */
function alarmTopicKey(scope: Construct, title: string): kms.Key {
  const key = new kms.Key(scope, 'AlarmTopicKey', {
    description: `Encrypts the alarm notifications of ${title}`,
    enableKeyRotation: true,
    // Notifications are delivered or dropped within days; nothing stays encrypted under the key.
    removalPolicy: RemovalPolicy.DESTROY,
    pendingWindow: Duration.days(7),
  });
  key.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: 'CloudWatchAlarmsPublish',
      principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
      actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
      resources: ['*'],
    }),
  );
  return key;
}
