/** The A/B variants demo stack: its candidate model is what its code makes, and it is cdk-nag clean on its own. */
import * as fs from 'node:fs';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { VariantsDemoStack } from '../demo/variants-stack';
import { DEMO_CANDIDATE_MODEL_FILE, DEMO_FEATURES, demoCandidateModel, demoModel } from '../fixtures/demo-model';
import { nagFindings } from './support/stacks';

describe('the variants demo', () => {
  it('ships the candidate model its code makes, which answers the demo request otherwise than the demo model', () => {
    expect(Buffer.compare(fs.readFileSync(DEMO_CANDIDATE_MODEL_FILE), Buffer.from(demoCandidateModel().bytes))).toBe(0);
    const control = demoModel().predict([DEMO_FEATURES])[0];
    const candidate = demoCandidateModel().predict([DEMO_FEATURES])[0];
    expect(Math.max(...control.map((p, i) => Math.abs(p - candidate[i])))).toBeGreaterThan(0.01);
  });

  it('synthesizes one function serving both variants, with no unacknowledged cdk-nag finding', () => {
    const app = new App();
    const stack = new VariantsDemoStack(app, 'VariantsDemo');
    expect(nagFindings(app)).toEqual([]);
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::CodeDeploy::DeploymentGroup', 1);
    expect(stack.endpoint.inferenceFunction.variantNames).toEqual(['control', 'candidate']);
  });
});
