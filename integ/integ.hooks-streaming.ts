// Deploys the demo model with the demo's hooks (demo/hooks/demo-hooks.ts: named features in, class
// names out, a log line per prediction after the answer) behind an API that streams the function's
// answers, then checks a prediction by invoking the live alias: a streaming function answers a
// buffered Invoke with the same JSON, and the hooks' answer shows they were bundled and loaded.
// Run against an account with:
//   npx integ-runner --directory integ --app "npx tsx {filePath}" --language typescript
// `npm test` verifies its snapshot offline.
import { IntegTest, ExpectedResult, Match } from '@aws-cdk/integ-tests-alpha';
import { App, Stack } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import { DEMO_FEATURES, DEMO_HOOKS_FILE, DEMO_MODEL_FILE, DEMO_MODEL_NAME, demoModel } from '../fixtures/demo-model';
import { HandlerHooks, LayerModelEndpoint, ModelSource } from '../lib';

// No stack traces in the snapshot's metadata: they hold this machine's paths and line numbers.
const app = new App({ stackTraces: false, context: { 'aws:cdk:disable-creation-stack-traces': true } });
const stack = new Stack(app, 'HooksStreamingInteg');
const endpoint = new LayerModelEndpoint(stack, 'Endpoint', {
  model: ModelSource.fromAsset(DEMO_MODEL_FILE),
  modelName: DEMO_MODEL_NAME,
  warmer: false,
  hooks: HandlerHooks.fromEntry(DEMO_HOOKS_FILE),
  api: { responseTransferMode: apigw.ResponseTransferMode.STREAM },
});

const integ = new IntegTest(app, 'HooksStreaming', { testCases: [stack] });

const [a, b, c, d] = DEMO_FEATURES;
const [label] = demoModel().predictLabels([DEMO_FEATURES.map(Math.fround)]);
integ.assertions.invokeFunction({ functionName: endpoint.alias.functionArn, payload: JSON.stringify({ a, b, c, d }) }).expect(
  ExpectedResult.objectLike({
    StatusCode: 200,
    Payload: Match.objectLike({ predictions: [Match.objectLike({ class: ['alpha', 'beta', 'gamma'][label] })] }),
  }),
);
