import * as fs from 'node:fs';
import * as path from 'node:path';
import { Duration, Size, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sagemaker from 'aws-cdk-lib/aws-sagemaker';
import { describe, expect, it } from 'vitest';
import { ModelArtifact, SageMakerEndpoint, SageMakerIntegration, SageMakerProxyEndpoint, type SageMakerProxyEndpointProps } from '../../../lib';
import { tempDir } from '../../support/handler';
import { newStack, ref, resourceProps, roleStatements } from '../../support/stacks';
import { escapeJavaScript, renderMappingTemplate } from '../../support/vtl';

const ENDPOINT_ARN = { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':sagemaker:eu-west-1:123456789012:endpoint/my-endpoint']] };
const IMAGE = '763104351884.dkr.ecr.eu-west-1.amazonaws.com/pytorch-inference:2.1-cpu-py310';

function setup(props: Partial<SageMakerProxyEndpointProps> = {}) {
  const { app, stack } = newStack();
  const endpoint = new SageMakerProxyEndpoint(stack, 'E', { endpoint: SageMakerEndpoint.fromEndpointName('My-Endpoint'), ...props });
  return { app, stack, endpoint, template: Template.fromStack(stack) };
}

function modelTarball(): string {
  const file = path.join(tempDir('csi-sm-'), 'model.tar.gz');
  fs.writeFileSync(file, 'not really a tarball, only an asset');
  return file;
}

describe('SageMakerProxyEndpoint with the Lambda proxy (default)', () => {
  const f = setup();
  const fn = () => resourceProps(f.template, f.endpoint.function!);

  it('runs the proxy handler on arm64 with 512 MiB, without the ONNX Runtime layer', () => {
    expect(fn()).toMatchObject({ Runtime: 'nodejs24.x', Architectures: ['arm64'], MemorySize: 512, Timeout: 30, Handler: 'index.handler' });
    expect(fn().Layers).toBeUndefined();
    f.template.resourceCountIs('AWS::Lambda::LayerVersion', 0);
    // No onnxruntime here, so no arm64 warning.
    expect(Annotations.fromStack(f.stack).findWarning('*', Match.stringLikeRegexp('10038'))).toHaveLength(0);
  });

  it('tells the proxy which endpoint, content types and timeout', () => {
    expect(fn().Environment.Variables).toMatchObject({
      SAGEMAKER_ENDPOINT_NAME: 'My-Endpoint',
      SAGEMAKER_CONTENT_TYPE: 'application/json',
      SAGEMAKER_ACCEPT: 'application/json',
      SAGEMAKER_TIMEOUT_MS: '25000',
      MODEL_NAME: 'model',
    });
    expect(Object.keys(fn().Environment.Variables).filter((k) => k.startsWith('ORT_'))).toEqual([]);
  });

  it('may invoke that one endpoint and nothing else of SageMaker', () => {
    const statements = roleStatements(f.template, f.endpoint.inferenceFunction!.role).filter((s) => String(s.Action).startsWith('sagemaker:'));
    expect(statements).toEqual([{ Effect: 'Allow', Action: 'sagemaker:InvokeEndpoint', Resource: ENDPOINT_ARN }]);
  });

  it('serves the same Open Inference Protocol routes through the Lambda proxy', () => {
    const methods = Object.values(f.template.findResources('AWS::ApiGateway::Method'));
    expect(methods).toHaveLength(9);
    for (const m of methods) expect(m.Properties.Integration.Type).toBe('AWS_PROXY');
    expect(f.endpoint.url).toBe(f.endpoint.api.url);
  });

  it('content types, timeout and function options pass through', () => {
    const g = setup({
      contentType: 'text/csv',
      accept: 'application/jsonlines',
      invokeTimeout: Duration.seconds(10),
      proxy: { memorySize: 1024, architecture: lambda.Architecture.X86_64 },
    });
    const props = resourceProps(g.template, g.endpoint.function!);
    expect(props).toMatchObject({ MemorySize: 1024, Architectures: ['x86_64'] });
    expect(props.Environment.Variables).toMatchObject({ SAGEMAKER_CONTENT_TYPE: 'text/csv', SAGEMAKER_ACCEPT: 'application/jsonlines', SAGEMAKER_TIMEOUT_MS: '10000' });
  });

  it('runs your own entry with hooks instead', () => {
    const dir = tempDir('csi-sm-code-');
    fs.writeFileSync(path.join(dir, 'index.mjs'), 'export const handler = async () => ({});');
    const g = setup({ proxy: { code: lambda.Code.fromAsset(dir) } });
    expect(resourceProps(g.template, g.endpoint.function!).Code.S3Key).toMatch(/^[0-9a-f]{64}\.zip$/);
  });
});

describe('SageMakerProxyEndpoint with a direct integration', () => {
  const f = setup({ integration: SageMakerIntegration.DIRECT });
  const methods = () => Object.values(f.template.findResources('AWS::ApiGateway::Method')).map((m) => m.Properties);

  it('has no function at all', () => {
    f.template.resourceCountIs('AWS::Lambda::Function', 0);
    expect(f.endpoint.inferenceFunction).toBeUndefined();
    expect(f.endpoint.function).toBeUndefined();
  });

  it('has API Gateway call InvokeEndpoint with its own role, on the one endpoint', () => {
    const infer = methods().filter((m) => m.HttpMethod === 'POST');
    expect(infer).toHaveLength(2);
    for (const m of infer) {
      expect(m.Integration).toMatchObject({
        Type: 'AWS',
        IntegrationHttpMethod: 'POST',
        Credentials: { 'Fn::GetAtt': [ref(f.endpoint.integrationRole!).Ref, 'Arn'] },
        PassthroughBehavior: 'NEVER',
        RequestParameters: { 'integration.request.header.Content-Type': "'application/json'", 'integration.request.header.Accept': "'application/json'" },
        TimeoutInMillis: 25000,
      });
      expect(JSON.stringify(m.Integration.Uri)).toContain(':runtime.sagemaker:path/endpoints/My-Endpoint/invocations');
      expect(m.MethodResponses.map((r: any) => r.StatusCode)).toEqual(['200', '400', '413', '415', '422', '429', '500', '502', '503']);
    }
    expect(resourceProps(f.template, f.endpoint.integrationRole!).AssumeRolePolicyDocument.Statement[0].Principal).toEqual({ Service: 'apigateway.amazonaws.com' });
    expect(roleStatements(f.template, f.endpoint.integrationRole!)).toEqual([{ Effect: 'Allow', Action: 'sagemaker:InvokeEndpoint', Resource: ENDPOINT_ARN }]);
  });

  it('answers metadata, health and readiness itself, in the protocol’s shape', () => {
    const gets = methods().filter((m) => m.HttpMethod === 'GET');
    expect(gets).toHaveLength(7);
    const bodies = gets.map((m) => {
      expect(m.Integration.Type).toBe('MOCK');
      return JSON.parse(m.Integration.IntegrationResponses[0].ResponseTemplates['application/json']);
    });
    expect(bodies).toEqual(
      expect.arrayContaining([{ live: true }, { ready: true }, { name: 'model', ready: true }, { name: 'model', versions: ['1'], platform: 'sagemaker', inputs: [], outputs: [] }]),
    );
  });

  it('refuses proxy options', () => {
    expect(() => setup({ integration: SageMakerIntegration.DIRECT, proxy: { memorySize: 1024 } })).toThrow(/proxy applies to SageMakerIntegration.LAMBDA_PROXY/);
  });
});

const SAGEMAKER_HEADERS = ['X-Amzn-SageMaker-Custom-Attributes', 'X-Amzn-SageMaker-Target-Model', 'X-Amzn-SageMaker-Target-Variant', 'X-Amzn-SageMaker-Inference-Id'];

/** SageMaker's error answers as they come back to API Gateway: its account, log stream and the container's words in them. */
const SAGEMAKER_ERRORS: Array<[string, number, string]> = [
  [
    "a container's refusal (ModelError), quotes in its message",
    424,
    JSON.stringify({
      ErrorCode: 'CLIENT_ERROR_FROM_MODEL',
      Message: `Received client error (400) from primary with message "input 'x' has shape [1,3]". See the log group /aws/sagemaker/Endpoints/my-endpoint in account 123456789012 for more information.`,
      OriginalStatusCode: 400,
      OriginalMessage: `input 'x' has shape [1,3], expected "[1,4]" \\ see /opt/ml/model/code/inference.py`,
      LogStreamArn: 'arn:aws:logs:eu-west-1:123456789012:log-group:/aws/sagemaker/Endpoints/my-endpoint',
    }),
  ],
  [
    "a container's own failure (ModelError)",
    424,
    JSON.stringify({
      ErrorCode: 'SERVER_ERROR_FROM_MODEL',
      Message:
        'Received server error (500) from primary with message "Traceback (most recent call last):\n  File \'/opt/ml/model/code/inference.py\'". See the log group /aws/sagemaker/Endpoints/my-endpoint in account 123456789012 for more information.',
      OriginalStatusCode: 500,
      OriginalMessage: "Traceback (most recent call last):\n  File '/opt/ml/model/code/inference.py'",
      LogStreamArn: 'arn:aws:logs:eu-west-1:123456789012:log-group:/aws/sagemaker/Endpoints/my-endpoint',
    }),
  ],
  ['a ValidationError', 400, JSON.stringify({ message: "Endpoint my-endpoint of account 123456789012 not found. Target variant 'x' unknown." })],
  [
    'SageMaker refusing the API’s role',
    403,
    JSON.stringify({ message: 'User: arn:aws:sts::123456789012:assumed-role/IntegrationRole/x is not authorized to perform: sagemaker:InvokeEndpoint' }),
  ],
  ['a body over the limit, refused before the endpoint', 413, 'HTTP content length exceeded 6291456 bytes.'],
  ['a model not ready', 429, JSON.stringify({ message: "Model 'iris' is not ready for account 123456789012" })],
  ["SageMaker's own failure", 500, JSON.stringify({ message: 'An internal failure occurred for account 123456789012' })],
  ['SageMaker unavailable', 503, JSON.stringify({ message: 'Service unavailable' })],
];

/** The infer route's integration responses, as synthesized. */
function inferResponses(template: Template): any[] {
  const infer = Object.values(template.findResources('AWS::ApiGateway::Method')).filter((m) => m.Properties.HttpMethod === 'POST');
  expect(infer).toHaveLength(2);
  expect(infer[1].Properties.Integration.IntegrationResponses).toEqual(infer[0].Properties.Integration.IntegrationResponses);
  return infer[0].Properties.Integration.IntegrationResponses;
}

/**
 * What API Gateway answers for SageMaker's status and body: the integration response whose
 * selection pattern matches the status (API Gateway matches the whole status), or the default one,
 * its template rendered with API Gateway's rules, its status overridden where the template says so.
 */
function directAnswer(responses: any[], status: number, body: string) {
  const matching = responses.filter((r) => r.SelectionPattern !== undefined && new RegExp(`^(?:${r.SelectionPattern})$`).test(String(status)));
  // API Gateway defines no order among patterns that match the same status.
  expect(matching.length, `integration responses matching ${status}`).toBeLessThanOrEqual(1);
  const chosen = matching[0] ?? responses.find((r) => r.SelectionPattern === undefined);
  const template: string | undefined = chosen.ResponseTemplates?.['application/json'];
  const rendered = template === undefined ? { output: body } : renderMappingTemplate(template, { body, requestId: 'api-request-id' });
  return { status: rendered.statusOverride ?? Number(chosen.StatusCode), text: rendered.output, headers: chosen.ResponseParameters ?? {} };
}

describe('SageMakerProxyEndpoint with a direct integration: what callers get', () => {
  const f = setup({ integration: SageMakerIntegration.DIRECT });
  const responses = () => inferResponses(f.template);

  it('passes the caller’s X-Amzn-SageMaker-* headers to InvokeEndpoint, each declared on the infer methods as optional', () => {
    const methods = Object.values(f.template.findResources('AWS::ApiGateway::Method')).map((m) => m.Properties);
    for (const m of methods.filter((m) => m.HttpMethod === 'POST')) {
      for (const header of SAGEMAKER_HEADERS) {
        expect(m.Integration.RequestParameters[`integration.request.header.${header}`]).toBe(`method.request.header.${header}`);
        expect(m.RequestParameters[`method.request.header.${header}`]).toBe(false);
      }
    }
    const versioned = methods.filter((m) => m.HttpMethod === 'POST' && m.RequestParameters['method.request.path.version'] === true);
    expect(versioned).toHaveLength(1);
    for (const m of methods.filter((m) => m.HttpMethod === 'GET')) {
      expect(Object.keys(m.RequestParameters ?? {}).filter((p) => p.includes('SageMaker'))).toEqual([]);
    }
  });

  it('maps each of SageMaker’s statuses through exactly one integration response: its refusals to a 4xx, its failures to a 5xx', () => {
    const expected = (status: number) => {
      if (status === 401 || status === 403) return 500;
      if ([413, 429, 503].includes(status)) return status;
      if (status === 424) return 502; // ModelError without an OriginalStatusCode; see the next test
      return status < 500 ? 400 : 502;
    };
    for (let status = 400; status < 600; status++) {
      expect(directAnswer(responses(), status, '{}').status, `SageMaker status ${status}`).toBe(expected(status));
    }
    expect(directAnswer(responses(), 200, '{"outputs": []}')).toEqual({ status: 200, text: '{"outputs": []}', headers: {} });
  });

  it.each(SAGEMAKER_ERRORS)('answers %s in the proxy’s shape: valid JSON, the request id, nothing of SageMaker’s answer', (_what, status, body) => {
    const answer = directAnswer(responses(), status, body);

    const parsed = JSON.parse(answer.text);
    expect(Object.keys(parsed)).toEqual(['error']);
    expect(parsed.error).toMatch(/\S \(request id api-request-id\)$/);
    expect(answer.text).not.toMatch(/123456789012|arn:aws|log-group|inference\.py|Traceback|shape \[1,3\]|my-endpoint|not authorized/);
  });

  it.each<[number | string | undefined, number, string]>([
    [400, 400, 'the model refused the request (status 400)'],
    [413, 413, 'the model refused the request (status 413)'],
    [415, 415, 'the model refused the request (status 415)'],
    [422, 422, 'the model refused the request (status 422)'],
    [429, 429, 'the model refused the request (status 429)'],
    [404, 400, 'the model refused the request (status 404)'],
    [401, 400, 'the model refused the request (status 401)'],
    [500, 502, 'the model container failed on this request (status 500)'],
    [503, 502, 'the model container failed on this request (status 503)'],
    [undefined, 502, 'the model container failed on this request (status unknown)'],
    ['400", "x": "y', 502, 'the model container failed on this request (status unknown)'],
  ])("answers a container's status %s (ModelError) as the proxy does: %i", (original, status, message) => {
    const body = JSON.stringify({ ErrorCode: 'X', Message: 'm', ...(original === undefined ? {} : { OriginalStatusCode: original }), OriginalMessage: 'it\'s "bad"' });

    const answer = directAnswer(responses(), 424, body);

    expect(answer.status).toBe(status);
    expect(JSON.parse(answer.text)).toEqual({ error: `${message} (request id api-request-id)` });
  });

  it('asks a caller to retry after throttling or unavailability, with Retry-After', () => {
    for (const status of [429, 503]) {
      expect(directAnswer(responses(), status, '{}').headers).toEqual({ 'method.response.header.Retry-After': "'1'" });
    }
    const infer = Object.values(f.template.findResources('AWS::ApiGateway::Method')).find((m) => m.Properties.HttpMethod === 'POST')!;
    const declared = infer.Properties.MethodResponses.filter((r: any) => r.ResponseParameters?.['method.response.header.Retry-After'] === true);
    expect(declared.map((r: any) => r.StatusCode)).toEqual(['429', '503']);
  });
});

describe('SageMakerProxyEndpoint request limits: SageMaker’s, not Lambda’s', () => {
  const serverless = () => SageMakerEndpoint.serverless({ image: IMAGE });
  const bodyLimit = (endpoint: SageMakerProxyEndpoint) => resourceProps(Template.fromStack(Stack.of(endpoint)), endpoint.function!).Environment.Variables.MAX_BODY_BYTES;

  it.each<[string, string, (stack: Stack) => SageMakerEndpoint]>([
    ['an endpoint on instances, by name', '6291456', () => SageMakerEndpoint.fromEndpointName('my-endpoint')],
    ['a provisioned endpoint', '6291456', () => SageMakerEndpoint.provisioned({ image: IMAGE, instanceType: 'ml.g5.xlarge' })],
    ['a serverless endpoint', '4194304', serverless],
    ['a serverless endpoint, by name', '4194304', () => SageMakerEndpoint.fromEndpointName('my-endpoint', { serverless: true })],
    [
      'a serverless endpoint of your app',
      '4194304',
      (stack) => SageMakerEndpoint.fromCfnEndpoint(new sagemaker.CfnEndpoint(stack, 'Mine', { endpointConfigName: 'c' }), { serverless: true }),
    ],
  ])('the proxy takes at most SageMaker’s request size for %s: MAX_BODY_BYTES %s', (_what, limit, endpoint) => {
    const { stack } = newStack();
    expect(bodyLimit(new SageMakerProxyEndpoint(stack, 'E', { endpoint: endpoint(stack) }))).toBe(limit);
  });

  it("a direct integration answers SageMaker's 413 naming the endpoint's limit", () => {
    const { stack } = newStack();
    new SageMakerProxyEndpoint(stack, 'E', { endpoint: serverless(), integration: SageMakerIntegration.DIRECT });

    const answer = directAnswer(inferResponses(Template.fromStack(stack)), 413, 'HTTP content length exceeded');

    expect(answer.status).toBe(413);
    expect(JSON.parse(answer.text).error).toBe('the request is too large for the SageMaker endpoint; it takes at most 4194304 bytes (request id api-request-id)');
    expect(JSON.parse(directAnswer(inferResponses(Template.fromStack(stack)), 400, '{}').text).error).toContain('at most 4194304 bytes');
  });
});

describe('the mapping template renderer these tests use, against what AWS documents', () => {
  it("$util.escapeJavaScript turns a single quote into \\', which is not JSON", () => {
    expect(escapeJavaScript(`it's "x"/y\\z\n\u00e9`)).toBe(`it\\'s \\"x\\"\\/y\\\\z\\n\\u00E9`);
    const { output } = renderMappingTemplate('{"error": "$util.escapeJavaScript($input.body)"}', { body: "it's", requestId: 'r' });
    expect(output).toBe(`{"error": "it\\'s"}`);
    expect(() => JSON.parse(output)).toThrow();
  });

  it('reads $input.path as a value, keeps a variable a null #set would clear, and writes an unset reference as it stands', () => {
    const template = "#set($n = 1)\n#set($n = $input.path('$.missing'))\n#if($n >= 1 && $input.path('$.a.b') == 'c')yes $n#else no#end $nothing $context.requestId";
    expect(renderMappingTemplate(template, { body: '{"a": {"b": "c"}}', requestId: 'r-1' }).output).toBe('yes 1 $nothing r-1');
    expect(renderMappingTemplate('#set($context.responseOverride.status = 413)', { body: '', requestId: 'r' }).statusOverride).toBe(413);
    expect(() => renderMappingTemplate('#foreach($x in $y)#end', { body: '', requestId: 'r' })).toThrow(/does not know/);
  });
});

describe('SageMakerProxyEndpoint creating the endpoint', () => {
  it('serverless by default: model, endpoint config with a serverless variant, endpoint', () => {
    const { stack } = newStack();
    const endpoint = new SageMakerProxyEndpoint(stack, 'E', {
      endpoint: SageMakerEndpoint.serverless({ image: IMAGE, modelData: ModelArtifact.fromAsset(modelTarball()), environment: { SAGEMAKER_PROGRAM: 'inference.py' } }),
    });
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::SageMaker::Model', {
      PrimaryContainer: { Image: IMAGE, ModelDataUrl: Match.anyValue(), Environment: { SAGEMAKER_PROGRAM: 'inference.py' } },
    });
    template.hasResourceProperties('AWS::SageMaker::EndpointConfig', {
      ProductionVariants: [{ VariantName: 'AllTraffic', ServerlessConfig: { MemorySizeInMB: 2048, MaxConcurrency: 5 }, ModelName: Match.anyValue() }],
    });
    template.resourceCountIs('AWS::SageMaker::Endpoint', 1);
    // The proxy invokes exactly the endpoint it created, once it exists.
    const statements = roleStatements(template, endpoint.inferenceFunction!.role).filter((s) => String(s.Action).startsWith('sagemaker:'));
    expect(statements).toEqual([{ Effect: 'Allow', Action: 'sagemaker:InvokeEndpoint', Resource: ref(endpoint.cfnEndpoint!) }]);
    expect(template.toJSON().Resources[ref(endpoint.function!).Ref].DependsOn).toContain(ref(endpoint.cfnEndpoint!).Ref);
    // The model's role reads the artifact and writes SageMaker's logs.
    const roleId = Object.keys(
      template.findResources('AWS::IAM::Role', { Properties: { AssumeRolePolicyDocument: { Statement: [{ Principal: { Service: 'sagemaker.amazonaws.com' } }] } } }),
    );
    expect(roleId).toHaveLength(1);
    const sageMakerRole = endpoint.node.findChild('SageMakerRole');
    expect(ref(sageMakerRole).Ref).toBe(roleId[0]);
    const s3Actions = roleStatements(template, sageMakerRole).filter((st) => String(st.Action).startsWith('s3:'));
    expect(s3Actions).toEqual([{ Effect: 'Allow', Action: 's3:GetObject', Resource: expect.anything() }]);
    expect(JSON.stringify(s3Actions[0].Resource)).toMatch(/\/[0-9a-f]{64}\.gz"/);
  });

  it('serverless memory and concurrency', () => {
    const { stack } = newStack();
    new SageMakerProxyEndpoint(stack, 'E', { endpoint: SageMakerEndpoint.serverless({ image: IMAGE, memorySize: Size.gibibytes(6), maxConcurrency: 50 }) });
    Template.fromStack(stack).hasResourceProperties('AWS::SageMaker::EndpointConfig', {
      ProductionVariants: [Match.objectLike({ ServerlessConfig: { MemorySizeInMB: 6144, MaxConcurrency: 50 } })],
    });
  });

  it('provisioned: an instance type and count', () => {
    const { stack } = newStack();
    new SageMakerProxyEndpoint(stack, 'E', { endpoint: SageMakerEndpoint.provisioned({ image: IMAGE, instanceType: 'ml.g5.xlarge', initialInstanceCount: 2 }) });
    Template.fromStack(stack).hasResourceProperties('AWS::SageMaker::EndpointConfig', {
      ProductionVariants: [Match.objectLike({ InstanceType: 'ml.g5.xlarge', InitialInstanceCount: 2, InitialVariantWeight: 1 })],
    });
  });

  it('an endpoint of your app, given as CfnEndpoint', () => {
    const { stack } = newStack();
    const cfn = new sagemaker.CfnEndpoint(stack, 'Mine', { endpointConfigName: 'config' });
    const endpoint = new SageMakerProxyEndpoint(stack, 'E', { endpoint: SageMakerEndpoint.fromCfnEndpoint(cfn, { variantName: 'Blue' }) });
    expect(endpoint.cfnEndpoint).toBe(cfn);
    expect(stack.resolve(endpoint.metricSageMakerModelLatency().dimensions)).toEqual({ EndpointName: { 'Fn::GetAtt': [ref(cfn).Ref, 'EndpointName'] }, VariantName: 'Blue' });
  });
});

describe('SageMakerProxyEndpoint synth errors', () => {
  const cases: Array<[string, () => unknown, RegExp]> = [
    ['serverless memory', () => SageMakerEndpoint.serverless({ image: IMAGE, memorySize: Size.mebibytes(1536) }), /memorySize must be 1, 2, 3, 4, 5 or 6 GiB .* got: 1536 MiB/],
    ['serverless concurrency', () => SageMakerEndpoint.serverless({ image: IMAGE, maxConcurrency: 201 }), /maxConcurrency must be a whole number from 1 to 200, got: 201/],
    [
      'instance count',
      () => SageMakerEndpoint.provisioned({ image: IMAGE, instanceType: 'ml.m5.large', initialInstanceCount: 0 }),
      /initialInstanceCount must be a whole number of at least 1, got: 0/,
    ],
    [
      'instance type',
      () => SageMakerEndpoint.provisioned({ image: IMAGE, instanceType: 'g5.xlarge' }),
      /instanceType must be a SageMaker instance type such as ml.g5.xlarge, got: g5.xlarge/,
    ],
    ['empty image', () => SageMakerEndpoint.serverless({ image: ' ' }), /image must be a container image URI/],
    [
      'endpoint name',
      () => new SageMakerProxyEndpoint(newStack().stack, 'E', { endpoint: SageMakerEndpoint.fromEndpointName('my_endpoint') }),
      /not a SageMaker endpoint name .* got: my_endpoint/,
    ],
    ['invoke timeout', () => setup({ invokeTimeout: Duration.seconds(29) }), /invokeTimeout must be under API Gateway's 29 s integration limit .* got: 29 seconds/],
  ];
  it.each(cases)('%s', (_name, make, message) => {
    expect(make).toThrow(message);
  });
});

describe('SageMakerProxyEndpoint metrics', () => {
  it("reads SageMaker's own metrics of the endpoint and variant", () => {
    const f = setup();
    expect(f.endpoint.metricSageMakerModelLatency()).toMatchObject({ namespace: 'AWS/SageMaker', metricName: 'ModelLatency', statistic: 'p99' });
    expect(f.endpoint.metricSageMakerInvocations().dimensions).toEqual({ EndpointName: 'My-Endpoint', VariantName: 'AllTraffic' });
    expect(f.endpoint.metricSageMakerServerErrors().metricName).toBe('Invocation5XXErrors');
    expect(f.endpoint.metricSageMakerClientErrors().metricName).toBe('Invocation4XXErrors');
  });

  it('means by metricInvocations what every endpoint means: invocations of the Lambda function', () => {
    const f = setup();
    expect(f.endpoint.metricInvocations()).toMatchObject({ namespace: 'AWS/Lambda', metricName: 'Invocations' });
    expect(f.endpoint.metricLatency()).toMatchObject({ namespace: 'AWS/ApiGateway', metricName: 'Latency', statistic: 'p99' });
    expect(f.endpoint.metricApiServerErrors()).toMatchObject({ namespace: 'AWS/ApiGateway', metricName: '5XXError', statistic: 'Sum' });
  });

  it('refuses function metrics where there is no function, naming the method', () => {
    const f = setup({ integration: SageMakerIntegration.DIRECT });
    expect(() => f.endpoint.metricInvocations()).toThrow(/metricInvocations reads the inference function's metrics, and this endpoint has none/);
    expect(f.endpoint.metricApiRequests()).toMatchObject({ namespace: 'AWS/ApiGateway', metricName: 'Count' });
  });
});

describe('SageMakerProxyEndpoint operations', () => {
  it('monitoring and rollout are top-level props and watch the proxy function', () => {
    const f = setup({ monitoring: {}, rollout: {} });
    expect(Object.keys(f.endpoint.monitoring!.alarms).sort()).toEqual(['ColdStartRate', 'FunctionErrors', 'LatencyP99', 'ServerErrorRate', 'Throttles']);
    f.template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
    f.template.resourceCountIs('AWS::CodeDeploy::DeploymentGroup', 1);
    expect(f.endpoint.rollout).toBeDefined();
  });

  it('a direct integration gets the API-level alarms and a dashboard', () => {
    const f = setup({ integration: SageMakerIntegration.DIRECT, monitoring: {} });
    expect(Object.keys(f.endpoint.monitoring!.alarms).sort()).toEqual(['LatencyP99', 'ServerErrorRate']);
    f.template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
    f.template.resourceCountIs('AWS::Lambda::Function', 0);
  });

  it.each([
    ['rollout', { rollout: {} }],
    ['warmer', { warmer: true }],
    ['warmerOptions', { warmerOptions: { concurrency: 2 } }],
  ] as const)('a direct integration refuses %s, which needs a function', (prop, extra) => {
    expect(() => setup({ integration: SageMakerIntegration.DIRECT, ...extra })).toThrow(`${prop} needs an inference function, and this endpoint has none`);
  });

  it('warms the proxy by default, and not with warmer: false', () => {
    expect(setup().endpoint.warmer).toBeDefined();
    expect(setup({ warmer: false }).endpoint.warmer).toBeUndefined();
  });
});
