import * as fs from 'node:fs';
import * as path from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { beforeAll, describe, expect, it } from 'vitest';
import { OnnxRuntimeLayer } from '../../../lib/runtime/onnxruntime-layer';
import { buildOnnxRuntimeLayers } from '../../../scripts/build-layers';

const LAYERS_DIR = path.resolve(__dirname, '../../..', 'assets', 'layers');
const MANIFEST_PATH = path.join(LAYERS_DIR, 'onnxruntime-layers.json');
const INSTALLED_ORT_VERSION: string = JSON.parse(fs.readFileSync(path.resolve(__dirname, '../../..', 'node_modules', 'onnxruntime-node', 'package.json'), 'utf8')).version;

interface Manifest {
  layers: Record<string, { file: string; unzippedBytes: number; sha256: string }>;
}
let manifest: Manifest;

beforeAll(async () => {
  // The constructs point at zips made by `npm run build`; make them when this checkout has none yet.
  if (!fs.existsSync(MANIFEST_PATH)) {
    await buildOnnxRuntimeLayers(LAYERS_DIR);
  }
  manifest = JSON.parse(fs.readFileSync(MANIFEST_PATH, 'utf8'));
});

function newStack(app = new App(), id = 'Stack'): Stack {
  return new Stack(app, id);
}

describe('OnnxRuntimeLayer.forArchitecture', () => {
  it('creates one layer per stack however many times it is asked, from any scope in the stack', () => {
    const stack = newStack();
    const nested = new Construct(new Construct(stack, 'Api'), 'Endpoint');
    const layers = [OnnxRuntimeLayer.forArchitecture(stack), OnnxRuntimeLayer.forArchitecture(nested), OnnxRuntimeLayer.forArchitecture(nested, lambda.Architecture.X86_64)];
    expect(new Set(layers).size).toBe(1);
    expect(layers[0].node.path).toBe('Stack/OnnxRuntimeLayer-x86_64');
    Template.fromStack(stack).resourceCountIs('AWS::Lambda::LayerVersion', 1);
  });

  it('creates one layer per architecture', () => {
    const stack = newStack();
    const x86 = OnnxRuntimeLayer.forArchitecture(stack, lambda.Architecture.X86_64);
    const arm = OnnxRuntimeLayer.forArchitecture(stack, lambda.Architecture.ARM_64);
    expect(OnnxRuntimeLayer.forArchitecture(stack, lambda.Architecture.ARM_64)).toBe(arm);
    expect(arm).not.toBe(x86);
    expect(arm.node.id).toBe('OnnxRuntimeLayer-arm64');

    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::Lambda::LayerVersion', 2);
    template.hasResourceProperties('AWS::Lambda::LayerVersion', { CompatibleArchitectures: ['x86_64'] });
    template.hasResourceProperties('AWS::Lambda::LayerVersion', { CompatibleArchitectures: ['arm64'] });
  });

  it('gives each stack its own layer', () => {
    const app = new App();
    const first = newStack(app, 'First');
    const second = newStack(app, 'Second');
    const a = OnnxRuntimeLayer.forArchitecture(first);
    const b = OnnxRuntimeLayer.forArchitecture(second);
    expect(Stack.of(a)).toBe(first);
    expect(Stack.of(b)).toBe(second);
    Template.fromStack(first).resourceCountIs('AWS::Lambda::LayerVersion', 1);
    Template.fromStack(second).resourceCountIs('AWS::Lambda::LayerVersion', 1);
  });

  it('serves many functions from the one layer', () => {
    const stack = newStack();
    for (const id of ['A', 'B', 'C']) {
      new lambda.Function(stack, id, {
        runtime: lambda.Runtime.NODEJS_22_X,
        handler: 'index.handler',
        code: lambda.Code.fromInline('exports.handler = async () => 1;'),
        layers: [OnnxRuntimeLayer.forArchitecture(stack)],
      });
    }
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::Lambda::LayerVersion', 1);
    const [layerLogicalId] = Object.keys(template.findResources('AWS::Lambda::LayerVersion'));
    const functions = Object.values(template.findResources('AWS::Lambda::Function'));
    expect(functions).toHaveLength(3);
    for (const fn of functions) {
      expect(fn.Properties.Layers).toEqual([{ Ref: layerLogicalId }]);
    }
  });

  it('refuses an id already taken by another construct', () => {
    const stack = newStack();
    new Construct(stack, 'OnnxRuntimeLayer-x86_64');
    expect(() => OnnxRuntimeLayer.forArchitecture(stack)).toThrow(/"OnnxRuntimeLayer-x86_64".*taken by another construct/);
  });
});

describe('OnnxRuntimeLayer', () => {
  it.each([
    { architecture: lambda.Architecture.X86_64, name: 'x86_64' },
    { architecture: lambda.Architecture.ARM_64, name: 'arm64' },
  ])('declares its $name architecture, Node.js 22 and 24, version and licence', ({ architecture, name }) => {
    const stack = newStack();
    const layer = new OnnxRuntimeLayer(stack, 'Layer', { architecture });
    expect(layer.architecture).toBe(architecture);
    expect(layer.onnxruntimeVersion).toBe(INSTALLED_ORT_VERSION);
    Template.fromStack(stack).hasResourceProperties('AWS::Lambda::LayerVersion', {
      CompatibleArchitectures: [name],
      CompatibleRuntimes: ['nodejs22.x', 'nodejs24.x'],
      Description: `onnxruntime-node ${INSTALLED_ORT_VERSION} (CPU) for Node.js, ${name}`,
      LicenseInfo: 'MIT',
    });
  });

  it('defaults to x86_64', () => {
    const stack = newStack();
    const layer = new OnnxRuntimeLayer(stack, 'Layer');
    expect(layer.architecture).toBe(lambda.Architecture.X86_64);
    Template.fromStack(stack).hasResourceProperties('AWS::Lambda::LayerVersion', { CompatibleArchitectures: ['x86_64'] });
  });

  it.each(['x86_64', 'arm64'])("reports the %s layer's unzipped size from the build manifest", (name) => {
    const layer = new OnnxRuntimeLayer(newStack(), 'Layer', { architecture: lambda.Architecture.custom(name) });
    expect(layer.unzippedSizeBytes).toBe(manifest.layers[name].unzippedBytes);
    // Far below Lambda's 250 MB, which is the point of a per-architecture layer.
    expect(layer.unzippedSizeBytes).toBeGreaterThan(10 * 1024 * 1024);
    expect(layer.unzippedSizeBytes).toBeLessThan(60 * 1024 * 1024);
  });

  it('ships the prebuilt zip as the asset, keyed by its content', () => {
    const app = new App();
    const stack = newStack(app);
    new OnnxRuntimeLayer(stack, 'Layer', { architecture: lambda.Architecture.ARM_64 });
    const assembly = app.synth();
    const assetManifest = JSON.parse(fs.readFileSync(path.join(assembly.directory, `${stack.artifactId}.assets.json`), 'utf8')) as {
      files: Record<string, { source: { path: string; packaging: string } }>;
    };
    const [asset] = Object.values(assetManifest.files).filter((f) => f.source.path.endsWith('.zip'));
    expect(asset.source.packaging).toBe('file');
    const stagedZip = fs.readFileSync(path.join(assembly.directory, asset.source.path));
    const builtZip = fs.readFileSync(path.join(LAYERS_DIR, manifest.layers.arm64.file));
    expect(stagedZip.equals(builtZip)).toBe(true);
  });

  it('gives the same asset hash on every synth', () => {
    const layerResources = () => {
      const stack = newStack();
      new OnnxRuntimeLayer(stack, 'Layer');
      return Template.fromStack(stack).findResources('AWS::Lambda::LayerVersion');
    };
    expect(JSON.stringify(layerResources())).toBe(JSON.stringify(layerResources()));
  });

  it('rejects architectures onnxruntime-node has no Linux build for', () => {
    const riscv = lambda.Architecture.custom('riscv64', 'linux/riscv64');
    expect(() => new OnnxRuntimeLayer(newStack(), 'Layer', { architecture: riscv })).toThrow('OnnxRuntimeLayer: unsupported architecture "riscv64"; expected x86_64 or arm64');
    expect(() => OnnxRuntimeLayer.forArchitecture(newStack(), riscv)).toThrow(/unsupported architecture "riscv64"/);
  });
});
