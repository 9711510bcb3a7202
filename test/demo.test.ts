import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { DEMO_MODEL_ARCHIVE, DEMO_MODEL_FILE, demoModel, demoTritonArchive } from '../fixtures/demo-model';
import { modelFingerprint } from '../lib/model/local-model';
import { modelVersionFromIdentity } from '../lib/private/model-version';

const ROOT = path.resolve(__dirname, '..');

describe('the quick start demo', () => {
  it('ships the demo model that its code makes', () => {
    expect(Buffer.compare(fs.readFileSync(DEMO_MODEL_FILE), Buffer.from(demoModel().bytes))).toBe(0);
  });

  it('ships its Triton archive for SageMaker: a model repository holding the same model', () => {
    const archive = fs.readFileSync(DEMO_MODEL_ARCHIVE);
    expect(archive.equals(demoTritonArchive())).toBe(true);
    // Read back as a tar reader would: 512-byte headers, octal sizes, data padded to 512.
    const tar = gunzipSync(archive);
    const files: Record<string, Buffer> = {};
    for (let at = 0; tar[at] !== 0; ) {
      const name = tar
        .subarray(at, at + 100)
        .toString('utf8')
        .replace(/\0.*$/s, '');
      const size = parseInt(tar.subarray(at + 124, at + 136).toString('utf8'), 8);
      const sum = parseInt(tar.subarray(at + 148, at + 156).toString('utf8'), 8);
      const header = Buffer.from(tar.subarray(at, at + 512));
      header.fill(' ', 148, 156);
      expect(header.reduce((a, b) => a + b, 0)).toBe(sum);
      files[name] = tar.subarray(at + 512, at + 512 + size);
      at += 512 + Math.ceil(size / 512) * 512;
    }
    expect(Object.keys(files)).toEqual(['demo/config.pbtxt', 'demo/1/model.onnx']);
    expect(files['demo/1/model.onnx'].equals(fs.readFileSync(DEMO_MODEL_FILE))).toBe(true);
    expect(files['demo/config.pbtxt'].toString()).toMatch(/backend: "onnxruntime"/);
  });

  it('synthesizes with the real CDK CLI and aws-cdk-lib validation on, then predicts through local S3', () => {
    // CDK_VALIDATION stays on here: the one synth of the suite with CloudFormation validation.
    const env = { ...process.env, CDK_VALIDATION: 'true' };
    const r = spawnSync(path.join(ROOT, 'node_modules', '.bin', 'tsx'), ['demo/run.ts', '--once'], { cwd: ROOT, env, encoding: 'utf8', timeout: 120_000 });
    const output = `${r.stdout}\n${r.stderr}`;
    expect(r.status, output).toBe(0);
    // The endpoints' eight, and one each for the repository, batch and async jobs, capture and variants.
    expect(output).toMatch(/12 stacks, cdk-nag clean: .*CdkServerlessInferenceDemo/);
    expect(output).toMatch(/cdk-nag clean: .*CdkServerlessInferenceModelRepositoryDemo/);
    expect(output).toMatch(/cdk-nag clean: .*CdkServerlessInferenceJobsDemo/);
    expect(output).toMatch(/cdk-nag clean: .*CdkServerlessInferenceCaptureDemo/);
    expect(output).toMatch(/cdk-nag clean: .*CdkServerlessInferenceVariantsDemo/);
    expect(output).toMatch(/HTTP 200: label = \d, probabilities = \[[\d., ]+\]/);
    // The version the deployed endpoint reports (the model's content hash, set at synth), not `1`.
    expect(output).toContain(`model version ${modelVersionFromIdentity(modelFingerprint(DEMO_MODEL_FILE))}\n`);
    expect(output).toMatch(/-> match$/m);
  }, 120_000);
});
