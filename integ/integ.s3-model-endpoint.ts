// Deploys the demo model behind an S3ModelEndpoint with its defaults, then checks a prediction two
// ways: through API Gateway (the infer route, its validator and its Lambda integration) and by
// invoking the live alias directly. Run against an account with:
//   npx integ-runner --directory integ --app "npx tsx {filePath}" --language typescript
// `npm test` verifies its snapshot offline.
import { App, Stack } from 'aws-cdk-lib';
import { ExpectedResult, IntegTest, Match } from '@aws-cdk/integ-tests-alpha';
import { ModelSource, S3ModelEndpoint } from '../lib';
import { DEMO_FEATURES, DEMO_MODEL_FILE, DEMO_MODEL_NAME, demoModel } from '../fixtures/demo-model';

// No stack traces in the snapshot's metadata: they hold this machine's paths and line numbers.
const app = new App({ stackTraces: false, context: { 'aws:cdk:disable-creation-stack-traces': true } });
const stack = new Stack(app, 'S3ModelEndpointInteg');
const endpoint = new S3ModelEndpoint(stack, 'Endpoint', {
  model: ModelSource.fromAsset(DEMO_MODEL_FILE),
  modelName: DEMO_MODEL_NAME,
  warmer: false,
  // The check below goes through TestInvokeMethod, which the function allows only when asked.
  api: { allowTestInvoke: true },
});

const integ = new IntegTest(app, 'S3ModelEndpoint', { testCases: [stack] });

const request = { id: 'integ', inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: DEMO_FEATURES }] };
// The label is an exact integer; the probabilities are checked by shape here and by value in the
// unit tests, since float32 results may differ in their last bits between CPUs.
const [label] = demoModel().predictLabels([DEMO_FEATURES.map(Math.fround)]);
const prediction = {
  model_name: DEMO_MODEL_NAME,
  id: 'integ',
  outputs: Match.arrayWith([
    Match.objectLike({ name: 'label', datatype: 'INT64', shape: [1], data: [label] }),
    Match.objectLike({ name: 'probabilities', datatype: 'FP32', shape: [1, 3] }),
  ]),
};

// Through the API: TestInvokeMethod runs the method's validation and integration without the
// caller signing the request (the API's IAM authorization is not part of the test).
const inferResource = endpoint.api.restApi.root.resourceForPath(`/v2/models/${DEMO_MODEL_NAME}/infer`);
const viaApi = integ.assertions.awsApiCall('APIGateway', 'testInvokeMethod', {
  restApiId: endpoint.api.restApi.restApiId,
  resourceId: inferResource.resourceId,
  httpMethod: 'POST',
  pathWithQueryString: `/v2/models/${DEMO_MODEL_NAME}/infer`,
  headers: { 'Content-Type': 'application/json' },
  body: JSON.stringify(request),
});
viaApi.provider.addToRolePolicy({
  Effect: 'Allow',
  Action: ['apigateway:POST'],
  Resource: [`arn:${stack.partition}:apigateway:${stack.region}::/restapis/${endpoint.api.restApi.restApiId}/resources/*`],
});
viaApi.expect(ExpectedResult.objectLike({ status: 200, body: Match.serializedJson(Match.objectLike(prediction)) }));

// Directly: the payload is the infer request body, the result the response body.
integ.assertions
  .invokeFunction({ functionName: endpoint.alias.functionArn, payload: JSON.stringify(request) })
  .expect(ExpectedResult.objectLike({ StatusCode: 200, Payload: Match.objectLike(prediction) }));
