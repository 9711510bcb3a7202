import { Annotations, Duration, Names, Size, Token } from 'aws-cdk-lib';
import * as appscaling from 'aws-cdk-lib/aws-applicationautoscaling';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct, IDependable } from 'constructs';
import { ENV } from '../contract/environment';
import { InferenceApi, InferenceApiOptions } from './inference-api';
import type { OnnxModelInfo } from './model/onnx-model-info';
import { inferRequestSchema } from './model/request-schema';
import { OnnxRuntimeLayer } from './onnxruntime-layer';
import { acknowledge } from './private/acknowledge';
import {
  CodePart,
  ephemeralStorageForModel,
  formatBytes,
  inferenceThreads,
  validateCodeSize,
  validateEphemeralStorage,
  validateMemorySize,
} from './private/lambda-limits';
import { builtAssetPath } from './private/package-paths';
import { treeSize } from './private/staging';
import { EndpointMonitoring, EndpointMonitoringOptions } from './operations/endpoint-monitoring';
import { GradualRollout, GradualRolloutOptions } from './operations/gradual-rollout';
import { Warmer, WarmerOptions } from './warmer';

/** onnxruntime's graph optimisation levels. */
export enum GraphOptimizationLevel {
  DISABLED = 'disabled',
  BASIC = 'basic',
  EXTENDED = 'extended',
  ALL = 'all',
}

/** The warmer of an endpoint. */
export interface EndpointWarmerOptions extends WarmerOptions {}

/** What every model endpoint lets its users choose. */
export interface ModelEndpointProps {
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
   * The function's architecture. onnxruntime has an open crash on Lambda arm64
   * (microsoft/onnxruntime#10038: cpuinfo reads /sys/devices/system/cpu/possible, which Lambda's
   * sandbox lacks), so arm64 is offered with a synth warning.
   * @default lambda.Architecture.X86_64
   */
  readonly architecture?: lambda.Architecture;

  /**
   * The Node.js runtime.
   * @default lambda.Runtime.NODEJS_24_X
   */
  readonly runtime?: lambda.Runtime;

  /**
   * Memory in MiB, which also buys CPU: 1,769 MiB is one full vCPU, 10,240 MiB six.
   * @default 2048
   */
  readonly memorySize?: number;

  /**
   * The function's /tmp.
   * @default - 512 MiB, or what the model needs when it is fetched to /tmp
   */
  readonly ephemeralStorageSize?: Size;

  /**
   * The function's timeout. A cold start's model load counts against the first request's timeout
   * once it outlasts the init phase. API Gateway waits at most 29 s for the function, so a request
   * that meets a load longer than that gets a 504 while the load goes on: keep big models warm
   * (the warmer, or `provisionedConcurrency`).
   * @default Duration.seconds(60)
   */
  readonly timeout?: Duration;

  /**
   * Reserved concurrency: a ceiling on instances (and cost), and a floor that other functions
   * cannot take.
   * @default - no reservation
   */
  readonly reservedConcurrentExecutions?: number;

  /**
   * Instances kept initialised on the `live` alias, for strict latency. They are billed while idle;
   * scale them on utilisation or a schedule with `provisionedConcurrencyScaling`. With it set, the warmer is
   * off unless `warmer` asks for it.
   * @default - none
   */
  readonly provisionedConcurrency?: number;

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
   * How long the init phase waits for the model before handing over to the first request. Lambda
   * caps an on-demand init at 10 s; a load that takes longer finishes during the first request
   * instead of failing every cold start. Provisioned instances may initialise for 130 s (or the
   * timeout, if longer) and are frozen after init, so they wait for the whole load.
   * @default - 8 seconds; with `provisionedConcurrency`, 10 s less than 130 s or the timeout, whichever is longer
   */
  readonly modelInitWait?: Duration;

  /**
   * More environment variables for the function.
   * @default - none
   */
  readonly environment?: Record<string, string>;

  /**
   * The API in front of the function: authorization (IAM by default), throttling, CORS, logging.
   * @default - InferenceApi's defaults
   */
  readonly api?: InferenceApiOptions;

  /**
   * Application Auto Scaling of `provisionedConcurrency`: between a minimum and a maximum, on
   * utilisation and/or on a schedule.
   * @default - a fixed `provisionedConcurrency`
   */
  readonly provisionedConcurrencyScaling?: ProvisionedConcurrencyScaling;

  /**
   * Alarms (5xx rate, p99 latency, throttles, cold-start rate, function errors) sent to an SNS topic
   * or your actions, and a CloudWatch dashboard. `monitoring: {}` turns both on.
   * @default - none
   */
  readonly monitoring?: EndpointMonitoringOptions;

  /**
   * Shift each new version (a new model or handler) to the live alias gradually with CodeDeploy,
   * rolled back by the endpoint's alarms, optionally checked with a sample request first.
   * @default - each deploy moves the alias at once
   */
  readonly rollout?: GradualRolloutOptions;

  /**
   * The warmer that keeps instances warm (`enabled: false` for none).
   * @default - one instance pinged every 5 minutes, unless `provisionedConcurrency` is set
   */
  readonly warmer?: EndpointWarmerOptions;
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
  /** @default - unchanged */
  readonly minCapacity?: number;
  /** @default - unchanged */
  readonly maxCapacity?: number;
}

/** How an endpoint packages its model, decided by each endpoint before the function exists. */
export interface ModelPackaging {
  /** Environment variables that tell the handler where the model is (MODEL_PATH or MODEL_S3_URI...). */
  readonly environment: Record<string, string>;
  /**
   * The function's code instead of the prebuilt inference handler: a code asset holding the handler
   * and the model, or a container image (`image: true`).
   */
  readonly code?: PackagedCode;
  /** Layers besides the ONNX Runtime layer (a model layer). */
  readonly layers?: lambda.ILayerVersion[];
  /** Unzipped sizes of those layers and of any model in the code, for the 250 MB check. */
  readonly codeParts?: CodePart[];
  /** Bytes fetched into /tmp at cold start. */
  readonly tmpBytes?: number;
  /** The model's signature and size, when known at synth. */
  readonly info?: OnnxModelInfo;
  /** Grants the function's role access to the model. */
  grantRead?(role: iam.IRole): void;
  /** What must exist before the function runs (the model object, the file system). */
  readonly dependencies?: IDependable[];
  /**
   * What identifies the model's content (an asset hash, an S3 version id): the default model
   * version in the API, and part of each function version's description.
   */
  readonly identity?: string;
  /** The VPC, subnets and security groups of the function, for a model on a file system. */
  readonly network?: PackagedNetwork;
  /** A file system the function mounts. */
  readonly filesystem?: lambda.FileSystem;
}

/** Function code an endpoint brings instead of the prebuilt inference handler. */
export interface PackagedCode {
  readonly code: lambda.Code;
  /** A container image: no runtime, handler or layers of its own; it brings onnxruntime itself. */
  readonly image?: boolean;
  /** What the code holds, unzipped, for the 250 MB check (zip code only). */
  readonly parts?: CodePart[];
  /**
   * Whether the code runs models with onnxruntime (zip code then gets the ONNX Runtime layer).
   * @default true
   */
  readonly onnxRuntime?: boolean;
}

/** Where a function that mounts a file system runs. */
export interface PackagedNetwork {
  readonly vpc: ec2.IVpc;
  readonly vpcSubnets?: ec2.SubnetSelection;
  readonly securityGroups: ec2.ISecurityGroup[];
}

/** The prebuilt inference handler bundle. */
export const INFERENCE_HANDLER_DIR = (): string => builtAssetPath('handlers', 'inference');

const TRACING_OPT_IN = 'X-Ray tracing is opt-in (the tracing prop): it is billed per trace, and the handler already emits latency metrics.';

/** Namespace of the handler's embedded metrics. */
export const METRICS_NAMESPACE = 'CdkServerlessInference';

/**
 * What every model endpoint shares: the inference function (the shared handler, the ONNX Runtime
 * layer, its own least-privilege role and log group), the `live` alias the API calls, the API, the
 * warmer, validation of Lambda's limits, and metrics. Each endpoint adds how its model is packaged.
 */
export abstract class ModelEndpointBase extends Construct implements iam.IGrantable {
  /** The inference function. */
  public readonly function: lambda.Function;
  /** The alias that the API and the warmer call; each deploy that changes the function moves it. */
  public readonly alias: lambda.Alias;
  /** The API in front of the alias. */
  public readonly api: InferenceApi;
  /** The warmer, when there is one. */
  public readonly warmer?: Warmer;
  /** Alarms and dashboard, with `monitoring` (or the alarms alone, with `rollout`). */
  public readonly monitoring?: EndpointMonitoring;
  /** The gradual rollout, with `rollout`. */
  public readonly rollout?: GradualRollout;
  /** The version the API reports for the model: `modelVersion`, or the model's identity. */
  public readonly modelVersion: string;
  /**
   * The ONNX Runtime layer the function uses (shared by the stack's endpoints); none for a
   * container image, which brings onnxruntime itself.
   */
  public readonly onnxRuntimeLayer?: OnnxRuntimeLayer;
  /** The function's role. */
  public readonly role: iam.Role;
  /** The function's log group. */
  public readonly logGroup: logs.LogGroup;
  /** The model's name in the routes. */
  public readonly modelName: string;
  /** The model's signature, when it was known at synth. */
  public readonly modelInfo?: OnnxModelInfo;
  /** The stage URL of the API. */
  public readonly url: string;
  /** `POST` here to infer. */
  public readonly inferUrl: string;
  /** The function's role, as the principal of grants to the function. */
  public readonly grantPrincipal: iam.IPrincipal;

  /** Service name of the handler's logs and embedded metrics (a metric dimension). */
  private readonly serviceName: string;

  protected constructor(scope: Construct, id: string, props: ModelEndpointProps, packageModel: (self: Construct) => ModelPackaging) {
    super(scope, id);
    const memorySize = props.memorySize ?? 2048;
    validateMemorySize(memorySize);
    validateCount(props.reservedConcurrentExecutions, 'reservedConcurrentExecutions', 0);
    validateCount(props.provisionedConcurrency, 'provisionedConcurrency', 1);
    validateCount(props.intraOpThreads, 'intraOpThreads', 1);
    const timeout = props.timeout ?? Duration.seconds(60);
    if (!Token.isUnresolved(timeout.toSeconds()) && timeout.toSeconds() > 900) {
      throw new Error(`timeout must be at most 15 minutes (Lambda's limit), got: ${timeout.toHumanString()}`);
    }
    const architecture = props.architecture ?? lambda.Architecture.X86_64;
    this.modelName = props.modelName ?? 'model';
    this.serviceName = Names.uniqueResourceName(this, { maxLength: 64 });
    const packaging = packageModel(this);
    this.modelInfo = packaging.info;
    // A new model is a new version in the API unless the user names versions.
    this.modelVersion = props.modelVersion ?? (packaging.identity ? packaging.identity.slice(0, 16) : '1');

    const image = packaging.code?.image === true;
    const onnxRuntime = packaging.code?.onnxRuntime ?? true;
    if (onnxRuntime && architecture === lambda.Architecture.ARM_64) {
      Annotations.of(this).addWarningV2(
        'cdk-serverless-inference:arm64',
        'onnxruntime has an open crash on Lambda arm64 (microsoft/onnxruntime#10038: cpuinfo reads /sys/devices/system/cpu/possible, absent in the sandbox); test the function before relying on it, or use x86_64',
      );
    }
    // An image brings onnxruntime itself; zip code that runs models gets the stack's ONNX Runtime layer.
    this.onnxRuntimeLayer = image || !onnxRuntime ? undefined : OnnxRuntimeLayer.forArchitecture(this, architecture);
    const layers = image ? [] : [...(this.onnxRuntimeLayer ? [this.onnxRuntimeLayer] : []), ...(packaging.layers ?? [])];
    if (!image) {
      validateCodeSize(
        [
          ...(packaging.code?.parts ?? [{ name: 'inference handler', bytes: treeSize(INFERENCE_HANDLER_DIR()) }]),
          ...(this.onnxRuntimeLayer ? [{ name: 'ONNX Runtime layer', bytes: this.onnxRuntimeLayer.unzippedSizeBytes }] : []),
          ...(packaging.codeParts ?? []),
        ],
        layers.length,
      );
    }

    let ephemeralStorageSize = props.ephemeralStorageSize;
    if (ephemeralStorageSize) {
      validateEphemeralStorage(ephemeralStorageSize, packaging.tmpBytes);
    } else if (packaging.tmpBytes !== undefined) {
      ephemeralStorageSize = ephemeralStorageForModel(packaging.tmpBytes);
    }

    warnIfModelOutgrowsMemory(this, memorySize, packaging.info?.sizeBytes);

    this.logGroup = new logs.LogGroup(this, 'LogGroup', { retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH });
    // Its own role, with no managed policy: writing its own log group and reading its model.
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `Inference function of ${this.node.path}`,
    });
    this.grantPrincipal = this.role;
    this.logGroup.grantWrite(this.role);
    packaging.grantRead?.(this.role);

    this.function = new lambda.Function(this, 'Function', {
      code: packaging.code?.code ?? lambda.Code.fromAsset(INFERENCE_HANDLER_DIR()),
      handler: image ? lambda.Handler.FROM_IMAGE : 'index.handler',
      runtime: image ? lambda.Runtime.FROM_IMAGE : (props.runtime ?? lambda.Runtime.NODEJS_24_X),
      architecture,
      memorySize,
      ephemeralStorageSize,
      timeout,
      role: this.role,
      logGroup: this.logGroup,
      layers: layers.length > 0 ? layers : undefined,
      tracing: props.tracing,
      reservedConcurrentExecutions: props.reservedConcurrentExecutions,
      vpc: packaging.network?.vpc,
      vpcSubnets: packaging.network?.vpcSubnets,
      securityGroups: packaging.network?.securityGroups,
      filesystem: packaging.filesystem,
      description: `ONNX model '${this.modelName}' served over the Open Inference Protocol`,
      // Each version records which model it serves.
      currentVersionOptions: packaging.identity ? { description: `model ${this.modelName} ${packaging.identity}` } : undefined,
      environment: {
        [ENV.MODEL_NAME]: this.modelName,
        [ENV.MODEL_VERSION]: this.modelVersion,
        ...(onnxRuntime
          ? {
              [ENV.ORT_INTRA_OP_THREADS]: String(props.intraOpThreads ?? inferenceThreads(memorySize)),
              [ENV.ORT_GRAPH_OPTIMIZATION_LEVEL]: props.graphOptimizationLevel ?? GraphOptimizationLevel.ALL,
              [ENV.MODEL_INIT_WAIT_MS]: String(modelInitWait(props, timeout).toMilliseconds()),
              ORT_DISABLE_TELEMETRY: '1',
            }
          : {}),
        POWERTOOLS_SERVICE_NAME: this.serviceName,
        POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
        ...packaging.environment,
        ...props.environment,
      },
    });
    if (packaging.network) {
      // aws-cdk-lib attaches this only to a role it creates; the function's network interfaces need it.
      this.role.addManagedPolicy(iam.ManagedPolicy.fromAwsManagedPolicyName('service-role/AWSLambdaVPCAccessExecutionRole'));
      acknowledge(
        this.role,
        ['AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]'],
        "aws-cdk-lib attaches AWS's managed policy for the network interfaces of a function in a VPC; EC2 does not let those actions be scoped to resources.",
      );
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

    this.alias = new lambda.Alias(this, 'LiveAlias', {
      aliasName: 'live',
      version: this.function.currentVersion,
      provisionedConcurrentExecutions: props.provisionedConcurrency,
    });

    this.api = new InferenceApi(this, 'Api', {
      tracingEnabled: props.tracing === lambda.Tracing.ACTIVE,
      ...props.api,
      handler: this.alias,
      modelName: this.modelName,
      requestSchema: inferRequestSchema(packaging.info?.inputs),
    });
    this.url = this.api.url;
    this.inferUrl = this.api.inferUrl;

    const warmerEnabled = props.warmer?.enabled ?? props.provisionedConcurrency === undefined;
    if (warmerEnabled) {
      this.warmer = new Warmer(this, 'Warmer', { ...props.warmer, enabled: true, target: this.alias });
    }

    if (props.provisionedConcurrencyScaling) {
      this.scaleProvisionedConcurrency(props.provisionedConcurrencyScaling, props.provisionedConcurrency);
    }
    if (props.monitoring || props.rollout) {
      // A rollout needs alarms to roll back on, even without the rest of the monitoring.
      this.monitoring = new EndpointMonitoring(this, 'Monitoring', {
        ...(props.monitoring ?? { dashboard: false }),
        endpoint: this,
        title: `Model ${this.modelName} (${this.node.path})`,
      });
    }
    if (props.rollout) {
      this.rollout = new GradualRollout(this, 'Rollout', {
        ...props.rollout,
        alias: this.alias,
        version: this.function.currentVersion,
        endpointAlarms: Object.values(this.monitoring!.alarms),
      });
    }
  }

  private scaleProvisionedConcurrency(scaling: ProvisionedConcurrencyScaling, provisioned: number | undefined): void {
    if (provisioned === undefined) {
      throw new Error('provisionedConcurrencyScaling scales provisionedConcurrency: set provisionedConcurrency too (the starting capacity)');
    }
    validateCount(scaling.minCapacity, 'provisionedConcurrencyScaling.minCapacity', 1);
    validateCount(scaling.maxCapacity, 'provisionedConcurrencyScaling.maxCapacity', scaling.minCapacity);
    const target = this.alias.addAutoScaling({ minCapacity: scaling.minCapacity, maxCapacity: scaling.maxCapacity });
    if (scaling.utilizationTarget !== undefined) {
      if (scaling.utilizationTarget < 0.1 || scaling.utilizationTarget > 0.9) {
        throw new Error(`provisionedConcurrencyScaling.utilizationTarget must be between 0.1 and 0.9, got: ${scaling.utilizationTarget}`);
      }
      target.scaleOnUtilization({ utilizationTarget: scaling.utilizationTarget });
    }
    for (const s of scaling.schedules ?? []) {
      target.scaleOnSchedule(s.name, { schedule: s.schedule, minCapacity: s.minCapacity, maxCapacity: s.maxCapacity });
    }
  }

  /** Lets `grantee` call the API (with IAM authorization, the default). */
  public grantInvoke(grantee: iam.IGrantable): iam.Grant {
    return this.api.grantInvoke(grantee);
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

  /** Requests at the API (`Count`). */
  public metricApiRequests(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.api.metricCount({ statistic: 'Sum', ...props });
  }

  /** 4XX answers at the API: bad requests, auth failures, throttling. */
  public metricApiClientErrors(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.api.metricClientError({ statistic: 'Sum', ...props });
  }

  /** 5XX answers at the API: model failures, load failures, timeouts. */
  public metricApiServerErrors(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.api.metricServerError({ statistic: 'Sum', ...props });
  }

  /** Use of the provisioned instances (0 to 1), with `provisionedConcurrency`. */
  public metricProvisionedConcurrencyUtilization(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.alias.metric('ProvisionedConcurrencyUtilization', { statistic: 'Maximum', ...props });
  }

  /** The function's duration, p99 by default (`statistic: 'p50'` or `'p90'` for others). */
  public metricDuration(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.alias.metricDuration({ statistic: 'p99', ...props });
  }

  /** End-to-end latency at the API, p99 by default. */
  public metricLatency(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.api.metricLatency({ statistic: 'p99', ...props });
  }

  /** Cold starts, from the handler's embedded metrics. */
  public metricColdStarts(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handlerMetric('ColdStart', { statistic: 'Sum', ...props });
  }

  /** Time to fetch and load the model at cold start, in milliseconds. */
  public metricModelLoadTime(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handlerMetric('ModelLoadMs', { statistic: 'Maximum', ...props });
  }

  /** Time of `session.run` per request, in milliseconds, p99 by default. */
  public metricInferenceTime(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handlerMetric('InferenceMs', { statistic: 'p99', ...props });
  }

  /** Failed model loads (each is retried by the next request). */
  public metricModelLoadFailures(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handlerMetric('ModelLoadFailed', { statistic: 'Sum', ...props });
  }

  private handlerMetric(metricName: string, props: cloudwatch.MetricOptions): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: METRICS_NAMESPACE,
      metricName,
      dimensionsMap: { service: this.serviceName, model: this.modelName },
      period: Duration.minutes(5),
      ...props,
    });
  }
}

/**
 * On demand, Lambda caps the init phase at 10 s, so the handler hands over after 8 s and finishes a
 * longer load in the first request. Provisioned instances may initialise for 130 s or the timeout,
 * whichever is longer, and are frozen after init until their first request: they wait for the
 * whole load instead.
 */
function modelInitWait(props: ModelEndpointProps, timeout: Duration): Duration {
  if (props.modelInitWait) return props.modelInitWait;
  if (props.provisionedConcurrency === undefined || Token.isUnresolved(timeout.toSeconds())) return Duration.seconds(8);
  return Duration.seconds(Math.max(130, timeout.toSeconds()) - 10);
}

/**
 * onnxruntime holds the whole model in memory, plus its working buffers and Node.js itself: a
 * function with less than about 1.5 times the model and 256 MiB runs out of memory at cold start.
 */
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

function validateCount(value: number | undefined, prop: string, min: number): void {
  if (value === undefined || Token.isUnresolved(value)) return;
  if (!Number.isInteger(value) || value < min) {
    throw new Error(`${prop} must be a whole number of at least ${min}, got: ${value}`);
  }
}
