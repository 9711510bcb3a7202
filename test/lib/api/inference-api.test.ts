import { App, CfnResource, Lazy, Stack, Validations } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as cognito from 'aws-cdk-lib/aws-cognito';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { AwsSolutionsChecks, NagRuleCompliance, rules as nagRules } from 'cdk-nag';
import { describe, expect, it } from 'vitest';
import { InferenceApi, InferenceApiAuthorization, type InferenceApiProps } from '../../../lib/api/inference-api';

const ACCOUNT = '123456789012';
const REGION = 'eu-west-1';

interface Fixture {
  app: App;
  stack: Stack;
  handler: lambda.Function;
  api: InferenceApi;
  template: Template;
}

function newStack(): { app: App; stack: Stack; handler: lambda.Function } {
  const app = new App();
  const stack = new Stack(app, 'Stack', { env: { account: ACCOUNT, region: REGION } });
  const handler = new lambda.Function(stack, 'Handler', {
    runtime: lambda.Runtime.NODEJS_24_X,
    handler: 'index.handler',
    code: lambda.Code.fromInline('exports.handler = async () => ({ statusCode: 200, body: "{}" });'),
    // Its own role, without the AWS managed policy a default role gets: cdk-nag 3 on aws-cdk-lib
    // 2.257 cannot acknowledge IAM4 ids (they contain '::' more than once), and the fixture should
    // contribute no findings of its own.
    role: new iam.Role(stack, 'HandlerRole', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
    }),
  });
  return { app, stack, handler };
}

function setup(props: Partial<InferenceApiProps> = {}): Fixture {
  const { app, stack, handler } = newStack();
  const api = new InferenceApi(stack, 'Inference', { handler, ...props });
  return { app, stack, handler, api, template: Template.fromStack(stack) };
}

type Resources = Record<string, { Type: string; Properties?: any; DeletionPolicy?: string }>;

function resourcesOf(template: Template, type: string): Array<[string, any]> {
  const all = template.toJSON().Resources as Resources;
  return Object.entries(all).filter(([, r]) => r.Type === type);
}

function logicalIdOf(template: Template, type: string): string {
  const found = resourcesOf(template, type);
  expect(found, `exactly one ${type}`).toHaveLength(1);
  return found[0][0];
}

/** Full path of every API Gateway resource, rebuilt from ParentId / PathPart. */
function resourcePaths(template: Template): Map<string, string> {
  const resources = new Map(resourcesOf(template, 'AWS::ApiGateway::Resource'));
  const paths = new Map<string, string>();
  const pathOf = (id: string): string => {
    const cached = paths.get(id);
    if (cached !== undefined) return cached;
    const r = resources.get(id)!;
    const parent = r.Properties.ParentId;
    const prefix = parent['Fn::GetAtt'] ? '' : pathOf(parent.Ref);
    const full = `${prefix}/${r.Properties.PathPart}`;
    paths.set(id, full);
    return full;
  };
  for (const id of resources.keys()) pathOf(id);
  return paths;
}

interface Route {
  route: string;
  props: any;
}

/** Every method as `VERB /path`, with its properties. */
function routes(template: Template): Route[] {
  const paths = resourcePaths(template);
  return resourcesOf(template, 'AWS::ApiGateway::Method')
    .map(([, m]) => {
      const resourceId = m.Properties.ResourceId;
      const path = resourceId['Fn::GetAtt'] ? '/' : paths.get(resourceId.Ref)!;
      return { route: `${m.Properties.HttpMethod} ${path}`, props: m.Properties };
    })
    .sort((a, b) => a.route.localeCompare(b.route));
}

const OIP_ROUTES = (model: string): string[] =>
  [
    'GET /v2',
    'GET /v2/health/live',
    'GET /v2/health/ready',
    `GET /v2/models/${model}`,
    `GET /v2/models/${model}/ready`,
    `POST /v2/models/${model}/infer`,
    `GET /v2/models/${model}/versions/{version}`,
    `GET /v2/models/${model}/versions/{version}/ready`,
    `POST /v2/models/${model}/versions/{version}/infer`,
  ].sort((a, b) => a.localeCompare(b));

/** Renders an `Fn::Join` of literals and `Ref`s as one string, refs as `${LogicalId}`. */
function joined(value: any): string {
  if (typeof value === 'string') return value;
  if (value?.Ref) return `\${${value.Ref}}`;
  if (value?.['Fn::Join']) {
    const [sep, parts] = value['Fn::Join'];
    return parts.map(joined).join(sep);
  }
  throw new Error(`cannot render ${JSON.stringify(value)}`);
}

function nagFindings(app: App): string[] {
  const report = new AwsSolutionsChecks(app).validateScope(app);
  return report.violations.flatMap((v) => v.violatingResources.map((r) => `${v.ruleName} @ ${r.constructPath}`));
}

function nagRuleNames(app: App): string[] {
  return [...new Set(new AwsSolutionsChecks(app).validateScope(app).violations.map((v) => v.ruleName))].sort();
}

describe('InferenceApi routes', () => {
  it('creates exactly the Open Inference Protocol routes of the default model name', () => {
    const { template } = setup();
    expect(routes(template).map((r) => r.route)).toEqual(OIP_ROUTES('model'));
  });

  it('uses the given model name as a concrete path segment, with no greedy proxy', () => {
    const { template } = setup({ modelName: 'resnet-50.v2' });
    expect(routes(template).map((r) => r.route)).toEqual(OIP_ROUTES('resnet-50.v2'));
    const pathParts = resourcesOf(template, 'AWS::ApiGateway::Resource').map(([, r]) => r.Properties.PathPart);
    expect(pathParts.filter((p: string) => p.includes('+'))).toEqual([]);
  });

  it('proxies every route to the handler', () => {
    const { template } = setup();
    const handlerId = logicalIdOf(template, 'AWS::Lambda::Function');
    for (const { route, props } of routes(template)) {
      expect(props.Integration.Type, route).toBe('AWS_PROXY');
      expect(props.Integration.IntegrationHttpMethod, route).toBe('POST');
      expect(JSON.stringify(props.Integration.Uri), route).toContain(handlerId);
    }
  });

  it("lets API Gateway invoke the handler for each route's method and path on the stage only: no other stage, method or path, no test-invoke", () => {
    const { template } = setup({ cors: { allowOrigins: ['https://app.example.com'] } });
    const apiId = logicalIdOf(template, 'AWS::ApiGateway::RestApi');
    const stageId = logicalIdOf(template, 'AWS::ApiGateway::Stage');
    const permissions = resourcesOf(template, 'AWS::Lambda::Permission').map(([, p]) => p.Properties);
    for (const p of permissions) {
      expect(p).toMatchObject({ Action: 'lambda:InvokeFunction', Principal: 'apigateway.amazonaws.com' });
    }
    const sourceArns = permissions.map((p) => joined(p.SourceArn)).sort();
    // The versioned routes' {version} is a path parameter: any version, as the route itself.
    const expected = OIP_ROUTES('model').map((r) => {
      const [method, path] = r.split(' ');
      return `arn:\${AWS::Partition}:execute-api:${REGION}:${ACCOUNT}:\${${apiId}}/\${${stageId}}/${method}${path.replace('{version}', '*')}`;
    });
    expect(sourceArns).toEqual(expected.sort());
  });

  it('allowTestInvoke lets TestInvokeMethod (the console, integ tests) invoke the handler too, route by route', () => {
    const { template } = setup({ allowTestInvoke: true });
    const apiId = logicalIdOf(template, 'AWS::ApiGateway::RestApi');
    const sourceArns = resourcesOf(template, 'AWS::Lambda::Permission').map(([, p]) => joined(p.Properties.SourceArn));
    expect(sourceArns).toHaveLength(18);
    const testInvoke = sourceArns.filter((arn) => arn.includes('/test-invoke-stage/')).sort();
    expect(testInvoke).toEqual(
      OIP_ROUTES('model')
        .map((r) => {
          const [method, path] = r.split(' ');
          return `arn:\${AWS::Partition}:execute-api:${REGION}:${ACCOUNT}:\${${apiId}}/test-invoke-stage/${method}${path.replace('{version}', '*')}`;
        })
        .sort(),
    );
  });

  it('declares the version path parameter as required on the version routes only', () => {
    const { template } = setup();
    for (const { route, props } of routes(template)) {
      if (route.includes('{version}')) {
        expect(props.RequestParameters, route).toEqual({ 'method.request.path.version': true });
      } else {
        expect(props.RequestParameters, route).toBeUndefined();
      }
    }
  });

  it('exposes the stage URL and the infer URL', () => {
    const { api, stack } = setup({ modelName: 'm1' });
    const apiId = logicalIdOf(Template.fromStack(stack), 'AWS::ApiGateway::RestApi');
    const stageId = logicalIdOf(Template.fromStack(stack), 'AWS::ApiGateway::Stage');
    const url = joined(stack.resolve(api.url));
    expect(url).toBe(`https://\${${apiId}}.execute-api.${REGION}.\${AWS::URLSuffix}/\${${stageId}}/`);
    expect(joined(stack.resolve(api.inferUrl))).toBe(`https://\${${apiId}}.execute-api.${REGION}.\${AWS::URLSuffix}/\${${stageId}}/v2/models/m1/infer`);
  });
});

describe('InferenceApi request validation', () => {
  it('validates body and parameters with one validator attached to every method', () => {
    const { template } = setup();
    template.resourceCountIs('AWS::ApiGateway::RequestValidator', 1);
    template.hasResourceProperties('AWS::ApiGateway::RequestValidator', {
      ValidateRequestBody: true,
      ValidateRequestParameters: true,
    });
    const validatorId = logicalIdOf(template, 'AWS::ApiGateway::RequestValidator');
    for (const { route, props } of routes(template)) {
      expect(props.RequestValidatorId, route).toEqual({ Ref: validatorId });
    }
  });

  it('attaches the request model to the two infer routes and to nothing else', () => {
    const { template } = setup();
    const modelId = logicalIdOf(template, 'AWS::ApiGateway::Model');
    const withModel = routes(template)
      .filter((r) => r.props.RequestModels !== undefined)
      .map((r) => r.route);
    expect(withModel).toEqual(['POST /v2/models/model/infer', 'POST /v2/models/model/versions/{version}/infer']);
    for (const r of routes(template).filter((x) => x.props.RequestModels)) {
      expect(r.props.RequestModels).toEqual({ 'application/json': { Ref: modelId } });
    }
  });

  it('uses the given schema as the model', () => {
    const schema: apigw.JsonSchema = {
      schema: apigw.JsonSchemaVersion.DRAFT4,
      type: apigw.JsonSchemaType.OBJECT,
      required: ['inputs'],
      properties: {
        inputs: {
          type: apigw.JsonSchemaType.ARRAY,
          minItems: 1,
          maxItems: 1,
          items: {
            type: apigw.JsonSchemaType.OBJECT,
            properties: { name: { type: apigw.JsonSchemaType.STRING, enum: ['pixel_values'] } },
          },
        },
      },
    };
    const { template } = setup({ requestSchema: schema });
    template.hasResourceProperties('AWS::ApiGateway::Model', {
      ContentType: 'application/json',
      Schema: {
        $schema: 'http://json-schema.org/draft-04/schema#',
        type: 'object',
        required: ['inputs'],
        properties: {
          inputs: {
            type: 'array',
            minItems: 1,
            maxItems: 1,
            items: { type: 'object', properties: { name: { type: 'string', enum: ['pixel_values'] } } },
          },
        },
      },
    });
  });

  it('defaults to a generic schema: OIP inputs with name, shape, datatype and data, or instances', () => {
    const { template } = setup();
    template.hasResourceProperties('AWS::ApiGateway::Model', {
      ContentType: 'application/json',
      Schema: Match.objectLike({
        $schema: 'http://json-schema.org/draft-04/schema#',
        type: 'object',
        oneOf: [{ required: ['inputs'] }, { required: ['instances'] }],
        properties: Match.objectLike({
          instances: { type: 'array', minItems: 1 },
          inputs: Match.objectLike({
            type: 'array',
            minItems: 1,
            items: Match.objectLike({ required: ['name', 'shape', 'datatype', 'data'] }),
          }),
        }),
      }),
    });
  });
});

describe('InferenceApi stage', () => {
  it('throttles at 100 rps, burst 200 and sends detailed metrics by default, and logs nothing: it deploys where API Gateway has no CloudWatch Logs role', () => {
    const { template } = setup();
    template.hasResourceProperties('AWS::ApiGateway::Stage', {
      StageName: 'prod',
      TracingEnabled: false,
      MethodSettings: [
        {
          HttpMethod: '*',
          ResourcePath: '/*',
          ThrottlingRateLimit: 100,
          ThrottlingBurstLimit: 200,
          LoggingLevel: 'OFF',
          MetricsEnabled: true,
          DataTraceEnabled: false,
        },
      ],
    });
    // Execution and access logging both fail a deploy until the account has API Gateway's role.
    expect(resourcesOf(template, 'AWS::ApiGateway::Stage')[0][1].Properties.AccessLogSetting).toBeUndefined();
    template.resourceCountIs('AWS::Logs::LogGroup', 0);
    template.resourceCountIs('AWS::ApiGateway::Account', 0);
  });

  it('logs errors and access with cloudWatchRole, which sets the role they need', () => {
    const { api, template } = setup({ cloudWatchRole: true });
    template.hasResourceProperties('AWS::ApiGateway::Stage', {
      MethodSettings: [Match.objectLike({ LoggingLevel: 'ERROR', DataTraceEnabled: false })],
      AccessLogSetting: { DestinationArn: { 'Fn::GetAtt': [logicalIdOf(template, 'AWS::Logs::LogGroup'), 'Arn'] } },
    });
    expect(api.accessLogGroup).toBeDefined();
  });

  it('logs where the account has the role, one prop each: executionLoggingLevel, accessLogging', () => {
    const { template } = setup({ executionLoggingLevel: apigw.MethodLoggingLevel.ERROR, accessLogging: true });
    template.hasResourceProperties('AWS::ApiGateway::Stage', {
      MethodSettings: [Match.objectLike({ LoggingLevel: 'ERROR' })],
      AccessLogSetting: Match.objectLike({ Format: Match.stringLikeRegexp('requestId') }),
    });
    template.resourceCountIs('AWS::ApiGateway::Account', 0);
    // cloudWatchRole with logging turned off, each on its own.
    const quiet = setup({ cloudWatchRole: true, executionLoggingLevel: apigw.MethodLoggingLevel.OFF, accessLogging: false }).template;
    quiet.hasResourceProperties('AWS::ApiGateway::Stage', { MethodSettings: [Match.objectLike({ LoggingLevel: 'OFF' })] });
    expect(resourcesOf(quiet, 'AWS::ApiGateway::Stage')[0][1].Properties.AccessLogSetting).toBeUndefined();
  });

  it('applies the given throttling, stage name, logging level and tracing', () => {
    const { template } = setup({
      throttlingRateLimit: 5,
      throttlingBurstLimit: 10,
      stageName: 'live',
      executionLoggingLevel: apigw.MethodLoggingLevel.INFO,
      tracingEnabled: true,
    });
    template.hasResourceProperties('AWS::ApiGateway::Stage', {
      StageName: 'live',
      TracingEnabled: true,
      MethodSettings: [Match.objectLike({ ThrottlingRateLimit: 5, ThrottlingBurstLimit: 10, LoggingLevel: 'INFO' })],
    });
  });

  it('is a regional endpoint by default and takes another endpoint type', () => {
    setup().template.hasResourceProperties('AWS::ApiGateway::RestApi', {
      EndpointConfiguration: { Types: ['REGIONAL'] },
    });
    setup({ endpointType: apigw.EndpointType.EDGE }).template.hasResourceProperties('AWS::ApiGateway::RestApi', {
      EndpointConfiguration: { Types: ['EDGE'] },
    });
  });

  it('creates no account-level CloudWatch role unless asked', () => {
    const { template } = setup();
    template.resourceCountIs('AWS::ApiGateway::Account', 0);
    template.resourceCountIs('AWS::IAM::Role', 1); // the fixture's own handler role
  });

  it('with cloudWatchRole, sets a retained account role with an inline policy before the stage', () => {
    const { template } = setup({ cloudWatchRole: true });
    const roleId = resourcesOf(template, 'AWS::IAM::Role').find(([, r]) => JSON.stringify(r.Properties.AssumeRolePolicyDocument).includes('apigateway.amazonaws.com'))![0];
    const role = template.toJSON().Resources[roleId];
    expect(role.DeletionPolicy).toBe('Retain');
    expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    expect(role.Properties.Policies[0].PolicyDocument.Statement[0].Action).toContain('logs:PutLogEvents');
    const accountId = logicalIdOf(template, 'AWS::ApiGateway::Account');
    template.hasResource('AWS::ApiGateway::Account', {
      DeletionPolicy: 'Retain',
      Properties: { CloudWatchRoleArn: { 'Fn::GetAtt': [roleId, 'Arn'] } },
    });
    template.hasResource('AWS::ApiGateway::Stage', { DependsOn: Match.arrayWith([accountId]) });
  });
});

describe('InferenceApi access logs', () => {
  it('writes JSON access logs to a new, retained log group kept one month', () => {
    const { template } = setup({ accessLogging: true });
    const logGroupId = logicalIdOf(template, 'AWS::Logs::LogGroup');
    template.hasResource('AWS::Logs::LogGroup', { DeletionPolicy: 'Retain', Properties: { RetentionInDays: 30 } });
    const stage = resourcesOf(template, 'AWS::ApiGateway::Stage')[0][1];
    expect(stage.Properties.AccessLogSetting.DestinationArn).toEqual({ 'Fn::GetAtt': [logGroupId, 'Arn'] });
    const format = JSON.parse(stage.Properties.AccessLogSetting.Format);
    expect(format).toMatchObject({
      requestId: '$context.requestId',
      ip: '$context.identity.sourceIp',
      httpMethod: '$context.httpMethod',
      resourcePath: '$context.resourcePath',
      status: '$context.status',
      integrationLatency: '$context.integrationLatency',
      errorMessage: '$context.error.message',
    });
  });

  it('takes a retention, a format or an existing log group', () => {
    setup({ accessLogRetention: logs.RetentionDays.ONE_WEEK }).template.hasResourceProperties('AWS::Logs::LogGroup', {
      RetentionInDays: 7,
    });

    const { template: clf } = setup({ accessLogFormat: apigw.AccessLogFormat.clf() });
    const stage = resourcesOf(clf, 'AWS::ApiGateway::Stage')[0][1];
    expect(stage.Properties.AccessLogSetting.Format).toBe(apigw.AccessLogFormat.clf().toString());

    const { stack, handler } = newStack();
    const own = new logs.LogGroup(stack, 'Own', { retention: logs.RetentionDays.ONE_YEAR });
    const api = new InferenceApi(stack, 'Inference', { handler, accessLogGroup: own });
    expect(api.accessLogGroup).toBe(own);
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::Logs::LogGroup', 1);
    const ownId = stack.getLogicalId(own.node.defaultChild as logs.CfnLogGroup);
    template.hasResourceProperties('AWS::ApiGateway::Stage', {
      AccessLogSetting: { DestinationArn: { 'Fn::GetAtt': [ownId, 'Arn'] } },
    });
  });
});

describe('InferenceApi authorization', () => {
  it('requires IAM on every method by default', () => {
    const { template } = setup();
    for (const { route, props } of routes(template)) {
      expect(props.AuthorizationType, route).toBe('AWS_IAM');
      expect(props.ApiKeyRequired, route).toBeUndefined();
    }
    template.resourceCountIs('AWS::ApiGateway::ApiKey', 0);
    template.resourceCountIs('AWS::ApiGateway::Authorizer', 0);
  });

  it('apiKey() requires a key on every method and binds a new key to the stage with a usage plan', () => {
    const { template, api } = setup({
      authorization: InferenceApiAuthorization.apiKey({ throttle: { rateLimit: 7, burstLimit: 9 } }),
    });
    for (const { route, props } of routes(template)) {
      expect(props.ApiKeyRequired, route).toBe(true);
      expect(props.AuthorizationType, route).toBe('NONE');
    }
    expect(api.apiKey).toBeDefined();
    expect(api.usagePlan).toBeDefined();
    const keyId = logicalIdOf(template, 'AWS::ApiGateway::ApiKey');
    const planId = logicalIdOf(template, 'AWS::ApiGateway::UsagePlan');
    const apiId = logicalIdOf(template, 'AWS::ApiGateway::RestApi');
    const stageId = logicalIdOf(template, 'AWS::ApiGateway::Stage');
    template.hasResourceProperties('AWS::ApiGateway::UsagePlan', {
      ApiStages: [{ ApiId: { Ref: apiId }, Stage: { Ref: stageId } }],
      Throttle: { RateLimit: 7, BurstLimit: 9 },
    });
    template.hasResourceProperties('AWS::ApiGateway::UsagePlanKey', {
      KeyId: { Ref: keyId },
      KeyType: 'API_KEY',
      UsagePlanId: { Ref: planId },
    });
    // The key's value is generated, never written into the template.
    expect(resourcesOf(template, 'AWS::ApiGateway::ApiKey')[0][1].Properties?.Value).toBeUndefined();
  });

  it('cognito() attaches a user pool authorizer, with scopes when given', () => {
    const { stack, handler } = newStack();
    const pool = new cognito.UserPool(stack, 'Pool');
    new InferenceApi(stack, 'Inference', {
      handler,
      authorization: InferenceApiAuthorization.cognito([pool], { scopes: ['inference/invoke'] }),
    });
    const template = Template.fromStack(stack);
    const poolId = stack.getLogicalId(pool.node.defaultChild as cognito.CfnUserPool);
    template.hasResourceProperties('AWS::ApiGateway::Authorizer', {
      Type: 'COGNITO_USER_POOLS',
      ProviderARNs: [{ 'Fn::GetAtt': [poolId, 'Arn'] }],
    });
    const authorizerId = logicalIdOf(template, 'AWS::ApiGateway::Authorizer');
    for (const { route, props } of routes(template)) {
      expect(props.AuthorizationType, route).toBe('COGNITO_USER_POOLS');
      expect(props.AuthorizerId, route).toEqual({ Ref: authorizerId });
      expect(props.AuthorizationScopes, route).toEqual(['inference/invoke']);
    }
  });

  it('cognito() rejects an empty list of user pools', () => {
    expect(() => InferenceApiAuthorization.cognito([])).toThrow(/userPools must hold at least one user pool, got: 0/);
  });

  it('custom() uses the given authorizer on every method', () => {
    const { stack, handler } = newStack();
    const authFn = new lambda.Function(stack, 'AuthFn', {
      runtime: lambda.Runtime.NODEJS_24_X,
      handler: 'index.handler',
      code: lambda.Code.fromInline('exports.handler = async () => ({})'),
    });
    const authorizer = new apigw.TokenAuthorizer(stack, 'TokenAuth', { handler: authFn });
    new InferenceApi(stack, 'Inference', { handler, authorization: InferenceApiAuthorization.custom(authorizer) });
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::ApiGateway::Authorizer', { Type: 'TOKEN' });
    const authorizerId = logicalIdOf(template, 'AWS::ApiGateway::Authorizer');
    for (const { route, props } of routes(template)) {
      expect(props.AuthorizationType, route).toBe('CUSTOM');
      expect(props.AuthorizerId, route).toEqual({ Ref: authorizerId });
    }
  });

  it('none() leaves every method open', () => {
    const { template } = setup({ authorization: InferenceApiAuthorization.none() });
    for (const { route, props } of routes(template)) {
      expect(props.AuthorizationType, route).toBe('NONE');
      expect(props.ApiKeyRequired, route).toBeUndefined();
    }
  });

  it('grantInvoke() allows execute-api:Invoke on every route of this stage only', () => {
    const { stack, handler } = newStack();
    const api = new InferenceApi(stack, 'Inference', { handler });
    const caller = new iam.Role(stack, 'Caller', { assumedBy: new iam.AccountRootPrincipal() });
    api.grantInvoke(caller);
    const template = Template.fromStack(stack);
    const apiId = logicalIdOf(template, 'AWS::ApiGateway::RestApi');
    const stageId = logicalIdOf(template, 'AWS::ApiGateway::Stage');
    const policy = resourcesOf(template, 'AWS::IAM::Policy').find(([, p]) =>
      JSON.stringify(p.Properties.Roles).includes(stack.getLogicalId(caller.node.defaultChild as iam.CfnRole)),
    )![1];
    expect(policy.Properties.PolicyDocument.Statement).toHaveLength(1);
    const statement = policy.Properties.PolicyDocument.Statement[0];
    expect(statement.Action).toBe('execute-api:Invoke');
    expect(statement.Effect).toBe('Allow');
    const arn = (route: string) => `arn:\${AWS::Partition}:execute-api:${REGION}:${ACCOUNT}:\${${apiId}}/\${${stageId}}/${route}`;
    expect([statement.Resource].flat().map(joined)).toEqual(
      [
        'GET/v2',
        'GET/v2/health/live',
        'GET/v2/health/ready',
        'GET/v2/models/model',
        'GET/v2/models/model/ready',
        'POST/v2/models/model/infer',
        'GET/v2/models/model/versions/1',
        'GET/v2/models/model/versions/1/ready',
        'POST/v2/models/model/versions/1/infer',
      ].map(arn),
    );
  });

  it('grantInvoke() names the versioned routes of the model version, and no wildcard', () => {
    const { stack, handler } = newStack();
    const api = new InferenceApi(stack, 'Inference', { handler, modelName: 'churn', modelVersion: '3f2a' });
    const caller = new iam.Role(stack, 'Caller', { assumedBy: new iam.AccountRootPrincipal() });
    api.grantInvoke(caller);
    const resources = JSON.stringify(Template.fromStack(stack).findResources('AWS::IAM::Policy'));
    expect(resources).toContain('/POST/v2/models/churn/versions/3f2a/infer');
    expect(resources).not.toContain('*');
    expect(resources).not.toContain('{version}');
  });
});

describe('InferenceApi CORS and error responses', () => {
  it('has no preflight methods by default', () => {
    const { template } = setup();
    expect(routes(template).filter((r) => r.route.startsWith('OPTIONS'))).toEqual([]);
  });

  it('answers preflight on the routes and adds the single origin to gateway errors when asked', () => {
    const { template } = setup({ cors: { allowOrigins: ['https://app.example.com'] } });
    const options = routes(template).filter((r) => r.route.startsWith('OPTIONS '));
    const preflightPaths = options.map((r) => r.route.slice('OPTIONS '.length));
    expect(preflightPaths).toEqual(expect.arrayContaining(['/v2/models/model/infer', '/v2/health/ready']));
    for (const { route, props } of options) {
      expect(props.AuthorizationType, route).toBe('NONE');
      expect(JSON.stringify(props.Integration.IntegrationResponses), route).toContain('https://app.example.com');
    }
    for (const type of ['DEFAULT_4XX', 'DEFAULT_5XX']) {
      template.hasResourceProperties('AWS::ApiGateway::GatewayResponse', {
        ResponseType: type,
        ResponseParameters: { 'gatewayresponse.header.Access-Control-Allow-Origin': "'https://app.example.com'" },
      });
    }
  });

  it("turns API Gateway's own 4XX and 5XX errors into the OIP error shape", () => {
    const { template } = setup();
    for (const type of ['DEFAULT_4XX', 'DEFAULT_5XX']) {
      template.hasResourceProperties('AWS::ApiGateway::GatewayResponse', {
        ResponseType: type,
        ResponseTemplates: { 'application/json': '{"error":$context.error.messageString}' },
      });
    }
    for (const [, r] of resourcesOf(template, 'AWS::ApiGateway::GatewayResponse')) {
      if (r.Properties.ResponseType.startsWith('DEFAULT_')) expect(r.Properties.ResponseParameters).toBeUndefined();
    }
  });

  it('answers an invocation Lambda refused (a throttle) 503 with Retry-After, where API Gateway would send a 500', () => {
    const responses = (template: Template) => resourcesOf(template, 'AWS::ApiGateway::GatewayResponse').filter(([, r]) => r.Properties.ResponseType === 'INTEGRATION_FAILURE');
    const [[, failure]] = responses(setup().template);
    expect(failure.Properties).toMatchObject({ StatusCode: '503', ResponseParameters: { 'gatewayresponse.header.Retry-After': "'1'" } });
    expect(JSON.parse(failure.Properties.ResponseTemplates['application/json'])).toEqual({
      error: expect.stringMatching(/busy or briefly unavailable \(throttled\); retry after the Retry-After delay/),
    });
    const [[, withCors]] = responses(setup({ cors: { allowOrigins: ['https://app.example.com'] } }).template);
    expect(withCors.Properties.ResponseParameters).toEqual({
      'gatewayresponse.header.Retry-After': "'1'",
      'gatewayresponse.header.Access-Control-Allow-Origin': "'https://app.example.com'",
    });
  });
});

describe('InferenceApi web ACL and metrics', () => {
  const webAclArn = `arn:aws:wafv2:${REGION}:${ACCOUNT}:regional/webacl/inference/0123abcd-0000-1111-2222-333344445555`;

  it('associates a web ACL with the stage when given', () => {
    const { template } = setup({ webAclArn });
    const apiId = logicalIdOf(template, 'AWS::ApiGateway::RestApi');
    const stageId = logicalIdOf(template, 'AWS::ApiGateway::Stage');
    const association = resourcesOf(template, 'AWS::WAFv2::WebACLAssociation');
    expect(association).toHaveLength(1);
    expect(association[0][1].Properties.WebACLArn).toBe(webAclArn);
    expect(joined(association[0][1].Properties.ResourceArn)).toBe(`arn:\${AWS::Partition}:apigateway:${REGION}::/restapis/\${${apiId}}/stages/\${${stageId}}`);
    setup().template.resourceCountIs('AWS::WAFv2::WebACLAssociation', 0);
  });

  it('measures the stage: Latency, Count, 4XXError, 5XXError by ApiName and Stage', () => {
    const { api, stack } = setup();
    const stageId = logicalIdOf(Template.fromStack(stack), 'AWS::ApiGateway::Stage');
    const cases: Array<[string, () => any]> = [
      ['Latency', () => api.metricLatency()],
      ['Count', () => api.metricCount()],
      ['4XXError', () => api.metricClientError()],
      ['5XXError', () => api.metricServerError()],
    ];
    for (const [name, make] of cases) {
      const metric = make();
      expect(metric.namespace).toBe('AWS/ApiGateway');
      expect(metric.metricName).toBe(name);
      const dims = stack.resolve(metric.dimensions);
      expect(Object.keys(dims).sort()).toEqual(['ApiName', 'Stage']);
      expect(dims.Stage).toEqual({ Ref: stageId });
      // The API's name, a literal derived from the construct path.
      expect(typeof dims.ApiName).toBe('string');
      expect(dims.ApiName).toContain('Inference');
    }
    expect(api.metricLatency({ statistic: 'p99' }).statistic).toBe('p99');
  });
});

describe('InferenceApi errors', () => {
  const cases: Array<[string, Partial<InferenceApiProps>, RegExp]> = [
    ['modelName with a slash', { modelName: 'a/b' }, /modelName must be letters, digits, '\.', '_' or '-', got: "a\/b"/],
    ['modelName with a space', { modelName: 'my model' }, /modelName .*got: "my model"/],
    ['empty modelName', { modelName: '' }, /modelName .*got: ""/],
    ['stageName with a space', { stageName: 'my stage' }, /stageName must be 1 to 128 .*got: "my stage"/],
    ['negative rate', { throttlingRateLimit: -1 }, /throttlingRateLimit must be a number >= 0, got: -1/],
    ['fractional burst', { throttlingBurstLimit: 1.5 }, /throttlingBurstLimit must be a whole number >= 0, got: 1.5/],
    ['a bad web ACL ARN', { webAclArn: 'arn:aws:s3:::bucket' }, /webAclArn must be the ARN of a regional WAFv2 web ACL .*got: arn:aws:s3:::bucket/],
  ];
  for (const [name, props, message] of cases) {
    it(`rejects ${name}`, () => {
      expect(() => setup(props)).toThrow(message);
    });
  }

  it('rejects access log settings with accessLogging: false, naming them', () => {
    const { stack, handler } = newStack();
    expect(
      () => new InferenceApi(stack, 'Inference', { handler, accessLogging: false, accessLogRetention: logs.RetentionDays.ONE_WEEK, accessLogFormat: apigw.AccessLogFormat.clf() }),
    ).toThrow(/accessLogRetention, accessLogFormat configure access logs, and accessLogging is false/);
  });

  it('rejects an access log group together with a retention', () => {
    const { stack, handler } = newStack();
    const own = new logs.LogGroup(stack, 'Own');
    expect(
      () =>
        new InferenceApi(stack, 'Inference', {
          handler,
          accessLogGroup: own,
          accessLogRetention: logs.RetentionDays.ONE_DAY,
        }),
    ).toThrow(/accessLogRetention .*cannot be set together with accessLogGroup/);
  });

  it('rejects a token as modelName', () => {
    const { stack, handler } = newStack();
    const token = Lazy.string({ produce: () => 'model' });
    expect(() => new InferenceApi(stack, 'Inference', { handler, modelName: token })).toThrow(/modelName must be a literal/);
  });
});

describe('InferenceApi and cdk-nag AwsSolutions', () => {
  // cdk-nag 3.0.2 registered with Validations.of(app).addPlugins() cannot run on aws-cdk-lib 2.257:
  // that version does not pass the construct tree to plugins, so the plugin reports its own failure
  // and no findings. validateScope() is cdk-nag's entry point for exactly that case and runs the
  // same rules and the same acknowledgement check.

  it('has no unacknowledged findings with the defaults', () => {
    const { app } = setup();
    expect(nagFindings(app)).toEqual([]);
  });

  it('has no unacknowledged findings with cloudWatchRole, Cognito or a web ACL', () => {
    expect(nagFindings(setup({ cloudWatchRole: true }).app)).toEqual([]);
    expect(nagFindings(setup({ webAclArn: `arn:aws:wafv2:${REGION}:${ACCOUNT}:regional/webacl/a/b` }).app)).toEqual([]);
    const { app, stack, handler } = newStack();
    const pool = new cognito.UserPool(stack, 'Pool', {
      mfa: cognito.Mfa.REQUIRED,
      mfaSecondFactor: { sms: false, otp: true },
      passwordPolicy: { minLength: 12, requireDigits: true, requireLowercase: true, requireUppercase: true, requireSymbols: true },
      featurePlan: cognito.FeaturePlan.PLUS,
      standardThreatProtectionMode: cognito.StandardThreatProtectionMode.FULL_FUNCTION,
    });
    new InferenceApi(stack, 'Inference', { handler, authorization: InferenceApiAuthorization.cognito([pool]) });
    expect(nagFindings(app)).toEqual([]);
  });

  it('still reports the rules its defaults satisfy when a choice turns them off', () => {
    // Proves the rules run on this API: the acknowledgements are narrow, not blanket.
    expect(nagRuleNames(setup({ authorization: InferenceApiAuthorization.none() }).app)).toEqual(['AwsSolutions-APIG4', 'AwsSolutions-COG4']);
    expect(nagRuleNames(setup({ authorization: InferenceApiAuthorization.apiKey() }).app)).toEqual(['AwsSolutions-APIG4']);
  });

  it('acknowledges only the web ACL, X-Ray and logging left off on the stage and Cognito on the API, which the rules do flag', () => {
    const { app, api } = setup();
    // The acknowledgements the construct recorded, by construct path.
    const acknowledged: Record<string, string[]> = {};
    for (const c of app.node.findAll()) {
      for (const m of c.node.metadata) {
        if (m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY) {
          acknowledged[c.node.path] ??= [];
          acknowledged[c.node.path].push(...Object.keys(m.data as object));
        }
      }
    }
    // Each acknowledgement rewrites the construct's entry with all it holds so far.
    for (const path of Object.keys(acknowledged)) acknowledged[path] = [...new Set(acknowledged[path])];
    expect(acknowledged).toEqual({
      [api.restApi.deploymentStage.node.path]: [
        'annotation::AwsSolutions-APIG3',
        'annotation::AwsSolutions-APIG1',
        'annotation::Serverless-APIGWAccessLogging',
        'annotation::AwsSolutions-APIG6',
        'annotation::Serverless-APIGWXrayEnabled',
      ],
      [api.restApi.node.path]: ['annotation::AwsSolutions-COG4'],
    });
    // The two rules themselves, run without the acknowledgement check, do flag these resources.
    const flagged = (rule: (node: CfnResource) => unknown): string[] =>
      app.node
        .findAll()
        .filter((c): c is CfnResource => CfnResource.isCfnResource(c))
        .filter((c) => rule(c) === NagRuleCompliance.NON_COMPLIANT)
        .map((c) => c.cfnResourceType);
    expect(flagged(nagRules.apigw.APIGWAssociatedWithWAF)).toEqual(['AWS::ApiGateway::Stage']);
    expect(flagged(nagRules.apigw.APIGWXrayEnabled)).toEqual(['AWS::ApiGateway::Stage']);
    expect(flagged(nagRules.apigw.APIGWAccessLogging)).toEqual(['AWS::ApiGateway::Stage']);
    expect(flagged(nagRules.apigw.APIGWExecutionLoggingEnabled)).toEqual(['AWS::ApiGateway::Stage']);
    // With logging on, nothing about logging is acknowledged.
    const logged = setup({ cloudWatchRole: true });
    const stageAcks = logged.api.restApi.deploymentStage.node.metadata
      .filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      .flatMap((m) => Object.keys(m.data as object));
    expect(stageAcks.filter((id) => /APIG1|APIG6|AccessLogging/.test(id))).toEqual([]);
    expect(flagged(nagRules.cognito.CognitoUserPoolAPIGWAuthorizer)).toEqual(Array(OIP_ROUTES('model').length).fill('AWS::ApiGateway::Method'));
  });
});

describe('binary tensor data', () => {
  it('makes every media type binary in front of the function, so that no body reaches it decoded as text', () => {
    const { template } = setup();
    // '*/*' covers a missing Content-Type (Triton's client sends none), JSON-typed and compressed bodies.
    template.hasResourceProperties('AWS::ApiGateway::RestApi', { BinaryMediaTypes: ['*/*'] });
  });

  it('keeps application/octet-stream only in front of other integrations, whose mapping templates and mocks read text', () => {
    const { stack } = newStack();
    const mock = new apigw.MockIntegration({ requestTemplates: { 'application/json': '{"statusCode": 200}' }, integrationResponses: [{ statusCode: '200' }] });
    new InferenceApi(stack, 'Inference', { integrations: { integrationFor: () => mock, methodResponsesFor: () => [{ statusCode: '200' }] } });
    Template.fromStack(stack).hasResourceProperties('AWS::ApiGateway::RestApi', { BinaryMediaTypes: ['application/octet-stream'] });
  });

  it("converts the CORS preflight mock's payloads to text, which fail as binary", () => {
    const { template } = setup({ cors: { allowOrigins: ['https://app.example.com'] } });
    const options = routes(template).filter((r) => r.route.startsWith('OPTIONS '));
    expect(options.length).toBeGreaterThan(0);
    for (const { route, props } of options) {
      expect(props.Integration.ContentHandling, route).toBe('CONVERT_TO_TEXT');
      expect(props.Integration.IntegrationResponses[0].ContentHandling, route).toBe('CONVERT_TO_TEXT');
      expect(props.Integration.IntegrationResponses[0].ResponseParameters, route).toBeDefined();
    }
    for (const { route, props } of routes(template).filter((r) => !r.route.startsWith('OPTIONS '))) {
      expect(props.Integration.ContentHandling, route).toBeUndefined();
    }
  });

  it('keeps the request model on application/json only: a binary body is not checked against the JSON schema', () => {
    const { template } = setup();
    const infer = resourcesOf(template, 'AWS::ApiGateway::Method').filter(([, r]) => r.Properties?.RequestModels);
    // The infer route, with and without a version.
    expect(infer).toHaveLength(2);
    for (const [, r] of infer) expect(Object.keys(r.Properties.RequestModels)).toEqual(['application/json']);
  });
});
