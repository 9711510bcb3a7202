import { Arn, Aws, Duration, Size, Stack, Token } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import * as cxapi from 'aws-cdk-lib/cx-api';
import { Construct } from 'constructs';
import { BATCH_ASSEMBLE_KIND, BATCH_KIND } from '../../contract/batch';
import { METRIC } from '../../contract/metrics';
import type { InferenceFunction } from '../function/inference-function';
import { acknowledge, wildcardResourceFinding } from '../private/acknowledge';
import { validationError } from '../private/errors';

/** How the input file is read: one item per line of JSON Lines, or per row of a CSV file. */
export enum BatchInputFormat {
  /**
   * JSON Lines: each line an Open Inference Protocol request (`{"id": ..., "inputs": [...]}`), a
   * row of the model's only input (`[0.5, -1.2, 3.3, 0.7]`), or an object of input name to row.
   */
  JSON_LINES = 'JSON_LINES',
  /**
   * CSV with a header row: each row's values, in order, are a row of the model's only input; a
   * column named `id` is the row's id, not a feature.
   */
  CSV = 'CSV',
}

/** Alarms and a dashboard for a batch job's state machine. */
export interface BatchMonitoringOptions {
  /**
   * Where the alarms (failed and timed-out executions) are sent.
   * @default - no action: the alarms show in the CloudWatch console
   */
  readonly alarmActions?: cloudwatch.IAlarmAction[];
  /**
   * Create a CloudWatch dashboard: executions, rows per second and failed rows.
   * @default true
   */
  readonly dashboard?: boolean;
}

/** Props of `BatchInference`. */
export interface BatchInferenceProps {
  /**
   * The function that scores the rows: an endpoint's (`endpoint.inferenceFunction`), so that the
   * batch runs the same model and handler as the API. The state machine invokes its `live` alias.
   */
  readonly inferenceFunction: InferenceFunction;

  /** The bucket the input file is read from. */
  readonly inputBucket: s3.IBucket;

  /**
   * The key of the input file, when an execution's input does not name one (`{"inputKey": "..."}`).
   * @default - each execution's input must name `inputKey`
   */
  readonly inputKey?: string;

  /**
   * How the input file is read.
   * @default BatchInputFormat.JSON_LINES
   */
  readonly inputFormat?: BatchInputFormat;

  /**
   * The bucket the output is written to.
   * @default - the input bucket
   */
  readonly outputBucket?: s3.IBucket;

  /**
   * Where each job's output goes: under this prefix, in a folder named for the execution, so that
   * jobs never overwrite each other. An execution's input may name its own (`{"outputPrefix":
   * "batch-output/nightly/2026-12-08/"}`), under this one (the function may write nowhere else).
   * @default 'batch-output/'
   */
  readonly outputPrefix?: string;

  /**
   * Items per batch: one invocation of the function scores this many rows (`MaxItemsPerBatch`; as
   * Batch Transform's `MaxPayloadInMB` with `BatchStrategy: MultiRecord`).
   * @default 500
   */
  readonly itemsPerBatch?: number;

  /**
   * Largest batch, in bytes of the items' JSON (`MaxInputBytesPerBatch`): Step Functions passes at
   * most 256 KiB to a child execution.
   * @default Size.kibibytes(200)
   */
  readonly maxBatchSize?: Size;

  /**
   * Batches scored at once (`MaxConcurrency`): each is one concurrent invocation of the function.
   * @default - 50, or the function's reserved concurrency where it has less
   */
  readonly maxConcurrency?: number;

  /**
   * Percentage of batches that may fail as a whole (after their retries) before the job fails. Rows
   * the model refuses never fail their batch: they go to the failures file.
   * @default 5
   */
  readonly toleratedFailurePercentage?: number;

  /**
   * Whether each output line carries its input line (Batch Transform's `JoinSource: Input`).
   * @default false
   */
  readonly joinInput?: boolean;

  /**
   * Start a job on a schedule (with the default input key and output prefix).
   * @default - none: start executions yourself (`grantStartExecution`)
   */
  readonly schedule?: events.Schedule;

  /**
   * Start a job for each object uploaded under this prefix of the input bucket (an EventBridge rule
   * on S3's `Object Created` events: the bucket must send its events to EventBridge, `eventBridgeEnabled: true`).
   * @default - none
   */
  readonly startOnUploadPrefix?: string;

  /**
   * Longest a job may run.
   * @default Duration.hours(24)
   */
  readonly timeout?: Duration;

  /**
   * Alarms on failed and timed-out executions, and a dashboard.
   * @default - none
   */
  readonly monitoring?: BatchMonitoringOptions;
}

const MISSED_START =
  "A start EventBridge could not deliver (after its own retries for 24 hours) shows in the rule's FailedInvocations metric; a job is started again by hand, so a dead-letter queue would only hold the event.";

/** The fields an execution's input may set. */
const INPUT_KEY = 'inputKey';
const OUTPUT_PREFIX = 'outputPrefix';

/**
 * Scores a dataset in S3 with the endpoint's own function, on a Step Functions Distributed Map: it
 * reads the items from a JSON Lines or CSV file, groups them into batches, invokes the function with
 * each batch (rows of the same shape in one `session.run`), at a bounded concurrency, tolerating a
 * share of failed batches, and writes the output aligned with the input (one line per input line,
 * in order), the failed rows with their reason, and a manifest.
 */
export class BatchInference extends Construct {
  /** The state machine; its execution input may set `inputKey` and `outputPrefix`. */
  public readonly stateMachine: sfn.StateMachine;
  /** The state machine's log group. */
  public readonly logGroup: logs.LogGroup;
  /** The alarms, by name, with `monitoring`. */
  public readonly alarms: Record<string, cloudwatch.Alarm> = {};
  /**
   * The dashboard, with `monitoring`.
   * @default - none
   */
  public readonly dashboard?: cloudwatch.Dashboard;

  private readonly fn: InferenceFunction;

  constructor(scope: Construct, id: string, props: BatchInferenceProps) {
    super(scope, id);
    // The Distributed Map reads ResultWriterV2 only with this flag (the older ResultWriter is
    // deprecated): set for this construct's children only, before there are any.
    this.node.setContext(cxapi.STEPFUNCTIONS_USE_DISTRIBUTED_MAP_RESULT_WRITER_V2, true);
    this.fn = props.inferenceFunction;
    const itemsPerBatch = props.itemsPerBatch ?? 500;
    checkRange(this, 'itemsPerBatch', itemsPerBatch, 1, 100_000_000);
    const maxBytes = (props.maxBatchSize ?? Size.kibibytes(200)).toBytes();
    checkRange(this, 'maxBatchSize (in bytes)', maxBytes, 1, 256 * 1024, "Step Functions' 256 KiB for a child execution's input");
    const maxConcurrency = props.maxConcurrency ?? defaultConcurrency(this.fn.function);
    checkRange(this, 'maxConcurrency', maxConcurrency, 1, 10_000, "Distributed Map's 10,000 child executions at once");
    const tolerated = props.toleratedFailurePercentage ?? 5;
    checkRange(this, 'toleratedFailurePercentage', tolerated, 0, 100);
    const outputPrefix = props.outputPrefix ?? 'batch-output/';
    if (!Token.isUnresolved(outputPrefix) && outputPrefix !== '' && !outputPrefix.endsWith('/')) {
      throw validationError(this, `outputPrefix must end with '/', got: ${outputPrefix}`);
    }
    const outputBucket = props.outputBucket ?? props.inputBucket;
    const target = this.fn.alias;

    // The job's settings: the defaults, overridden by the execution's input.
    const defaults = new sfn.Pass(this, 'Defaults', {
      parameters: {
        ...(props.inputKey !== undefined ? { [INPUT_KEY]: props.inputKey } : {}),
        [OUTPUT_PREFIX]: sfn.JsonPath.format(`${outputPrefix}{}/`, sfn.JsonPath.stringAt('$$.Execution.Name')),
      },
    });
    const settings = new sfn.Pass(this, 'Settings', {
      parameters: { job: sfn.JsonPath.jsonMerge(sfn.JsonPath.objectAt('$'), sfn.JsonPath.objectAt('$$.Execution.Input')) },
      outputPath: '$.job',
    });

    const readerProps = { bucket: props.inputBucket, key: sfn.JsonPath.stringAt(`$.${INPUT_KEY}`) };
    const itemReader =
      (props.inputFormat ?? BatchInputFormat.JSON_LINES) === BatchInputFormat.CSV
        ? new sfn.S3CsvItemReader({ ...readerProps, csvHeaders: sfn.CsvHeaders.useFirstRow() })
        : new sfn.S3JsonLItemReader(readerProps);
    const map = new sfn.DistributedMap(this, 'Score', {
      itemReader,
      itemSelector: { index: sfn.JsonPath.stringAt('$$.Map.Item.Index'), value: sfn.JsonPath.stringAt('$$.Map.Item.Value') },
      itemBatcher: new sfn.ItemBatcher({
        maxItemsPerBatch: itemsPerBatch,
        maxInputBytesPerBatch: maxBytes,
        batchInput: {
          kind: BATCH_KIND,
          outputBucket: outputBucket.bucketName,
          [`${OUTPUT_PREFIX}.$`]: `$.${OUTPUT_PREFIX}`,
          ...(props.joinInput ? { joinInput: true } : {}),
        },
      }),
      maxConcurrency,
      toleratedFailurePercentage: tolerated,
      mapExecutionType: sfn.StateMachineType.EXPRESS,
      resultWriterV2: new sfn.ResultWriterV2({ bucket: outputBucket, prefix: `${outputPrefix}map-runs` }),
      resultPath: '$.map',
    });
    const invoke = new tasks.LambdaInvoke(this, 'InferBatch', {
      lambdaFunction: target,
      // No payload: the child execution's input, the batch, goes to the function as it is
      // (TaskInput.fromJsonPathAt('$') would render `"Parameters": "$"`, a string, not the input).
      payloadResponseOnly: true,
      retryOnServiceExceptions: true,
    });
    // The function's own failures (the model cannot load, S3): a few more tries with back-off.
    invoke.addRetry({ errors: ['InferenceServerError'], interval: Duration.seconds(5), maxAttempts: 3, backoffRate: 2 });
    map.itemProcessor(invoke);

    const assemble = new tasks.LambdaInvoke(this, 'Assemble', {
      lambdaFunction: target,
      payload: sfn.TaskInput.fromObject({
        kind: BATCH_ASSEMBLE_KIND,
        outputBucket: outputBucket.bucketName,
        outputPrefix: sfn.JsonPath.stringAt(`$.${OUTPUT_PREFIX}`),
        input: { bucket: props.inputBucket.bucketName, key: sfn.JsonPath.stringAt(`$.${INPUT_KEY}`) },
        resultWriter: sfn.JsonPath.objectAt('$.map.ResultWriterDetails'),
        startedAt: sfn.JsonPath.stringAt('$$.Execution.StartTime'),
        executionId: sfn.JsonPath.stringAt('$$.Execution.Id'),
      }),
      payloadResponseOnly: true,
      retryOnServiceExceptions: true,
    });
    assemble.addRetry({ errors: ['InferenceServerError'], interval: Duration.seconds(5), maxAttempts: 3, backoffRate: 2 });

    // The function may write under the output prefix only: an execution's own prefix must be under it.
    const refused = new sfn.Fail(this, 'OutputPrefixRefused', {
      error: 'OutputPrefixRefused',
      cause: `outputPrefix must start with '${outputPrefix}' (the prefix the function may write under) and end with '/'`,
    });
    const checked = new sfn.Choice(this, 'CheckOutputPrefix')
      .when(sfn.Condition.stringMatches(`$.${OUTPUT_PREFIX}`, `${escapeMatch(outputPrefix)}*/`), map.next(assemble))
      .otherwise(refused);

    this.logGroup = new logs.LogGroup(this, 'LogGroup', { retention: logs.RetentionDays.ONE_MONTH });
    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      definitionBody: sfn.DefinitionBody.fromChainable(defaults.next(settings).next(checked)),
      timeout: props.timeout ?? Duration.hours(24),
      tracingEnabled: true,
      logs: { destination: this.logGroup, level: sfn.LogLevel.ALL, includeExecutionData: false },
    });

    // The function writes the parts and the output, and reads the ResultWriter's files.
    const role = this.fn.role;
    outputBucket.grantReadWrite(role, `${outputPrefix}*`);
    outputBucket.grantDelete(role, `${outputPrefix}*`);
    // The map writes its results; the item reader's GetObject is granted by aws-cdk-lib, not the key's use.
    props.inputBucket.encryptionKey?.grantDecrypt(this.stateMachine);
    outputBucket.grantReadWrite(this.stateMachine, `${outputPrefix}*`);
    this.acknowledgeFindings(outputBucket, outputPrefix, props.inputBucket);

    this.startOn(props);
    this.dashboard = props.monitoring ? this.monitor(props.monitoring) : undefined;
  }

  /** Lets `grantee` start jobs (`states:StartExecution`). */
  public grantStartExecution(grantee: iam.IGrantable): iam.Grant {
    return this.stateMachine.grantStartExecution(grantee);
  }

  /** Executions that failed, summed. */
  public metricFailed(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.stateMachine.metricFailed({ statistic: 'Sum', ...props });
  }

  /** Executions that timed out, summed. */
  public metricTimedOut(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.stateMachine.metricTimedOut({ statistic: 'Sum', ...props });
  }

  /** Rows the function scored in batches (succeeded or failed), summed. */
  public metricRows(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.fn.metric(METRIC.BATCH_ITEMS, { statistic: 'Sum', ...props });
  }

  /** Rows the model refused (written to the failures file), summed. */
  public metricFailedRows(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.fn.metric(METRIC.BATCH_ITEMS_FAILED, { statistic: 'Sum', ...props });
  }

  private startOn(props: BatchInferenceProps): void {
    if (props.schedule) {
      const rule = new events.Rule(this, 'Schedule', {
        schedule: props.schedule,
        targets: [new targets.SfnStateMachine(this.stateMachine, { input: events.RuleTargetInput.fromObject({}) })],
      });
      acknowledge(rule, ['Serverless-EventBusDLQ'], MISSED_START);
    }
    if (props.startOnUploadPrefix !== undefined) {
      const rule = new events.Rule(this, 'OnUpload', {
        eventPattern: {
          source: ['aws.s3'],
          detailType: ['Object Created'],
          detail: { bucket: { name: [props.inputBucket.bucketName] }, object: { key: [{ prefix: props.startOnUploadPrefix }] } },
        },
        targets: [new targets.SfnStateMachine(this.stateMachine, { input: events.RuleTargetInput.fromObject({ [INPUT_KEY]: events.EventField.fromPath('$.detail.object.key') }) })],
      });
      acknowledge(rule, ['Serverless-EventBusDLQ'], MISSED_START);
    }
  }

  /** The alarms, and the dashboard unless turned off. */
  private monitor(options: BatchMonitoringOptions): cloudwatch.Dashboard | undefined {
    const alarm = (name: string, metric: cloudwatch.IMetric, description: string) => {
      const a = new cloudwatch.Alarm(this, name, {
        metric,
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription: `Batch inference ${this.node.path}: ${description}`,
      });
      for (const action of options.alarmActions ?? []) {
        a.addAlarmAction(action);
        a.addOkAction(action);
      }
      this.alarms[name] = a;
    };
    alarm('ExecutionsFailed', this.metricFailed({ period: Duration.minutes(5) }), 'a batch job failed');
    alarm('ExecutionsTimedOut', this.metricTimedOut({ period: Duration.minutes(5) }), 'a batch job timed out');
    if (!(options.dashboard ?? true)) return undefined;
    const period = Duration.minutes(1);
    const perSecond = (metric: cloudwatch.Metric, id: string, label: string) =>
      new cloudwatch.MathExpression({ expression: `${id} / PERIOD(${id})`, usingMetrics: { [id]: metric.with({ period }) }, label, period });
    return new cloudwatch.Dashboard(this, 'Dashboard', {
      widgets: [
        [
          new cloudwatch.GraphWidget({
            title: 'Executions',
            left: [this.stateMachine.metricStarted({ statistic: 'Sum' }), this.stateMachine.metricSucceeded({ statistic: 'Sum' }), this.metricFailed(), this.metricTimedOut()],
          }),
          new cloudwatch.GraphWidget({
            title: 'Rows per second',
            left: [perSecond(this.metricRows(), 'rows', 'rows/s'), perSecond(this.metricFailedRows(), 'failed', 'failed rows/s')],
          }),
          new cloudwatch.GraphWidget({ title: 'Failed rows', left: [this.metricFailedRows({ period })] }),
        ],
      ],
    });
  }

  private acknowledgeFindings(outputBucket: s3.IBucket, outputPrefix: string, inputBucket: s3.IBucket): void {
    const stack = Stack.of(this);
    const objects = wildcardResourceFinding(outputBucket.arnForObjects(`${outputPrefix}*`), stack);
    const reason = "A job's output keys are named at run time (an execution may set its output prefix): access is limited to the output prefix of the output bucket.";
    const fnPolicy = this.fn.role.node.tryFindChild('DefaultPolicy') ?? this.fn.role;
    acknowledge(
      fnPolicy,
      [
        objects,
        'AwsSolutions-IAM5[Action::s3:GetBucket*]',
        'AwsSolutions-IAM5[Action::s3:GetObject*]',
        'AwsSolutions-IAM5[Action::s3:List*]',
        'AwsSolutions-IAM5[Action::s3:DeleteObject*]',
        'AwsSolutions-IAM5[Action::s3:Abort*]',
      ],
      reason,
    );
    const smPolicy = this.stateMachine.role.node.tryFindChild('DefaultPolicy') ?? this.stateMachine.role;
    acknowledge(
      smPolicy,
      [
        objects,
        wildcardResourceFinding(inputBucket.arnForObjects('*'), stack),
        // How the item reader names the input bucket's objects.
        wildcardResourceFinding(Arn.format({ region: '', account: '', partition: Aws.PARTITION, service: 's3', resource: inputBucket.bucketName, resourceName: '*' }), stack),
        'AwsSolutions-IAM5[Action::s3:GetBucket*]',
        'AwsSolutions-IAM5[Action::s3:GetObject*]',
        'AwsSolutions-IAM5[Action::s3:List*]',
        'AwsSolutions-IAM5[Action::s3:DeleteObject*]',
        'AwsSolutions-IAM5[Action::s3:Abort*]',
      ],
      "The Distributed Map reads the input file named at run time (its key may come from the execution's input) and writes the map's results under the output prefix.",
    );
    acknowledge(
      smPolicy,
      ['AwsSolutions-IAM5[Resource::*]'],
      'X-Ray (xray:PutTraceSegments, PutTelemetryRecords, GetSampling*) and the delivery of Step Functions logs to CloudWatch Logs (logs:CreateLogDelivery and its kin) support no resource-level permissions.',
    );
    // aws-cdk-lib's grants for the Distributed Map to start, describe and stop its child executions.
    const mapPolicy = this.stateMachine.node.tryFindChild('DistributedMapPolicy') as iam.Policy | undefined;
    if (mapPolicy) {
      const statements = (stack.resolve(mapPolicy.document.toJSON()) as { Statement?: { Resource?: unknown }[] } | undefined)?.Statement ?? [];
      const wildcards = statements.flatMap((st) => (Array.isArray(st.Resource) ? st.Resource : [st.Resource])).filter((r) => r !== undefined && JSON.stringify(r).includes('*'));
      acknowledge(
        mapPolicy,
        wildcards.map((r) => wildcardResourceFinding(r as string, stack)),
        "The Distributed Map's child executions get their names when the map starts them: the grants name the executions of this state machine only.",
      );
    }
  }
}

/** A literal for StringMatches, whose `*` and `\\` are special. */
function escapeMatch(text: string): string {
  return text.replace(/[\\*]/g, (c) => `\\${c}`);
}

/** 50 batches at once, or fewer where the function's reserved concurrency is lower. */
function defaultConcurrency(fn: lambda.Function): number {
  const reserved = (fn.node.defaultChild as lambda.CfnFunction).reservedConcurrentExecutions;
  return typeof reserved === 'number' && reserved > 0 ? Math.min(50, reserved) : 50;
}

function checkRange(scope: Construct, prop: string, value: number, min: number, max: number, limit?: string): void {
  if (Token.isUnresolved(value)) return;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw validationError(scope, `${prop} must be a whole number from ${min} to ${max}${limit ? ` (${limit})` : ''}, got: ${value}`);
  }
}
