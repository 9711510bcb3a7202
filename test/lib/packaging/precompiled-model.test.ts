import * as fs from 'node:fs';
import * as path from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { IConstruct } from 'constructs';
import type * as Ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GraphOptimizationLevel } from '../../../contract/defaults';
import { DEMO_MODEL_FILE } from '../../../fixtures/demo-model';
import { BundledModelEndpoint, ContainerModelEndpoint, EfsModelEndpoint, LayerModelEndpoint, ModelSource, S3ModelEndpoint } from '../../../lib';
import { readManifest } from '../../../lib/runtime/onnxruntime-manifest';
import { overrideOnnxRuntimeLookup, PRECOMPILED_LEVEL, precompileModel, precompiledCacheDir } from '../../../lib/packaging/precompiled-model';
import {
  convModel,
  dynamicQuantMatMulModel,
  identityAllTypesModel,
  logisticRegressionModel,
  matMulFp32Model,
  matMulIntegerModel,
  mlpModel,
  mulberry32,
  multiIoModel,
  stringOpsModel,
} from '../../../tools/onnx';
import { startLocalS3, type LocalS3 } from '../../../tools/local-s3';
import { infer } from '../../../fixtures/events';
import { createHandler, tempDir, writeModel } from '../../support/handler';
import { logged, withLogLevel } from '../../support/logs';
import { assetFolder, newStack, resourceProps } from '../../support/stacks';

const ort = require('onnxruntime-node') as typeof Ort;

/** The handler's options for each kind of file (handlers/core/model-runtime.ts). */
const ONNX_OPTIONS: Ort.InferenceSession.SessionOptions = {
  graphOptimizationLevel: 'all',
  executionMode: 'sequential',
  enableCpuMemArena: false,
  logSeverityLevel: 3,
};
const ORT_OPTIONS: Ort.InferenceSession.SessionOptions = {
  ...ONNX_OPTIONS,
  extra: { session: { load_model_format: 'ORT', use_memory_mapped_ort_model: '1', use_ort_model_bytes_directly: '1', use_ort_model_bytes_for_initializers: '1' } },
};

function precompile(file: string): string {
  const stack = new Stack(new App(), 'S');
  const precompiled = precompileModel(stack, file);
  if (!precompiled) throw new Error(`not precompiled: ${JSON.stringify(Annotations.fromStack(stack).findInfo('*', Match.anyValue()))}`);
  return precompiled.path;
}

const ARRAYS: Record<string, (n: number, r: () => number) => unknown> = {
  float32: (n, r) => Float32Array.from({ length: n }, () => r() * 4 - 2),
  float64: (n, r) => Float64Array.from({ length: n }, () => r() * 4 - 2),
  // Small numbers near 1 in half precision.
  float16: (n, r) => Uint16Array.from({ length: n }, () => 0x3c00 + Math.floor(r() * 1024)),
  int8: (n, r) => Int8Array.from({ length: n }, () => Math.floor(r() * 256) - 128),
  uint8: (n, r) => Uint8Array.from({ length: n }, () => Math.floor(r() * 256)),
  int16: (n, r) => Int16Array.from({ length: n }, () => Math.floor(r() * 65536) - 32768),
  uint16: (n, r) => Uint16Array.from({ length: n }, () => Math.floor(r() * 65536)),
  int32: (n, r) => Int32Array.from({ length: n }, () => Math.floor(r() * 2 ** 31) - 2 ** 30),
  uint32: (n, r) => Uint32Array.from({ length: n }, () => Math.floor(r() * 2 ** 32)),
  int64: (n, r) => BigInt64Array.from({ length: n }, () => BigInt(Math.floor(r() * 2 ** 40) - 2 ** 39)),
  uint64: (n, r) => BigUint64Array.from({ length: n }, () => BigInt(Math.floor(r() * 2 ** 40))),
  bool: (n, r) => Uint8Array.from({ length: n }, () => (r() < 0.5 ? 1 : 0)),
  string: (n, r) => Array.from({ length: n }, () => ['onnx', 'lambda', 'graviton', 'x86', '模型', ''][Math.floor(r() * 6)]),
};

/** Inputs for every input of `session`, from its metadata: symbolic dimensions are 3. */
function feedsFor(session: Ort.InferenceSession, seed: number): Record<string, Ort.Tensor> {
  const r = mulberry32(seed);
  const feeds: Record<string, Ort.Tensor> = {};
  for (const m of session.inputMetadata) {
    if (!m.isTensor) throw new Error(`${m.name} is not a tensor`);
    const dims = m.shape.map((d) => (typeof d === 'number' && d > 0 ? d : 3));
    const make = ARRAYS[m.type];
    if (!make) throw new Error(`no test data for ${m.type}`);
    feeds[m.name] = new ort.Tensor(
      m.type as any,
      make(
        dims.reduce((a, b) => a * b, 1),
        r,
      ) as any,
      dims,
    );
  }
  return feeds;
}

/**
 * Expects the same outputs: exact for integers, booleans and strings (bytes, so NaN patterns count
 * too); for floats within rounding, since the .onnx's session fuses from the raw graph and the
 * precompiled one from the basic-optimised graph, which may sum in another order (a Conv's bias:
 * 5e-7 apart on the Conv model).
 */
function expectSameOutputs(actual: Ort.InferenceSession.OnnxValueMapType, expected: Ort.InferenceSession.OnnxValueMapType): void {
  expect(Object.keys(actual).sort()).toEqual(Object.keys(expected).sort());
  for (const [name, e] of Object.entries(expected) as Array<[string, Ort.Tensor]>) {
    const a = actual[name] as Ort.Tensor;
    expect(a.dims, name).toEqual(e.dims);
    expect(a.type, name).toBe(e.type);
    if (e.type === 'float32' || e.type === 'float64') {
      const ad = a.data as Float32Array;
      const ed = e.data as Float32Array;
      for (let i = 0; i < ed.length; i++) {
        if (Math.abs(ad[i] - ed[i]) > 1e-5 * (1 + Math.abs(ed[i]))) expect(`${name}[${i}] = ${ad[i]}`).toBe(`${name}[${i}] = ${ed[i]}`);
      }
    } else if (Array.isArray(e.data)) {
      expect(a.data, name).toEqual(e.data);
    } else {
      const bytes = (d: unknown) => Buffer.from((d as Uint8Array).buffer, (d as Uint8Array).byteOffset, (d as Uint8Array).byteLength).toString('hex');
      expect(bytes(a.data), name).toBe(bytes(e.data));
    }
  }
}

const MODELS: Array<[string, Uint8Array]> = [
  ['logistic regression', logisticRegressionModel({ features: 20 }).bytes],
  ['MLP', mlpModel().bytes],
  ['multi-IO', multiIoModel().bytes],
  ['identity of every datatype', identityAllTypesModel().bytes],
  ['FP32 MatMul', matMulFp32Model().bytes],
  ['Conv', convModel().bytes],
  ['int8 MatMulInteger', matMulIntegerModel().bytes],
  ['dynamically quantized MatMul', dynamicQuantMatMulModel().bytes],
  ['string operators', stringOpsModel().bytes],
];

describe('a model precompiled at synth (ORT format)', () => {
  it.each(MODELS)('%s: the precompiled copy gives the outputs of the .onnx', async (_what, bytes) => {
    const onnxFile = writeModel(bytes);
    const ortFile = precompile(onnxFile);
    const fromOnnx = await ort.InferenceSession.create(onnxFile, ONNX_OPTIONS);
    const fromOrt = await ort.InferenceSession.create(ortFile, ORT_OPTIONS);
    expect(fromOrt.inputMetadata).toEqual(fromOnnx.inputMetadata);
    expect(fromOrt.outputMetadata).toEqual(fromOnnx.outputMetadata);
    for (const seed of [1, 2]) {
      const feeds = feedsFor(fromOnnx, seed);
      expectSameOutputs(await fromOrt.run(feeds), await fromOnnx.run(feeds));
    }
    await fromOnnx.release();
    await fromOrt.release();
  });

  it('is cached by content: a second synth reuses the file, and no partial file is left', () => {
    const file = writeModel(mlpModel({ seed: 99 }).bytes);
    const first = precompile(file);
    const before = fs.statSync(first);
    const started = performance.now();
    // A copy of the same bytes elsewhere: same content, same cache entry.
    const again = precompile(writeModel(fs.readFileSync(file)));
    expect(performance.now() - started).toBeLessThan(200);
    expect(again).toBe(first);
    expect(fs.statSync(again).ino).toBe(before.ino);
    expect(path.dirname(first)).toBe(precompiledCacheDir());
    expect(fs.readdirSync(precompiledCacheDir()).filter((n) => n.includes('partial'))).toEqual([]);
    // Another model is another entry.
    expect(precompile(writeModel(mlpModel({ seed: 98 }).bytes))).not.toBe(first);
  });

  it('is saved at a portable level, and its name follows the model', () => {
    const stack = new Stack(new App(), 'S');
    const precompiled = precompileModel(stack, writeModel(mlpModel().bytes, 'iris.onnx'))!;
    expect(PRECOMPILED_LEVEL).toBe('basic');
    expect(precompiled.level).toBe('basic');
    expect(precompiled.fileName).toBe('iris.ort');
    expect(precompiled.onnxruntimeVersion).toBe(require('onnxruntime-node/package.json').version);
  });

  /** A bundled endpoint of the demo model, synthesized with `found` as the onnxruntime-node at synth. */
  const synthWith = (found: Parameters<typeof overrideOnnxRuntimeLookup>[0]) => {
    overrideOnnxRuntimeLookup(found);
    try {
      const { stack } = newStack();
      const e = new BundledModelEndpoint(stack, 'E', { model: ModelSource.fromAsset(DEMO_MODEL_FILE) });
      const precompiledPath = resourceProps(Template.fromStack(stack), e.function).Environment.Variables.MODEL_PRECOMPILED_PATH;
      return { annotations: Annotations.fromStack(stack), precompiledPath };
    } finally {
      overrideOnnxRuntimeLookup();
    }
  };

  it('is left out, with an info annotation and no failure, when onnxruntime-node cannot be found at synth', () => {
    // An app that never runs a model locally need not install it: nothing for it to fix.
    const { annotations, precompiledPath } = synthWith({ missing: 'onnxruntime-node is not installed where the app or the library can find it' });
    expect(precompiledPath).toBeUndefined();
    expect(annotations.findInfo('*', Match.stringLikeRegexp('install onnxruntime-node in the app'))).toHaveLength(1);
    expect(annotations.findWarning('*', Match.anyValue())).toEqual([]);
    expect(annotations.findError('*', Match.anyValue())).toEqual([]);
  });

  it("is left out, with a warning that says what to install, when onnxruntime-node's version is not the layer's", () => {
    const layerVersion = readManifest().onnxruntimeVersion;
    const { annotations, precompiledPath } = synthWith({ dir: path.dirname(require.resolve('onnxruntime-node/package.json')), version: '0.0.1' });
    expect(precompiledPath).toBeUndefined();
    const warnings = annotations.findWarning('*', Match.anyValue()).map((w) => String(w.entry.data));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('demo.onnx ships without a precompiled (ORT format) copy: the onnxruntime-node installed here is 0.0.1, ');
    expect(warnings[0]).toContain(`the functions run ${layerVersion}. To precompile it, install that version: npm install -D -E onnxruntime-node@${layerVersion}`);
    expect(annotations.findInfo('*', Match.stringLikeRegexp('precompiled'))).toEqual([]);
    expect(annotations.findError('*', Match.anyValue())).toEqual([]);
  });

  it('is left out, with an info annotation and no failure, for a model onnxruntime refuses', () => {
    const stack = new Stack(new App(), 'S');
    const bad = writeModel(Buffer.from('not a model at all'), 'broken.onnx');
    expect(precompileModel(stack, bad)).toBeUndefined();
    const infos = Annotations.fromStack(stack).findInfo('*', Match.stringLikeRegexp('broken.onnx ships without a precompiled'));
    expect(infos).toHaveLength(1);
  });
});

describe('the handler with a precompiled model', () => {
  const mlp = mlpModel();
  const input = { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [0.5, -1, 2, 0.25] }] };
  let onnxFile: string;
  let ortFile: string;
  let expected: unknown;
  beforeAll(async () => {
    onnxFile = writeModel(mlp.bytes);
    ortFile = precompile(onnxFile);
    const handler = await createHandler({ MODEL_PATH: onnxFile });
    const r = await infer(handler, input);
    expect(r.status).toBe(200);
    expected = r.body.outputs;
  });

  async function loadedWith(env: Record<string, string>) {
    const { result: handler, text } = await logged(() => withLogLevel(() => createHandler(env)));
    const lines = text
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l));
    return { handler, loaded: lines.find((l) => l.message === 'model loaded'), refused: lines.find((l) => /precompiled model not used/.test(l.message)) };
  }

  it('creates its session from the precompiled file and answers as from the .onnx', async () => {
    const { handler, loaded, refused } = await loadedWith({ MODEL_PATH: onnxFile, MODEL_PRECOMPILED_PATH: ortFile });
    expect(loaded.source).toMatchObject({ path: ortFile, precompiled: true });
    expect(refused).toBeUndefined();
    const r = await infer(handler, input);
    expect(r.status).toBe(200);
    expect(r.body.outputs).toEqual(expected);
  });

  it('falls back to the .onnx, with a log line, when the precompiled file is missing', async () => {
    const missing = path.join(tempDir(), 'gone.ort');
    const { handler, loaded, refused } = await loadedWith({ MODEL_PATH: onnxFile, MODEL_PRECOMPILED_PATH: missing });
    expect(loaded.source).toMatchObject({ path: onnxFile, precompiled: false });
    expect(refused.reason).toMatch(/gone\.ort/);
    expect((await infer(handler, input)).body.outputs).toEqual(expected);
  });

  it('falls back to the .onnx when onnxruntime refuses the precompiled file (corrupt, or another format version)', async () => {
    const corrupt = path.join(tempDir(), 'model.ort');
    fs.writeFileSync(corrupt, fs.readFileSync(ortFile).subarray(0, 512));
    const { handler, loaded, refused } = await loadedWith({ MODEL_PATH: onnxFile, MODEL_PRECOMPILED_PATH: corrupt });
    expect(loaded.source).toMatchObject({ path: onnxFile, precompiled: false });
    expect(refused.reason).toMatch(/verif|invalid|fail/i);
    expect((await infer(handler, input)).body.outputs).toEqual(expected);
  });

  it('does not mention a precompiled model where none is configured (older deployments, fromBucket)', async () => {
    const { loaded, refused } = await loadedWith({ MODEL_PATH: onnxFile });
    expect(loaded.source.precompiled).toBeUndefined();
    expect(refused).toBeUndefined();
  });
});

describe('the handler with a precompiled model in S3', () => {
  const mlp = mlpModel({ seed: 5 });
  const input = { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] };
  let s3server: LocalS3;
  const saved = { ...process.env };
  beforeAll(async () => {
    s3server = await startLocalS3();
    await s3server.createBucket('models');
    const onnxFile = writeModel(mlp.bytes);
    await s3server.putObject('models', 'm/model.onnx', fs.readFileSync(onnxFile));
    await s3server.putObject('models', 'm/model.ort', fs.readFileSync(precompile(onnxFile)));
    Object.assign(process.env, s3server.env());
  });
  afterAll(async () => {
    process.env = saved;
    await s3server?.stop();
  });

  async function load(precompiledKey: string) {
    const { result: handler, text } = await logged(() =>
      withLogLevel(() => createHandler({ MODEL_S3_URI: 's3://models/m/model.onnx', MODEL_PRECOMPILED_S3_URI: `s3://models/${precompiledKey}`, MODEL_CACHE_DIR: tempDir() })),
    );
    const loaded = text
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l))
      .find((l) => l.message === 'model loaded');
    return { handler, loaded };
  }

  it('fetches the precompiled object instead of the .onnx', async () => {
    const { handler, loaded } = await load('m/model.ort');
    expect(loaded.source).toMatchObject({ precompiled: true, path: expect.stringMatching(/model\.ort$/) });
    expect((await infer(handler, input)).status).toBe(200);
  });

  it('fetches the .onnx when the precompiled object is missing', async () => {
    const { handler, loaded } = await load('m/gone.ort');
    expect(loaded.source).toMatchObject({ precompiled: false, path: expect.stringMatching(/model\.onnx$/), precompiledRefused: expect.stringMatching(/gone\.ort/) });
    expect((await infer(handler, input)).status).toBe(200);
  });
});

describe('every packaging of a local model ships its precompiled copy beside it', () => {
  const env = (stack: Stack, fn: IConstruct) => resourceProps(Template.fromStack(stack), fn).Environment.Variables;

  it('bundled: in the code, at /var/task/model/<stem>.ort', () => {
    const { app, stack } = newStack();
    const e = new BundledModelEndpoint(stack, 'E', { model: ModelSource.fromAsset(DEMO_MODEL_FILE) });
    expect(env(stack, e.function).MODEL_PRECOMPILED_PATH).toBe('/var/task/model/demo.ort');
    const folder = assetFolder(app, resourceProps(Template.fromStack(stack), e.function).Code.S3Key);
    expect(
      fs
        .readFileSync(path.join(folder, 'model', 'demo.ort'))
        .subarray(4, 8)
        .toString(),
    ).toBe('ORTM');
  });

  it('layer: in the model layer, at /opt/models/<stem>.ort, counted in its size', () => {
    const { stack } = newStack();
    const e = new LayerModelEndpoint(stack, 'E', { model: ModelSource.fromAsset(DEMO_MODEL_FILE) });
    expect(env(stack, e.function).MODEL_PRECOMPILED_PATH).toBe('/opt/models/demo.ort');
    expect(e.modelLayer.precompiledModelPath).toBe('/opt/models/demo.ort');
    expect(e.modelLayer.unzippedSizeBytes).toBeGreaterThan(fs.statSync(DEMO_MODEL_FILE).size);
  });

  it('container image: beside the model in the image', () => {
    const { stack } = newStack();
    const e = new ContainerModelEndpoint(stack, 'E', { model: ModelSource.fromAsset(DEMO_MODEL_FILE) });
    expect(env(stack, e.function).MODEL_PRECOMPILED_PATH).toBe('/opt/ml/model/demo.ort');
    expect(fs.existsSync(path.join(e.imageDirectory, 'model', 'demo.ort'))).toBe(true);
  });

  it('EFS: copied by the loader beside the model, named after it, deleted with it', () => {
    const { stack } = newStack();
    const e = new EfsModelEndpoint(stack, 'E', { model: ModelSource.fromAsset(DEMO_MODEL_FILE) });
    const vars = env(stack, e.function);
    expect(vars.MODEL_PRECOMPILED_PATH).toBe(vars.MODEL_PATH.replace(/\.onnx$/, '.ort'));
    const copy = Object.values(Template.fromStack(stack).findResources('Custom::EfsModelCopy'))[0].Properties;
    expect(copy.PrecompiledFileName).toBe(path.posix.basename(vars.MODEL_PRECOMPILED_PATH));
    expect(JSON.stringify(copy.PrecompiledS3Uri)).toMatch(/\.ort/);
  });

  it.each([
    ['precompileModel: false', { precompileModel: false }],
    ['graphOptimizationLevel: DISABLED', { graphOptimizationLevel: GraphOptimizationLevel.DISABLED }],
  ])('none with %s', (_what, props) => {
    const { stack } = newStack();
    const model = () => ModelSource.fromAsset(DEMO_MODEL_FILE);
    const endpoints = [
      new BundledModelEndpoint(stack, 'B', { model: model(), ...props }),
      new LayerModelEndpoint(stack, 'L', { model: model(), ...props }),
      new ContainerModelEndpoint(stack, 'C', { model: model(), ...props }),
      new S3ModelEndpoint(stack, 'S', { model: model(), ...props }),
      new EfsModelEndpoint(stack, 'F', { model: model(), ...props }),
    ];
    for (const e of endpoints) {
      const vars = env(stack, e.function);
      expect(vars.MODEL_PRECOMPILED_PATH ?? vars.MODEL_PRECOMPILED_S3_URI).toBeUndefined();
    }
    expect((endpoints[1] as LayerModelEndpoint).modelLayer.precompiledModelPath).toBeUndefined();
  });

  it('none for a model in S3 (fromBucket): it is not read at synth', () => {
    const { stack } = newStack();
    const bucket = s3.Bucket.fromBucketName(stack, 'B', 'models');
    const e = new S3ModelEndpoint(stack, 'E', { model: ModelSource.fromBucket(bucket, 'm.onnx') });
    expect(env(stack, e.function).MODEL_PRECOMPILED_S3_URI).toBeUndefined();
  });
});
