import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEMO_MODEL_FILE, demoModel } from '../demo/demo-model';

const ROOT = path.resolve(__dirname, '..');

describe('the quick start demo', () => {
  it('ships the demo model that its code makes', () => {
    expect(Buffer.compare(fs.readFileSync(DEMO_MODEL_FILE), Buffer.from(demoModel().bytes))).toBe(0);
  });

  it('synthesizes with the real CDK CLI and aws-cdk-lib validation on, then predicts through local S3', () => {
    // CDK_VALIDATION stays on here: the one synth of the suite with CloudFormation validation.
    const env = { ...process.env, CDK_VALIDATION: 'true' };
    const r = spawnSync(path.join(ROOT, 'node_modules', '.bin', 'tsx'), ['demo/run.ts', '--once'], { cwd: ROOT, env, encoding: 'utf8', timeout: 120_000 });
    const output = `${r.stdout}\n${r.stderr}`;
    expect(r.status, output).toBe(0);
    expect(output).toMatch(/5 stacks, cdk-nag clean: .*CdkServerlessInferenceDemo/);
    expect(output).toMatch(/HTTP 200: label = \d, probabilities = \[[\d., ]+\]/);
    expect(output).toMatch(/-> match$/m);
  }, 120_000);
});
