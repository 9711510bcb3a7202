import * as fs from 'node:fs';
import * as path from 'node:path';
import { Annotations, Duration, Names, Size, Token } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct, IDependable } from 'constructs';
import { ENV } from '../handlers/core/environment';
import { InferenceApi, InferenceApiOptions } from './inference-api';
import type { OnnxModelInfo } from './model/onnx-model-info';
import { inferRequestSchema } from './model/request-schema';
import { OnnxRuntimeLayer } from './onnxruntime-layer';
import { acknowledge } from './private/acknowledge';
import {
  CodePart,
  ephemeralStorageForModel,
  inferenceThreads,
  validateCodeSize,
  validateEphemeralStorage,
  validateMemorySize,
} from './private/lambda-limits';
import { builtAssetPath } from './private/package-paths';
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
   * @default '1'
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
   * once it outlasts the init phase.
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
   * scale them on a schedule with `endpoint.alias.addAutoScaling(...)`. With it set, the warmer is
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
   * instead of failing every cold start.
   * @default Duration.seconds(8)
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
   * The warmer that keeps instances warm (`enabled: false` for none).
   * @default - one instance pinged every 5 minutes, unless `provisionedConcurrency` is set
   */
  readonly warmer?: EndpointWarmerOptions;
}

/** How an endpoint packages its model, decided by each endpoint before the function exists. */
export interface ModelPackaging {
  /** Environment variables that tell the handler where the model is (MODEL_PATH or MODEL_S3_URI...). */
  readonly environment: Record<string, string>;
  /** Layers besides the ONNX Runtime layer (a model layer). */
  readonly layers?: lambda.ILayerVersion[];
  /** Unzipped sizes of those layers and of any model in the code, for the 250 MB check. */
  readonly codeParts?: CodePart[];
  /** Bytes fetched into /tmp at cold start. */
  readonly tmpBytes?: number;
  /** The model's signature and size, when known at synth. */
  readonly info?: OnnxModelInfo;
  /** Grants the function's role access to the model. */
  grantRead(role: iam.IRole): void;
  /** What must exist before the function runs (the model object, the file system). */
  readonly dependencies?: IDependable[];
}

const INFERENCE_HANDLER_DIR = () => builtAssetPath('handlers', 'inference');

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
  /** The ONNX Runtime layer the function uses (shared by the stack's endpoints). */
  public readonly onnxRuntimeLayer: OnnxRuntimeLayer;
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
    if (architecture === lambda.Architecture.ARM_64) {
      Annotations.of(this).addWarningV2(
        'cdk-serverless-inference:arm64',
        'onnxruntime has an open crash on Lambda arm64 (microsoft/onnxruntime#10038: cpuinfo reads /sys/devices/system/cpu/possible, absent in the sandbox); test the function before relying on it, or use x86_64',
      );
    }

    this.modelName = props.modelName ?? 'model';
    this.serviceName = Names.uniqueResourceName(this, { maxLength: 64 });
    const packaging = packageModel(this);
    this.modelInfo = packaging.info;

    this.onnxRuntimeLayer = OnnxRuntimeLayer.forArchitecture(this, architecture);
    const layers = [this.onnxRuntimeLayer, ...(packaging.layers ?? [])];
    validateCodeSize(
      [
        { name: 'inference handler', bytes: directorySize(INFERENCE_HANDLER_DIR()) },
        { name: 'ONNX Runtime layer', bytes: this.onnxRuntimeLayer.unzippedSizeBytes },
        ...(packaging.codeParts ?? []),
      ],
      layers.length,
    );

    let ephemeralStorageSize = props.ephemeralStorageSize;
    if (ephemeralStorageSize) {
      validateEphemeralStorage(ephemeralStorageSize, packaging.tmpBytes);
    } else if (packaging.tmpBytes !== undefined) {
      ephemeralStorageSize = ephemeralStorageForModel(packaging.tmpBytes);
    }

    this.logGroup = new logs.LogGroup(this, 'LogGroup', { retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH });
    // Its own role, with no managed policy: writing its own log group and reading its model.
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `Inference function of ${this.node.path}`,
    });
    this.grantPrincipal = this.role;
    this.logGroup.grantWrite(this.role);
    packaging.grantRead(this.role);

    this.function = new lambda.Function(this, 'Function', {
      code: lambda.Code.fromAsset(INFERENCE_HANDLER_DIR()),
      handler: 'index.handler',
      runtime: props.runtime ?? lambda.Runtime.NODEJS_24_X,
      architecture,
      memorySize,
      ephemeralStorageSize,
      timeout,
      role: this.role,
      logGroup: this.logGroup,
      layers,
      tracing: props.tracing,
      reservedConcurrentExecutions: props.reservedConcurrentExecutions,
      description: `ONNX model '${this.modelName}' served over the Open Inference Protocol`,
      environment: {
        [ENV.MODEL_NAME]: this.modelName,
        [ENV.MODEL_VERSION]: props.modelVersion ?? '1',
        [ENV.ORT_INTRA_OP_THREADS]: String(props.intraOpThreads ?? inferenceThreads(memorySize)),
        [ENV.ORT_GRAPH_OPTIMIZATION_LEVEL]: props.graphOptimizationLevel ?? GraphOptimizationLevel.ALL,
        [ENV.MODEL_INIT_WAIT_MS]: String((props.modelInitWait ?? Duration.seconds(8)).toMilliseconds()),
        ORT_DISABLE_TELEMETRY: '1',
        POWERTOOLS_SERVICE_NAME: this.serviceName,
        POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
        ...packaging.environment,
        ...props.environment,
      },
    });
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
    if (!tracing) {
      acknowledge(this.api.restApi.deploymentStage, ['Serverless-APIGWXrayEnabled'], TRACING_OPT_IN);
    }
    this.url = this.api.url;
    this.inferUrl = this.api.inferUrl;

    const warmerEnabled = props.warmer?.enabled ?? props.provisionedConcurrency === undefined;
    if (warmerEnabled) {
      this.warmer = new Warmer(this, 'Warmer', { ...props.warmer, enabled: true, target: this.alias });
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

  /** The function's duration, p99 by default. */
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

function validateCount(value: number | undefined, prop: string, min: number): void {
  if (value === undefined || Token.isUnresolved(value)) return;
  if (!Number.isInteger(value) || value < min) {
    throw new Error(`${prop} must be a whole number of at least ${min}, got: ${value}`);
  }
}

function directorySize(dir: string): number {
  let total = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    total += entry.isDirectory() ? directorySize(p) : fs.statSync(p).size;
  }
  return total;
}
