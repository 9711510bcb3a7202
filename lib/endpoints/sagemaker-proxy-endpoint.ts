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
import { SAGEMAKER_HEADER, SAGEMAKER_MAX_REQUEST_BYTES, SAGEMAKER_PASSED_CONTAINER_STATUSES } from '../../contract/sagemaker';
import { type _InferenceApiRequestParameters, type IInferenceApiIntegrations, InferenceApi, InferenceRoute } from '../api/inference-api';
import { InferenceEndpointBase, type InferenceEndpointOptions } from './inference-endpoint';
import { InferenceFunction, type LambdaFunctionOptions } from '../function/inference-function';
import type { EndpointMonitoring } from '../operations/endpoint-monitoring';
import type { GradualRollout } from '../operations/gradual-rollout';
import { ModelPackaging, type ModelPackagingBindOptions, type ModelPackagingConfig } from '../packaging/model-packaging';
import { createEndpointOperations } from './endpoint-operations';
import { createEndpointFunctionUrl } from './endpoint-function-url';
import type { InferenceFunctionUrl } from '../api/inference-function-url';
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
   * into the endpoint's content type, checks the `X-Amzn-SageMaker-*` headers a caller may set and
   * maps SageMaker's errors to clear HTTP errors.
   */
  LAMBDA_PROXY = 'lambda-proxy',
  /**
   * API Gateway calls SageMaker Runtime itself (an AWS service integration with its own role): no
   * function to run or pay for, no pre- or post-processing; the body and the `X-Amzn-SageMaker-*`
   * headers a caller may set are passed through, and SageMaker's errors are answered in the same
   * shape as the proxy's, with none of SageMaker's own words.
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
  /** The function URL, with `functionUrl`. */
  public readonly functionUrl?: InferenceFunctionUrl;
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
    this.functionUrl = createEndpointFunctionUrl(this, this.inferenceFunction, props);
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
        [ENV.MAX_BODY_BYTES]: String(maxRequestBytes(this.endpoint)),
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

/** The largest request SageMaker takes for the endpoint. */
function maxRequestBytes(endpoint: SageMakerEndpointConfig): number {
  return endpoint.serverless ? SAGEMAKER_MAX_REQUEST_BYTES.SERVERLESS : SAGEMAKER_MAX_REQUEST_BYTES.REAL_TIME;
}

/** The headers a caller may set, passed to `InvokeEndpoint` (SageMaker checks them). */
const PASSED_HEADERS: readonly string[] = Object.values(SAGEMAKER_HEADER);

/** What a direct infer route may answer. */
const DIRECT_INFER_STATUSES = ['200', '400', '413', '415', '422', '429', '500', '502', '503'];
/** The statuses answered with a Retry-After. */
const RETRY_STATUSES = ['429', '503'];
const RETRY_AFTER = 'method.response.header.Retry-After';

/**
 * API Gateway calls `InvokeEndpoint` itself for the infer routes, with the caller's
 * `X-Amzn-SageMaker-*` headers, and answers metadata, health and readiness from mock integrations
 * (there is no code to ask). SageMaker's errors are answered as the Lambda proxy answers them (see
 * `directIntegrationResponses`).
 */
function directIntegrations(
  endpoint: SageMakerEndpointConfig,
  role: iam.IRole,
  props: SageMakerProxyEndpointProps,
  invokeTimeout: Duration,
  modelVersion: string,
): IInferenceApiIntegrations & _InferenceApiRequestParameters {
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
        // Sent only when the caller sets them.
        ...Object.fromEntries(PASSED_HEADERS.map((header) => [`integration.request.header.${header}`, `method.request.header.${header}`])),
      },
      requestTemplates: { 'application/json': '$input.body' },
      integrationResponses: directIntegrationResponses(maxRequestBytes(endpoint)),
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
    methodResponsesFor: (route) =>
      (route === InferenceRoute.INFER ? DIRECT_INFER_STATUSES : ['200']).map((statusCode) => ({
        statusCode,
        ...(RETRY_STATUSES.includes(statusCode) ? { responseParameters: { [RETRY_AFTER]: true } } : {}),
      })),
    _requestParametersFor: (route) => (route === InferenceRoute.INFER ? Object.fromEntries(PASSED_HEADERS.map((header) => [`method.request.header.${header}`, false])) : {}),
  };
}

/**
 * SageMaker's answers, in the Lambda proxy's shape: `{"error": "<what happened> (request id <id>)"}`,
 * with its statuses where SageMaker's status tells the cases apart (here a throttle that SageMaker
 * answers 400 is one more refused request, and a 429 both a throttle and a model not ready). The
 * templates write the library's words only, never anything of SageMaker's answer, which names the
 * account, the container's log stream and the container's own message (whose quotes
 * `$util.escapeJavaScript` would turn into `\'`, which is not JSON). The one value read from it is
 * the container's status, a number, written only where it compared as one.
 *
 * The selection patterns match SageMaker's status; no two match the same one, as API Gateway
 * defines no order among them.
 */
function directIntegrationResponses(maxBytes: number): apigw.IntegrationResponse[] {
  const json = (template: string) => ({ 'application/json': template });
  const retry = { [RETRY_AFTER]: "'1'" };
  return [
    { statusCode: '200' },
    // ModelError: the container answered an error, its status in OriginalStatusCode.
    { statusCode: '502', selectionPattern: '424', responseTemplates: json(modelErrorTemplate()) },
    { statusCode: '413', selectionPattern: '413', responseTemplates: json(errorBody(`the request is too large for the SageMaker endpoint; it takes at most ${maxBytes} bytes`)) },
    {
      statusCode: '429',
      selectionPattern: '429',
      responseParameters: retry,
      responseTemplates: json(errorBody('the SageMaker endpoint is throttling requests or not ready to serve; retry later')),
    },
    // SageMaker refused the API's own credentials or signature: its wiring, not the request.
    { statusCode: '500', selectionPattern: '40[13]', responseTemplates: json(errorBody('this API may not invoke its SageMaker endpoint')) },
    // Any other refusal is about the request: its size, or a header SageMaker refused.
    {
      statusCode: '400',
      selectionPattern: '40[02456789]|41[0-24-9]|42[0-35-8]|4[3-9]\\d',
      responseTemplates: json(errorBody(`SageMaker refused the request; check its body (at most ${maxBytes} bytes) and its X-Amzn-SageMaker-* headers`)),
    },
    { statusCode: '503', selectionPattern: '503', responseParameters: retry, responseTemplates: json(errorBody('SageMaker is unavailable; retry later')) },
    { statusCode: '502', selectionPattern: '50[0-24-9]|5[1-9]\\d', responseTemplates: json(errorBody('SageMaker failed on this request')) },
  ];
}

/** An error answer: this library's words, and API Gateway's request id. */
function errorBody(message: string): string {
  return `{"error": "${message} (request id $context.requestId)"}`;
}

/**
 * A ModelError's answer: a container's refusal (4xx) is the caller's, answered with its status when
 * it means the same here (else 400); its own failure is a 502.
 */
function modelErrorTemplate(): string {
  const passed = SAGEMAKER_PASSED_CONTAINER_STATUSES.flatMap((status, i) => [
    `#${i === 0 ? 'if' : 'elseif'}($original == ${status})`,
    `#set($context.responseOverride.status = ${status})`,
    errorBody(`the model refused the request (status ${status})`),
  ]);
  return [
    "#set($original = $input.path('$.OriginalStatusCode'))",
    ...passed,
    '#elseif($original >= 400 && $original < 500)',
    '#set($context.responseOverride.status = 400)',
    errorBody('the model refused the request (status $original)'),
    '#elseif($original >= 500 && $original < 600)',
    errorBody('the model container failed on this request (status $original)'),
    '#else',
    errorBody('the model container failed on this request (status unknown)'),
    '#end',
  ].join('\n');
}
