import { Annotations, Duration, Names, type Size, Token } from 'aws-cdk-lib';
import type * as appscaling from 'aws-cdk-lib/aws-applicationautoscaling';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { DEFAULT_MODEL_INIT_WAIT_MS, DEFAULT_MODEL_NAME, DEFAULT_MODEL_VERSION, GraphOptimizationLevel } from '../../contract/defaults';
import { ENV } from '../../contract/environment';
import { AFTER_RESPONSE_HOOK, HOOKS_MODULE_FILE } from '../../contract/hooks';
import type { HandlerHooks } from '../hooks/handler-hooks';
import { handlerWithHooks } from '../hooks/handler-code';
import { METRIC, METRIC_DIMENSION, METRICS_NAMESPACE } from '../../contract/metrics';
import { VARIANT_METRIC, VARIANT_METRIC_DIMENSION } from '../../contract/variants';
import type { OnnxModelInfo } from '../model/onnx-model-info';
import type { InferenceCompute } from '../compute/inference-compute';
import { type DynamicBatchingOptions, dynamicBatchingEnvironment } from '../compute/dynamic-batching';
import { OnnxRuntimeLayer } from '../runtime/onnxruntime-layer';
import type { CodePart, ModelPackaging, ModelPackagingConfig } from '../packaging/model-packaging';
import { acknowledge } from '../private/acknowledge';
import { validationError } from '../private/errors';
import { grantLambdaVpcAccess } from '../private/grants';
import { ephemeralStorageForModel, formatBytes, inferenceThreads, validateCodeSize, validateEphemeralStorage, validateMemorySize } from '../private/lambda-limits';
import { defaultNodeRuntime } from '../private/node-runtime';
import { inferenceHandlerDir } from '../private/package-paths';
import { checkManagedInstancesFit, runOnManagedInstances, sizeManagedInstances } from '../compute/managed-instances';
import { modelVersionFromIdentity } from '../private/model-version';
import { STAGING_EXCLUDE, treeSize } from '../private/staging';
import { DataCapture, type DataCaptureOptions } from '../capture/data-capture';
import { bindShadow, ShadowMode, type ShadowOptions, shadowComparison, shadowSampling } from '../capture/shadow';
import { S3ModelPackaging } from '../packaging/s3-model-packaging';
import type { ModelVariantsOptions } from '../variants/model-variants';
import { bindVariants } from '../variants/bind-variants';

/** What every function behind an endpoint lets its users choose, whatever it runs. */
export interface LambdaFunctionOptions {
  /**
   * The function's architecture. Graviton (arm64) is priced about 20 % lower per GB-second. The
   * arm64 onnxruntime layer is tested under emulation with Lambda's sandbox reproduced (the CPU
   * folder of /sys hidden): it answers right and picks the same kernels as when it can read the CPU;
   * it logs that cpuinfo failed, which is expected there (see docs/compute.md).
   * @default - lambda.Architecture.ARM_64; x86_64 for a generated container image (see `ContainerModelEndpoint`)
   */
  readonly architecture?: lambda.Architecture;

  /**
   * The Node.js runtime.
   * @default - the newest Node.js runtime the installed aws-cdk-lib defines (its highest
   * `lambda.Runtime.NODEJS_<N>_X`; nodejs24.x with aws-cdk-lib 2.257), so that cdk-nag's
   * latest-runtime rules pass on whatever aws-cdk-lib the app uses
   */
  readonly runtime?: lambda.Runtime;

  /**
   * Memory in MiB, which also buys CPU: 1,769 MiB is one full vCPU, 10,240 MiB six.
   * @default - 2048; 512 for the SageMaker proxy
   */
  readonly memorySize?: number;

  /**
   * Reserved concurrency: a ceiling on instances (and cost), and a floor that other functions
   * cannot take.
   * @default - no reservation
   */
  readonly reservedConcurrentExecutions?: number;

  /**
   * Instances kept initialised on the `live` alias, for strict latency. They are billed while idle;
   * scale them on utilisation or a schedule with `provisionedConcurrencyScaling`. With it set, the
   * warmer is off unless `warmer` asks for it.
   * @default - none
   */
  readonly provisionedConcurrency?: number;

  /**
   * Application Auto Scaling of `provisionedConcurrency`: between a minimum and a maximum, on
   * utilisation and/or on a schedule.
   * @default - a fixed `provisionedConcurrency`
   */
  readonly provisionedConcurrencyScaling?: ProvisionedConcurrencyScaling;

  /**
   * X-Ray tracing of the function and the API stage (billed per trace).
   * @default lambda.Tracing.DISABLED
   */
  readonly tracing?: lambda.Tracing;

  /**
   * Retention of the function's log group.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;

  /**
   * More environment variables for the function.
   * @default - none
   */
  readonly environment?: { [name: string]: string };

  /**
   * The function's role. The function is granted what it needs on it: writing its log group,
   * reading its model, and, in a VPC, managing its network interfaces.
   * @default - a new role with no managed policy
   */
  readonly role?: iam.IRole;

  /**
   * Your pre- and post-processing, and work after the response: `HandlerHooks.fromEntry('hooks.ts')`,
   * a file whose named exports `preprocess`, `postprocess` and `afterResponse` are the hooks,
   * bundled at synth beside the library's handler. `afterResponse` runs once the caller has the
   * whole answer, which needs response streaming (the API's `responseTransferMode: STREAM`).
   * @default - no hooks
   */
  readonly hooks?: HandlerHooks;
}

/** What an inference function lets its users choose: the function, and how it runs the model. */
export interface InferenceFunctionOptions extends LambdaFunctionOptions {
  /**
   * The function's timeout. A cold start's model load counts against the first request's timeout
   * once it outlasts the init phase. API Gateway waits at most 29 s for the function, so a request
   * that meets a load longer than that gets a 504 while the load goes on: keep big models warm
   * (the warmer, or `provisionedConcurrency`).
   * @default Duration.seconds(60)
   */
  readonly timeout?: Duration;

  /**
   * The function's /tmp.
   * @default - 512 MiB, or what the model needs when it is fetched to /tmp
   */
  readonly ephemeralStorageSize?: Size;

  /**
   * onnxruntime intra-op threads.
   * @default - one per vCPU that `memorySize` buys
   */
  readonly intraOpThreads?: number;

  /**
   * onnxruntime's graph optimisation level.
   * @default GraphOptimizationLevel.ALL
   */
  readonly graphOptimizationLevel?: GraphOptimizationLevel;

  /**
   * Whether to ship a local model (`ModelSource.fromAsset`) together with its copy precompiled at
   * synth in ORT format, with the basic graph optimisations (those that give the same graph on every
   * CPU) applied. The handler creates its session from that copy, memory-mapped, which makes a cold
   * start's session faster and its weights file-backed; it falls back to the .onnx, with a log
   * line, when the copy is missing or onnxruntime refuses it. Synth converts with the
   * onnxruntime-node installed in the app (the version of the ONNX Runtime layer), caching the
   * result by the model's content; without it, the model ships alone (an info annotation says so).
   * A model given as an S3 object (`ModelSource.fromBucket`) is not read at synth and is never
   * precompiled. Nor is a model whose copy would not fit in Lambda's 250 MB (layer, bundled), or
   * one served with `graphOptimizationLevel: DISABLED`.
   * @default true
   */
  readonly precompileModel?: boolean;

  /**
   * How long the init phase waits for the model before handing over to the first request. Lambda
   * caps an on-demand init at 10 s; a load that takes longer finishes during the first request
   * instead of failing every cold start. Provisioned instances may initialise for 130 s (or the
   * timeout, if longer) and are frozen after init, so they wait for the whole load.
   * @default - 8 seconds; with `provisionedConcurrency`, 10 s less than 130 s or the timeout, whichever is longer
   */
  readonly modelInitWait?: Duration;

  /**
   * Where the function runs: on-demand Lambda, or Lambda Managed Instances (EC2 capacity, many
   * requests per execution environment, no per-request cold starts).
   * @default InferenceCompute.onDemand()
   */
  readonly compute?: InferenceCompute;

  /**
   * Dynamic batching: the requests for the model that a worker has in flight run as one
   * `session.run` along the model's batch dimension (one such run at a time, the next batch forming
   * meanwhile), and each caller gets its own rows. For Lambda Managed Instances only (`compute`), where an
   * environment takes many requests at a time; on-demand Lambda gives it one, so the synth refuses
   * batching there. With it, `maxConcurrencyPerEnvironment` defaults to `maxBatchSize` per worker.
   * @default - none: each request runs alone
   */
  readonly batching?: DynamicBatchingOptions;

  /**
   * Capture a sampled share of requests and answers to S3 (through Amazon Data Firehose, under
   * hourly prefixes, KMS-encrypted, with a lifecycle rule and a Glue table for Athena) once each
   * answer is sent. Needs response streaming (the API's `responseTransferMode: STREAM`). See
   * docs/data-capture.md.
   * @default - no capture
   */
  readonly dataCapture?: DataCaptureOptions;

  /**
   * Run a candidate model on a sampled copy of live requests once each answer is sent, compare its
   * answers with the live ones (the `ShadowAgreement`, `ShadowFailed` and `ShadowLatencyRatio`
   * metrics) and capture both. The caller never sees it. Needs response streaming; creates data
   * capture (at 0 % of its own) when `dataCapture` is not given. See docs/data-capture.md.
   * @default - no shadow
   */
  readonly shadow?: ShadowOptions;

  /**
   * A/B variants: other model versions served beside the endpoint's own by the same function, each
   * request answered by one of them by weight, sticky by a header if you name one. The answer says
   * which (`X-Inference-Variant`, `parameters.variant`) and each variant has its own metrics.
   * @default - one model, no variants
   */
  readonly variants?: ModelVariantsOptions;
}

/** Scaling of provisioned concurrency. */
export interface ProvisionedConcurrencyScaling {
  /** Fewest provisioned instances. */
  readonly minCapacity: number;
  /** Most provisioned instances. */
  readonly maxCapacity: number;
  /**
   * Keep utilisation of the provisioned instances near this share (0.1 to 0.9).
   * @default - no utilisation scaling
   */
  readonly utilizationTarget?: number;
  /**
   * Scheduled changes of the range (busy hours).
   * @default - none
   */
  readonly schedules?: ProvisionedConcurrencySchedule[];
}

/** A scheduled change of the provisioned concurrency range. */
export interface ProvisionedConcurrencySchedule {
  /** A name for the action, unique within the endpoint. */
  readonly name: string;
  /** When: `appscaling.Schedule.cron({ hour: '8', minute: '0' })`. */
  readonly schedule: appscaling.Schedule;
  /**
   * The new minimum.
   * @default - unchanged
   */
  readonly minCapacity?: number;
  /**
   * The new maximum.
   * @default - unchanged
   */
  readonly maxCapacity?: number;
}

/** Props of an `InferenceFunction`: its options, its packaging, and the model's name and version. */
export interface InferenceFunctionProps extends InferenceFunctionOptions {
  /** How the function gets its model. */
  readonly packaging: ModelPackaging;

  /**
   * The model's name in the routes: `POST /v2/models/{modelName}/infer`.
   * @default 'model'
   */
  readonly modelName?: string;

  /**
   * The version reported by `GET /v2/models/{modelName}` and accepted in
   * `/v2/models/{modelName}/versions/{modelVersion}/...` routes.
   * @default - the model's identity where it is known at synth (the first 16 hex digits of its
   * content hash, or its pinned S3 version), else '1'
   */
  readonly modelVersion?: string;

  /**
   * The function's description.
   * @default - names the model
   */
  readonly description?: string;

  /**
   * Whether the function is invoked with response streaming (an API with `responseTransferMode:
   * STREAM`, a Function URL with `InvokeMode.RESPONSE_STREAM`): the handler writes its answer to the
   * stream and ends it, then runs `afterResponse`. The endpoints set it from their API's transfer
   * mode. A streaming function still answers a buffered `Invoke` (the warmer, the pre-traffic check).
   * @default false
   */
  readonly responseStreaming?: boolean;
}

const TRACING_OPT_IN = 'X-Ray tracing is opt-in (the tracing prop): it is billed per trace, and the handler already emits latency metrics.';

/**
 * The Lambda function behind every endpoint: the library's handler (or the packaging's own code)
 * with its model, its own least-privilege role (or yours) and log group, and the `live` alias that
 * the API and the warmer call, moved by each deploy that changes the function.
 */
export class InferenceFunction extends Construct implements iam.IGrantable {
  /** Namespace of the handler's embedded metrics. */
  public static readonly METRICS_NAMESPACE = METRICS_NAMESPACE;

  /** The function. */
  public readonly function: lambda.Function;
  /** The alias that the API and the warmer call; each deploy that changes the function moves it. */
  public readonly alias: lambda.Alias;
  /** The function's role. */
  public readonly role: iam.IRole;
  /** The function's log group. */
  public readonly logGroup: logs.LogGroup;
  /**
   * The ONNX Runtime layer the function uses (shared by the stack's endpoints); none for a
   * container image, which brings onnxruntime itself, or code that runs no model.
   */
  public readonly onnxRuntimeLayer?: OnnxRuntimeLayer;
  /** The model's name in the routes. */
  public readonly modelName: string;
  /** The version the API reports for the model: `modelVersion`, or the model's identity. */
  public readonly modelVersion: string;
  /** The model's signature, when it was known at synth. */
  public readonly modelInfo?: OnnxModelInfo;
  /** The function's role, as the principal of grants to the function. */
  public readonly grantPrincipal: iam.IPrincipal;
  /**
   * The capacity provider the function runs on, with Lambda Managed Instances.
   * @default - none: on-demand Lambda
   */
  public readonly capacityProvider?: lambda.ICapacityProvider;

  /** Whether the function answers through response streaming. */
  public readonly responseStreaming: boolean;

  /**
   * Data capture's stream, bucket, key, Glue table and alarm, with `dataCapture` or `shadow`.
   * @default - none
   */
  public readonly dataCapture?: DataCapture;

  /** Whether a shadow model runs beside the live one. */
  public readonly shadowEnabled: boolean;

  /**
   * The shadow function, with `shadow.mode: ShadowMode.SHADOW_FUNCTION`: its metrics are the shadow's.
   * @default - none
   */
  public readonly shadowFunction?: InferenceFunction;

  /**
   * The names of the A/B variants the function serves, the primary's first, with `variants`.
   * @default - none
   */
  public readonly variantNames?: string[];

  /** Service name of the handler's logs and embedded metrics (a metric dimension). */
  private readonly serviceName: string;

  constructor(scope: Construct, id: string, props: InferenceFunctionProps) {
    super(scope, id);
    const memorySize = props.memorySize ?? 2048;
    // Managed Instances have their own memory range, checked with their sizing below.
    if (!props.compute?.managedInstancesOptions) validateMemorySize(this, memorySize);
    validateCount(this, props.reservedConcurrentExecutions, 'reservedConcurrentExecutions', 0);
    validateCount(this, props.provisionedConcurrency, 'provisionedConcurrency', 1);
    validateProvisionedWithinReserved(this, props);
    validateCount(this, props.intraOpThreads, 'intraOpThreads', 1);
    const timeout = props.timeout ?? Duration.seconds(60);
    if (!Token.isUnresolved(timeout.toSeconds()) && timeout.toSeconds() > 900) {
      throw validationError(this, `timeout must be at most 15 minutes (Lambda's limit), got: ${timeout.toHumanString()}`);
    }
    const architecture = props.architecture ?? lambda.Architecture.ARM_64;
    const managed = props.compute?.managedInstancesOptions ? sizeManagedInstances(this, props, memorySize) : undefined;
    this.modelName = props.modelName ?? DEFAULT_MODEL_NAME;
    this.serviceName = Names.uniqueResourceName(this, { maxLength: 64 });

    this.logGroup = new logs.LogGroup(this, 'LogGroup', { retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH });
    // Its own role, with no managed policy: writing its own log group and reading its model.
    this.role =
      props.role ??
      new iam.Role(this, 'Role', {
        assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
        description: `Inference function of ${this.node.path}`,
      });
    this.grantPrincipal = this.role;
    this.logGroup.grantWrite(this.role);

    this.responseStreaming = props.responseStreaming ?? false;
    const hooks = props.hooks?.bind(this);
    if (hooks?.hooks.includes(AFTER_RESPONSE_HOOK) && !this.responseStreaming) {
      throw validationError(
        this,
        `hooks: the entry exports ${AFTER_RESPONSE_HOOK}, which runs after the answer is sent, and only a streamed answer lets the function go on after it: ` +
          "set the endpoint's api.responseTransferMode to apigw.ResponseTransferMode.STREAM (or responseStreaming on an InferenceFunction of your own)",
      );
    }
    if ((props.dataCapture || props.shadow) && !this.responseStreaming) {
      throw validationError(
        this,
        `${props.dataCapture ? 'dataCapture' : 'shadow'} runs after the answer is sent, and only a streamed answer lets the function go on after it: ` +
          "set the endpoint's api.responseTransferMode to apigw.ResponseTransferMode.STREAM (or responseStreaming on an InferenceFunction of your own)",
      );
    }
    this.shadowEnabled = props.shadow !== undefined;
    const shadowFunctionMode = props.shadow?.mode === ShadowMode.SHADOW_FUNCTION;
    const shadow = props.shadow && !shadowFunctionMode ? bindShadow(this, this.role, props.shadow) : undefined;
    if (props.dataCapture || props.shadow) {
      this.dataCapture = new DataCapture(this, 'DataCapture', {
        ...(props.dataCapture ?? { samplingPercentage: 0 }),
        modelName: this.modelName,
        failureMetric: this.metric(METRIC.CAPTURE_FAILED, { statistic: 'Sum' }),
      });
      this.dataCapture.grantPut(this.role);
    }
    let shadowFunctionEnvironment: { [name: string]: string } = {};
    if (props.shadow && shadowFunctionMode && this.dataCapture) {
      // The candidate in a function of its own, served from S3 as an S3ModelEndpoint serves a
      // model, which takes the live function's shadow events and writes their records.
      this.shadowFunction = new InferenceFunction(this, 'ShadowFunction', {
        packaging: new S3ModelPackaging({ model: props.shadow.model }),
        modelName: this.modelName,
        modelVersion: props.shadow.modelVersion,
        description: `Shadow (candidate) of model '${this.modelName}', invoked by ${this.node.path}`,
        architecture: props.architecture,
        runtime: props.runtime,
        memorySize: props.memorySize,
        timeout: props.timeout,
        logRetention: props.logRetention,
        environment: { ...this.dataCapture.environment, ...shadowComparison(this, props.shadow), [ENV.SHADOW_CANDIDATE]: 'true' },
      });
      this.dataCapture.grantPut(this.shadowFunction.role);
      // A lost shadow run is counted by the live function or the shadow function, never retried.
      this.shadowFunction.alias.configureAsyncInvoke({ retryAttempts: 0 });
      this.shadowFunction.alias.grantInvoke(this.role);
      acknowledge(
        this.shadowFunction,
        ['Serverless-LambdaDLQ', 'Serverless-LambdaAsyncFailureDestination'],
        'The shadow function is invoked asynchronously with a copy of a request already answered: a failed run is logged and counted (ShadowFailed) and dropped, by design.',
      );
      shadowFunctionEnvironment = { [ENV.SHADOW_FUNCTION_NAME]: this.shadowFunction.alias.functionArn, [ENV.SHADOW_SAMPLING_PERCENT]: String(shadowSampling(this, props.shadow)) };
    }
    const bindOptions = {
      role: this.role,
      modelName: this.modelName,
      architecture,
      runtime: props.runtime,
      hooks,
      precompileModel: props.precompileModel,
      graphOptimizationLevel: props.graphOptimizationLevel,
    };
    const primary = props.packaging.bind(this, bindOptions);
    const variants = props.variants ? bindVariants(this, primary, props.variants, bindOptions) : undefined;
    const packaging = variants?.packaging ?? primary;
    this.variantNames = variants?.names;
    const handlerDir = packaging.code ? undefined : handlerWithHooks(this, inferenceHandlerDir(), hooks);
    this.modelInfo = packaging.modelInfo;
    // A new model is a new version in the API unless the user names versions.
    this.modelVersion = props.modelVersion ?? (packaging.modelIdentity ? modelVersionFromIdentity(packaging.modelIdentity) : DEFAULT_MODEL_VERSION);

    const image = packaging.image === true;
    const onnxRuntime = packaging.onnxRuntime ?? true;
    // An image brings onnxruntime itself; zip code that runs models gets the stack's ONNX Runtime layer.
    this.onnxRuntimeLayer = image || !onnxRuntime ? undefined : OnnxRuntimeLayer.forArchitecture(this, architecture);
    const layers = image ? [] : [...(this.onnxRuntimeLayer ? [this.onnxRuntimeLayer] : []), ...(packaging.layers ?? [])];
    if (!image) {
      validateCodeSize(this, codeParts(packaging, handlerDir, this.onnxRuntimeLayer), layers.length);
    }

    let ephemeralStorageSize = props.ephemeralStorageSize;
    // A shadow model is fetched to /tmp and held in memory beside the live one.
    const tmpBytes = plus(packaging.tmpSize?.toBytes(), shadow?.sizeBytes);
    if (ephemeralStorageSize) {
      validateEphemeralStorage(this, ephemeralStorageSize, tmpBytes);
    } else if (tmpBytes !== undefined) {
      ephemeralStorageSize = ephemeralStorageForModel(this, tmpBytes);
    }
    const primaryBytes = packaging.modelInfo?.sizeBytes ?? packaging.modelSize?.toBytes();
    // Every instance loads every variant, and a shadow model beside them.
    const modelBytes = plus(primaryBytes === undefined ? undefined : primaryBytes + (variants?.extraModelBytes ?? 0), shadow?.sizeBytes);
    if (managed) {
      checkManagedInstancesFit(this, managed, memorySize, modelBytes, packaging);
    } else {
      warnIfModelOutgrowsMemory(this, memorySize, modelBytes);
    }

    this.function = new lambda.Function(this, 'Function', {
      code: packaging.code ?? lambda.Code.fromAsset(handlerDir!, hooks ? { exclude: STAGING_EXCLUDE } : {}),
      handler: image ? lambda.Handler.FROM_IMAGE : 'index.handler',
      runtime: image ? lambda.Runtime.FROM_IMAGE : (props.runtime ?? defaultNodeRuntime()),
      architecture,
      memorySize,
      ephemeralStorageSize,
      timeout,
      role: this.role,
      logGroup: this.logGroup,
      layers: layers.length > 0 ? layers : undefined,
      tracing: props.tracing,
      reservedConcurrentExecutions: props.reservedConcurrentExecutions,
      vpc: packaging.vpc,
      vpcSubnets: packaging.vpcSubnets,
      securityGroups: packaging.securityGroups,
      filesystem: packaging.filesystem,
      description: props.description ?? `ONNX model '${this.modelName}' served over the Open Inference Protocol`,
      // Each version records which model it serves.
      currentVersionOptions: packaging.modelIdentity ? { description: `model ${this.modelName} ${packaging.modelIdentity}` } : undefined,
      environment: {
        [ENV.MODEL_NAME]: this.modelName,
        [ENV.MODEL_VERSION]: this.modelVersion,
        ...(onnxRuntime
          ? {
              [ENV.ORT_INTRA_OP_THREADS]: String(managed?.intraOpThreads ?? props.intraOpThreads ?? inferenceThreads(memorySize)),
              [ENV.ORT_GRAPH_OPTIMIZATION_LEVEL]: props.graphOptimizationLevel ?? GraphOptimizationLevel.ALL,
              [ENV.MODEL_INIT_WAIT_MS]: String(modelInitWait(props, timeout).toMilliseconds()),
              [ENV.ORT_DISABLE_TELEMETRY]: '1',
            }
          : {}),
        [ENV.POWERTOOLS_SERVICE_NAME]: this.serviceName,
        [ENV.POWERTOOLS_METRICS_NAMESPACE]: METRICS_NAMESPACE,
        ...(managed ? { AWS_LAMBDA_NODEJS_WORKER_COUNT: String(managed.workers) } : {}),
        ...(hooks ? { [ENV.HOOKS_MODULE]: HOOKS_MODULE_FILE, ...(hooks.sourceMap ? { NODE_OPTIONS: '--enable-source-maps' } : {}) } : {}),
        ...(this.responseStreaming ? { [ENV.RESPONSE_STREAMING]: '1' } : {}),
        ...dynamicBatchingEnvironment(this, props.batching, managed),
        ...this.dataCapture?.environment,
        ...shadow?.environment,
        ...shadowFunctionEnvironment,
        ...packaging.environment,
        ...props.environment,
      },
    });
    if (packaging.vpc) {
      // The function's network interfaces, in its own subnets and security groups only (not AWS's
      // managed AWSLambdaVPCAccessExecutionRole, which allows them anywhere). The same selection
      // as the function's, and the function's security groups, which it creates if none are given.
      grantLambdaVpcAccess(this.role, packaging.vpc.selectSubnets(packaging.vpcSubnets).subnetIds, this.function.connections.securityGroups);
    }
    for (const d of packaging.dependencies ?? []) {
      this.function.node.addDependency(d);
    }
    const tracing = props.tracing === lambda.Tracing.ACTIVE || props.tracing === lambda.Tracing.PASS_THROUGH;
    if (tracing) {
      acknowledge(this.role, ['AwsSolutions-IAM5[Resource::*]'], 'X-Ray accepts trace segments only on Resource "*"; tracing was asked for.');
    } else {
      acknowledge(this.function, ['Serverless-LambdaTracing'], TRACING_OPT_IN);
    }
    acknowledge(
      this.function,
      ['Serverless-LambdaDLQ', 'Serverless-LambdaAsyncFailureDestination'],
      'API Gateway and the warmer invoke the inference function synchronously; there is no asynchronous event to keep.',
    );

    if (managed) {
      this.capacityProvider = runOnManagedInstances(this, this.function, managed, architecture);
    }

    this.alias = new lambda.Alias(this, 'LiveAlias', {
      aliasName: 'live',
      version: this.function.currentVersion,
      provisionedConcurrentExecutions: props.provisionedConcurrency,
    });
    if (props.provisionedConcurrencyScaling) {
      this.scaleProvisionedConcurrency(props.provisionedConcurrencyScaling, props.provisionedConcurrency);
    }
  }

  /** A metric of the handler's own (`ColdStart`, `ModelLoadMs`, `InferenceMs`, `ModelLoadFailed`, `AfterResponseFailed`, `BatchItems`, `BatchItemsFailed`), over 5 minutes. */
  public metric(metricName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: METRICS_NAMESPACE,
      metricName,
      dimensionsMap: { [METRIC_DIMENSION.SERVICE]: this.serviceName, [METRIC_DIMENSION.MODEL]: this.modelName },
      period: Duration.minutes(5),
      ...props,
    });
  }

  /** Invocations of the `live` alias. */
  public metricInvocations(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.alias.metricInvocations(props);
  }

  /** Function errors (unhandled failures; the handler answers bad requests without one). */
  public metricErrors(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.alias.metricErrors(props);
  }

  /** Throttled invocations. */
  public metricThrottles(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.alias.metricThrottles(props);
  }

  /** The function's duration, p99 by default (`statistic: 'p50'` or `'p90'` for others). */
  public metricDuration(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.alias.metricDuration({ statistic: 'p99', ...props });
  }

  /** Use of the provisioned instances (0 to 1), with `provisionedConcurrency`. */
  public metricProvisionedConcurrencyUtilization(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.alias.metric('ProvisionedConcurrencyUtilization', { statistic: 'Maximum', ...props });
  }

  /** Cold starts, from the handler's embedded metrics. */
  public metricColdStarts(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(METRIC.COLD_START, { statistic: 'Sum', ...props });
  }

  /** Time to fetch and load the model at cold start, in milliseconds. */
  public metricModelLoadTime(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(METRIC.MODEL_LOAD_MS, { statistic: 'Maximum', ...props });
  }

  /** Time of `session.run` per request, in milliseconds, p99 by default. */
  public metricInferenceTime(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(METRIC.INFERENCE_MS, { statistic: 'p99', ...props });
  }

  /** Failed model loads (each is retried by the next request). */
  public metricModelLoadFailures(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(METRIC.MODEL_LOAD_FAILED, { statistic: 'Sum', ...props });
  }

  /** `afterResponse` hooks that threw or were given up at the function's timeout (the answers were sent). */
  public metricAfterResponseFailures(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(METRIC.AFTER_RESPONSE_FAILED, { statistic: 'Sum', ...props });
  }

  /** Capture records the handler could not write and dropped (the answers were sent). */
  public metricCaptureFailures(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(METRIC.CAPTURE_FAILED, { statistic: 'Sum', ...props });
  }

  /** Capture records written. */
  public metricCaptured(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(METRIC.CAPTURED, { statistic: 'Sum', ...props });
  }

  /** The share of shadowed requests whose shadow answer agreed with the live one (0 to 1, the average by default). */
  public metricShadowAgreement(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return (this.shadowFunction ?? this).metric(METRIC.SHADOW_AGREEMENT, { statistic: 'Average', ...props });
  }

  /** Shadow runs that failed (not loaded, refused the request, threw, out of time); the callers never saw them. */
  public metricShadowFailures(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return (this.shadowFunction ?? this).metric(METRIC.SHADOW_FAILED, { statistic: 'Sum', ...props });
  }

  /** The shadow model's inference time over the live model's, the average by default. */
  public metricShadowLatencyRatio(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return (this.shadowFunction ?? this).metric(METRIC.SHADOW_LATENCY_RATIO, { statistic: 'Average', ...props });
  }

  /**
   * A figure of one A/B variant (`VariantRequests`, `VariantErrors`, `VariantInferenceMs`), by its
   * `variant` dimension, over 5 minutes: the function must have `variants`, and `variantName` be one.
   */
  public metricVariant(variantName: string, metricName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    if (!this.variantNames?.includes(variantName)) {
      throw validationError(
        this,
        `metricVariant: '${variantName}' is not a variant of this function (${this.variantNames ? `its variants are ${this.variantNames.join(', ')}` : 'it has no variants'})`,
      );
    }
    return this.metric(metricName, {
      ...props,
      dimensionsMap: { [METRIC_DIMENSION.SERVICE]: this.serviceName, [METRIC_DIMENSION.MODEL]: this.modelName, [VARIANT_METRIC_DIMENSION]: variantName },
    });
  }

  /** Infer requests one A/B variant answered or failed, summed. */
  public metricVariantRequests(variantName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metricVariant(variantName, VARIANT_METRIC.REQUESTS, { statistic: 'Sum', ...props });
  }

  /** Infer requests one A/B variant failed (its model refused the values, 422, or failed, 5xx), summed. */
  public metricVariantErrors(variantName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metricVariant(variantName, VARIANT_METRIC.ERRORS, { statistic: 'Sum', ...props });
  }

  /** Time of one A/B variant's `session.run`, in milliseconds, p99 by default. */
  public metricVariantInferenceTime(variantName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metricVariant(variantName, VARIANT_METRIC.INFERENCE_MS, { statistic: 'p99', ...props });
  }

  private scaleProvisionedConcurrency(scaling: ProvisionedConcurrencyScaling, provisioned: number | undefined): void {
    if (provisioned === undefined) {
      throw validationError(this, 'provisionedConcurrencyScaling scales provisionedConcurrency: set provisionedConcurrency too (the starting capacity)');
    }
    validateCount(this, scaling.minCapacity, 'provisionedConcurrencyScaling.minCapacity', 1);
    validateCount(this, scaling.maxCapacity, 'provisionedConcurrencyScaling.maxCapacity', scaling.minCapacity);
    const target = this.alias.addAutoScaling({ minCapacity: scaling.minCapacity, maxCapacity: scaling.maxCapacity });
    if (scaling.utilizationTarget !== undefined) {
      if (scaling.utilizationTarget < 0.1 || scaling.utilizationTarget > 0.9) {
        throw validationError(this, `provisionedConcurrencyScaling.utilizationTarget must be between 0.1 and 0.9, got: ${scaling.utilizationTarget}`);
      }
      target.scaleOnUtilization({ utilizationTarget: scaling.utilizationTarget });
    }
    for (const s of scaling.schedules ?? []) {
      target.scaleOnSchedule(s.name, { schedule: s.schedule, minCapacity: s.minCapacity, maxCapacity: s.maxCapacity });
    }
  }
}

/** What the 250 MB check adds up: the code (the handler, with its hooks, unless the packaging brings its own), its layers. */
function codeParts(packaging: ModelPackagingConfig, handlerDir: string | undefined, onnxRuntimeLayer: OnnxRuntimeLayer | undefined): CodePart[] {
  return [
    ...(handlerDir ? [{ name: 'inference handler', sizeBytes: treeSize(handlerDir) }] : []),
    ...(packaging.codeParts ?? []),
    ...(onnxRuntimeLayer ? [{ name: 'ONNX Runtime layer', sizeBytes: onnxRuntimeLayer.unzippedSizeBytes }] : []),
  ];
}

/**
 * On demand, Lambda caps the init phase at 10 s, so the handler hands over after 8 s and finishes a
 * longer load in the first request. Provisioned instances may initialise for 130 s or the timeout,
 * whichever is longer, and are frozen after init until their first request: they wait for the
 * whole load instead.
 */
function modelInitWait(props: InferenceFunctionOptions, timeout: Duration): Duration {
  if (props.modelInitWait) return props.modelInitWait;
  if (props.provisionedConcurrency === undefined || Token.isUnresolved(timeout.toSeconds())) return Duration.millis(DEFAULT_MODEL_INIT_WAIT_MS);
  return Duration.seconds(Math.max(130, timeout.toSeconds()) - 10);
}

/**
 * onnxruntime holds the whole model in memory, plus its working buffers and Node.js itself: a
 * function with less than about 1.5 times the model and 256 MiB runs out of memory at cold start.
 */
/** Two sizes added up; one alone when the other is unknown. */
function plus(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined ? b : b === undefined ? a : a + b;
}

function warnIfModelOutgrowsMemory(scope: Construct, memoryMiB: number, modelBytes: number | undefined): void {
  if (modelBytes === undefined || Token.isUnresolved(memoryMiB)) return;
  const neededMiB = Math.ceil((modelBytes * 1.5) / (1024 * 1024) + 256);
  if (memoryMiB < neededMiB) {
    Annotations.of(scope).addWarningV2(
      'cdk-serverless-inference:memory',
      `memorySize is ${memoryMiB} MiB, but a ${formatBytes(modelBytes)} model needs about ${neededMiB} MiB (1.5 times the model, for onnxruntime, and 256 MiB for the runtime): raise memorySize`,
    );
  }
}

function validateCount(scope: Construct, value: number | undefined, prop: string, min: number): void {
  if (value === undefined || Token.isUnresolved(value)) return;
  if (!Number.isInteger(value) || value < min) {
    throw validationError(scope, `${prop} must be a whole number of at least ${min}, got: ${value}`);
  }
}

/** Lambda refuses more provisioned concurrency than the function's reservation. */
function validateProvisionedWithinReserved(scope: Construct, props: InferenceFunctionOptions): void {
  const reserved = props.reservedConcurrentExecutions;
  const provisioned = props.provisionedConcurrencyScaling?.maxCapacity ?? props.provisionedConcurrency;
  if (reserved === undefined || provisioned === undefined || Token.isUnresolved(reserved) || Token.isUnresolved(provisioned)) return;
  const what = props.provisionedConcurrencyScaling ? 'provisionedConcurrencyScaling.maxCapacity' : 'provisionedConcurrency';
  if (provisioned > reserved) {
    throw validationError(scope, `${what} (${provisioned}) must not exceed reservedConcurrentExecutions (${reserved}): Lambda cannot provision more than the reservation`);
  }
}
