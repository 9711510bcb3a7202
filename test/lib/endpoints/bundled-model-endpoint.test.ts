import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { describe, expect, it, onTestFinished } from 'vitest';
import { DEMO_FEATURES, DEMO_MODEL_FILE, demoModel } from '../../../fixtures/demo-model';
import { BundledModelEndpoint, ModelSource, OnnxRuntimeLayer } from '../../../lib';
import { inferenceHandlerDir } from '../../../lib/private/package-paths';
import { treeSize } from '../../../lib/private/staging';
import { infer } from '../../../fixtures/events';
import { modelOfSize } from '../../support/models';
import { assetFolder, newStack, ref, resourceProps } from '../../support/stacks';

const MiB = 1024 * 1024;
const ROOT = path.resolve(__dirname, '../../..');

/** The folder the function's code asset is made of, from the synthesized assembly. */
function codeFolder(app: App, stack: Stack, endpoint: BundledModelEndpoint): string {
  return assetFolder(app, resourceProps(Template.fromStack(stack), endpoint.function).Code.S3Key);
}

describe('BundledModelEndpoint', () => {
  it('ships the model inside the function code, at /var/task/model', () => {
    const { app, stack } = newStack();
    const endpoint = new BundledModelEndpoint(stack, 'E', { model: ModelSource.fromAsset(DEMO_MODEL_FILE) });
    const fn = resourceProps(Template.fromStack(stack), endpoint.function);
    expect(fn.Environment.Variables.MODEL_PATH).toBe('/var/task/model/demo.onnx');
    expect(endpoint.modelPath).toBe('/var/task/model/demo.onnx');
    expect(fn.Layers).toEqual([ref(endpoint.onnxRuntimeLayer!)]);
    expect(fn.EphemeralStorage).toBeUndefined();
    Template.fromStack(stack).resourceCountIs('AWS::S3::Bucket', 0);
    const folder = codeFolder(app, stack, endpoint);
    expect(fs.readFileSync(path.join(folder, 'model', 'demo.onnx')).equals(fs.readFileSync(DEMO_MODEL_FILE))).toBe(true);
    expect(fs.readFileSync(path.join(folder, 'index.mjs')).equals(fs.readFileSync(path.join(inferenceHandlerDir(), 'index.mjs')))).toBe(true);
    // The staging marker is not deployed.
    expect(fs.readdirSync(folder).sort()).toEqual(fs.readdirSync(inferenceHandlerDir()).concat('model').sort());
  });

  it('its code folder serves the model, as Lambda would run it', async () => {
    // The assembly inside the repo, so that `require('onnxruntime-node')` finds the installed
    // package, as the ONNX Runtime layer provides it on Lambda.
    fs.mkdirSync(path.join(ROOT, 'node_modules', '.cache'), { recursive: true });
    const outdir = fs.mkdtempSync(path.join(ROOT, 'node_modules', '.cache', 'csi-bundled-'));
    onTestFinished(() => fs.rmSync(outdir, { recursive: true, force: true }));
    const app = new App({ outdir });
    const stack = new Stack(app, 'S');
    const endpoint = new BundledModelEndpoint(stack, 'E', { model: ModelSource.fromAsset(DEMO_MODEL_FILE), modelName: 'demo' });
    const folder = codeFolder(app, stack, endpoint);
    // /var/task is the code folder here.
    Object.assign(process.env, { MODEL_PATH: path.join(folder, 'model', 'demo.onnx'), MODEL_NAME: 'demo', POWERTOOLS_LOG_LEVEL: 'SILENT', POWERTOOLS_METRICS_DISABLED: 'true' });
    const { handler } = await import(pathToFileURL(path.join(folder, 'index.mjs')).href);
    const answer = await infer(handler, { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: DEMO_FEATURES }] }, 'demo');
    expect(answer.status).toBe(200);
    const [label] = demoModel().predictLabels([DEMO_FEATURES.map(Math.fround)]);
    expect(answer.body.outputs.find((o: { name: string }) => o.name === 'label').data).toEqual([label]);
  });

  it('needs a local model file', () => {
    const { stack } = newStack();
    expect(() => new BundledModelEndpoint(stack, 'E', { model: ModelSource.fromBucket(new s3.Bucket(stack, 'B'), 'm.onnx') })).toThrow(
      'BundledModelPackaging: model must be a local file (ModelSource.fromAsset): it is packaged at synth',
    );
  });

  describe("Lambda's 250 MB of code and layers, unzipped", () => {
    const room = () => 250 * MiB - treeSize(inferenceHandlerDir()) - OnnxRuntimeLayer.forArchitecture(newStack().stack, lambda.Architecture.ARM_64).unzippedSizeBytes;
    const stackWithoutStaging = () => new Stack(new App({ context: { 'aws:cdk:disable-asset-staging': true } }), 'S');

    it('accepts a model just under the limit', () => {
      const model = modelOfSize(room() - 64 * 1024);
      expect(() => new BundledModelEndpoint(stackWithoutStaging(), 'E', { model: ModelSource.fromAsset(model.path) })).not.toThrow();
    }, 60_000);

    it('refuses a model just over it, listing each part', () => {
      const model = modelOfSize(room() + 64 * 1024);
      expect(() => new BundledModelEndpoint(stackWithoutStaging(), 'E', { model: ModelSource.fromAsset(model.path) })).toThrow(
        /the function's code and layers are 250\.\d MiB unzipped, over Lambda's limit of 250 MiB \(inference handler .*, model 2\d\d\.\d MiB, ONNX Runtime layer \d+\.\d MiB\)/,
      );
    }, 60_000);
  });
});
