import { Annotations, Duration, Names, RemovalPolicy, Token, Validations } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as cognito from 'aws-cdk-lib/aws-cognito';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as wafv2 from 'aws-cdk-lib/aws-wafv2';
import { Construct } from 'constructs';
import { MODELS_SEGMENT, ROUTES, ROUTES_ROOT, VERSIONS_SEGMENT } from '../../contract/routes';
import { BINARY_TENSOR_CONTENT_TYPE } from '../../contract/binary-data';
import { REPOSITORY_INDEX_ROUTE } from '../../contract/repository';
import { API_GATEWAY_TIMEOUT_MS, DEFAULT_MODEL_NAME, DEFAULT_MODEL_VERSION } from '../../contract/defaults';
import { inferRequestSchema } from '../model/request-schema';
import { unscopedValidationError, validationError } from '../private/errors';
import { acknowledge } from '../private/acknowledge';

/** What an authorization choice contributes to every route of the API. */
export interface InferenceApiAuthorizationConfig {
  /** Authorization type of every method. */
  readonly authorizationType: apigw.AuthorizationType;
  /**
   * Authorizer of every method.
   *
   * @default - none
   */
  readonly authorizer?: apigw.IAuthorizer;
  /**
   * OAuth scopes a Cognito access token must carry.
   *
   * @default - none
   */
  readonly authorizationScopes?: string[];
  /**
   * Whether every method requires an API key (`x-api-key` header).
   *
   * @default false
   */
  readonly apiKeyRequired?: boolean;
  /**
   * The API key callers use, when one was created or given.
   *
   * @default - none
   */
  readonly apiKey?: apigw.IApiKey;
  /**
   * The usage plan binding the API key to the stage.
   *
   * @default - none
   */
  readonly usagePlan?: apigw.UsagePlan;
}

/** Options of `InferenceApiAuthorization.apiKey()`. */
export interface ApiKeyAuthorizationOptions {
  /**
   * The key to accept.
   *
   * @default - a new key with a generated value (read it in the console or with
   * `aws apigateway get-api-key --include-value`)
   */
  readonly apiKey?: apigw.IApiKey;
  /**
   * Per-key throttling of the usage plan, on top of the stage's.
   *
   * @default - only the stage's throttling applies
   */
  readonly throttle?: apigw.ThrottleSettings;
  /**
   * Per-key request quota of the usage plan.
   *
   * @default - no quota
   */
  readonly quota?: apigw.QuotaSettings;
}

/** Options of `InferenceApiAuthorization.cognito()`. */
export interface CognitoAuthorizationOptions {
  /**
   * OAuth scopes the access token must carry. Without scopes the authorizer expects an ID token.
   *
   * @default - no scopes: any valid ID token of the user pools
   */
  readonly scopes?: string[];
}

/**
 * Who may call the API. IAM (SigV4-signed requests) is the default; every other choice must be
 * asked for, `none()` included.
 */
export abstract class InferenceApiAuthorization {
  /**
   * Callers sign requests with SigV4 and need `execute-api:Invoke` (see `InferenceApi.grantInvoke`).
   */
  public static iam(): InferenceApiAuthorization {
    return new FixedAuthorization({ authorizationType: apigw.AuthorizationType.IAM });
  }

  /**
   * Callers send an API key in `x-api-key`. Creates the key (unless given) and a usage plan bound
   * to the stage.
   *
   * API keys identify and meter callers; AWS advises against relying on them alone for
   * authorization, so cdk-nag's `AwsSolutions-APIG4` still reports the methods. Acknowledge it in
   * your app if a key is what you want.
   */
  public static apiKey(options: ApiKeyAuthorizationOptions = {}): InferenceApiAuthorization {
    return new ApiKeyAuthorization(options);
  }

  /** Callers send a token of one of these Cognito user pools in `Authorization`. */
  public static cognito(userPools: cognito.IUserPool[], options: CognitoAuthorizationOptions = {}): InferenceApiAuthorization {
    if (userPools.length === 0) {
      throw unscopedValidationError('InferenceApiAuthorization.cognito: userPools must hold at least one user pool, got: 0');
    }
    return new CognitoAuthorization(userPools, options);
  }

  /** Any authorizer you built: a Lambda token or request authorizer, or a Cognito one. */
  public static custom(authorizer: apigw.IAuthorizer): InferenceApiAuthorization {
    return new FixedAuthorization({
      authorizationType: authorizer.authorizationType ?? apigw.AuthorizationType.CUSTOM,
      authorizer,
    });
  }

  /**
   * No authorization: anyone who knows the URL can call the model and spend your Lambda budget.
   * cdk-nag reports it (`AwsSolutions-APIG4`, `AwsSolutions-COG4`); acknowledge both in your app.
   */
  public static none(): InferenceApiAuthorization {
    return new FixedAuthorization({ authorizationType: apigw.AuthorizationType.NONE });
  }

  /** Creates what the choice needs in `scope` (ids `ApiKey`, `UsagePlan`, `Authorizer`). */
  public abstract bind(scope: Construct, restApi: apigw.RestApi): InferenceApiAuthorizationConfig;
}

class FixedAuthorization extends InferenceApiAuthorization {
  constructor(private readonly config: InferenceApiAuthorizationConfig) {
    super();
  }

  public bind(): InferenceApiAuthorizationConfig {
    return this.config;
  }
}

class ApiKeyAuthorization extends InferenceApiAuthorization {
  constructor(private readonly options: ApiKeyAuthorizationOptions) {
    super();
  }

  public bind(scope: Construct, restApi: apigw.RestApi): InferenceApiAuthorizationConfig {
    const apiKey =
      this.options.apiKey ??
      new apigw.ApiKey(scope, 'ApiKey', {
        description: `Calls the inference API ${restApi.node.path}`,
      });
    const usagePlan = new apigw.UsagePlan(scope, 'UsagePlan', {
      apiStages: [{ api: restApi, stage: restApi.deploymentStage }],
      throttle: this.options.throttle,
      quota: this.options.quota,
    });
    usagePlan.addApiKey(apiKey);
    return {
      authorizationType: apigw.AuthorizationType.NONE,
      apiKeyRequired: true,
      apiKey,
      usagePlan,
    };
  }
}

class CognitoAuthorization extends InferenceApiAuthorization {
  constructor(
    private readonly userPools: cognito.IUserPool[],
    private readonly options: CognitoAuthorizationOptions,
  ) {
    super();
  }

  public bind(scope: Construct): InferenceApiAuthorizationConfig {
    const authorizer = new apigw.CognitoUserPoolsAuthorizer(scope, 'Authorizer', {
      cognitoUserPools: this.userPools,
    });
    return {
      authorizationType: apigw.AuthorizationType.COGNITO,
      authorizer,
      authorizationScopes: this.options.scopes,
    };
  }
}

/** What an endpoint lets its users choose about its API: everything but the function and the model. */
export interface InferenceApiOptions {
  /**
   * Who may call the API.
   *
   * @default InferenceApiAuthorization.iam()
   */
  readonly authorization?: InferenceApiAuthorization;

  /**
   * Steady-state requests per second the stage accepts (all callers together).
   *
   * @default 100
   */
  readonly throttlingRateLimit?: number;

  /**
   * Requests the stage accepts in a burst above the rate.
   *
   * @default 200
   */
  readonly throttlingBurstLimit?: number;

  /**
   * Name of the stage: the first segment of the URL path.
   *
   * @default 'prod'
   */
  readonly stageName?: string;

  /**
   * Endpoint type. A `PRIVATE` API also needs a resource policy (`restApi.addToResourcePolicy`)
   * and a VPC endpoint to be reachable.
   *
   * @default apigw.EndpointType.REGIONAL
   */
  readonly endpointType?: apigw.EndpointType;

  /**
   * CORS preflight for browser callers. When it names exactly one origin, API Gateway's own error
   * responses (auth, throttling, validation) carry that origin too; the function's responses need
   * their own `Access-Control-Allow-Origin`.
   *
   * @default - no CORS
   */
  readonly cors?: apigw.CorsOptions;

  /**
   * Write access logs (one line per request). Like execution logging, they need the account's API
   * Gateway CloudWatch Logs role (see `cloudWatchRole`): in an account and region without it, the
   * stage fails to deploy ("CloudWatch Logs role ARN must be set in account settings to enable
   * logging"). Turn them on where the role is set.
   *
   * @default - true with `cloudWatchRole`, `accessLogGroup`, `accessLogRetention` or
   * `accessLogFormat`; otherwise false, so that a first deploy succeeds in any account
   */
  readonly accessLogging?: boolean;

  /**
   * Log group of the access logs. Turns them on.
   *
   * @default - a new log group, kept when the stack is deleted, with `accessLogRetention`
   */
  readonly accessLogGroup?: logs.ILogGroup;

  /**
   * Retention of the new access log group. Turns access logs on. Not allowed together with
   * `accessLogGroup`.
   *
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly accessLogRetention?: logs.RetentionDays;

  /**
   * Format of the access log lines. Turns access logs on.
   *
   * @default - one JSON object per request: request id, source ip, caller, user, time, method,
   * resource path, status, protocol, response length, latencies, integration status and error message
   */
  readonly accessLogFormat?: apigw.AccessLogFormat;

  /**
   * Execution logging of every method (`ERROR` is what most setups want). It needs the account's
   * API Gateway CloudWatch Logs role (see `cloudWatchRole`): in an account and region without it,
   * the stage fails to deploy ("CloudWatch Logs role ARN must be set in account settings to enable
   * logging"). Request and response bodies are never logged.
   *
   * @default - apigw.MethodLoggingLevel.ERROR with `cloudWatchRole`; otherwise OFF, so that a first
   * deploy succeeds in any account
   */
  readonly executionLoggingLevel?: apigw.MethodLoggingLevel;

  /**
   * Create the API Gateway CloudWatch Logs role and set it as the account's (`AWS::ApiGateway::Account`).
   *
   * Execution and access logging write through one role per account and region. Many accounts have
   * it already (then turn logging on with `executionLoggingLevel` and `accessLogging`); in one that
   * doesn't, logging fails the deploy with "CloudWatch Logs role ARN must be set in account settings
   * to enable logging": set this to `true` once, in one stack of the account and region (it replaces
   * any role set before), which also turns on both logs by default. The role and the setting are
   * kept when the stack is deleted, since other APIs of the account rely on them.
   *
   * @default false
   */
  readonly cloudWatchRole?: boolean;

  /**
   * Send X-Ray traces of the stage.
   *
   * @default false
   */
  readonly tracingEnabled?: boolean;

  /**
   * ARN of a regional AWS WAFv2 web ACL to associate with the stage.
   *
   * @default - no web ACL
   */
  readonly webAclArn?: string;

  /**
   * Description of the REST API.
   *
   * @default - names the model
   */
  readonly description?: string;

  /**
   * Let API Gateway's TestInvokeMethod (the console's Test button, or an integ test's
   * `awsApiCall('APIGateway', 'testInvokeMethod', ...)`) invoke the function: one more Lambda
   * permission per route, for the `test-invoke-stage`. A test invocation runs the integration
   * without the method's authorization, the stage's throttling or a usage plan; only principals
   * allowed to call TestInvokeMethod on the API can make one. No effect with `integrations`, which
   * need no Lambda permission.
   *
   * @default false
   */
  readonly allowTestInvoke?: boolean;

  /**
   * How API Gateway passes the function's answer on. `STREAM` invokes the function with response
   * streaming (`InvokeWithResponseStream`): a request may then run up to `integrationTimeout` (15
   * minutes at most) instead of 29 s, the function's `afterResponse` hook runs after the caller has
   * the answer, and answers may reach Lambda's streamed limit of 200 MB instead of 6 MB (past 10 MB
   * API Gateway sends them at 2 MB/s). API Gateway ends a stream idle for 5
   * minutes (regional and private APIs) or 30 s (edge-optimized), and the handler writes its answer
   * once inference ends: keep inference within that, or the caller gets the gateway's timeout.
   * Requests stay limited to 6 MB (Lambda's synchronous invocation). Only for the Lambda proxy.
   * @default apigw.ResponseTransferMode.BUFFERED
   */
  readonly responseTransferMode?: apigw.ResponseTransferMode;

  /**
   * How long API Gateway waits for the function: at most 29 s with buffered answers (raising it
   * needs a quota increase for the account, and the streaming mode needs none), up to 15 minutes
   * with `responseTransferMode: STREAM`.
   * @default - 29 seconds buffered; streamed, the function's timeout where the endpoint knows it, else 15 minutes
   */
  readonly integrationTimeout?: Duration;
}

/** A route of the Open Inference Protocol, as `IInferenceApiIntegrations` is asked for it. */
export enum InferenceRoute {
  /** `GET /v2` */
  SERVER_METADATA = 'server-metadata',
  /** `GET /v2/health/live` */
  SERVER_LIVE = 'server-live',
  /** `GET /v2/health/ready` */
  SERVER_READY = 'server-ready',
  /** `GET /v2/models/{name}` (and its versions route) */
  MODEL_METADATA = 'model-metadata',
  /** `GET /v2/models/{name}/ready` (and its versions route) */
  MODEL_READY = 'model-ready',
  /** `POST /v2/models/{name}/infer` (and its versions route) */
  INFER = 'infer',
}

/** Integrations other than a Lambda proxy, route by route (for example, a direct service integration). */
export interface IInferenceApiIntegrations {
  /** The integration of one route. */
  integrationFor(route: InferenceRoute): apigw.Integration;
  /**
   * The method responses of one route: a non-proxy integration must declare its status codes; a
   * proxy integration returns none.
   */
  methodResponsesFor(route: InferenceRoute): apigw.MethodResponse[];
}

/**
 * The method request parameters a route's integration maps beyond the body (a direct
 * integration's headers), which API Gateway requires the method to declare: name to required.
 * @internal
 */
export interface _InferenceApiRequestParameters {
  _requestParametersFor?(route: InferenceRoute): Record<string, boolean>;
}

/** Props of an `InferenceApi`: its options, and the function or integrations that answer it. */
export interface InferenceApiProps extends InferenceApiOptions {
  /**
   * The inference function (or an alias or version of it). It receives API Gateway REST proxy
   * events and routes them itself. Give either this or `integrations`. API Gateway is allowed to
   * invoke it for each route's method and path on the API's deployment stage only: not from a
   * stage you add yourself, nor from TestInvokeMethod unless `allowTestInvoke` is set.
   *
   * @default - none: `integrations` answer the routes
   */
  readonly handler?: lambda.IFunction;

  /**
   * The routes' integrations, instead of a function that answers them all.
   *
   * @default - none: `handler` answers the routes
   */
  readonly integrations?: IInferenceApiIntegrations;

  /**
   * Name of the model in the routes: `/v2/models/{modelName}/...`. Letters, digits, `.`, `_`, `-`.
   *
   * @default 'model'
   */
  readonly modelName?: string;

  /**
   * The model's version: `grantInvoke` names the versioned routes of this version.
   *
   * @default '1'
   */
  readonly modelVersion?: string;

  /**
   * JSON schema (draft 4) of the infer request body, checked by API Gateway before the function is
   * invoked. Derive it from the model's signature to reject wrong input names, datatypes or shapes
   * without paying for an invocation.
   *
   * @default - a generic schema (`inferRequestSchema()`): `inputs` (the protocol's tensors, each with
   * `name`, `shape`, `datatype` and `data`) or `instances`
   */
  readonly requestSchema?: apigw.JsonSchema;

  /**
   * Serve every model of a model repository: the model routes take the model's name as a path
   * parameter (`/v2/models/{model}/...`), `POST /v2/repository/index` lists the models, and
   * `modelName` is not a route. Requests are checked against the generic schema only: the handler
   * checks each against its own model, which may have been uploaded after the deploy.
   *
   * @default false
   */
  readonly modelRepository?: boolean;
}

/** What callers get when Lambda refuses an invocation (throttled, or briefly unavailable). */
const INTEGRATION_FAILURE_STATUS = 503;
const INTEGRATION_FAILURE_RETRY_AFTER_SECONDS = 1;
const INTEGRATION_FAILURE_MESSAGE = 'the model function is busy or briefly unavailable (throttled); retry after the Retry-After delay';

const DEFAULT_STAGE_NAME = 'prod';
const DEFAULT_RATE_LIMIT = 100;
const DEFAULT_BURST_LIMIT = 200;

/** API Gateway's own rule for a path part, minus greedy and `{param}` forms. */
const MODEL_NAME_PATTERN = /^[A-Za-z0-9._-]+$/;

/** The path parameters of a model repository's routes. */
const REPOSITORY_MODEL_PARAMETER = 'model';
const REPOSITORY_VERSION_PARAMETER = 'version';
const STAGE_NAME_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;
const WEB_ACL_ARN_PATTERN = /^arn:[a-z-]+:wafv2:[a-z0-9-]+:\d{12}:regional\/webacl\/.+$/;

/**
 * An API Gateway REST API in front of an inference function, speaking the Open Inference Protocol
 * (KServe v2) REST routes of one model:
 *
 * - `GET /v2`, `GET /v2/health/live`, `GET /v2/health/ready`
 * - `GET /v2/models/{model}`, `GET /v2/models/{model}/ready`, `POST /v2/models/{model}/infer`
 * - the same three under `/v2/models/{model}/versions/{version}`
 *
 * The routes are concrete resources, not a greedy proxy: API Gateway rejects other paths and
 * methods itself, and validates the infer body against `requestSchema` before invoking anything.
 * Every route is proxied to the one function, which routes by path. API Gateway's own error
 * responses use the protocol's shape, `{"error": "..."}`.
 *
 * Secure by default: IAM authorization, stage throttling (100 rps, burst 200), detailed metrics,
 * request validation. Access logs (JSON, one month) and ERROR execution logs are one prop away
 * (`cloudWatchRole: true`, or `accessLogging` and `executionLoggingLevel` where the account has API
 * Gateway's CloudWatch Logs role): off by default, since without that role the stage cannot deploy.
 *
 * Limits: the integration times out after API Gateway's default 29 seconds (a regional API can
 * have it raised by a quota increase, then set on the methods through `restApi`). API Gateway
 * accepts bodies up to 10 MB, but a synchronous Lambda invocation carries at most 6 MB of request
 * and 6 MB of response, so the function's limit is the one that binds.
 */
export class InferenceApi extends Construct {
  /** The REST API. */
  public readonly restApi: apigw.RestApi;

  /** URL of the stage, ending in `/`: `https://{id}.execute-api.{region}.amazonaws.com/{stage}/`. */
  public readonly url: string;

  /** URL of `POST /v2/models/{model}/infer`. */
  public readonly inferUrl: string;

  /** Name of the model in the routes. */
  public readonly modelName: string;

  /** Where the access logs go, when they are on. */
  public readonly accessLogGroup?: logs.ILogGroup;

  /** Validates the parameters of every method and the body of the infer methods. */
  public readonly requestValidator: apigw.RequestValidator;

  /** The infer request schema as an API Gateway model. */
  public readonly requestModel: apigw.Model;

  /** The API key, with `InferenceApiAuthorization.apiKey()`. */
  public readonly apiKey?: apigw.IApiKey;

  /** The usage plan, with `InferenceApiAuthorization.apiKey()`. */
  public readonly usagePlan?: apigw.UsagePlan;

  /** The account's API Gateway CloudWatch Logs role, with `cloudWatchRole: true`. */
  public readonly cloudWatchRole?: iam.Role;

  /** The model's version, whose versioned routes `grantInvoke` names. */
  public readonly modelVersion: string;

  /** Each method as `grantInvoke` names it: the HTTP method and the path, versions filled in. */
  private readonly invokableRoutes: Array<{ readonly method: string; readonly path: string }> = [];
  /** A model repository's model routes, with `{model}` and `{version}` left in, for `grantInvokeModels`. */
  private readonly modelRoutes: Array<{ readonly method: string; readonly path: string }> = [];
  private readonly modelRepository: boolean;

  /** The routes' integrations and authorization, for routes added later (`addModelRoute`). */
  private readonly routeSetup: { readonly integrations: IInferenceApiIntegrations; readonly auth: InferenceApiAuthorizationConfig };

  constructor(scope: Construct, id: string, props: InferenceApiProps) {
    super(scope, id);

    this.modelRepository = props.modelRepository ?? false;
    this.modelName = this.modelRepository ? `{${REPOSITORY_MODEL_PARAMETER}}` : (props.modelName ?? DEFAULT_MODEL_NAME);
    this.modelVersion = props.modelVersion ?? DEFAULT_MODEL_VERSION;
    const stageName = props.stageName ?? DEFAULT_STAGE_NAME;
    const binaryTypes = binaryMediaTypes(props);
    const rateLimit = props.throttlingRateLimit ?? DEFAULT_RATE_LIMIT;
    const burstLimit = props.throttlingBurstLimit ?? DEFAULT_BURST_LIMIT;
    validateProps(this, props, this.modelRepository ? DEFAULT_MODEL_NAME : this.modelName, stageName, rateLimit, burstLimit);

    const logging = loggingChoice(this, props);
    this.accessLogGroup = logging.accessLogs
      ? (props.accessLogGroup ??
        new logs.LogGroup(this, 'AccessLogs', {
          retention: props.accessLogRetention ?? logs.RetentionDays.ONE_MONTH,
          removalPolicy: RemovalPolicy.RETAIN,
        }))
      : undefined;

    this.restApi = new apigw.RestApi(this, 'Api', {
      restApiName: Names.uniqueResourceName(this, { maxLength: 128 }),
      description: props.description ?? (this.modelRepository ? 'Open Inference Protocol API of a model repository' : `Open Inference Protocol API of the model ${this.modelName}`),
      endpointConfiguration: { types: [props.endpointType ?? apigw.EndpointType.REGIONAL] },
      binaryMediaTypes: binaryTypes,
      // The account-wide role is opt-in (see `cloudWatchRole`), not a side effect of every API.
      cloudWatchRole: false,
      defaultCorsPreflightOptions: props.cors,
      deployOptions: {
        stageName,
        throttlingRateLimit: rateLimit,
        throttlingBurstLimit: burstLimit,
        loggingLevel: logging.executionLoggingLevel,
        dataTraceEnabled: false,
        metricsEnabled: true,
        tracingEnabled: props.tracingEnabled ?? false,
        ...(this.accessLogGroup
          ? { accessLogDestination: new apigw.LogGroupLogDestination(this.accessLogGroup), accessLogFormat: props.accessLogFormat ?? defaultAccessLogFormat() }
          : {}),
      },
    });
    this.url = this.restApi.url;
    this.inferUrl = this.restApi.urlForPath(`/v2/models/${this.modelName}/infer`);

    const auth = (props.authorization ?? InferenceApiAuthorization.iam()).bind(this, this.restApi);
    this.apiKey = auth.apiKey;
    this.usagePlan = auth.usagePlan;

    this.requestValidator = this.restApi.addRequestValidator('RequestValidator', {
      validateRequestBody: true,
      validateRequestParameters: true,
    });
    this.requestModel = this.restApi.addModel('InferRequestModel', {
      contentType: 'application/json',
      description: this.modelRepository ? 'Infer request of a model of the repository' : `Infer request of the model ${this.modelName}`,
      schema: props.requestSchema ?? inferRequestSchema(),
    });

    this.routeSetup = { integrations: routeIntegrations(this, props), auth };
    this.addRoutes(this.routeSetup.integrations, auth);
    this.addErrorResponses(props.cors);
    this.passPreflightsAsText(binaryTypes);

    if (props.cloudWatchRole) {
      this.cloudWatchRole = this.setAccountCloudWatchRole();
    }

    if (props.webAclArn !== undefined) {
      new wafv2.CfnWebACLAssociation(this, 'WebAclAssociation', {
        resourceArn: this.restApi.deploymentStage.stageArn,
        webAclArn: props.webAclArn,
      });
    } else {
      Validations.of(this.restApi.deploymentStage).acknowledge({
        id: 'AwsSolutions-APIG3',
        reason: 'A web ACL is opt-in (webAclArn): WAF is billed per ACL, rule and request, and the API is already authorized, throttled and validated.',
      });
    }
    this.acknowledgeNonCognitoAuthorization(auth);
    this.acknowledgeLoggingOff(logging);
    if (!props.tracingEnabled) {
      acknowledge(
        this.restApi.deploymentStage,
        ['Serverless-APIGWXrayEnabled'],
        'X-Ray tracing is opt-in (tracingEnabled): it is billed per trace, and the stage already logs and measures every request.',
      );
    }
  }

  /**
   * Adds a route of the model beside the protocol's, at `/v2/models/{model}/` followed by
   * `pathParts` (a part in braces, `{id}`, is a path parameter), with the API's authorization and
   * request validator, integrated as the infer route is (the inference function, for a Lambda
   * proxy). `grantInvoke` covers it. Features that attach to an endpoint (asynchronous inference)
   * add their routes with it; the protocol's routes are unchanged.
   */
  public addModelRoute(httpMethod: string, pathParts: string[]): apigw.Method {
    const model = this.restApi.root.getResource(ROUTES_ROOT)!.getResource(MODELS_SEGMENT)!.getResource(this.modelName)!;
    const resource = pathParts.reduce((r, s) => r.getResource(s) ?? r.addResource(s), model);
    const params = pathParts.filter((s) => /^\{\w+\}$/.test(s)).map((s) => `method.request.path.${s.slice(1, -1)}`);
    const { auth, integrations } = this.routeSetup;
    const method = resource.addMethod(httpMethod, integrations.integrationFor(InferenceRoute.INFER), {
      authorizationType: auth.authorizationType,
      authorizer: auth.authorizer,
      authorizationScopes: auth.authorizationScopes,
      apiKeyRequired: auth.apiKeyRequired,
      requestValidator: this.requestValidator,
      requestParameters: params.length > 0 ? Object.fromEntries(params.map((p) => [p, true])) : undefined,
    });
    this.invokableRoutes.push({ method: httpMethod, path: resource.path });
    return method;
  }

  /**
   * Lets `grantee` call each route of this API's stage: `execute-api:Invoke` on the execute-api ARN
   * of each method and path the API has, the versioned routes for `modelVersion`. No wildcard, so
   * the grant passes least-privilege checks as it is. Only meaningful with IAM authorization.
   */
  public grantInvoke(grantee: iam.IGrantable): iam.Grant {
    const stage = this.restApi.deploymentStage.stageName;
    return iam.Grant.addToPrincipal({
      grantee,
      actions: ['execute-api:Invoke'],
      resourceArns: this.invokableRoutes.map((r) => this.restApi.arnForExecuteApi(r.method, r.path, stage)),
    });
  }

  /**
   * With `modelRepository`, lets `grantee` call the server's routes and the routes of the models
   * named: `name` for its routes without a version, `name:version` for that version's routes too.
   * No wildcard, so the grant passes least-privilege checks as it is (`grantInvoke` grants every
   * model, with `*` in place of the name).
   */
  public grantInvokeModels(grantee: iam.IGrantable, models: string[]): iam.Grant {
    if (!this.modelRepository) {
      throw validationError(this, 'InferenceApi: grantInvokeModels names models of a repository (modelRepository: true); this API serves one model: use grantInvoke');
    }
    const stage = this.restApi.deploymentStage.stageName;
    // The server's routes: neither a model's (whose paths hold `*` here) nor the index, which names every model.
    const arns = this.invokableRoutes
      .filter((r) => !r.path.includes('*') && !r.path.includes(`/${REPOSITORY_INDEX_ROUTE.segments[0]}/`))
      .map((r) => this.restApi.arnForExecuteApi(r.method, r.path, stage));
    for (const spec of models) {
      const [name, version, ...rest] = spec.split(':');
      if (Token.isUnresolved(spec) || rest.length > 0 || !MODEL_NAME_PATTERN.test(name) || (version !== undefined && !MODEL_NAME_PATTERN.test(version))) {
        throw validationError(
          this,
          `InferenceApi: grantInvokeModels takes model names, each optionally with :version (letters, digits, '.', '_' or '-'), got: ${JSON.stringify(spec)}`,
        );
      }
      for (const r of this.modelRoutes) {
        if (r.path.includes(`{${REPOSITORY_VERSION_PARAMETER}}`) && version === undefined) continue;
        const path = r.path.replace(`{${REPOSITORY_MODEL_PARAMETER}}`, name).replace(`{${REPOSITORY_VERSION_PARAMETER}}`, version ?? '');
        arns.push(this.restApi.arnForExecuteApi(r.method, path, stage));
      }
    }
    return iam.Grant.addToPrincipal({ grantee, actions: ['execute-api:Invoke'], resourceArns: arns });
  }

  /** A metric of the stage (`AWS/ApiGateway`, by API name and stage), over 5 minutes. */
  public metric(metricName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.restApi.deploymentStage.metric(metricName, props);
  }

  /** Time the backend took, as API Gateway saw it (`IntegrationLatency`), of the stage. */
  public metricIntegrationLatency(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.restApi.deploymentStage.metricIntegrationLatency(props);
  }

  /** Time from request received to response sent, in milliseconds (`Latency`), of the stage. */
  public metricLatency(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.restApi.deploymentStage.metricLatency(props);
  }

  /** Requests received (`Count`), of the stage. */
  public metricCount(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.restApi.deploymentStage.metricCount(props);
  }

  /** 4XX responses (`4XXError`), of the stage: bad requests, auth failures, throttling. */
  public metricClientError(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.restApi.deploymentStage.metricClientError(props);
  }

  /** 5XX responses (`5XXError`), of the stage: function errors, integration timeouts, and invocations Lambda refused (503: throttles). */
  public metricServerError(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.restApi.deploymentStage.metricServerError(props);
  }

  private addRoutes(integrations: IInferenceApiIntegrations, auth: InferenceApiAuthorizationConfig): void {
    const common: apigw.MethodOptions = {
      authorizationType: auth.authorizationType,
      authorizer: auth.authorizer,
      authorizationScopes: auth.authorizationScopes,
      apiKeyRequired: auth.apiKeyRequired,
      requestValidator: this.requestValidator,
    };
    const withVersion: apigw.MethodOptions = {
      ...common,
      requestParameters: { 'method.request.path.version': true },
    };
    const add = (resource: apigw.IResource, method: string, route: InferenceRoute, options: apigw.MethodOptions) => {
      const methodResponses = integrations.methodResponsesFor(route);
      const requestParameters = { ...options.requestParameters, ...(integrations as _InferenceApiRequestParameters)._requestParametersFor?.(route) };
      resource.addMethod(method, integrations.integrationFor(route), {
        ...options,
        requestParameters: Object.keys(requestParameters).length > 0 ? requestParameters : undefined,
        methodResponses: methodResponses.length > 0 ? methodResponses : undefined,
        ...(route === InferenceRoute.INFER ? { requestModels: { 'application/json': this.requestModel } } : {}),
      });
      if (this.modelRepository && resource.path.includes(`{${REPOSITORY_MODEL_PARAMETER}}`)) {
        this.modelRoutes.push({ method, path: resource.path });
        this.invokableRoutes.push({ method, path: resource.path.replace(/\{[a-z]+\}/g, '*') });
      } else {
        this.invokableRoutes.push({ method, path: resource.path.replace('{version}', this.modelVersion) });
      }
    };

    // Every route of the contract's table: at /v2, then under the model, then under its versions.
    const at = (base: apigw.IResource, segments: readonly string[]) => segments.reduce((r, s) => r.getResource(s) ?? r.addResource(s), base);
    const routes = Object.values(ROUTES);
    const v2 = this.restApi.root.addResource(ROUTES_ROOT);
    for (const route of routes.filter((r) => !r.perModel)) add(at(v2, route.segments), route.method, route.kind as InferenceRoute, common);
    const model = v2.addResource(MODELS_SEGMENT).addResource(this.modelName);
    for (const route of routes.filter((r) => r.perModel)) add(at(model, route.segments), route.method, route.kind as InferenceRoute, common);
    const version = model.addResource(VERSIONS_SEGMENT).addResource('{version}');
    for (const route of routes.filter((r) => r.perModel)) add(at(version, route.segments), route.method, route.kind as InferenceRoute, withVersion);
    if (this.modelRepository) {
      // Triton's repository index, answered by the function as its server routes are.
      add(at(v2, REPOSITORY_INDEX_ROUTE.segments), REPOSITORY_INDEX_ROUTE.method, InferenceRoute.SERVER_METADATA, common);
    }
  }

  /**
   * With every media type binary, API Gateway fails the CORS preflight's mock integration (a 500,
   * "Unable to transform request") unless its payloads are converted to text. A new deployment
   * follows the change, as it does a change of the binary media types.
   */
  private passPreflightsAsText(binaryTypes: readonly string[]): void {
    this.restApi.latestDeployment?.addToLogicalId({ binaryMediaTypes: binaryTypes });
    if (!binaryTypes.includes(EVERY_MEDIA_TYPE)) return;
    for (const method of this.restApi.methods) {
      if (method.httpMethod !== 'OPTIONS') continue;
      const cfn = method.node.defaultChild as apigw.CfnMethod;
      cfn.addPropertyOverride('Integration.ContentHandling', apigw.ContentHandling.CONVERT_TO_TEXT);
      cfn.addPropertyOverride('Integration.IntegrationResponses.0.ContentHandling', apigw.ContentHandling.CONVERT_TO_TEXT);
      this.restApi.latestDeployment?.addToLogicalId({ preflight: method.resource.path, contentHandling: apigw.ContentHandling.CONVERT_TO_TEXT });
    }
  }

  /** API Gateway's own errors in the protocol's shape, so clients parse one error format. */
  private addErrorResponses(cors: apigw.CorsOptions | undefined): void {
    const origins = cors?.allowOrigins ?? [];
    const responseHeaders = origins.length === 1 ? { 'Access-Control-Allow-Origin': `'${origins[0]}'` } : undefined;
    const templates = { 'application/json': '{"error":$context.error.messageString}' };
    this.restApi.addGatewayResponse('Default4xx', {
      type: apigw.ResponseType.DEFAULT_4XX,
      responseHeaders,
      templates,
    });
    this.restApi.addGatewayResponse('Default5xx', {
      type: apigw.ResponseType.DEFAULT_5XX,
      responseHeaders,
      templates,
    });
    // Lambda refused the invocation: throttled (its concurrency is used up), or briefly unable to
    // run it. Left to DEFAULT_5XX, callers get a 500 they do not retry. API Gateway maps all of
    // Lambda's invocation errors to this one type: a 503 with Retry-After says "try again" for each.
    this.restApi.addGatewayResponse('IntegrationFailure', {
      type: apigw.ResponseType.INTEGRATION_FAILURE,
      statusCode: String(INTEGRATION_FAILURE_STATUS),
      responseHeaders: { ...responseHeaders, 'Retry-After': `'${INTEGRATION_FAILURE_RETRY_AFTER_SECONDS}'` },
      templates: { 'application/json': JSON.stringify({ error: INTEGRATION_FAILURE_MESSAGE }) },
    });
  }

  /**
   * The same role and setting `RestApi` creates with `cloudWatchRole: true`, but with an inline
   * policy instead of the AWS managed one, so that cdk-nag's only finding can be acknowledged.
   */
  private setAccountCloudWatchRole(): iam.Role {
    const role = new iam.Role(this, 'CloudWatchRole', {
      assumedBy: new iam.ServicePrincipal('apigateway.amazonaws.com'),
      description: 'API Gateway writes execution and access logs of every API of this account and region',
      inlinePolicies: {
        PushToCloudWatchLogs: new iam.PolicyDocument({
          statements: [
            new iam.PolicyStatement({
              actions: [
                'logs:CreateLogGroup',
                'logs:CreateLogStream',
                'logs:DescribeLogGroups',
                'logs:DescribeLogStreams',
                'logs:PutLogEvents',
                'logs:GetLogEvents',
                'logs:FilterLogEvents',
              ],
              resources: ['*'],
            }),
          ],
        }),
      },
    });
    role.applyRemovalPolicy(RemovalPolicy.RETAIN);
    Validations.of(role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'The account-wide API Gateway logging role writes the execution logs of every API in the ' +
        'account and region; their log group names are not known here (same actions and resource ' +
        'as the AWS managed policy AmazonAPIGatewayPushToCloudWatchLogs).',
    });

    const account = new apigw.CfnAccount(this, 'Account', { cloudWatchRoleArn: role.roleArn });
    account.applyRemovalPolicy(RemovalPolicy.RETAIN);
    // The stage turns execution logging on, which fails until the account has the role.
    this.restApi.deploymentStage.node.addDependency(account);
    return role;
  }

  /** Logging left off is the default that deploys in any account: a choice, not an oversight. */
  private acknowledgeLoggingOff(logging: LoggingChoice): void {
    const stage = this.restApi.deploymentStage;
    const why = "needs the account's API Gateway CloudWatch Logs role, which a fresh account lacks: it is opt-in (cloudWatchRole, or";
    if (!logging.accessLogs) {
      acknowledge(stage, ['AwsSolutions-APIG1', 'Serverless-APIGWAccessLogging'], `Access logging ${why} accessLogging where the account has the role).`);
    }
    if (logging.executionLoggingLevel === apigw.MethodLoggingLevel.OFF) {
      acknowledge(stage, ['AwsSolutions-APIG6'], `Execution logging ${why} executionLoggingLevel where the account has the role).`);
    }
  }

  private acknowledgeNonCognitoAuthorization(auth: InferenceApiAuthorizationConfig): void {
    const type = auth.authorizationType;
    const chosen =
      type === apigw.AuthorizationType.IAM
        ? 'IAM (SigV4) authorization'
        : type === apigw.AuthorizationType.CUSTOM
          ? 'a custom Lambda authorizer'
          : auth.apiKeyRequired
            ? 'API keys'
            : undefined;
    if (chosen === undefined) return;
    Validations.of(this.restApi).acknowledge({
      id: 'AwsSolutions-COG4',
      reason: `The API uses ${chosen}, chosen in InferenceApiProps.authorization, instead of a Cognito user pool.`,
    });
  }
}

/** Every media type, as `binaryMediaTypes` lists it. */
const EVERY_MEDIA_TYPE = '*/*';

/**
 * The REST API's binary media types. A body of a binary media type reaches a Lambda proxy
 * base64-encoded, its bytes as the client sent them; any other body is decoded as UTF-8 text on
 * the way, its bytes that are not UTF-8 replaced. Binary tensor data sent without a Content-Type
 * (as Triton's client sends it) or as `application/json`, and compressed bodies
 * (`Content-Encoding`), would reach the function changed, and could be answered wrongly. So, with
 * the Lambda proxy, every media type is binary (`*\/*`), a missing Content-Type included: no body
 * is decoded as text, and the function reads every body from base64. `*\/*` also matches every
 * `Accept`, so a binary answer goes back as bytes whatever the client accepts, or none.
 *
 * The request validator picks the request model by the Content-Type, not by how the body is
 * passed on: `application/json` bodies are checked against the model as before (and, API
 * Gateway taking a request without a Content-Type as `application/json`, its documented default,
 * bodies without one); bodies of other types are not checked, as before. The trade-offs:
 * - a JSON body also travels base64-encoded in the invocation, a third larger, within Lambda's
 *   6 MB request payload: the largest JSON body that fits is about 4.5 MB, as for binary tensor
 *   data already;
 * - binary tensor data sent without a Content-Type is then checked as JSON, which it is not (a
 *   JSON header, then bytes), and refused by the validator with a 400: such a client names a type
 *   (`application/octet-stream`, as KServe's client does; Triton's client takes it in `headers`);
 * - the CORS preflight's mock integration must convert its payloads to text (see
 *   `passPreflightsAsText`).
 *
 * Other integrations (`integrations`, such as SageMaker's direct one) keep `application/octet-stream`
 * only: their mapping templates read JSON bodies as text, and mock integrations fail on binary
 * payloads.
 */
function binaryMediaTypes(props: InferenceApiProps): string[] {
  return props.integrations === undefined ? [EVERY_MEDIA_TYPE] : [BINARY_TENSOR_CONTENT_TYPE];
}

/** A Lambda proxy answers every route itself; otherwise the given integrations do. */
function routeIntegrations(scope: Construct, props: InferenceApiProps): IInferenceApiIntegrations {
  if ((props.handler === undefined) === (props.integrations === undefined)) {
    throw validationError(scope, 'InferenceApi: give exactly one of handler (a function that answers every route) and integrations');
  }
  if (props.integrations) {
    if (props.responseTransferMode === apigw.ResponseTransferMode.STREAM || props.integrationTimeout !== undefined) {
      throw validationError(scope, 'InferenceApi: responseTransferMode and integrationTimeout apply to the Lambda proxy (handler); give the integrations their own options');
    }
    return props.integrations;
  }
  // API Gateway may invoke the function for each route's method and path on the deployment stage,
  // nothing else: not another stage of the API, not a path the API does not have.
  //
  // Not from TestInvokeMethod unless asked for (`allowTestInvoke`): a test invocation skips the
  // method's authorization and the stage's throttling, and it doubles the statements.
  //
  // Size: each permission is one statement in the function's resource-based policy (its alias's,
  // which the API calls), which Lambda caps at 20 KB. A statement is about 400 bytes (a Sid of up
  // to 100 characters, the alias ARN, the source ARN), ~440 for the longest route: the nine routes
  // take ~3.8 KB (stage 'prod', model name 'model', eu-west-1), ~5.9 KB at most (128-character
  // stage name, 64-character model and function names, aws-us-gov partition), where one API-wide
  // statement took ~0.4 KB. With allowTestInvoke, twice that: ~7.7 KB, ~11.8 KB at most.
  const streamed = props.responseTransferMode === apigw.ResponseTransferMode.STREAM;
  const integration = new apigw.LambdaIntegration(props.handler!, {
    allowTestInvoke: props.allowTestInvoke ?? false,
    ...(streamed ? { responseTransferMode: apigw.ResponseTransferMode.STREAM } : {}),
    timeout: integrationTimeout(scope, props, streamed),
  });
  return { integrationFor: () => integration, methodResponsesFor: () => [] };
}

/** API Gateway's longest wait for a streamed answer. */
const MAX_STREAM_TIMEOUT = Duration.minutes(15);
/** How long a stream may stay idle: edge-optimized APIs end it sooner than regional and private ones. */
const STREAM_IDLE_TIMEOUT = { edge: Duration.seconds(30), other: Duration.minutes(5) };

/**
 * The integration's timeout: within 29 s for a buffered answer, 15 minutes for a streamed one; a
 * warning where a stream that waits that long for its answer would meet the idle timeout first.
 */
function integrationTimeout(scope: Construct, props: InferenceApiProps, streamed: boolean): Duration | undefined {
  const timeout = props.integrationTimeout ?? (streamed ? MAX_STREAM_TIMEOUT : undefined);
  if (timeout === undefined || Token.isUnresolved(timeout.toMilliseconds())) return timeout;
  const ms = timeout.toMilliseconds();
  if (ms < 50) {
    throw validationError(scope, `InferenceApi: integrationTimeout must be at least 50 ms, got: ${timeout.toHumanString()}`);
  }
  if (!streamed && ms > API_GATEWAY_TIMEOUT_MS) {
    throw validationError(
      scope,
      `InferenceApi: integrationTimeout is ${timeout.toHumanString()}, over API Gateway's 29 s limit for a buffered answer: ` +
        'set responseTransferMode to apigw.ResponseTransferMode.STREAM, which lets a request run up to 15 minutes',
    );
  }
  if (streamed && ms > MAX_STREAM_TIMEOUT.toMilliseconds()) {
    throw validationError(scope, `InferenceApi: integrationTimeout is ${timeout.toHumanString()}, over API Gateway's 15-minute limit for a streamed answer`);
  }
  const idle = props.endpointType === apigw.EndpointType.EDGE ? STREAM_IDLE_TIMEOUT.edge : STREAM_IDLE_TIMEOUT.other;
  if (streamed && ms > idle.toMilliseconds()) {
    Annotations.of(scope).addWarningV2(
      'cdk-serverless-inference:stream-idle',
      `integrationTimeout is ${timeout.toHumanString()}, but API Gateway ends a stream idle for ${idle.toHumanString()} (${props.endpointType === apigw.EndpointType.EDGE ? 'edge-optimized' : 'regional and private'} APIs), and the handler writes its answer when inference ends: an inference longer than that gets the gateway's timeout`,
    );
  }
  return timeout;
}

function validateProps(scope: Construct, props: InferenceApiProps, modelName: string, stageName: string, rateLimit: number, burstLimit: number): void {
  if (Token.isUnresolved(modelName)) {
    throw validationError(scope, 'InferenceApi: modelName must be a literal (it is a path segment of the routes), got a token');
  }
  if (!MODEL_NAME_PATTERN.test(modelName)) {
    throw validationError(scope, `InferenceApi: modelName must be letters, digits, '.', '_' or '-', got: ${JSON.stringify(modelName)}`);
  }
  if (!Token.isUnresolved(stageName) && !STAGE_NAME_PATTERN.test(stageName)) {
    throw validationError(scope, `InferenceApi: stageName must be 1 to 128 letters, digits, '_' or '-', got: ${JSON.stringify(stageName)}`);
  }
  if (!Token.isUnresolved(rateLimit) && !(Number.isFinite(rateLimit) && rateLimit >= 0)) {
    throw validationError(scope, `InferenceApi: throttlingRateLimit must be a number >= 0, got: ${rateLimit}`);
  }
  if (!Token.isUnresolved(burstLimit) && !(Number.isInteger(burstLimit) && burstLimit >= 0)) {
    throw validationError(scope, `InferenceApi: throttlingBurstLimit must be a whole number >= 0, got: ${burstLimit}`);
  }
  if (props.accessLogGroup && props.accessLogRetention !== undefined) {
    throw validationError(
      scope,
      'InferenceApi: accessLogRetention applies to a new log group; it cannot be set together with accessLogGroup (set the retention on that log group)',
    );
  }
  if (props.webAclArn !== undefined && !Token.isUnresolved(props.webAclArn) && !WEB_ACL_ARN_PATTERN.test(props.webAclArn)) {
    throw validationError(
      scope,
      `InferenceApi: webAclArn must be the ARN of a regional WAFv2 web ACL (arn:aws:wafv2:{region}:{account}:regional/webacl/{name}/{id}), got: ${props.webAclArn}`,
    );
  }
}

/** Whether the stage logs, and how: both need the account's API Gateway CloudWatch Logs role. */
interface LoggingChoice {
  readonly accessLogs: boolean;
  readonly executionLoggingLevel: apigw.MethodLoggingLevel;
}

/**
 * Logging is off unless asked for (or the account's role is set by `cloudWatchRole`): with it, a
 * first deploy fails in any account and region whose API Gateway has no CloudWatch Logs role.
 */
function loggingChoice(scope: Construct, props: InferenceApiProps): LoggingChoice {
  const accessLogProps = (['accessLogGroup', 'accessLogRetention', 'accessLogFormat'] as const).filter((p) => props[p] !== undefined);
  if (props.accessLogging === false && accessLogProps.length > 0) {
    throw validationError(scope, `InferenceApi: ${accessLogProps.join(', ')} configure access logs, and accessLogging is false`);
  }
  const roleSet = props.cloudWatchRole ?? false;
  return {
    accessLogs: props.accessLogging ?? (roleSet || accessLogProps.length > 0),
    executionLoggingLevel: props.executionLoggingLevel ?? (roleSet ? apigw.MethodLoggingLevel.ERROR : apigw.MethodLoggingLevel.OFF),
  };
}

function defaultAccessLogFormat(): apigw.AccessLogFormat {
  const F = apigw.AccessLogField;
  return apigw.AccessLogFormat.custom(
    JSON.stringify({
      requestId: F.contextRequestId(),
      ip: F.contextIdentitySourceIp(),
      caller: F.contextIdentityCaller(),
      user: F.contextIdentityUser(),
      requestTime: F.contextRequestTime(),
      httpMethod: F.contextHttpMethod(),
      resourcePath: F.contextResourcePath(),
      status: F.contextStatus(),
      protocol: F.contextProtocol(),
      responseLength: F.contextResponseLength(),
      responseLatency: F.contextResponseLatency(),
      integrationLatency: F.contextIntegrationLatency(),
      integrationStatus: F.contextIntegrationStatus(),
      errorMessage: F.contextErrorMessage(),
    }),
  );
}
