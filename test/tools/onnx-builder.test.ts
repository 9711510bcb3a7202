import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import {
  buildOnnxModel,
  encodeVarint,
  identityAllTypesModel,
  logisticRegressionModel,
  mlpModel,
  mulberry32,
  multiIoModel,
  notOnnxBytes,
  type OnnxElemType,
  paddedModel,
  ProtoWriter,
  truncatedModel,
  unknownOpModel,
  writeMatMulModel,
  writePaddedModel,
} from '../../tools/onnx';
import { floatToHalfBits, halfBitsToFloat } from '../../handlers/core/protocol/float16';

// Padded models carry an unused initializer on purpose; keep onnxruntime's warning about it quiet.
const QUIET: ort.InferenceSession.SessionOptions = { logSeverityLevel: 3 };

function load(bytes: Uint8Array): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), QUIET);
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

const tempDir = fs.mkdtempSync(path.join(os.tmpdir(), 'onnx-builder-'));
afterAll(() => fs.rmSync(tempDir, { recursive: true, force: true }));

describe('protobuf writer', () => {
  // The examples of https://protobuf.dev/programming-guides/encoding/
  it('encodes varints as base-128 with a continuation bit', () => {
    expect(hex(encodeVarint(1))).toBe('01');
    expect(hex(encodeVarint(150))).toBe('9601');
    expect(hex(encodeVarint(300))).toBe('ac02');
    expect(hex(encodeVarint(-1))).toBe('ffffffffffffffffff01');
    expect(hex(encodeVarint(2n ** 63n))).toBe('80808080808080808001');
  });

  it('encodes fields with their keys', () => {
    expect(hex(new ProtoWriter().varint(1, 150).finish())).toBe('089601');
    expect(hex(new ProtoWriter().string(2, 'testing').finish())).toBe('120774657374696e67');
    expect(hex(new ProtoWriter().message(3, new ProtoWriter().varint(1, 150)).finish())).toBe('1a03089601');
    expect(hex(new ProtoWriter().packedVarints(4, [3, 270, 86942]).finish())).toBe('2206038e029ea705');
    expect(hex(new ProtoWriter().float(1, 1).finish())).toBe('0d0000803f');
    expect(hex(new ProtoWriter().double(1, 1).finish())).toBe('09000000000000f03f');
  });

  it('refuses numbers that are not safe integers', () => {
    expect(() => encodeVarint(1.5)).toThrow(/1.5 as a varint/);
    expect(() => new ProtoWriter().varint(0, 1)).toThrow(/field number 0/);
  });
});

describe('float16', () => {
  it.each([
    [1, 0x3c00],
    [-2, 0xc000],
    [0.5, 0x3800],
    [65504, 0x7bff],
    [1 / 3, 0x3555],
    [2 ** -24, 0x0001],
    [2 ** -14, 0x0400],
    [1e-8, 0x0000],
    [70000, 0x7c00],
    [-Infinity, 0xfc00],
    [2049, 0x6800], // halfway between 2048 and 2050: ties to even (2048)
    [2051, 0x6802], // halfway between 2050 and 2052: ties to even (2052)
  ])('%d has the half-precision bits %i', (value, bits) => {
    expect(floatToHalfBits(value)).toBe(bits);
  });

  it('decodes bits back to numbers', () => {
    expect(halfBitsToFloat(0x3c00)).toBe(1);
    expect(halfBitsToFloat(0xc000)).toBe(-2);
    expect(halfBitsToFloat(0x7bff)).toBe(65504);
    expect(halfBitsToFloat(0x0001)).toBe(2 ** -24);
    expect(halfBitsToFloat(0x7c00)).toBe(Infinity);
    expect(halfBitsToFloat(0x7e00)).toBeNaN();
    expect(floatToHalfBits(NaN) & 0x7c00).toBe(0x7c00);
  });
});

describe('buildOnnxModel', () => {
  it('gives the same bytes for the same spec', () => {
    expect(hex(logisticRegressionModel({ seed: 3 }).bytes)).toBe(hex(logisticRegressionModel({ seed: 3 }).bytes));
    expect(hex(logisticRegressionModel({ seed: 3 }).bytes)).not.toBe(hex(logisticRegressionModel({ seed: 4 }).bytes));
  });

  it('rejects an initializer whose values do not fill its dims', () => {
    expect(() =>
      buildOnnxModel({
        graphName: 'g',
        inputs: [],
        outputs: [],
        nodes: [],
        initializers: [{ name: 'w', elemType: 'float32', dims: [2, 2], values: [1, 2, 3] }],
      }),
    ).toThrow("Tensor 'w' has dims [2, 2] (4 elements) but 3 values");
  });
});

function randomRows(count: number, width: number, seed: number): number[][] {
  const random = mulberry32(seed);
  return Array.from({ length: count }, () => Array.from({ length: width }, () => Math.fround(random() * 2 - 1)));
}

function expectClose(actual: ArrayLike<number>, expected: readonly number[], tolerance: number): void {
  expect(actual.length).toBe(expected.length);
  for (const [i, value] of expected.entries()) expect(Math.abs(actual[i] - value)).toBeLessThan(tolerance);
}

describe('logisticRegressionModel', () => {
  it('runs in onnxruntime and matches the plain-JS reference', async () => {
    const model = logisticRegressionModel({ features: 100, seed: 11 });
    const rows = randomRows(5, 100, 99);
    const session = await load(model.bytes);
    const { probability } = await session.run({
      features: new ort.Tensor('float32', Float32Array.from(rows.flat()), [5, 100]),
    });
    expect(probability.dims).toEqual([5, 1]);
    const expected = model.predict(rows);
    expectClose(probability.data as Float32Array, expected, 1e-5);
    // Not saturated: the inputs actually matter.
    expect(Math.max(...expected) - Math.min(...expected)).toBeGreaterThan(0.05);
  });

  it('exposes the weights the reference uses', () => {
    const model = logisticRegressionModel({ features: 3, seed: 5 });
    const [w0, w1, w2] = model.weights;
    const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));
    expect(model.predict([[1, 0, 2]])[0]).toBeCloseTo(sigmoid(w0 + 2 * w2 + model.bias), 12);
    expect(model.predict([[0, 1, 0]])[0]).toBeCloseTo(sigmoid(w1 + model.bias), 12);
    expect(() => model.predict([[1, 2]])).toThrow('row 0 has 2 values, expected 3');
  });
});

describe('mlpModel', () => {
  it('runs in onnxruntime and matches the plain-JS reference', async () => {
    const model = mlpModel({ inputs: 4, hidden: 16, classes: 3, seed: 21 });
    const rows = randomRows(7, 4, 42);
    const session = await load(model.bytes);
    const { probabilities } = await session.run({ input: new ort.Tensor('float32', Float32Array.from(rows.flat()), [7, 4]) });
    expect(probabilities.dims).toEqual([7, 3]);
    expectClose(probabilities.data as Float32Array, model.predict(rows).flat(), 1e-5);
  });

  it('adds an int64 label output, the ArgMax of the probabilities, when asked', async () => {
    const model = mlpModel({ inputs: 4, hidden: 16, classes: 3, seed: 21, label: true });
    const rows = randomRows(20, 4, 7);
    const session = await load(model.bytes);
    expect(session.outputNames).toEqual(['probabilities', 'label']);
    const { probabilities, label } = await session.run({ input: new ort.Tensor('float32', Float32Array.from(rows.flat()), [20, 4]) });
    expect(label.type).toBe('int64');
    expect(label.dims).toEqual([20]);
    const expected = model.predict(rows).map((p) => p.indexOf(Math.max(...p)));
    expect(new Set(expected).size).toBeGreaterThan(1);
    expect(Array.from(label.data as BigInt64Array, Number)).toEqual(expected);
    expect(model.predictLabels(rows)).toEqual(expected);
    expect(probabilities.dims).toEqual([20, 3]);
  });

  it('computes a softmax over relu(x·W1 + b1)·W2 + b2 in its reference', () => {
    const model = mlpModel({ inputs: 1, hidden: 2, classes: 2, seed: 8 });
    const [[a, b]] = model.hiddenWeights;
    const h = [Math.max(0, a * 2 + model.hiddenBias[0]), Math.max(0, b * 2 + model.hiddenBias[1])];
    const l0 = h[0] * model.outputWeights[0][0] + h[1] * model.outputWeights[1][0] + model.outputBias[0];
    const l1 = h[0] * model.outputWeights[0][1] + h[1] * model.outputWeights[1][1] + model.outputBias[1];
    const [p0, p1] = model.predict([[2]])[0];
    expect(p0).toBeCloseTo(1 / (1 + Math.exp(l1 - l0)), 12);
    expect(p0 + p1).toBeCloseTo(1, 12);
  });
});

describe('multiIoModel', () => {
  it('transforms each datatype as documented', async () => {
    const session = await load(multiIoModel().bytes);
    const halves = [1.5, -2, 0.25, 100];
    const out = await session.run({
      ids: new ort.Tensor('int64', BigInt64Array.from([1n, 2n, 3n, 4n, -5n, 0n, 7n, 2n ** 40n]), [2, 4]),
      mask: new ort.Tensor('bool', [true, false, false, true, false, false, false, false], [2, 4]),
      text: new ort.Tensor('string', ['héllo', ''], [2]),
      halves: new ort.Tensor('float16', Uint16Array.from(halves.map(floatToHalfBits)), [2, 2]),
    });
    expect(Array.from(out.ids_times_two.data as BigInt64Array)).toEqual([2n, 4n, 6n, 8n, -10n, 0n, 14n, 2n ** 41n]);
    expect(out.ids_times_two.type).toBe('int64');
    expect(Array.from(out.mask_inverted.data as Uint8Array, Boolean)).toEqual([false, true, true, false, true, true, true, true]);
    expect(out.mask_inverted.type).toBe('bool');
    expect(out.text_echo.data).toEqual(['héllo', '']);
    expect(out.halves_plus_half.type).toBe('float32');
    expect(Array.from(out.halves_plus_half.data as Float32Array)).toEqual([2, -1.5, 0.75, 100.5]);
    expect(out.halves_plus_half_fp16.type).toBe('float16');
    // 2, -1.5, 0.75, 100.5 in IEEE half precision, worked out by hand.
    expect(Array.from(out.halves_plus_half_fp16.data as Uint16Array)).toEqual([0x4000, 0xbe00, 0x3a00, 0x5648]);
    expect(out.halves_plus_half.dims).toEqual([2, 2]);
  });
});

describe('identityAllTypesModel', () => {
  const samples: Record<OnnxElemType, { data: ort.Tensor['data'] | boolean[]; compare: unknown[] }> = {
    float32: { data: Float32Array.from([1.5, -2.25, 3e38]), compare: [1.5, -2.25, Math.fround(3e38)] },
    float16: { data: Uint16Array.from([0x3c00, 0xc000, 0x7bff]), compare: [0x3c00, 0xc000, 0x7bff] },
    float64: { data: Float64Array.from([Math.PI, -1e300, 0]), compare: [Math.PI, -1e300, 0] },
    int8: { data: Int8Array.from([-128, 0, 127]), compare: [-128, 0, 127] },
    int16: { data: Int16Array.from([-32768, 1, 32767]), compare: [-32768, 1, 32767] },
    int32: { data: Int32Array.from([-(2 ** 31), 0, 2 ** 31 - 1]), compare: [-(2 ** 31), 0, 2 ** 31 - 1] },
    int64: { data: BigInt64Array.from([-(2n ** 63n), 0n, 2n ** 63n - 1n]), compare: [-(2n ** 63n), 0n, 2n ** 63n - 1n] },
    uint8: { data: Uint8Array.from([0, 128, 255]), compare: [0, 128, 255] },
    uint16: { data: Uint16Array.from([0, 1, 65535]), compare: [0, 1, 65535] },
    uint32: { data: Uint32Array.from([0, 1, 2 ** 32 - 1]), compare: [0, 1, 2 ** 32 - 1] },
    uint64: { data: BigUint64Array.from([0n, 1n, 2n ** 64n - 1n]), compare: [0n, 1n, 2n ** 64n - 1n] },
    bool: { data: [true, false, true], compare: [1, 0, 1] },
    string: { data: ['a', 'β', ''], compare: ['a', 'β', ''] },
  };

  it('round-trips every datatype', async () => {
    const model = identityAllTypesModel();
    expect([...model.elemTypes].sort()).toEqual(Object.keys(samples).sort());
    const feeds: Record<string, ort.Tensor> = {};
    const dimsOf: Record<string, number[]> = {};
    for (const input of model.spec.inputs) {
      const dims = input.shape!.length === 1 ? [3] : [1, 3];
      dimsOf[input.elemType] = dims;
      // Each type's constructor overload is chosen at run time from the type name.
      feeds[input.name] = new ort.Tensor(input.elemType as 'float32', samples[input.elemType].data as Float32Array, dims);
    }
    const session = await load(model.bytes);
    const out = await session.run(feeds);
    for (const elemType of model.elemTypes) {
      const y = out[`y_${elemType}`];
      expect(y.type, elemType).toBe(elemType);
      expect(y.dims, elemType).toEqual(dimsOf[elemType]);
      expect(Array.from(y.data as ArrayLike<unknown>), elemType).toEqual(samples[elemType].compare);
    }
  });
});

describe('padded models', () => {
  it('are the size asked for, give or take a few bytes, and run', async () => {
    const model = paddedModel({ sizeBytes: 100_000 });
    expect(model.bytes.length).toBe(model.sizeBytes);
    expect(Math.abs(model.sizeBytes - 100_000)).toBeLessThanOrEqual(4);
    expect(model.paddingBytes).toBeGreaterThan(99_000);
    const session = await load(model.bytes);
    const { y } = await session.run({ x: new ort.Tensor('float32', Float32Array.from([1, -3]), [2]) });
    expect(Array.from(y.data as Float32Array)).toEqual([1 + model.addend, -3 + model.addend]);
  });

  it.each([300, 127 + 200, 16_384 + 50, 2_097_152 + 50, 1_000_000])('reach %i bytes across varint boundaries', (sizeBytes) => {
    const model = paddedModel({ sizeBytes });
    expect(model.bytes.length).toBe(model.sizeBytes);
    expect(Math.abs(model.sizeBytes - sizeBytes)).toBeLessThanOrEqual(4);
  });

  it('are written to a file in chunks with the same bytes as in memory', async () => {
    const sizeBytes = 3 * 1024 * 1024 + 17;
    const filePath = path.join(tempDir, 'padded.onnx');
    const written = writePaddedModel(filePath, sizeBytes);
    expect(fs.statSync(filePath).size).toBe(written.sizeBytes);
    expect(Math.abs(written.sizeBytes - sizeBytes)).toBeLessThanOrEqual(4);
    const fileBytes = fs.readFileSync(filePath);
    expect(fileBytes.equals(Buffer.from(paddedModel({ sizeBytes }).bytes))).toBe(true);
    const session = await ort.InferenceSession.create(filePath, QUIET);
    const { y } = await session.run({ x: new ort.Tensor('float32', Float32Array.from([2]), [1]) });
    expect(Array.from(y.data as Float32Array)).toEqual([2 + written.addend]);
  });

  it('write the same bytes sparse, with the padding left as a hole', () => {
    const sizeBytes = 2 * 1024 * 1024 + 5;
    const dense = writePaddedModel(path.join(tempDir, 'dense.onnx'), sizeBytes);
    const sparse = writePaddedModel(path.join(tempDir, 'sparse.onnx'), sizeBytes, { sparse: true });
    expect(sparse).toEqual({ ...dense, path: sparse.path });
    expect(fs.readFileSync(sparse.path).equals(fs.readFileSync(dense.path))).toBe(true);
  });

  it('refuse a size smaller than the model without padding', () => {
    expect(() => paddedModel({ sizeBytes: 10 })).toThrow(/at least \d+ bytes \(the model without padding\), got 10/);
  });
});

describe('streamed MatMul models', () => {
  it('are about the size asked for, every weight read: the answer is input · W, and the optimizer keeps W', async () => {
    const filePath = path.join(tempDir, 'matmul.onnx');
    const model = writeMatMulModel(filePath, 4_000_000);
    expect(Math.abs(model.sizeBytes - 4_000_000) / 4_000_000).toBeLessThan(0.01);
    const optimized = path.join(tempDir, 'matmul.optimized.onnx');
    const session = await ort.InferenceSession.create(filePath, { ...QUIET, graphOptimizationLevel: 'all', optimizedModelFilePath: optimized });
    const { y } = await session.run({ x: new ort.Tensor('float32', Float32Array.from(model.input), [1, model.k]) });
    expect(y.dims).toEqual([1, model.n]);
    const got = y.data as Float32Array;
    for (let j = 0; j < model.n; j++) expect(Math.abs(got[j] - model.expected[j])).toBeLessThan(1e-3);
    // Not folded away, as a big initializer feeding a constant-only subgraph would be.
    expect(fs.statSync(optimized).size).toBeGreaterThan(0.99 * model.sizeBytes);
  });
});

describe('broken models', () => {
  it('junk bytes do not load', async () => {
    await expect(load(notOnnxBytes())).rejects.toThrow(/protobuf parsing failed/);
  });

  it('a truncated model does not load', async () => {
    const whole = mlpModel().bytes;
    const truncated = truncatedModel();
    expect(truncated.length).toBe(Math.floor(whole.length / 2));
    expect(hex(whole).startsWith(hex(truncated))).toBe(true);
    await expect(load(truncated)).rejects.toThrow(/protobuf parsing failed/);
  });

  it('a model with an unknown operator does not load', async () => {
    await expect(load(unknownOpModel().bytes)).rejects.toThrow(/NoSuchOp/);
  });
});
