import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { fileByteSource, oipDatatypeOfOnnxElemType, type OnnxModelInfo, readOnnxModelInfo, readOnnxModelInfoFrom, type ByteSource } from '../../../lib/model/onnx-model-info';
import {
  buildOnnxModel,
  identityAllTypesModel,
  logisticRegressionModel,
  mlpModel,
  multiIoModel,
  notOnnxBytes,
  type OnnxModelSpec,
  type OnnxValueSpec,
  ProtoWriter,
  truncatedModel,
  unknownOpModel,
  writePaddedModel,
} from '../../../tools/onnx';

// The Open Inference Protocol's names, from the KServe v2 protocol's datatype table.
const OIP_NAME_OF: Record<string, string> = {
  bool: 'BOOL',
  uint8: 'UINT8',
  uint16: 'UINT16',
  uint32: 'UINT32',
  uint64: 'UINT64',
  int8: 'INT8',
  int16: 'INT16',
  int32: 'INT32',
  int64: 'INT64',
  float16: 'FP16',
  float32: 'FP32',
  float64: 'FP64',
  string: 'BYTES',
};

const tempDir = fs.mkdtempSync(path.join(os.tmpdir(), 'onnx-model-info-'));
afterAll(() => fs.rmSync(tempDir, { recursive: true, force: true }));

function writeModel(name: string, bytes: Uint8Array): string {
  const filePath = path.join(tempDir, name);
  fs.writeFileSync(filePath, bytes);
  return filePath;
}

/** What the reader should report for a value of a spec, worked out from the spec alone. */
function expectedSignature(value: OnnxValueSpec) {
  return {
    name: value.name,
    datatype: OIP_NAME_OF[value.elemType],
    shape: (value.shape ?? []).map((d) => (typeof d === 'string' ? -1 : d)),
  };
}

async function expectToAgreeWithOnnxruntime(info: OnnxModelInfo, bytes: Uint8Array): Promise<void> {
  const session = await ort.InferenceSession.create(Buffer.from(bytes), { logSeverityLevel: 3 });
  const fromRuntime = (metadata: readonly ort.InferenceSession.ValueMetadata[]) =>
    metadata.map((m) => {
      if (!m.isTensor) {
        throw new Error(`${m.name} is not a tensor`);
      }
      return { name: m.name, datatype: OIP_NAME_OF[m.type], shape: m.shape.map((d) => (typeof d === 'string' ? -1 : d)) };
    });
  expect(info.inputs).toEqual(fromRuntime(session.inputMetadata));
  expect(info.outputs).toEqual(fromRuntime(session.outputMetadata));
}

describe('oipDatatypeOfOnnxElemType', () => {
  it('maps the TensorProto.DataType codes of onnx.proto', () => {
    const onnxCodes: Record<number, string | undefined> = {
      0: undefined,
      1: 'FP32',
      2: 'UINT8',
      3: 'INT8',
      4: 'UINT16',
      5: 'INT16',
      6: 'INT32',
      7: 'INT64',
      8: 'BYTES',
      9: 'BOOL',
      10: 'FP16',
      11: 'FP64',
      12: 'UINT32',
      13: 'UINT64',
      14: undefined, // COMPLEX64
      15: undefined, // COMPLEX128
      16: 'BF16',
      17: undefined, // FLOAT8E4M3FN
      22: undefined, // INT4
      99: undefined,
    };
    for (const [code, name] of Object.entries(onnxCodes)) {
      expect(oipDatatypeOfOnnxElemType(Number(code)), `code ${code}`).toBe(name);
    }
  });
});

describe('readOnnxModelInfo on built models', () => {
  const factories: Record<string, () => { bytes: Uint8Array; spec: OnnxModelSpec }> = {
    logisticRegression: () => logisticRegressionModel({ features: 100 }),
    mlp: () => mlpModel(),
    multiIo: () => multiIoModel(),
    identityAllTypes: () => identityAllTypesModel(),
  };

  it.each(Object.keys(factories))('reads the signature of %s', async (name) => {
    const { bytes, spec } = factories[name]();
    const info = readOnnxModelInfo(writeModel(`${name}.onnx`, bytes));
    expect(info).toEqual({
      sizeBytes: bytes.length,
      irVersion: 8,
      producerName: 'cdk-serverless-inference',
      opsetImports: [{ domain: '', version: 17 }],
      inputs: spec.inputs.map(expectedSignature),
      outputs: spec.outputs.map(expectedSignature),
    });
    await expectToAgreeWithOnnxruntime(info, bytes);
  });

  it('gives the logistic regression model its documented signature', () => {
    const info = readOnnxModelInfo(writeModel('lr.onnx', logisticRegressionModel({ features: 7 }).bytes));
    expect(info.inputs).toEqual([{ name: 'features', datatype: 'FP32', shape: [-1, 7] }]);
    expect(info.outputs).toEqual([{ name: 'probability', datatype: 'FP32', shape: [-1, 1] }]);
  });

  it('leaves out initializers that older files also list as inputs', async () => {
    const spec: OnnxModelSpec = { ...logisticRegressionModel({ features: 3 }).spec, listInitializersAsInputs: true };
    const bytes = buildOnnxModel(spec);
    // The file does list them: the reader has something to leave out.
    expect(Buffer.from(bytes).includes(Buffer.from('weights'))).toBe(true);
    const info = readOnnxModelInfo(writeModel('legacy.onnx', bytes));
    expect(info.inputs.map((i) => i.name)).toEqual(['features']);
    await expectToAgreeWithOnnxruntime(info, bytes);
  });

  it('reports scalars and tensors of unknown rank with an empty shape, and every opset', () => {
    const bytes = buildOnnxModel({
      graphName: 'shapes',
      irVersion: 9,
      opset: 18,
      extraOpsets: [{ domain: 'com.microsoft', version: 1 }],
      producerName: 'someone else',
      inputs: [
        { name: 'scalar', elemType: 'float64', shape: [] },
        { name: 'anything', elemType: 'uint8' },
      ],
      outputs: [{ name: 'out', elemType: 'float64', shape: [] }],
      nodes: [{ opType: 'Identity', inputs: ['scalar'], outputs: ['out'] }],
    });
    const info = readOnnxModelInfo(writeModel('shapes.onnx', bytes));
    expect(info.irVersion).toBe(9);
    expect(info.producerName).toBe('someone else');
    expect(info.opsetImports).toEqual([
      { domain: '', version: 18 },
      { domain: 'com.microsoft', version: 1 },
    ]);
    expect(info.inputs).toEqual([
      { name: 'scalar', datatype: 'FP64', shape: [] },
      { name: 'anything', datatype: 'UINT8', shape: [] },
    ]);
  });

  it('skips fields it does not know, wherever they are', async () => {
    const { bytes, spec } = mlpModel();
    const extra = new ProtoWriter()
      .string(6, 'a doc string')
      .message(14, new ProtoWriter().string(1, 'key').string(2, 'value'))
      .fixed32(1000, 7)
      .double(1001, 2.5)
      .varint(1002, -1)
      .finish();
    const withExtra = Buffer.concat([extra, bytes, extra]);
    const info = readOnnxModelInfo(writeModel('extra.onnx', withExtra));
    expect(info.inputs).toEqual(spec.inputs.map(expectedSignature));
    expect(info.sizeBytes).toBe(withExtra.length);
    await expectToAgreeWithOnnxruntime(info, withExtra);
  });

  it('reads a model whose operators onnxruntime cannot run: the signature is all it checks', () => {
    const info = readOnnxModelInfo(writeModel('unknown-op.onnx', unknownOpModel().bytes));
    expect(info.inputs).toEqual([{ name: 'x', datatype: 'FP32', shape: [-1] }]);
    expect(info.outputs).toEqual([{ name: 'y', datatype: 'FP32', shape: [-1] }]);
  });
});

/** A {@link ByteSource} that counts what is read from it. */
function countingSource(inner: ByteSource): ByteSource & { bytesRead: number; reads: number } {
  const counter = {
    sizeBytes: inner.sizeBytes,
    bytesRead: 0,
    reads: 0,
    read(position: number, length: number) {
      counter.bytesRead += length;
      counter.reads += 1;
      return inner.read(position, length);
    },
  };
  return counter;
}

describe('readOnnxModelInfo on a large model', () => {
  const sizeBytes = 50 * 1024 * 1024;
  const written = writePaddedModel(path.join(tempDir, 'padded-50mb.onnx'), sizeBytes);

  it('reads the signature quickly', () => {
    const started = performance.now();
    const info = readOnnxModelInfo(written.path);
    const elapsedMs = performance.now() - started;
    expect(info.sizeBytes).toBe(written.sizeBytes);
    expect(info.inputs).toEqual([{ name: 'x', datatype: 'FP32', shape: [-1] }]);
    expect(info.outputs).toEqual([{ name: 'y', datatype: 'FP32', shape: [-1] }]);
    // Generous for a slow machine; reading 50 MB is not what makes this fast, see the next test.
    expect(elapsedMs).toBeLessThan(500);
  });

  it('skips the initializer data instead of reading it', () => {
    const fd = fs.openSync(written.path, 'r');
    try {
      const source = countingSource(fileByteSource(fd, fs.fstatSync(fd).size));
      readOnnxModelInfoFrom(source, written.path);
      expect(written.paddingBytes).toBeGreaterThan(sizeBytes - 1024);
      expect(source.bytesRead).toBeLessThan(64 * 1024);
      expect(source.reads).toBeLessThan(10);
    } finally {
      fs.closeSync(fd);
    }
  });

  it('reads the headers of many initializers without reading their data', () => {
    const initializers = Array.from({ length: 50 }, (_, i) => ({
      name: `w${i}`,
      elemType: 'uint8' as const,
      dims: [100_000],
      values: new Uint8Array(100_000),
    }));
    const bytes = buildOnnxModel({
      graphName: 'many',
      inputs: [{ name: 'x', elemType: 'float32', shape: [1] }],
      outputs: [{ name: 'y', elemType: 'float32', shape: [1] }],
      nodes: [{ opType: 'Identity', inputs: ['x'], outputs: ['y'] }],
      initializers,
      listInitializersAsInputs: true,
    });
    const source = countingSource({ sizeBytes: bytes.length, read: (p, l) => bytes.slice(p, p + l) });
    const info = readOnnxModelInfoFrom(source, 'many.onnx');
    expect(info.inputs.map((i) => i.name)).toEqual(['x']);
    expect(source.bytesRead).toBeLessThan(bytes.length / 10);
  });
});

describe('readOnnxModelInfo on what is not a model', () => {
  it('rejects junk, naming the file', () => {
    const filePath = writeModel('junk.onnx', notOnnxBytes());
    expect(() => readOnnxModelInfo(filePath)).toThrow(`${filePath} is not an ONNX model: `);
  });

  it.each(Array.from({ length: 50 }, (_, seed) => seed))('rejects junk of seed %i', (seed) => {
    const bytes = notOnnxBytes({ seed, length: 1024 });
    expect(() => readOnnxModelInfoFrom({ sizeBytes: bytes.length, read: (p, l) => bytes.slice(p, p + l) }, 'junk')).toThrow(/^junk is not an ONNX model: /);
  });

  it('rejects a truncated model, saying it looks truncated', () => {
    const filePath = writeModel('truncated.onnx', truncatedModel());
    expect(() => readOnnxModelInfo(filePath)).toThrow(new RegExp(`^${filePath} is not an ONNX model: .*truncated`));
  });

  it('rejects an empty file', () => {
    const filePath = writeModel('empty.onnx', new Uint8Array(0));
    expect(() => readOnnxModelInfo(filePath)).toThrow(`${filePath} is not an ONNX model: the file is empty`);
  });

  it('rejects a missing file', () => {
    const filePath = path.join(tempDir, 'missing.onnx');
    expect(() => readOnnxModelInfo(filePath)).toThrow(new RegExp(`^Cannot read ONNX model ${filePath}: ENOENT`));
  });

  it('rejects a directory', () => {
    expect(() => readOnnxModelInfo(tempDir)).toThrow(`Cannot read ONNX model ${tempDir}: it is not a regular file`);
  });

  it('rejects protobuf without a graph', () => {
    const filePath = writeModel('no-graph.onnx', new ProtoWriter().varint(1, 8).string(2, 'x').finish());
    expect(() => readOnnxModelInfo(filePath)).toThrow(`${filePath} is not an ONNX model: it has no graph (ModelProto field 7)`);
  });

  it('rejects a graph field that is not a message', () => {
    const filePath = writeModel('bad-graph.onnx', new ProtoWriter().varint(1, 8).varint(7, 3).finish());
    expect(() => readOnnxModelInfo(filePath)).toThrow(/ModelProto.graph \(field 7\) at byte 2 has wire type 0, expected 2/);
  });
});

/** A hand-made model whose single output is described by `outputType` (an encoded TypeProto). */
function modelWithOutputType(outputType: ProtoWriter): Uint8Array {
  const graph = new ProtoWriter().string(2, 'g').message(12, new ProtoWriter().string(1, 'out').message(2, outputType));
  return new ProtoWriter().varint(1, 8).message(7, graph).message(8, new ProtoWriter().string(1, '').varint(2, 17)).finish();
}

describe('readOnnxModelInfo on models the protocol cannot serve', () => {
  it('names an element type with no Open Inference Protocol datatype', () => {
    const complex64 = new ProtoWriter().message(1, new ProtoWriter().varint(1, 14));
    const filePath = writeModel('complex.onnx', modelWithOutputType(complex64));
    expect(() => readOnnxModelInfo(filePath)).toThrow(`${filePath}: output 'out' has ONNX element type COMPLEX64 (14), which the Open Inference Protocol cannot carry`);
  });

  it('reads bfloat16 as BF16', () => {
    const bfloat16 = new ProtoWriter().message(1, new ProtoWriter().varint(1, 16));
    const info = readOnnxModelInfo(writeModel('bf16.onnx', modelWithOutputType(bfloat16)));
    expect(info.outputs).toEqual([{ name: 'out', datatype: 'BF16', shape: [] }]);
  });

  it('names a non-tensor output', () => {
    const sequenceOfFloats = new ProtoWriter().message(4, new ProtoWriter().message(1, new ProtoWriter().message(1, new ProtoWriter().varint(1, 1))));
    const filePath = writeModel('sequence.onnx', modelWithOutputType(sequenceOfFloats));
    expect(() => readOnnxModelInfo(filePath)).toThrow(`${filePath}: output 'out' is a sequence; only tensor inputs and outputs`);
  });
});
