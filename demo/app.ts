// The app of `cdk.json`: `npx cdk synth` (or deploy) with no credentials, network or Docker.
import { App } from 'aws-cdk-lib';
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag';
import { DemoStack } from './demo-stack';

const app = new App();
new DemoStack(app, 'CdkServerlessInferenceDemo');

// cdk-nag 3 as a synth-time gate: any unacknowledged finding fails the synth.
const findings = [new AwsSolutionsChecks(app), new ServerlessChecks(app)].flatMap((pack) => pack.validateScope(app).violations);
if (findings.length > 0) {
  for (const f of findings) {
    console.error(`${f.ruleName}: ${f.violatingResources.map((r) => r.constructPath).join(', ')}`);
  }
  throw new Error(`cdk-nag: ${findings.length} unacknowledged finding(s)`);
}
