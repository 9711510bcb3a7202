import { Duration, Token } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sagemaker from 'aws-cdk-lib/aws-sagemaker';
import { Construct } from 'constructs';
import { ENV } from '../contract/environment';
import { InferenceApi, InferenceApiIntegrations, InferenceApiOptions, InferenceRoute } from './inference-api';
import { ModelEndpointBase, ModelEndpointProps } from './model-endpoint-base';
import { builtAssetPath } from './private/package-paths';
import { treeSize } from './private/staging';
import { SageMakerEndpoint, SageMakerEndpointConfig } from './sagemaker/sagemaker-endpoint';

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
export interface SageMakerProxyFunctionOptions
  extends Pick<
    ModelEndpointProps,
    'architecture' | 'runtime' | 'memorySize' | 'reservedConcurrentExecutions' | 'provisionedConcurrency' | 'tracing' | 'logRetention' | 'environment' | 'warmer'
  > {
  /**
   * Your own bundled entry (a folder with `index.mjs` that wraps `createSageMakerProxyHandler`
   * from `cdk-serverless-inference/handler` with hooks), instead of the library's proxy.
   * @default - the library's prebuilt proxy handler
   */
  readonly code?: lambda.Code;
}

export interface SageMakerProxyEndpointProps {
  /** The SageMaker endpoint: `SageMakerEndpoint.fromEndpointName()`, `.fromCfnEndpoint()`, `.serverless()` or `.provisioned()`. */
  readonly endpoint: SageMakerEndpoint;

  /**
   * How the API reaches SageMaker.
   * @default SageMakerIntegration.LAMBDA_PROXY
   */
  readonly integration?: SageMakerIntegration;

  /**
   * The model's name in the routes: `POST /v2/models/{modelName}/infer`.
   * @default 'model'
   */
  readonly modelName?: string;

  /**
   * The version reported by `GET /v2/models/{modelName}`.
   * @default '1'
   */
  readonly modelVersion?: string;

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
   * How long one call to SageMaker may take. API Gateway ends a request after 29 s, so longer calls
   * cannot be answered through the API; SageMaker itself allows real-time invocations 60 s.
   * @default Duration.seconds(25)
   */
  readonly invokeTimeout?: Duration;

  /**
   * The Lambda proxy's function.
   * @default - arm64 (no onnxruntime here), 512 MiB, Node.js 24
   */
  readonly proxy?: SageMakerProxyFunctionOptions;

  /**
   * The API in front: authorization (IAM by default), throttling, CORS, logging.
   * @default - InferenceApi's defaults
   */
  readonly api?: InferenceApiOptions;
}

/** API Gateway's REST integration limit: a longer call to SageMaker cannot be answered. */
const API_TIMEOUT = Duration.seconds(29);

/**
 * The library's Open Inference Protocol API in front of a SageMaker endpoint, for models Lambda
 * cannot serve (too large, GPU-bound): the same routes, the same `InferenceApi`, the same metrics.
 * A Lambda proxy (default) maps the protocol and SageMaker's errors and runs your hooks; a direct
 * integration has API Gateway call SageMaker Runtime itself. Either may call `InvokeEndpoint` on
 * the one endpoint and nothing else.
 */
export class SageMakerProxyEndpoint extends Construct {
  /** The API. */
  public readonly api: InferenceApi;
  /** The endpoint's name. */
  public readonly endpointName: string;
  /** The endpoint's ARN, the one resource that may be invoked. */
  public readonly endpointArn: string;
  /** The endpoint, when this construct created it (or was given it). */
  public readonly cfnEndpoint?: sagemaker.CfnEndpoint;
  /** The Lambda proxy, with `SageMakerIntegration.LAMBDA_PROXY`. */
  public readonly proxy?: ModelEndpointBase;
  /** The role API Gateway calls SageMaker with, with `SageMakerIntegration.DIRECT`. */
  public readonly integrationRole?: iam.Role;
  /** The model's name in the routes. */
  public readonly modelName: string;
  /** URL of `POST /v2/models/{model}/infer`. */
  public readonly inferUrl: string;

  private readonly variantName: string;

  constructor(scope: Construct, id: string, props: SageMakerProxyEndpointProps) {
    super(scope, id);
    const endpoint = props.endpoint.bind(this);
    this.endpointName = endpoint.endpointName;
    this.endpointArn = endpoint.endpointArn;
    this.cfnEndpoint = endpoint.cfnEndpoint;
    this.variantName = endpoint.variantName;
    this.modelName = props.modelName ?? 'model';
    const invokeTimeout = props.invokeTimeout ?? Duration.seconds(25);
    if (!Token.isUnresolved(invokeTimeout.toMilliseconds()) && invokeTimeout.toMilliseconds() > API_TIMEOUT.toMilliseconds() - 1000) {
      throw new Error(
        `invokeTimeout must be under API Gateway's 29 s integration limit (at most 28 s, for the proxy's own work), got: ${invokeTimeout.toHumanString()}`,
      );
    }
    const integration = props.integration ?? SageMakerIntegration.LAMBDA_PROXY;
    if (integration === SageMakerIntegration.DIRECT) {
      if (props.proxy) {
        throw new Error('proxy applies to SageMakerIntegration.LAMBDA_PROXY; a direct integration has no function');
      }
      this.integrationRole = new iam.Role(this, 'IntegrationRole', {
        assumedBy: new iam.ServicePrincipal('apigateway.amazonaws.com'),
        description: `API Gateway invokes the SageMaker endpoint of ${this.node.path}`,
      });
      grantInvokeEndpoint(this.integrationRole, endpoint);
      this.api = new InferenceApi(this, 'Api', {
        ...props.api,
        modelName: this.modelName,
        integrations: directIntegrations(endpoint, this.integrationRole, props, invokeTimeout),
      });
    } else {
      this.proxy = new SageMakerProxyFunction(this, 'Proxy', props, endpoint, invokeTimeout);
      this.api = this.proxy.api;
    }
    this.inferUrl = this.api.inferUrl;
  }

  /** Lets `grantee` call the API (with IAM authorization, the default). */
  public grantInvoke(grantee: iam.IGrantable): iam.Grant {
    return this.api.grantInvoke(grantee);
  }

  /** End-to-end latency at the API, p99 by default. */
  public metricLatency(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.api.metricLatency({ statistic: 'p99', ...props });
  }

  /** 5XX responses at the API. */
  public metricServerErrors(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.api.metricServerError(props);
  }

  /** Time the model takes inside SageMaker, in microseconds, p99 by default. */
  public metricModelLatency(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.sageMakerMetric('ModelLatency', { statistic: 'p99', ...props });
  }

  /** SageMaker invocations. */
  public metricInvocations(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.sageMakerMetric('Invocations', { statistic: 'Sum', ...props });
  }

  /** Invocations the model answered with an error (4xx and 5xx of the container). */
  public metricModelErrors(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.sageMakerMetric('Invocation5XXErrors', { statistic: 'Sum', ...props });
  }

  private sageMakerMetric(metricName: string, props: cloudwatch.MetricOptions): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: 'AWS/SageMaker',
      metricName,
      dimensionsMap: { EndpointName: this.endpointName, VariantName: this.variantName },
      period: Duration.minutes(5),
      ...props,
    });
  }
}

/** The Lambda proxy: the shared base, with the proxy handler instead of a model. */
class SageMakerProxyFunction extends ModelEndpointBase {
  constructor(scope: Construct, id: string, props: SageMakerProxyEndpointProps, endpoint: SageMakerEndpointConfig, invokeTimeout: Duration) {
    const proxy = props.proxy ?? {};
    super(
      scope,
      id,
      {
        ...proxy,
        architecture: proxy.architecture ?? lambda.Architecture.ARM_64,
        memorySize: proxy.memorySize ?? 512,
        // API Gateway answers after 29 s whatever the function does; a little more lets it log.
        timeout: API_TIMEOUT.plus(Duration.seconds(1)),
        modelName: props.modelName,
        modelVersion: props.modelVersion,
        api: props.api,
      },
      () => {
        const code = proxy.code ?? lambda.Code.fromAsset(PROXY_HANDLER_DIR());
        return {
          environment: {
            [ENV.SAGEMAKER_ENDPOINT_NAME]: endpoint.endpointName,
            [ENV.SAGEMAKER_CONTENT_TYPE]: props.contentType ?? 'application/json',
            [ENV.SAGEMAKER_ACCEPT]: props.accept ?? 'application/json',
            [ENV.SAGEMAKER_TIMEOUT_MS]: String(invokeTimeout.toMilliseconds()),
          },
          code: { code, onnxRuntime: false, parts: proxy.code ? [] : [{ name: 'SageMaker proxy handler', bytes: treeSize(PROXY_HANDLER_DIR()) }] },
          grantRead: (role) => grantInvokeEndpoint(role, endpoint),
          dependencies: endpoint.cfnEndpoint ? [endpoint.cfnEndpoint] : [],
        };
      },
    );
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
): InferenceApiIntegrations {
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
        'integration.request.header.Content-Type': `'${props.contentType ?? 'application/json'}'`,
        'integration.request.header.Accept': `'${props.accept ?? 'application/json'}'`,
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
  const modelName = props.modelName ?? 'model';
  const answers: Record<Exclude<InferenceRoute, InferenceRoute.INFER>, unknown> = {
    [InferenceRoute.SERVER_METADATA]: { name: 'cdk-serverless-inference', extensions: [] },
    [InferenceRoute.SERVER_LIVE]: { live: true },
    // Nothing to load here; whether SageMaker is ready shows in the infer answers.
    [InferenceRoute.SERVER_READY]: { ready: true },
    [InferenceRoute.MODEL_METADATA]: { name: modelName, versions: [props.modelVersion ?? '1'], platform: 'sagemaker', inputs: [], outputs: [] },
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
      (route === InferenceRoute.INFER ? ['200', '400', '429', '502'] : ['200']).map((statusCode) => ({ statusCode })),
  };
}
