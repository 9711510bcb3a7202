import { Duration, Token } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as sagemaker from 'aws-cdk-lib/aws-sagemaker';
import type { Construct } from 'constructs';
import { SERVER_NAME } from '../../contract/routes';
import { API_GATEWAY_TIMEOUT_MS, DEFAULT_MODEL_NAME, DEFAULT_MODEL_VERSION, DEFAULT_SAGEMAKER_CONTENT_TYPE, DEFAULT_SAGEMAKER_TIMEOUT_MS } from '../../contract/defaults';
import { ENV } from '../../contract/environment';
import { type IInferenceApiIntegrations, InferenceApi, InferenceRoute } from '../api/inference-api';
import { InferenceEndpointBase, type InferenceEndpointOptions } from './inference-endpoint';
import { InferenceFunction, type LambdaFunctionOptions } from '../function/inference-function';
import type { EndpointMonitoring } from '../operations/endpoint-monitoring';
import type { GradualRollout } from '../operations/gradual-rollout';
import { ModelPackaging, type ModelPackagingBindOptions, type ModelPackagingConfig } from '../packaging/model-packaging';
import { createEndpointOperations } from './endpoint-operations';
import { apiIntegrationTimeout, streamsResponses } from '../api/response-streaming';
import { validationError } from '../private/errors';
import { builtAssetPath } from '../private/package-paths';
import { handlerWithHooks } from '../hooks/handler-code';
import { STAGING_EXCLUDE, treeSize } from '../private/staging';
import type { SageMakerEndpoint, SageMakerEndpointConfig } from '../sagemaker/sagemaker-endpoint';
import type { Warmer } from '../operations/warmer';

/** How the API reaches SageMaker. */
export enum SageMakerIntegration {
  /**
   * Through a Lambda proxy: the library's proxy handler (or your entry with hooks) turns the request
   * into the endpoint's content type and maps SageMaker's errors to clear HTTP errors.
   */
  LAMBDA_PROXY = 'lambda-proxy',
  /**
   * API Gateway calls SageMaker Runtime itself (an AWS service integration with its own role): no
   * function to run or pay for, no pre- or post-processing; the body is passed through.
   */
  DIRECT = 'direct',
}

/** Options of the Lambda proxy (`SageMakerIntegration.LAMBDA_PROXY`). */
export interface SageMakerProxyFunctionOptions extends LambdaFunctionOptions {
  /**
   * Your own bundled entry (a folder with `index.mjs` that wraps `createSageMakerProxyHandler`
   * from `cdk-serverless-inference/handler`), instead of the library's proxy. For hooks, `hooks`
   * is simpler: the construct bundles them with the library's proxy.
   * @default - the library's prebuilt proxy handler
   */
  readonly code?: lambda.Code;
}

/** Props of a `SageMakerProxyEndpoint`: every endpoint's options, the SageMaker endpoint, and how to reach it. */
export interface SageMakerProxyEndpointProps extends InferenceEndpointOptions {
  /** The SageMaker endpoint: `SageMakerEndpoint.fromEndpointName()`, `.fromCfnEndpoint()`, `.serverless()` or `.provisioned()`. */
  readonly endpoint: SageMakerEndpoint;

  /**
   * How the API reaches SageMaker.
   * @default SageMakerIntegration.LAMBDA_PROXY
   */
  readonly integration?: SageMakerIntegration;

  /**
   * The content type the endpoint takes. The request body is passed as it is (the Open Inference
   * Protocol JSON, which Triton, MLServer and KServe containers speak, or `{"instances": ...}`).
   * @default 'application/json'
   */
  readonly contentType?: string;

  /**
   * The content type asked of the endpoint.
   * @default 'application/json'
   */
  readonly accept?: string;

  /**
   * How long one call to SageMaker may take, retries included. A buffered API ends a request after
   * 29 s, so it must be under 29 s; with the Lambda proxy and `api.responseTransferMode: STREAM`,
   * up to 14 minutes (SageMaker's own limit for a real-time invocation applies: 60 s).
   * @default Duration.seconds(25)
   */
  readonly invokeTimeout?: Duration;

  /**
   * The Lambda proxy's function, with `SageMakerIntegration.LAMBDA_PROXY`.
   * @default - arm64 (no onnxruntime here), 512 MiB, the newest Node.js runtime the installed aws-cdk-lib defines
   */
  readonly proxy?: SageMakerProxyFunctionOptions;
}

/** API Gateway's REST integration limit: a longer call to SageMaker cannot be answered. */
const API_TIMEOUT = Duration.millis(API_GATEWAY_TIMEOUT_MS);
/** The longest call to SageMaker a streamed API can answer: its 15 minutes, less the proxy's own work and hooks. */
const MAX_STREAMED_INVOKE = Duration.minutes(14);

/** The proxy's timeout with a streamed API: the call to SageMaker and a minute for the hooks, within Lambda's 15 minutes. */
function proxyTimeoutStreamed(invokeTimeout: Duration): Duration {
  if (Token.isUnresolved(invokeTimeout.toSeconds())) return Duration.minutes(15);
  return Duration.seconds(Math.min(900, Math.ceil(invokeTimeout.toSeconds()) + 60));
}

/**
 * The library's Open Inference Protocol API in front of a SageMaker endpoint, for models Lambda
 * cannot serve (too large, GPU-bound): the same routes, the same `InferenceApi`, the same metrics,
 * alarms and dashboard. A Lambda proxy (default) maps the protocol and SageMaker's errors and runs
 * your hooks; a direct integration has API Gateway call SageMaker Runtime itself. Either may call
 * `InvokeEndpoint` on the one endpoint and nothing else.
 */
export class SageMakerProxyEndpoint extends InferenceEndpointBase {
  /** The API. */
  public readonly api: InferenceApi;
  /** URL of the API's stage, ending in `/`. */
  public readonly url: string;
  /** URL of `POST /v2/models/{model}/infer`. */
  public readonly inferUrl: string;
  /** The model's name in the routes. */
  public readonly modelName: string;
  /** The version the API reports for the model. */
  public readonly modelVersion: string;
  /** The endpoint's name. */
  public readonly endpointName: string;
  /** The endpoint's ARN, the one resource that may be invoked. */
  public readonly endpointArn: string;
  /** The endpoint, when this construct created it (or was given it). */
  public readonly cfnEndpoint?: sagemaker.CfnEndpoint;
  /** The Lambda proxy, with `SageMakerIntegration.LAMBDA_PROXY`. */
  public readonly inferenceFunction?: InferenceFunction;
  /** The proxy's function, with `SageMakerIntegration.LAMBDA_PROXY`. */
  public readonly function?: lambda.Function;
  /** The proxy's `live` alias, which the API calls, with `SageMakerIntegration.LAMBDA_PROXY`. */
  public readonly alias?: lambda.Alias;
  /** The role API Gateway calls SageMaker with, with `SageMakerIntegration.DIRECT`. */
  public readonly integrationRole?: iam.Role;
  /** The warmer of the proxy, when there is one. */
  public readonly warmer?: Warmer;
  /** Alarms and dashboard, with `monitoring`. */
  public readonly monitoring?: EndpointMonitoring;
  /** The gradual rollout of the proxy, with `rollout`. */
  public readonly rollout?: GradualRollout;

  private readonly variantName: string;

  constructor(scope: Construct, id: string, props: SageMakerProxyEndpointProps) {
    super(scope, id);
    const endpoint = props.endpoint.bind(this);
    this.endpointName = endpoint.endpointName;
    this.endpointArn = endpoint.endpointArn;
    this.cfnEndpoint = endpoint.cfnEndpoint;
    this.variantName = endpoint.variantName;
    this.modelName = props.modelName ?? DEFAULT_MODEL_NAME;
    const invokeTimeout = props.invokeTimeout ?? Duration.millis(DEFAULT_SAGEMAKER_TIMEOUT_MS);
    const streamed = streamsResponses(props.api);
    if (!Token.isUnresolved(invokeTimeout.toMilliseconds())) {
      if (!streamed && invokeTimeout.toMilliseconds() > API_TIMEOUT.toMilliseconds() - 1000) {
        throw validationError(
          this,
          `invokeTimeout must be under API Gateway's 29 s integration limit (at most 28 s, for the proxy's own work), got: ${invokeTimeout.toHumanString()}; ` +
            'with the Lambda proxy, api.responseTransferMode STREAM lets a request run up to 15 minutes',
        );
      }
      if (streamed && invokeTimeout.toMilliseconds() > MAX_STREAMED_INVOKE.toMilliseconds()) {
        throw validationError(
          this,
          `invokeTimeout must be at most 14 minutes with a streamed API (15 minutes, less the proxy's own work and hooks), got: ${invokeTimeout.toHumanString()}`,
        );
      }
    }
    const integration = props.integration ?? SageMakerIntegration.LAMBDA_PROXY;
    if (integration === SageMakerIntegration.DIRECT) {
      if (props.proxy) {
        throw validationError(this, 'proxy applies to SageMakerIntegration.LAMBDA_PROXY; a direct integration has no function');
      }
      this.modelVersion = props.modelVersion ?? DEFAULT_MODEL_VERSION;
      this.integrationRole = new iam.Role(this, 'IntegrationRole', {
        assumedBy: new iam.ServicePrincipal('apigateway.amazonaws.com'),
        description: `API Gateway invokes the SageMaker endpoint of ${this.node.path}`,
      });
      grantInvokeEndpoint(this.integrationRole, endpoint);
      this.api = new InferenceApi(this, 'Api', {
        ...props.api,
        modelName: this.modelName,
        modelVersion: this.modelVersion,
        integrations: directIntegrations(endpoint, this.integrationRole, props, invokeTimeout, this.modelVersion),
      });
    } else {
      const proxy = props.proxy ?? {};
      const { code, ...functionOptions } = proxy;
      this.inferenceFunction = new InferenceFunction(this, 'Proxy', {
        ...functionOptions,
        architecture: proxy.architecture ?? lambda.Architecture.ARM_64,
        memorySize: proxy.memorySize ?? 512,
        // Buffered, API Gateway answers after 29 s whatever the function does; a little more lets it
        // log. Streamed, the call to SageMaker and a minute for the hooks (afterResponse among them).
        timeout: streamed ? proxyTimeoutStreamed(invokeTimeout) : API_TIMEOUT.plus(Duration.seconds(1)),
        responseStreaming: streamed,
        modelName: this.modelName,
        modelVersion: props.modelVersion,
        description: `Open Inference Protocol proxy of the SageMaker endpoint behind ${this.node.path}`,
        packaging: new SageMakerProxyPackaging(endpoint, props, invokeTimeout, code),
      });
      this.function = this.inferenceFunction.function;
      this.alias = this.inferenceFunction.alias;
      this.modelVersion = this.inferenceFunction.modelVersion;
      this.api = new InferenceApi(this, 'Api', {
        tracingEnabled: proxy.tracing === lambda.Tracing.ACTIVE,
        ...props.api,
        integrationTimeout: apiIntegrationTimeout(props.api, this.inferenceFunction),
        handler: this.alias,
        modelName: this.modelName,
        modelVersion: this.modelVersion,
      });
    }
    this.url = this.api.url;
    this.inferUrl = this.api.inferUrl;

    const operations = createEndpointOperations(this, this.inferenceFunction, {
      ...props,
      provisionedConcurrency: props.proxy?.provisionedConcurrency,
      reservedConcurrentExecutions: props.proxy?.reservedConcurrentExecutions,
    });
    this.warmer = operations.warmer;
    this.monitoring = operations.monitoring;
    this.rollout = operations.rollout;
  }

  /** A metric of the SageMaker endpoint's variant (`AWS/SageMaker`), over 5 minutes. */
  public metricSageMaker(metricName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: 'AWS/SageMaker',
      metricName,
      dimensionsMap: { EndpointName: this.endpointName, VariantName: this.variantName },
      period: Duration.minutes(5),
      ...props,
    });
  }

  /** Calls the SageMaker endpoint received (`Invocations`), summed. */
  public metricSageMakerInvocations(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metricSageMaker('Invocations', { statistic: 'Sum', ...props });
  }

  /** Time the model takes inside SageMaker (`ModelLatency`), in microseconds, p99 by default. */
  public metricSageMakerModelLatency(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metricSageMaker('ModelLatency', { statistic: 'p99', ...props });
  }

  /** Calls the model's container answered with a 5xx (`Invocation5XXErrors`), summed. */
  public metricSageMakerServerErrors(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metricSageMaker('Invocation5XXErrors', { statistic: 'Sum', ...props });
  }

  /** Calls the model's container answered with a 4xx (`Invocation4XXErrors`), summed. */
  public metricSageMakerClientErrors(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metricSageMaker('Invocation4XXErrors', { statistic: 'Sum', ...props });
  }

  protected inferenceFunctionOrUndefined(): InferenceFunction | undefined {
    return this.inferenceFunction;
  }
}

/** The proxy's "model": the proxy handler, told which endpoint to call and allowed to call only that one. */
class SageMakerProxyPackaging extends ModelPackaging {
  constructor(
    private readonly endpoint: SageMakerEndpointConfig,
    private readonly props: SageMakerProxyEndpointProps,
    private readonly invokeTimeout: Duration,
    private readonly code: lambda.Code | undefined,
  ) {
    super();
  }

  public bind(scope: Construct, options: ModelPackagingBindOptions): ModelPackagingConfig {
    if (this.code && options.hooks) {
      throw validationError(scope, "proxy: give code (an entry of your own, bundled) or hooks (bundled with the library's proxy handler), not both");
    }
    grantInvokeEndpoint(options.role, this.endpoint);
    const handlerDir = this.code ? undefined : handlerWithHooks(scope, PROXY_HANDLER_DIR(), options.hooks);
    return {
      environment: {
        [ENV.SAGEMAKER_ENDPOINT_NAME]: this.endpoint.endpointName,
        [ENV.SAGEMAKER_CONTENT_TYPE]: this.props.contentType ?? DEFAULT_SAGEMAKER_CONTENT_TYPE,
        [ENV.SAGEMAKER_ACCEPT]: this.props.accept ?? DEFAULT_SAGEMAKER_CONTENT_TYPE,
        [ENV.SAGEMAKER_TIMEOUT_MS]: String(this.invokeTimeout.toMilliseconds()),
      },
      code: this.code ?? lambda.Code.fromAsset(handlerDir!, options.hooks ? { exclude: STAGING_EXCLUDE } : {}),
      onnxRuntime: false,
      codeParts: handlerDir ? [{ name: 'SageMaker proxy handler', sizeBytes: treeSize(handlerDir) }] : [],
      dependencies: this.endpoint.cfnEndpoint ? [this.endpoint.cfnEndpoint] : [],
    };
  }
}

const PROXY_HANDLER_DIR = (): string => builtAssetPath('handlers', 'sagemaker-proxy');

function grantInvokeEndpoint(role: iam.IRole, endpoint: SageMakerEndpointConfig): void {
  role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['sagemaker:InvokeEndpoint'], resources: [endpoint.endpointArn] }));
}

/**
 * API Gateway calls `InvokeEndpoint` itself for the infer routes, and answers metadata, health and
 * readiness from mock integrations (there is no code to ask). SageMaker's errors come back in the
 * protocol's `{"error": ...}` shape: the container's failure (424) and SageMaker's own 5xx as 502,
 * throttling as 429, a refused request as 400.
 */
function directIntegrations(
  endpoint: SageMakerEndpointConfig,
  role: iam.IRole,
  props: SageMakerProxyEndpointProps,
  invokeTimeout: Duration,
  modelVersion: string,
): IInferenceApiIntegrations {
  const errorTemplate = (what: string) => ({
    'application/json': `{"error": "${what}: $util.escapeJavaScript($input.body) (request id $context.requestId)"}`,
  });
  const infer = new apigw.AwsIntegration({
    service: 'runtime.sagemaker',
    path: `endpoints/${endpoint.endpointName}/invocations`,
    integrationHttpMethod: 'POST',
    options: {
      credentialsRole: role,
      timeout: invokeTimeout,
      passthroughBehavior: apigw.PassthroughBehavior.NEVER,
      requestParameters: {
        'integration.request.header.Content-Type': `'${props.contentType ?? DEFAULT_SAGEMAKER_CONTENT_TYPE}'`,
        'integration.request.header.Accept': `'${props.accept ?? DEFAULT_SAGEMAKER_CONTENT_TYPE}'`,
      },
      requestTemplates: { 'application/json': '$input.body' },
      integrationResponses: [
        { statusCode: '200' },
        { statusCode: '502', selectionPattern: '424|5\\d\\d', responseTemplates: errorTemplate('the SageMaker endpoint failed') },
        { statusCode: '429', selectionPattern: '429', responseTemplates: errorTemplate('the SageMaker endpoint is throttling') },
        { statusCode: '400', selectionPattern: '4\\d\\d', responseTemplates: errorTemplate('SageMaker refused the request') },
      ],
    },
  });
  const modelName = props.modelName ?? DEFAULT_MODEL_NAME;
  const answers: Record<Exclude<InferenceRoute, InferenceRoute.INFER>, unknown> = {
    [InferenceRoute.SERVER_METADATA]: { name: SERVER_NAME, extensions: [] },
    [InferenceRoute.SERVER_LIVE]: { live: true },
    // Nothing to load here; whether SageMaker is ready shows in the infer answers.
    [InferenceRoute.SERVER_READY]: { ready: true },
    [InferenceRoute.MODEL_METADATA]: { name: modelName, versions: [modelVersion], platform: 'sagemaker', inputs: [], outputs: [] },
    [InferenceRoute.MODEL_READY]: { name: modelName, ready: true },
  };
  const mocks = new Map(
    Object.entries(answers).map(([route, body]) => [
      route,
      new apigw.MockIntegration({
        requestTemplates: { 'application/json': '{"statusCode": 200}' },
        integrationResponses: [{ statusCode: '200', responseTemplates: { 'application/json': JSON.stringify(body) } }],
      }),
    ]),
  );
  return {
    integrationFor: (route) => (route === InferenceRoute.INFER ? infer : mocks.get(route)!),
    methodResponsesFor: (route) => (route === InferenceRoute.INFER ? ['200', '400', '429', '502'] : ['200']).map((statusCode) => ({ statusCode })),
  };
}
