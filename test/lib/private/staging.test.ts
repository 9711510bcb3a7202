import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App, Errors, Stack, Stage } from 'aws-cdk-lib';
import { afterAll, describe, expect, it } from 'vitest';
import { DEMO_MODEL_FILE } from '../../../fixtures/demo-model';
import { BundledModelEndpoint, ModelSource } from '../../../lib';
import { STAGING_DIRECTORY_CONTEXT, STAGING_EXCLUDE, stageFiles, stagingDir } from '../../../lib/private/staging';
import { tempDir } from '../../support/handler';

const kind = `test-staging-${process.pid}`;
/** An app with no outdir: aws-cdk-lib gives it a new folder in the OS temp folder, for one synth. */
const throwaway = () => new App();
afterAll(() => fs.rmSync(path.dirname(stagingDir(throwaway(), kind, 'x')), { recursive: true, force: true }));

describe('stageFiles', () => {
  it('places files and trees, hard-linking files, marked complete', () => {
    const src = tempDir();
    fs.writeFileSync(path.join(src, 'model.onnx'), 'model bytes');
    fs.mkdirSync(path.join(src, 'code', 'chunks'), { recursive: true });
    fs.writeFileSync(path.join(src, 'code', 'index.mjs'), 'export {}');
    fs.writeFileSync(path.join(src, 'code', 'chunks', 'a.mjs'), 'a');
    const dir = stageFiles(throwaway(), kind, [
      { source: path.join(src, 'code'), destination: '.' },
      { source: path.join(src, 'model.onnx'), destination: 'model/model.onnx' },
    ]);
    expect(fs.readFileSync(path.join(dir, 'model', 'model.onnx'), 'utf8')).toBe('model bytes');
    expect(fs.statSync(path.join(dir, 'model', 'model.onnx')).ino).toBe(fs.statSync(path.join(src, 'model.onnx')).ino);
    expect(fs.readFileSync(path.join(dir, 'chunks', 'a.mjs'), 'utf8')).toBe('a');
    expect(fs.readdirSync(dir).sort()).toEqual([...STAGING_EXCLUDE, 'chunks', 'index.mjs', 'model'].sort());
    // Same inputs: the same folder, reused.
    expect(
      stageFiles(throwaway(), kind, [
        { source: path.join(src, 'code'), destination: '.' },
        { source: path.join(src, 'model.onnx'), destination: 'model/model.onnx' },
      ]),
    ).toBe(dir);
    // A changed input: a new folder.
    fs.writeFileSync(path.join(src, 'model.onnx'), 'other model bytes');
    expect(stageFiles(throwaway(), kind, [{ source: path.join(src, 'model.onnx'), destination: 'model/model.onnx' }])).not.toBe(dir);
  });
});

describe('stagingDir', () => {
  it('removes folders of its kind unused for a day, keeps the others', () => {
    const old = stagingDir(throwaway(), kind, 'old');
    const recent = stagingDir(throwaway(), kind, 'recent');
    fs.mkdirSync(old, { recursive: true });
    fs.mkdirSync(recent, { recursive: true });
    const twoDaysAgo = new Date(Date.now() - 2 * 24 * 60 * 60 * 1000);
    fs.utimesSync(old, twoDaysAgo, twoDaysAgo);
    stagingDir(throwaway(), kind, 'current');
    expect(fs.existsSync(old)).toBe(false);
    expect(fs.existsSync(recent)).toBe(true);
  });

  it('marks a folder in use so that it is not pruned', () => {
    const dir = stagingDir(throwaway(), kind, 'in-use');
    fs.mkdirSync(dir, { recursive: true });
    const twoDaysAgo = new Date(Date.now() - 2 * 24 * 60 * 60 * 1000);
    fs.utimesSync(dir, twoDaysAgo, twoDaysAgo);
    stagingDir(throwaway(), kind, 'in-use');
    expect(fs.statSync(dir).mtimeMs).toBeGreaterThan(Date.now() - 60_000);
  });
});

describe('where synth stages files', () => {
  it("inside the app's output (cdk.out) when the app has one of its own, in its .cache folder", () => {
    const outdir = tempDir('csi-outdir-');
    const app = new App({ outdir });
    const stack = new Stack(app, 'Stack');
    expect(stagingDir(stack, 'model-layer', 'abc')).toBe(path.join(outdir, '.cache', 'cdk-serverless-inference', 'model-layer', 'abc'));
    // A nested stage writes its assembly into a subfolder; its files are staged with the app's.
    const nested = new Stack(new Stage(app, 'Nested'), 'Stack');
    expect(stagingDir(nested, 'model-layer', 'abc')).toBe(path.join(outdir, '.cache', 'cdk-serverless-inference', 'model-layer', 'abc'));
  });

  it('in the OS temp folder for an app with no outdir of its own (a new temp folder per App), shared between synths', () => {
    const dir = stagingDir(new Stack(throwaway(), 'Stack'), 'model-layer', 'abc');
    expect(dir).toBe(path.join(os.tmpdir(), 'cdk-serverless-inference', 'model-layer', 'abc'));
  });

  it(`where the ${STAGING_DIRECTORY_CONTEXT} context key says, a relative path from the working directory`, () => {
    expect(STAGING_DIRECTORY_CONTEXT).toBe('cdk-serverless-inference:stagingDirectory');
    const chosen = tempDir('csi-staging-');
    const app = new App({ outdir: tempDir('csi-outdir-'), context: { [STAGING_DIRECTORY_CONTEXT]: chosen } });
    expect(stagingDir(new Stack(app, 'Stack'), 'bundled-model', 'k')).toBe(path.join(chosen, 'bundled-model', 'k'));
    const relative = new App({ context: { [STAGING_DIRECTORY_CONTEXT]: 'build/staging' } });
    expect(stagingDir(new Stack(relative, 'Stack'), 'bundled-model', 'k')).toBe(path.resolve('build/staging', 'bundled-model', 'k'));
  });

  it.each([[''], [42], [true]])('refuses a context value that is not a path: %j', (value) => {
    const stack = new Stack(new App({ context: { [STAGING_DIRECTORY_CONTEXT]: value } }), 'Stack');
    let error: unknown;
    try {
      stagingDir(stack, 'model-layer', 'abc');
    } catch (e) {
      error = e;
    }
    expect(Errors.isValidationError(error)).toBe(true);
    expect((error as Error).message).toMatch(/cdk-serverless-inference:stagingDirectory must be the path of a folder, got: /);
  });

  it("an endpoint synthesized by the CDK CLI (an outdir given) stages its code in that outdir's .cache, nothing in the OS temp folder", () => {
    const outdir = tempDir('csi-outdir-');
    const source = path.join(tempDir(), `staged-${process.pid}.onnx`);
    fs.copyFileSync(DEMO_MODEL_FILE, source);
    const app = new App({ outdir });
    new BundledModelEndpoint(new Stack(app, 'Stack'), 'Endpoint', { model: ModelSource.fromAsset(source) });
    app.synth();
    const staged = fs.readdirSync(path.join(outdir, '.cache', 'cdk-serverless-inference', 'bundled-model'));
    expect(staged).toHaveLength(1);
    const stagedModel = path.join(outdir, '.cache', 'cdk-serverless-inference', 'bundled-model', staged[0], 'model', path.basename(source));
    // Hard-linked where the file system allows: the model is not copied to stage it.
    expect(fs.statSync(stagedModel).ino).toBe(fs.statSync(source).ino);
    const tmpStaging = path.join(os.tmpdir(), 'cdk-serverless-inference', 'bundled-model');
    expect(fs.existsSync(tmpStaging) ? fs.readdirSync(tmpStaging).filter((d) => d === staged[0]) : []).toEqual([]);
  });
});
