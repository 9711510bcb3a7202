import { Size } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as efs from 'aws-cdk-lib/aws-efs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { describe, expect, it } from 'vitest';
import { AsyncInference, ModelRepositoryEndpoint, type ModelRepositoryEndpointProps } from '../../../lib';
import { nagFindings, newStack, resourceProps, roleStatements, thrown } from '../../support/stacks';

function setup(props: ModelRepositoryEndpointProps = {}) {
  const { app, stack } = newStack();
  const endpoint = new ModelRepositoryEndpoint(stack, 'Models', props);
  return {
    app,
    stack,
    endpoint,
    /** Synthesized on first use: grants come before. */
    get template() {
      return Template.fromStack(stack);
    },
  };
}

describe('ModelRepositoryEndpoint', () => {
  it('serves a repository under models/ of a bucket it creates, with /tmp sized for the disk budget', () => {
    const { endpoint, template } = setup();
    const fn = resourceProps(template, endpoint.function);
    const env = fn.Environment.Variables;
    expect(env.MODEL_REPOSITORY_S3_URI).toEqual({ 'Fn::Join': ['', ['s3://', { Ref: expect.stringMatching(/^ModelsModelBucket/) }, '/models/']] });
    expect(env.MODEL_CACHE_DISK_MB).toBe('2048');
    expect(env.MODEL_CACHE_MEMORY_MB).toBeUndefined();
    expect(env.MODEL_S3_URI).toBeUndefined();
    expect(fn.EphemeralStorage.Size).toBeGreaterThanOrEqual(2048 + 256);
    expect(endpoint.prefix).toBe('models/');
    expect(endpoint.bucket).toBeDefined();
    const statements = roleStatements(template, endpoint.role);
    expect(statements).toContainEqual(expect.objectContaining({ Action: 's3:GetObject', Resource: { 'Fn::Join': ['', [expect.anything(), '/models/*']] } }));
    expect(statements).toContainEqual(expect.objectContaining({ Action: 's3:ListBucket', Condition: { StringLike: { 's3:prefix': 'models/*' } } }));
  });

  it('routes every model by a path parameter, and the index', () => {
    const { template } = setup();
    const paths = Object.values(template.findResources('AWS::ApiGateway::Resource')).map((r) => r.Properties.PathPart);
    expect(paths).toEqual(expect.arrayContaining(['{model}', '{version}', 'repository', 'index', 'infer']));
    const resources = template.toJSON().Resources;
    const index = Object.keys(resources).find((k) => resources[k].Type === 'AWS::ApiGateway::Resource' && resources[k].Properties.PathPart === 'index');
    const methods = Object.values(template.findResources('AWS::ApiGateway::Method')).filter((m) => m.Properties.ResourceId.Ref === index);
    expect(methods.map((m) => m.Properties.HttpMethod)).toEqual(['POST']);
  });

  it('passes the budgets and warm models to the function', () => {
    const { endpoint, template } = setup({ memoryBudget: Size.mebibytes(900), diskBudget: Size.gibibytes(4), warmModels: ['churn', 'fraud:2'], prefix: 'repo/' });
    const env = resourceProps(template, endpoint.function).Environment.Variables;
    expect(env).toMatchObject({ MODEL_CACHE_MEMORY_MB: '900', MODEL_CACHE_DISK_MB: '4096', MODEL_REPOSITORY_WARM_MODELS: 'churn,fraud:2' });
    expect(resourceProps(template, endpoint.function).EphemeralStorage.Size).toBeGreaterThanOrEqual(4096 + 256);
  });

  it('grants the named models only, with no wildcard', () => {
    const { stack, endpoint } = setup();
    const role = new iam.Role(stack, 'Caller', { assumedBy: new iam.AccountRootPrincipal() });
    endpoint.grantInvokeModels(role, ['churn', 'fraud:2']);
    const statements = JSON.stringify(roleStatements(Template.fromStack(stack), role));
    const arns = [...statements.matchAll(/"\/(GET|POST)(\/v2[^"]*)"/g)].map((m) => `${m[1]} ${m[2]}`);
    expect(arns).toEqual(
      expect.arrayContaining([
        'POST /v2/models/churn/infer',
        'GET /v2/models/churn',
        'POST /v2/models/fraud/versions/2/infer',
        'POST /v2/models/fraud/infer',
        'GET /v2/health/ready',
      ]),
    );
    expect(arns.some((a) => a.includes('churn/versions'))).toBe(false);
    expect(arns.some((a) => a.includes('*') || a.includes('repository'))).toBe(false);
  });

  it('has no unacknowledged cdk-nag finding, the grant of named models included', () => {
    const { app, stack, endpoint } = setup({ warmModels: ['churn'] });
    endpoint.grantInvokeModels(new iam.Role(stack, 'Caller', { assumedBy: new iam.AccountRootPrincipal() }), ['churn']);
    expect(nagFindings(app)).toEqual([]);
  });

  it('adds the top models to the dashboard, and metrics per model with the model dimension', () => {
    const { endpoint, template } = setup({ monitoring: {} });
    const body = JSON.stringify(Object.values(template.findResources('AWS::CloudWatch::Dashboard'))[0].Properties.DashboardBody);
    expect(body).toContain('Top models by requests');
    expect(body).toContain('GROUP BY model ORDER BY COUNT() DESC LIMIT 10');
    const metric = endpoint.metricLatencyForModel('churn');
    expect(metric).toMatchObject({ metricName: 'ModelRequestMs', namespace: 'CdkServerlessInference', statistic: 'p99' });
    expect(metric.dimensions).toMatchObject({ model: 'churn', service: expect.any(String) });
    expect(endpoint.metricCacheHitsForModel('churn').statistic).toBe('Average');
    expect(endpoint.metricEvictionsForModel('churn').metricName).toBe('ModelEvicted');
  });

  it('serves a repository on EFS through an access point', () => {
    const { stack } = newStack();
    const vpc = new ec2.Vpc(stack, 'Vpc', { natGateways: 0, subnetConfiguration: [{ name: 'isolated', subnetType: ec2.SubnetType.PRIVATE_ISOLATED }] });
    const fileSystem = new efs.FileSystem(stack, 'Fs', { vpc });
    const accessPoint = fileSystem.addAccessPoint('Models', { path: '/repository' });
    const endpoint = new ModelRepositoryEndpoint(stack, 'Models', { accessPoint, vpc });
    const fn = resourceProps(Template.fromStack(stack), endpoint.function);
    expect(fn.Environment.Variables.MODEL_REPOSITORY_PATH).toBe('/mnt/models');
    expect(fn.FileSystemConfigs[0].LocalMountPath).toBe('/mnt/models');
    expect(endpoint.bucket).toBeUndefined();
  });

  it('refuses data capture, a shadow and variants, which its handler does not run, and an async queue', () => {
    const stream = { responseTransferMode: apigw.ResponseTransferMode.STREAM };
    const e = thrown(() => setup({ api: stream, dataCapture: {} }));
    expect(e.message).toMatch(/dataCapture is not supported by a model repository/);
    expect(e.constructPath).toBe('Stack/Models');
    const { stack } = newStack();
    const models = new ModelRepositoryEndpoint(stack, 'Models');
    expect(thrown(() => new AsyncInference(stack, 'Async', { endpoint: models })).message).toMatch(/AsyncInference: endpoint is a ModelRepositoryEndpoint/);
  });

  it('refuses misused props, naming the construct, the prop and the limit', () => {
    expect(thrown(() => setup({ warmModels: ['../etc'] })).message).toContain('ModelRepositoryPackaging: warmModels are model names');
    expect(thrown(() => setup({ prefix: '/models' })).message).toContain("ModelRepositoryPackaging: prefix must be empty or end in '/'");
    expect(thrown(() => setup({ diskBudget: Size.gibibytes(10) })).message).toContain('ModelRepositoryPackaging: diskBudget must be between 1 MiB and 9984 MiB');
    expect(thrown(() => setup({ memoryBudget: Size.kibibytes(10) })).message).toContain('ModelRepositoryPackaging: memoryBudget must be at least 1 MiB');
    const { stack } = newStack();
    const bucket = new s3.Bucket(stack, 'B');
    const vpc = new ec2.Vpc(stack, 'Vpc', { natGateways: 0 });
    const accessPoint = new efs.FileSystem(stack, 'Fs', { vpc }).addAccessPoint('Ap');
    expect(thrown(() => new ModelRepositoryEndpoint(stack, 'Both', { bucket, accessPoint, vpc })).message).toContain('accessPoint serves the repository from EFS');
    expect(thrown(() => new ModelRepositoryEndpoint(stack, 'NoVpc', { accessPoint })).message).toContain('accessPoint needs the vpc');
    const one = setup();
    expect(thrown(() => one.endpoint.grantInvokeModels(new iam.Role(one.stack, 'R', { assumedBy: new iam.AccountRootPrincipal() }), ['a/b'])).message).toContain(
      'grantInvokeModels takes model names',
    );
  });
});
