import { Annotations, Duration, Names, RemovalPolicy, Size, Stack, Token } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as lambdaEvents from 'aws-cdk-lib/aws-lambda-event-sources';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { ASYNC_DEFAULTS, ASYNC_PREFIX, ASYNC_ROUTE_SEGMENT, ASYNC_UPLOADS_SEGMENT } from '../../contract/async-inference';
import { ENV } from '../../contract/environment';
import type { ModelEndpoint } from '../endpoints/model-endpoint';
import { ModelRepositoryEndpoint } from '../endpoints/model-repository-endpoint';
import { acknowledge, wildcardResourceFinding } from '../private/acknowledge';
import { validationError } from '../private/errors';
import { AsyncNotifications } from './async-notifications';

/** Props of `AsyncInference`. */
export interface AsyncInferenceProps {
  /** The endpoint whose function and API serve asynchronous requests too. */
  readonly endpoint: ModelEndpoint;

  /**
   * Where requests, uploads, results and failures are kept (under `requests/`, `uploads/`,
   * `results/`, `errors/`). A bucket of your own gets no lifecycle rule from here: expire those
   * prefixes yourself.
   * @default - a new private, encrypted bucket that enforces TLS, whose objects expire after `expiration`
   */
  readonly bucket?: s3.IBucket;

  /**
   * How long requests, results and failures are kept in the bucket the construct creates, after
   * which `GET .../infer-async/{id}` answers 404.
   * @default Duration.days(30)
   */
  readonly expiration?: Duration;

  /**
   * Where success and failure notifications go.
   * @default AsyncNotifications.eventBridge() - the account's default event bus
   */
  readonly notifications?: AsyncNotifications;

  /**
   * Buckets whose objects callers may name as a request body (`X-Inference-Input-Location:
   * s3://bucket/key`); the function is granted read on them. Uploads through the pre-signed URLs
   * of `POST .../infer-async/uploads` are always allowed.
   * @default - none
   */
  readonly inputBuckets?: s3.IBucket[];

  /**
   * The most instances of the function the queue invokes at once (the event source's maximum
   * concurrency, 2 to 1000), so that a burst of requests does not take the concurrency the
   * synchronous API needs.
   * @default 10
   */
  readonly maxConcurrency?: number;

  /**
   * Messages per invocation (1 to 10). Each request runs in turn within an invocation, so more
   * than 1 only suits requests that take a small part of the function's timeout.
   * @default 1
   */
  readonly batchSize?: number;

  /**
   * Receives of a message before it goes to the dead-letter queue (1 to 1000). A request the
   * model refuses fails at once; this bounds retries of passing failures (the model cannot be
   * loaded, S3 fails).
   * @default 3
   */
  readonly maxReceiveCount?: number;

  /**
   * How long a pre-signed upload URL is valid (1 second to 7 days; never longer than the
   * function's own credentials, a few hours at most).
   * @default Duration.minutes(15)
   */
  readonly uploadUrlExpiration?: Duration;

  /**
   * The largest request body read from S3. The function holds it and its parsed form in memory:
   * size the endpoint's `memorySize` for it.
   * @default Size.mebibytes(256)
   */
  readonly maxInputSize?: Size;
}

/**
 * Asynchronous inference on an endpoint, as SageMaker Asynchronous Inference does it: `POST
 * /v2/models/{model}/infer-async` stores the request in S3 and answers 202 with an id and where the
 * result will be; an SQS queue feeds the same inference function (maximum concurrency, partial
 * batch failures, a dead-letter queue with an alarm), which writes the result or the failure to S3
 * and notifies; `GET .../infer-async/{id}` answers pending, done or failed. Large bodies go by
 * reference: a pre-signed upload URL (`POST .../infer-async/uploads`), or an S3 URI in
 * `inputBuckets`. Nothing runs while nothing is queued.
 */
export class AsyncInference extends Construct {
  /** The bucket of requests, uploads, results and failures. */
  public readonly bucket: s3.IBucket;
  /** The queue of accepted requests. */
  public readonly queue: sqs.Queue;
  /** Where messages go after `maxReceiveCount` receives. */
  public readonly deadLetterQueue: sqs.Queue;
  /** In alarm as soon as a message is in the dead-letter queue; its actions are the endpoint's alarm topic when it has one. */
  public readonly deadLetterAlarm: cloudwatch.Alarm;
  /** `POST /v2/models/{model}/infer-async`. */
  public readonly acceptUrl: string;

  private readonly endpoint: ModelEndpoint;
  private readonly methods: Array<{ readonly method: string; readonly path: string }> = [];

  constructor(scope: Construct, id: string, props: AsyncInferenceProps) {
    super(scope, id);
    this.endpoint = props.endpoint;
    if (props.endpoint instanceof ModelRepositoryEndpoint) {
      // The repository's handler answers the API's events per model; it takes no queue's events.
      throw validationError(this, 'AsyncInference: endpoint is a ModelRepositoryEndpoint, which does not take queued requests; attach it to an endpoint of one model');
    }
    const maxConcurrency = props.maxConcurrency ?? 10;
    const batchSize = props.batchSize ?? 1;
    const maxReceiveCount = props.maxReceiveCount ?? ASYNC_DEFAULTS.MAX_RECEIVE_COUNT;
    const uploadUrlExpiration = props.uploadUrlExpiration ?? Duration.seconds(ASYNC_DEFAULTS.UPLOAD_URL_EXPIRES_S);
    const maxInputSize = props.maxInputSize ?? Size.bytes(ASYNC_DEFAULTS.MAX_INPUT_BYTES);
    this.validate(props, maxConcurrency, batchSize, maxReceiveCount, uploadUrlExpiration, maxInputSize);

    const fn = props.endpoint.function;
    if (props.bucket) {
      this.bucket = props.bucket;
    } else {
      const bucket = new s3.Bucket(this, 'Bucket', {
        encryption: s3.BucketEncryption.S3_MANAGED,
        enforceSSL: true,
        blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
        removalPolicy: RemovalPolicy.RETAIN,
        lifecycleRules: [{ expiration: props.expiration ?? Duration.days(30), abortIncompleteMultipartUploadAfter: Duration.days(1) }],
      });
      acknowledge(
        bucket,
        ['AwsSolutions-S1'],
        'Every object is written by the inference function, whose log names the request id of each; CloudTrail data events are the account-wide choice for object-level audit.',
      );
      this.bucket = bucket;
    }

    // Lambda's advice for a queue that feeds a function: a visibility timeout of six times the
    // function's, so that a message is not delivered again while an invocation (and its retries
    // by the event source) may still run it.
    const fnTimeout = fn.timeout ?? Duration.seconds(3);
    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    acknowledge(this.deadLetterQueue, ['AwsSolutions-SQS3', 'Serverless-SQSRedrivePolicy'], 'This is the dead-letter queue of the asynchronous inference queue.');
    this.queue = new sqs.Queue(this, 'Queue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      visibilityTimeout: Duration.seconds(Math.min(43_200, fnTimeout.toSeconds() * 6)),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount },
    });

    // The `live` alias, as the API calls it: a rollout moves both together.
    // Lambda's advice: the function's reserved concurrency at least the event source's maximum,
    // else the queue's invocations are throttled and its messages retried towards the dead-letter queue.
    const reserved = (fn.node.defaultChild as lambda.CfnFunction).reservedConcurrentExecutions;
    if (typeof reserved === 'number' && !Token.isUnresolved(maxConcurrency) && reserved < maxConcurrency) {
      Annotations.of(this).addWarningV2(
        'cdk-serverless-inference:async-concurrency',
        `maxConcurrency is ${maxConcurrency}, more than the function's reservedConcurrentExecutions (${reserved}): the queue's invocations would be throttled and its requests retried towards the dead-letter queue; lower maxConcurrency, or raise the reserved concurrency (it is shared with the synchronous API)`,
      );
    }
    const eventSource = new lambdaEvents.SqsEventSource(this.queue, { batchSize, maxConcurrency, reportBatchItemFailures: true });
    props.endpoint.alias.addEventSource(eventSource);
    const mapping = props.endpoint.alias.node.tryFindChild(`SqsEventSource:${Names.nodeUniqueId(this.queue.node)}`);
    if (mapping) {
      acknowledge(
        mapping,
        ['Serverless-LambdaEventSourceMappingDestination'],
        "An SQS event source has no on-failure destination (Lambda supports them for streams and Kafka); the queue's redrive policy sends failed messages to the dead-letter queue, which has an alarm.",
      );
    }
    this.grantFunction(fn, props.inputBuckets ?? []);
    this.queue.grantSendMessages(fn);
    const notifications = (props.notifications ?? AsyncNotifications.eventBridge()).bind(this, fn);

    const environment: Record<string, string> = {
      [ENV.ASYNC_BUCKET]: this.bucket.bucketName,
      [ENV.ASYNC_QUEUE_URL]: this.queue.queueUrl,
      [ENV.ASYNC_MAX_RECEIVE_COUNT]: String(maxReceiveCount),
      [ENV.ASYNC_MAX_INPUT_BYTES]: String(maxInputSize.toBytes()),
      [ENV.ASYNC_UPLOAD_URL_EXPIRES_S]: String(uploadUrlExpiration.toSeconds()),
      ...notifications.environment,
    };
    if (props.inputBuckets?.length) environment[ENV.ASYNC_INPUT_BUCKETS] = props.inputBuckets.map((b) => b.bucketName).join(',');
    for (const [k, v] of Object.entries(environment)) fn.addEnvironment(k, v);

    const api = props.endpoint.api;
    this.route(api.addModelRoute('POST', [ASYNC_ROUTE_SEGMENT]));
    this.route(api.addModelRoute('POST', [ASYNC_ROUTE_SEGMENT, ASYNC_UPLOADS_SEGMENT]));
    this.route(api.addModelRoute('GET', [ASYNC_ROUTE_SEGMENT, '{id}']));
    this.acceptUrl = api.restApi.urlForPath(`/v2/models/${api.modelName}/${ASYNC_ROUTE_SEGMENT}`);

    this.deadLetterAlarm = new cloudwatch.Alarm(this, 'DeadLetterAlarm', {
      alarmDescription: `Asynchronous requests of ${api.modelName} that failed ${maxReceiveCount} times are in the dead-letter queue: the status of each says why, the function's log has the details`,
      metric: this.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), statistic: 'Maximum' }),
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    const topic = props.endpoint.monitoring?.alarmTopic;
    if (topic) this.deadLetterAlarm.addAlarmAction(new actions.SnsAction(topic));
  }

  /**
   * Lets `grantee` call the asynchronous routes (accept, upload, status) with IAM authorization.
   * The status route is granted for any id (`.../infer-async/*`): ids are made per request.
   */
  public grantInvoke(grantee: iam.IGrantable): iam.Grant {
    const restApi = this.endpoint.api.restApi;
    return iam.Grant.addToPrincipal({
      grantee,
      actions: ['execute-api:Invoke'],
      resourceArns: this.methods.map((m) => restApi.arnForExecuteApi(m.method, m.path.replace(/\{\w+\}/g, '*'), restApi.deploymentStage.stageName)),
    });
  }

  /** Lets `grantee` read results and failures (`results/*`, `errors/*`) from the bucket. */
  public grantReadResults(grantee: iam.IGrantable): iam.Grant {
    this.bucket.grantRead(grantee, `${ASYNC_PREFIX.RESULTS}*`);
    return this.bucket.grantRead(grantee, `${ASYNC_PREFIX.ERRORS}*`);
  }

  /** Messages waiting in the queue (`ApproximateNumberOfMessagesVisible`): the backlog. */
  public metricBacklog(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.queue.metricApproximateNumberOfMessagesVisible({ statistic: 'Maximum', ...props });
  }

  /** Age of the oldest waiting message (`ApproximateAgeOfOldestMessage`), in seconds: how long the next request waits. */
  public metricOldestRequestAge(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.queue.metricApproximateAgeOfOldestMessage({ statistic: 'Maximum', ...props });
  }

  private route(method: { readonly httpMethod: string; readonly resource: { readonly path: string } }): void {
    this.methods.push({ method: method.httpMethod, path: method.resource.path });
  }

  /** The function's access to the bucket, by prefix, and read on the callers' input buckets. */
  private grantFunction(fn: iam.IGrantable, inputBuckets: readonly s3.IBucket[]): void {
    const stack = Stack.of(this);
    const prefixes = [ASYNC_PREFIX.REQUESTS, ASYNC_PREFIX.UPLOADS, ASYNC_PREFIX.RESULTS, ASYNC_PREFIX.ERRORS];
    for (const prefix of prefixes) {
      this.bucket.grantRead(fn, `${prefix}*`);
      this.bucket.grantPut(fn, `${prefix}*`);
    }
    this.bucket.grantDelete(fn, `${ASYNC_PREFIX.REQUESTS}*`);
    for (const b of inputBuckets) b.grantRead(fn);
    const role = (fn as iam.IGrantable).grantPrincipal;
    const findings = [
      ...prefixes.map((p) => wildcardResourceFinding(this.bucket.arnForObjects(`${p}*`), stack)),
      ...inputBuckets.map((b) => wildcardResourceFinding(b.arnForObjects('*'), stack)),
      'AwsSolutions-IAM5[Action::s3:GetObject*]',
      'AwsSolutions-IAM5[Action::s3:GetBucket*]',
      'AwsSolutions-IAM5[Action::s3:List*]',
      'AwsSolutions-IAM5[Action::s3:Abort*]',
      'AwsSolutions-IAM5[Action::s3:DeleteObject*]',
    ];
    const policy = (role as iam.Role).node?.tryFindChild('DefaultPolicy');
    if (policy) {
      acknowledge(
        policy,
        findings,
        'Asynchronous inference writes and reads one object per request id under its own prefixes (requests/, uploads/, results/, errors/), and reads the request bodies callers name in the input buckets they chose; the ids are not known at deploy.',
      );
    }
  }

  private validate(props: AsyncInferenceProps, maxConcurrency: number, batchSize: number, maxReceiveCount: number, uploadUrlExpiration: Duration, maxInputSize: Size): void {
    const intIn = (name: string, value: number, min: number, max: number, why: string) => {
      if (Token.isUnresolved(value)) return;
      if (!Number.isInteger(value) || value < min || value > max)
        throw validationError(this, `AsyncInference: ${name} must be a whole number from ${min} to ${max} (${why}), got: ${value}`);
    };
    intIn('maxConcurrency', maxConcurrency, 2, 1000, "the SQS event source's maximum concurrency");
    intIn('batchSize', batchSize, 1, 10, 'messages per invocation of a standard queue without a batching window');
    intIn('maxReceiveCount', maxReceiveCount, 1, 1000, "SQS's redrive policy");
    const expires = uploadUrlExpiration.toSeconds({ integral: false });
    if (!Token.isUnresolved(expires) && (expires < 1 || expires > 7 * 24 * 3600)) {
      throw validationError(this, `AsyncInference: uploadUrlExpiration must be from 1 second to 7 days (a pre-signed S3 URL's limit), got: ${uploadUrlExpiration.toHumanString()}`);
    }
    const bytes = maxInputSize.toBytes();
    if (!Token.isUnresolved(bytes) && (bytes < 1 || bytes > 1024 ** 3)) {
      throw validationError(
        this,
        `AsyncInference: maxInputSize must be from 1 byte to 1 GiB (SageMaker Asynchronous Inference's limit too; the function must hold it in memory), got: ${bytes} bytes`,
      );
    }
    if (props.bucket && props.expiration) {
      throw validationError(this, 'AsyncInference: expiration applies to the bucket the construct creates; give your own bucket its lifecycle rules instead');
    }
    const expiration = props.expiration?.toDays({ integral: false });
    if (expiration !== undefined && !Token.isUnresolved(expiration) && (expiration < 1 || !Number.isInteger(expiration))) {
      throw validationError(this, `AsyncInference: expiration must be a whole number of days, at least 1 (an S3 lifecycle rule's unit), got: ${props.expiration!.toHumanString()}`);
    }
  }
}
