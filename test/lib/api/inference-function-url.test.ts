import * as apigw from 'aws-cdk-lib/aws-apigateway';
import { Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { describe, expect, it } from 'vitest';
import { DEMO_MODEL_FILE } from '../../../fixtures/demo-model';
import { ModelSource, S3ModelEndpoint, type S3ModelEndpointProps, SageMakerEndpoint, SageMakerIntegration, SageMakerProxyEndpoint } from '../../../lib';
import { nagFindings, newStack, ref, roleStatements, thrown } from '../../support/stacks';

function setup(props: Partial<S3ModelEndpointProps> = {}) {
  const { app, stack } = newStack();
  const endpoint = new S3ModelEndpoint(stack, 'Endpoint', { model: ModelSource.fromAsset(DEMO_MODEL_FILE), ...props });
  return { app, stack, endpoint };
}

function urls(template: Template): Array<Record<string, any>> {
  return Object.values(template.findResources('AWS::Lambda::Url')).map((r) => r.Properties);
}

/** The URL on `alias` as CloudFormation takes it: the function's ARN, qualified by the alias, made after it. */
function onAlias(template: Template, alias: lambda.Alias): void {
  const [url] = Object.values(template.findResources('AWS::Lambda::Url'));
  expect(url.Properties).toMatchObject({ Qualifier: 'live', TargetFunctionArn: { 'Fn::GetAtt': [ref(alias.version.lambda).Ref, 'Arn'] } });
  expect(url.DependsOn).toContain(ref(alias).Ref);
}

describe('an endpoint with functionUrl: {}', () => {
  const f = setup({ functionUrl: {} });
  const template = Template.fromStack(f.stack);

  it("puts one URL on the function's live alias, with IAM auth and buffered answers as the API's", () => {
    expect(urls(template)).toHaveLength(1);
    expect(urls(template)[0]).toMatchObject({ AuthType: 'AWS_IAM', InvokeMode: 'BUFFERED' });
    expect(urls(template)[0].Cors).toBeUndefined();
    onAlias(template, f.endpoint.alias);
    expect(f.endpoint.functionUrl?.invokeMode).toBe(lambda.InvokeMode.BUFFERED);
  });

  it('lets nobody in by a resource policy: with IAM auth, callers need an identity policy', () => {
    const permissions = Object.values(template.findResources('AWS::Lambda::Permission')).map((r) => r.Properties);
    expect(permissions.filter((p) => p.FunctionUrlAuthType !== undefined || p.Principal === '*')).toEqual([]);
  });

  it("names the infer route on the URL, after the URL's own trailing slash", () => {
    const inferUrl = f.stack.resolve(f.endpoint.functionUrl!.inferUrl);
    expect(JSON.stringify(inferUrl)).toContain('v2/models/model/infer');
    expect(JSON.stringify(inferUrl)).not.toContain('/v2/models');
  });

  it('is cdk-nag clean (AwsSolutions and Serverless)', () => {
    expect(nagFindings(f.app)).toEqual([]);
  });
});

describe('grantInvoke with a function URL', () => {
  it('grants the API, lambda:InvokeFunctionUrl on the alias for IAM-authorized URLs, and lambda:InvokeFunction only through a URL', () => {
    const f = setup({ functionUrl: {} });
    const caller = new iam.Role(f.stack, 'Caller', { assumedBy: new iam.AccountRootPrincipal() });
    f.endpoint.grantInvoke(caller);
    const statements = roleStatements(Template.fromStack(f.stack), caller);
    const aliasArn = ref(f.endpoint.alias);
    expect(statements.filter((s) => s.Action === 'execute-api:Invoke')).not.toEqual([]);
    expect(statements).toContainEqual({
      Action: 'lambda:InvokeFunctionUrl',
      Effect: 'Allow',
      Resource: aliasArn,
      Condition: { StringEquals: { 'lambda:FunctionUrlAuthType': 'AWS_IAM' } },
    });
    expect(statements).toContainEqual({ Action: 'lambda:InvokeFunction', Effect: 'Allow', Resource: aliasArn, Condition: { Bool: { 'lambda:InvokedViaFunctionUrl': true } } });
  });

  it('grants no lambda action without a function URL', () => {
    const f = setup();
    const caller = new iam.Role(f.stack, 'Caller', { assumedBy: new iam.AccountRootPrincipal() });
    f.endpoint.grantInvoke(caller);
    const actions = roleStatements(Template.fromStack(f.stack), caller).flatMap((s) => [s.Action].flat());
    expect(actions.filter((a: string) => a.startsWith('lambda:'))).toEqual([]);
    expect(Template.fromStack(f.stack).findResources('AWS::Lambda::Url')).toEqual({});
  });
});

describe('functionUrl choices', () => {
  it('streams when the API streams: one function answers both fronts in one way', () => {
    const f = setup({ functionUrl: {}, api: { responseTransferMode: apigw.ResponseTransferMode.STREAM } });
    expect(urls(Template.fromStack(f.stack))[0].InvokeMode).toBe('RESPONSE_STREAM');
    expect(f.endpoint.inferenceFunction.responseStreaming).toBe(true);
  });

  it('makes the URL public with authType NONE, as asked, with CORS', () => {
    const f = setup({ functionUrl: { authType: lambda.FunctionUrlAuthType.NONE, cors: { allowedOrigins: ['https://example.com'] } } });
    const template = Template.fromStack(f.stack);
    expect(urls(template)[0]).toMatchObject({ AuthType: 'NONE', Cors: { AllowOrigins: ['https://example.com'] } });
    const permissions = Object.values(template.findResources('AWS::Lambda::Permission')).map((r) => r.Properties);
    expect(permissions).toContainEqual(expect.objectContaining({ Action: 'lambda:InvokeFunctionUrl', Principal: '*', FunctionUrlAuthType: 'NONE' }));
  });

  it('fails the synth on a SageMaker endpoint with a direct integration, which has no function', () => {
    const { stack } = newStack();
    const e = thrown(
      () =>
        new SageMakerProxyEndpoint(stack, 'Sm', {
          endpoint: SageMakerEndpoint.fromEndpointName('My-Endpoint'),
          integration: SageMakerIntegration.DIRECT,
          functionUrl: {},
        }),
    );
    expect(e.message).toMatch(/functionUrl needs an inference function, and this endpoint has none/);
    expect(e.constructPath).toBe('Stack/Sm');
  });

  it("puts the URL on the SageMaker proxy's alias", () => {
    const { stack } = newStack();
    const endpoint = new SageMakerProxyEndpoint(stack, 'Sm', { endpoint: SageMakerEndpoint.fromEndpointName('My-Endpoint'), functionUrl: {} });
    onAlias(Template.fromStack(stack), endpoint.alias!);
  });
});
