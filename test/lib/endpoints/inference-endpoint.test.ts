import { Errors, type Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { DEMO_MODEL_FILE } from '../../../fixtures/demo-model';
import {
  BundledModelEndpoint,
  ContainerModelEndpoint,
  EfsModelEndpoint,
  type IInferenceEndpoint,
  LayerModelEndpoint,
  ModelEndpoint,
  ModelSource,
  S3ModelEndpoint,
  S3ModelPackaging,
  SageMakerEndpoint,
  SageMakerIntegration,
  SageMakerProxyEndpoint,
} from '../../../lib';
import { nagFindings, newStack, roleStatements, thrown } from '../../support/stacks';

const model = () => ModelSource.fromAsset(DEMO_MODEL_FILE);

/** One of each endpoint, seen only through the interface. */
const endpoints: Record<string, (stack: Stack) => IInferenceEndpoint> = {
  S3ModelEndpoint: (stack) => new S3ModelEndpoint(stack, 'Endpoint', { model: model() }),
  LayerModelEndpoint: (stack) => new LayerModelEndpoint(stack, 'Endpoint', { model: model() }),
  BundledModelEndpoint: (stack) => new BundledModelEndpoint(stack, 'Endpoint', { model: model() }),
  ContainerModelEndpoint: (stack) => new ContainerModelEndpoint(stack, 'Endpoint', { model: model() }),
  EfsModelEndpoint: (stack) => new EfsModelEndpoint(stack, 'Endpoint', { model: model() }),
  SageMakerProxyEndpoint: (stack) => new SageMakerProxyEndpoint(stack, 'Endpoint', { endpoint: SageMakerEndpoint.fromEndpointName('team-endpoint') }),
  'SageMakerProxyEndpoint, direct': (stack) =>
    new SageMakerProxyEndpoint(stack, 'Endpoint', { endpoint: SageMakerEndpoint.fromEndpointName('team-endpoint'), integration: SageMakerIntegration.DIRECT }),
  ModelEndpoint: (stack) => new ModelEndpoint(stack, 'Endpoint', { packaging: new S3ModelPackaging({ model: model() }) }),
};

describe('IInferenceEndpoint', () => {
  it('is implemented by all six endpoints and the generic one', () => {
    expectTypeOf<S3ModelEndpoint>().toExtend<IInferenceEndpoint>();
    expectTypeOf<LayerModelEndpoint>().toExtend<IInferenceEndpoint>();
    expectTypeOf<BundledModelEndpoint>().toExtend<IInferenceEndpoint>();
    expectTypeOf<ContainerModelEndpoint>().toExtend<IInferenceEndpoint>();
    expectTypeOf<EfsModelEndpoint>().toExtend<IInferenceEndpoint>();
    expectTypeOf<SageMakerProxyEndpoint>().toExtend<IInferenceEndpoint>();
    expectTypeOf<ModelEndpoint>().toExtend<IInferenceEndpoint>();
  });

  describe.each(Object.entries(endpoints))('%s', (_name, make) => {
    it('answers at its URL, and its API metrics mean the same as everywhere', () => {
      const { stack } = newStack();
      const endpoint = make(stack);
      expect(stack.resolve(endpoint.url)).toEqual(stack.resolve(endpoint.api.url));
      expect(stack.resolve(endpoint.inferUrl)).toEqual(stack.resolve(endpoint.api.inferUrl));
      expect(endpoint.metricApiRequests()).toMatchObject({ namespace: 'AWS/ApiGateway', metricName: 'Count', statistic: 'Sum' });
      expect(endpoint.metricApiClientErrors()).toMatchObject({ namespace: 'AWS/ApiGateway', metricName: '4XXError', statistic: 'Sum' });
      expect(endpoint.metricApiServerErrors()).toMatchObject({ namespace: 'AWS/ApiGateway', metricName: '5XXError', statistic: 'Sum' });
      expect(endpoint.metricLatency()).toMatchObject({ namespace: 'AWS/ApiGateway', metricName: 'Latency', statistic: 'p99' });
      expect(endpoint.metricIntegrationLatency()).toMatchObject({ namespace: 'AWS/ApiGateway', metricName: 'IntegrationLatency', statistic: 'p99' });
      expect(endpoint.metric('CacheHitCount')).toMatchObject({ namespace: 'AWS/ApiGateway', metricName: 'CacheHitCount' });
    });

    it('grantInvoke names each of its routes, and the caller stays cdk-nag clean', () => {
      const { app, stack } = newStack();
      const endpoint = make(stack);
      const caller = new iam.Role(stack, 'Caller', { assumedBy: new iam.AccountRootPrincipal() });
      endpoint.grantInvoke(caller);
      const [statement, ...more] = roleStatements(Template.fromStack(stack), caller);
      expect(more).toEqual([]);
      expect(statement.Action).toBe('execute-api:Invoke');
      const routes = [statement.Resource].flat().map((r) =>
        JSON.stringify(r)
          .match(/\/(GET|POST)(\/[^"]*)/)
          ?.slice(1)
          .join(' '),
      );
      const version = endpoint.modelVersion;
      expect(routes).toEqual([
        'GET /v2',
        'GET /v2/health/live',
        'GET /v2/health/ready',
        'GET /v2/models/model',
        'GET /v2/models/model/ready',
        'POST /v2/models/model/infer',
        `GET /v2/models/model/versions/${version}`,
        `GET /v2/models/model/versions/${version}/ready`,
        `POST /v2/models/model/versions/${version}/infer`,
      ]);
      expect(nagFindings(app).filter((f) => f.includes('/Caller'))).toEqual([]);
    });
  });
});

describe('reservedConcurrentExecutions', () => {
  const reserved = 7;
  /** Each endpoint with a function, asked for a reservation, and that function. */
  const reserving: Record<string, (stack: Stack) => { endpoint: IInferenceEndpoint; fn: lambda.IFunction }> = {
    S3ModelEndpoint: (stack) => withFn(new S3ModelEndpoint(stack, 'Endpoint', { model: model(), reservedConcurrentExecutions: reserved })),
    LayerModelEndpoint: (stack) => withFn(new LayerModelEndpoint(stack, 'Endpoint', { model: model(), reservedConcurrentExecutions: reserved })),
    BundledModelEndpoint: (stack) => withFn(new BundledModelEndpoint(stack, 'Endpoint', { model: model(), reservedConcurrentExecutions: reserved })),
    ContainerModelEndpoint: (stack) => withFn(new ContainerModelEndpoint(stack, 'Endpoint', { model: model(), reservedConcurrentExecutions: reserved })),
    EfsModelEndpoint: (stack) => withFn(new EfsModelEndpoint(stack, 'Endpoint', { model: model(), reservedConcurrentExecutions: reserved })),
    ModelEndpoint: (stack) => withFn(new ModelEndpoint(stack, 'Endpoint', { packaging: new S3ModelPackaging({ model: model() }), reservedConcurrentExecutions: reserved })),
    SageMakerProxyEndpoint: (stack) => {
      const endpoint = new SageMakerProxyEndpoint(stack, 'Endpoint', {
        endpoint: SageMakerEndpoint.fromEndpointName('team-endpoint'),
        proxy: { reservedConcurrentExecutions: reserved },
      });
      return { endpoint, fn: endpoint.function! };
    },
  };
  function withFn(endpoint: ModelEndpoint): { endpoint: IInferenceEndpoint; fn: lambda.IFunction } {
    return { endpoint, fn: endpoint.function };
  }

  it.each(Object.entries(reserving))("%s: reaches the endpoint's function, and only it", (_name, make) => {
    const { stack } = newStack();
    const { fn } = make(stack);
    const functions = Template.fromStack(stack).findResources('AWS::Lambda::Function');
    const withReservation = Object.entries(functions)
      .filter(([, f]) => f.Properties.ReservedConcurrentExecutions !== undefined)
      .map(([id, f]) => [id, f.Properties.ReservedConcurrentExecutions]);
    // Not the warmer, the model loader or any provider: they run once per deploy or schedule.
    expect(withReservation).toEqual([[stack.getLogicalId(fn.node.defaultChild as lambda.CfnFunction), reserved]]);
  });

  it.each(Object.entries(endpoints))('%s: no reservation unless asked for', (_name, make) => {
    const { stack } = newStack();
    make(stack);
    const functions = Object.values(Template.fromStack(stack).findResources('AWS::Lambda::Function'));
    expect(functions.filter((f) => f.Properties.ReservedConcurrentExecutions !== undefined)).toEqual([]);
  });
});

describe('synth errors', () => {
  it.each([
    [
      'a prop of the endpoint',
      (s: Stack) => new S3ModelEndpoint(s, 'Churn', { model: model(), memorySize: 20_000 }),
      /memorySize must be a whole number of MiB between 128 and 10240/,
    ],
    ['a prop of its packaging', (s: Stack) => new LayerModelEndpoint(s, 'Churn', {}), /LayerModelPackaging: give exactly one of model/],
    ['a prop of its API', (s: Stack) => new BundledModelEndpoint(s, 'Churn', { model: model(), api: { stageName: 'bad stage' } }), /stageName must be 1 to 128/],
    [
      'a warmer prop',
      (s: Stack) => new S3ModelEndpoint(s, 'Churn', { model: model(), warmerOptions: { concurrency: 0 } }),
      /Warmer: concurrency must be a whole number between 1 and 100, got: 0/,
    ],
  ])("are aws-cdk-lib validation errors that name the endpoint's path: %s", (_what, make, message) => {
    const { stack } = newStack();
    new S3ModelEndpoint(stack, 'Fraud', { model: model() });
    const error = thrown(() => make(stack));
    expect(error.message).toMatch(message);
    expect(Errors.isValidationError(error)).toBe(true);
    expect(error.constructPath).toMatch(/^Stack\/Churn(\/|$)/);
  });

  it('a packaging serves one endpoint', () => {
    const { stack } = newStack();
    const packaging = new S3ModelPackaging({ model: model() });
    new ModelEndpoint(stack, 'A', { packaging });
    const error = thrown(() => new ModelEndpoint(stack, 'B', { packaging }));
    expect(error.message).toBe('S3ModelPackaging is bound already: a packaging serves one inference function, so create one per endpoint');
    expect(error.constructPath).toMatch(/^Stack\/B\//);
  });
});
