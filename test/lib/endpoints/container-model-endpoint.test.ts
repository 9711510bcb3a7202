import * as fs from 'node:fs';
import * as path from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { describe, expect, it } from 'vitest';
import { DEMO_MODEL_FILE } from '../../../fixtures/demo-model';
import { ContainerModelEndpoint, type ContainerModelEndpointProps, ModelSource } from '../../../lib';
import { logisticRegressionModel } from '../../../tools/onnx';
import { modelOfSize } from '../../support/models';
import { tempDir, writeModel } from '../../support/handler';
import { newStack, resourceProps } from '../../support/stacks';

function setup(props: Partial<ContainerModelEndpointProps> = {}) {
  const { app, stack } = newStack();
  const endpoint = new ContainerModelEndpoint(stack, 'E', { model: ModelSource.fromAsset(DEMO_MODEL_FILE), ...props });
  return { app, stack, endpoint, template: Template.fromStack(stack) };
}

/** The image asset's entry in the stack's asset manifest. */
function imageAsset(app: App, stack: Stack): { source: { directory: string; platform?: string } } {
  const assembly = app.synth();
  const manifest = JSON.parse(fs.readFileSync(path.join(assembly.directory, `${stack.artifactId}.assets.json`), 'utf8'));
  const images = Object.values(manifest.dockerImages ?? {}) as Array<{ source: { directory: string; platform?: string } }>;
  expect(images).toHaveLength(1);
  return images[0];
}

describe('ContainerModelEndpoint', () => {
  it('runs a container image with the model at /opt/ml/model, without the ONNX Runtime layer', () => {
    const f = setup();
    const fn = resourceProps(f.template, f.endpoint.function);
    expect(fn.PackageType).toBe('Image');
    expect(fn.Code.ImageUri).toBeDefined();
    expect(fn.Runtime).toBeUndefined();
    expect(fn.Handler).toBeUndefined();
    expect(fn.Layers).toBeUndefined();
    expect(f.endpoint.onnxRuntimeLayer).toBeUndefined();
    f.template.resourceCountIs('AWS::Lambda::LayerVersion', 0);
    expect(fn.Environment.Variables.MODEL_PATH).toBe('/opt/ml/model/demo.onnx');
    expect(fn.Architectures).toEqual(['x86_64']);
  });

  it('builds the image from the generated context, for the function architecture, with no Docker at synth', () => {
    const { app, stack, endpoint } = setup();
    const asset = imageAsset(app, stack);
    expect(asset.source.platform).toBe('linux/amd64');
    const dir = path.join(app.outdir, asset.source.directory);
    const dockerfile = fs.readFileSync(path.join(dir, 'Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/^FROM public\.ecr\.aws\/lambda\/nodejs:24$/m);
    expect(dockerfile).toMatch(/^CMD \["index\.handler"\]$/m);
    expect(fs.readFileSync(path.join(dir, 'model', 'demo.onnx')).equals(fs.readFileSync(DEMO_MODEL_FILE))).toBe(true);
    expect(fs.existsSync(path.join(dir, 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6', 'linux', 'x64', 'onnxruntime_binding.node'))).toBe(true);
    expect(fs.existsSync(path.join(dir, 'handler', 'index.mjs'))).toBe(true);
    expect(endpoint.imageDirectory).toBe(fs.realpathSync(endpoint.imageDirectory));
  });

  it('reuses the context a synth of the same inputs wrote, and writes a new one for a new model', () => {
    const first = setup().endpoint.imageDirectory;
    const dockerfile = path.join(first, 'Dockerfile');
    const written = fs.statSync(dockerfile);
    const again = setup().endpoint.imageDirectory;
    expect(again).toBe(first);
    // Not rewritten: the same file, untouched.
    expect(fs.statSync(dockerfile).ino).toBe(written.ino);
    expect(fs.statSync(dockerfile).mtimeMs).toBe(written.mtimeMs);
    const other = setup({ model: ModelSource.fromAsset(writeModel(logisticRegressionModel().bytes, 'other.onnx')) }).endpoint;
    expect(other.imageDirectory).not.toBe(first);
    expect(other.modelPath).toBe('/opt/ml/model/other.onnx');
  });

  it('arm64 and Node.js 22 give an arm64 image on the Node.js 22 base', () => {
    const { app, stack, endpoint } = setup({ architecture: lambda.Architecture.ARM_64, runtime: lambda.Runtime.NODEJS_22_X });
    const asset = imageAsset(app, stack);
    expect(asset.source.platform).toBe('linux/arm64');
    const dir = path.join(app.outdir, asset.source.directory);
    expect(fs.readFileSync(path.join(dir, 'Dockerfile'), 'utf8')).toMatch(/^FROM public\.ecr\.aws\/lambda\/nodejs:22$/m);
    expect(fs.existsSync(path.join(dir, 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6', 'linux', 'arm64', 'onnxruntime_binding.node'))).toBe(true);
    expect(endpoint.onnxRuntimeLayer).toBeUndefined();
  });

  it('takes your own build context instead', () => {
    const dir = tempDir('csi-own-image-');
    fs.writeFileSync(path.join(dir, 'Dockerfile'), 'FROM public.ecr.aws/lambda/nodejs:24\n');
    const { app, stack, endpoint } = (() => {
      const { app, stack } = newStack();
      const endpoint = new ContainerModelEndpoint(stack, 'E', { imageDirectory: dir, modelPathInImage: '/models/big.onnx' });
      return { app, stack, endpoint };
    })();
    expect(resourceProps(Template.fromStack(stack), endpoint.function).Environment.Variables.MODEL_PATH).toBe('/models/big.onnx');
    expect(fs.readFileSync(path.join(app.outdir, imageAsset(app, stack).source.directory, 'Dockerfile'), 'utf8')).toBe('FROM public.ecr.aws/lambda/nodejs:24\n');
    // Without a local model there is no signature: the API validates the generic request form.
    expect(endpoint.modelInfo).toBeUndefined();
  });

  it('refuses a wrong combination of props, naming them', () => {
    const dir = tempDir('csi-own-image-');
    fs.writeFileSync(path.join(dir, 'Dockerfile'), 'FROM scratch\n');
    const model = ModelSource.fromAsset(DEMO_MODEL_FILE);
    const cases: Array<[Partial<ContainerModelEndpointProps>, RegExp]> = [
      [{}, /give model \(a model file\) or imageDirectory/],
      [{ model, imageDirectory: dir, modelPathInImage: '/m.onnx' }, /either model .* or imageDirectory .*, not both/],
      [{ imageDirectory: dir }, /modelPathInImage must be the absolute path of the model in your image, got: undefined/],
      [{ imageDirectory: dir, modelPathInImage: 'm.onnx' }, /modelPathInImage must be the absolute path/],
      [{ imageDirectory: tempDir('csi-empty-'), modelPathInImage: '/m.onnx' }, /has no Dockerfile/],
      [{ model, modelPathInImage: '/m.onnx' }, /modelPathInImage and imageAssetOptions apply to imageDirectory/],
    ];
    for (const [props, message] of cases) {
      expect(() => new ContainerModelEndpoint(newStack().stack, 'E', props as ContainerModelEndpointProps)).toThrow(message);
    }
  });

  it("refuses a model that would make the image larger than Lambda's 10 GB", () => {
    const model = modelOfSize(9.5 * 1024 ** 3, 'huge.onnx');
    const stack = new Stack(new App({ context: { 'aws:cdk:disable-asset-staging': true } }), 'S');
    expect(() => new ContainerModelEndpoint(stack, 'E', { model: ModelSource.fromAsset(model.path) })).toThrow(
      /the image would be about 10\.\d\d GiB \(model 9\.50 GiB, handler and onnxruntime 4\d\.\d MiB, base image up to 1\.00 GiB\), over Lambda's limit of 10 GiB for a container image/,
    );
  });
});
