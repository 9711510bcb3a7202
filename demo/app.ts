// The app of `cdk.json`: `npx cdk synth` (or deploy) with no credentials, network or Docker.
// `CdkServerlessInferenceDemo` is the quick start's stack (the model in S3); the others serve the
// same model with each of the library's other packagings (`npx cdk deploy <stack>`).
import { App } from 'aws-cdk-lib';
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag';
import { CaptureDemoStack } from './capture-stack';
import { DEMO_ENDPOINTS, type DemoPackaging, DemoStack } from './demo-stack';
import { JobsDemoStack } from './jobs-demo-stack';
import { ModelRepositoryDemoStack } from './model-repository-stack';
import { VariantsDemoStack } from './variants-stack';

const app = new App();
new DemoStack(app, 'CdkServerlessInferenceDemo');
for (const packaging of Object.keys(DEMO_ENDPOINTS) as DemoPackaging[]) {
  if (packaging !== 'S3') {
    new DemoStack(app, `CdkServerlessInference${packaging}Demo`, { packaging });
  }
}
// Many models behind one endpoint: a model repository in S3.
new ModelRepositoryDemoStack(app, 'CdkServerlessInferenceModelRepositoryDemo');
// Batch inference on a Step Functions Distributed Map and asynchronous inference on an SQS queue,
// both on the demo model's function (demo/jobs-demo-stack.ts).
new JobsDemoStack(app, 'CdkServerlessInferenceJobsDemo');
// A/B variants, data capture and a shadow on one endpoint (demo/capture-stack.ts).
new CaptureDemoStack(app, 'CdkServerlessInferenceCaptureDemo');
// A/B variants of the demo model and a candidate, sticky by user (demo/variants-stack.ts).
new VariantsDemoStack(app, 'CdkServerlessInferenceVariantsDemo');

// cdk-nag 3 as a synth-time gate: any unacknowledged finding fails the synth.
const findings = [new AwsSolutionsChecks(app), new ServerlessChecks(app)].flatMap((pack) => pack.validateScope(app).violations);
if (findings.length > 0) {
  for (const f of findings) {
    console.error(`${f.ruleName}: ${f.violatingResources.map((r) => r.constructPath).join(', ')}`);
  }
  throw new Error(`cdk-nag: ${findings.length} unacknowledged finding(s)`);
}
