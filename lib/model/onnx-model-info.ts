import * as fs from 'node:fs';
import { TensorDatatype } from '../../contract/datatypes';

/** One input or output of a model, as the protocol describes it. */
export interface TensorSignature {
  /** The tensor's name in requests and answers. */
  readonly name: string;
  /** Its Open Inference Protocol datatype. */
  readonly datatype: TensorDatatype;
  /**
   * One entry per dimension; -1 for a symbolic (e.g. `batch`) or unknown dimension. Empty both for a
   * scalar and for a tensor whose model declares no shape at all.
   */
  readonly shape: number[];
}

/** An operator set a model uses. */
export interface OnnxOpsetImport {
  /** `''` is the default `ai.onnx` domain. */
  readonly domain: string;
  /** The operator set's version. */
  readonly version: number;
}

/** What a model file says of itself, read at synth from its header (not its weights). */
export interface OnnxModelInfo {
  /** The file's size in bytes. */
  readonly sizeBytes: number;
  /** The ONNX IR version of the file. */
  readonly irVersion: number;
  /**
   * The tool that wrote the file.
   * @default - not recorded in the file
   */
  readonly producerName?: string;
  /** The operator sets the graph uses. */
  readonly opsetImports: OnnxOpsetImport[];
  /** Graph inputs a caller must feed: initializers listed as inputs (older files do that) are left out. */
  readonly inputs: TensorSignature[];
  /** The graph's outputs. */
  readonly outputs: TensorSignature[];
}

/** Random access to the bytes of a model; lets tests count what is read. */
export interface ByteSource {
  readonly sizeBytes: number;
  /** Exactly `length` bytes from `position` (the caller keeps within `sizeBytes`). */
  read(position: number, length: number): Uint8Array;
}

// TensorProto.DataType codes (onnx.proto) to Open Inference Protocol names.
const OIP_DATATYPE_OF_ONNX_ELEM_TYPE: Readonly<Record<number, TensorDatatype>> = {
  1: TensorDatatype.FP32,
  2: TensorDatatype.UINT8,
  3: TensorDatatype.INT8,
  4: TensorDatatype.UINT16,
  5: TensorDatatype.INT16,
  6: TensorDatatype.INT32,
  7: TensorDatatype.INT64,
  8: TensorDatatype.BYTES,
  9: TensorDatatype.BOOL,
  10: TensorDatatype.FP16,
  11: TensorDatatype.FP64,
  12: TensorDatatype.UINT32,
  13: TensorDatatype.UINT64,
  16: TensorDatatype.BF16,
};

// Names of the codes the protocol cannot carry, for error messages.
const ONNX_ELEM_TYPE_NAMES: Readonly<Record<number, string>> = {
  0: 'UNDEFINED',
  14: 'COMPLEX64',
  15: 'COMPLEX128',
  17: 'FLOAT8E4M3FN',
  18: 'FLOAT8E4M3FNUZ',
  19: 'FLOAT8E5M2',
  20: 'FLOAT8E5M2FNUZ',
  21: 'UINT4',
  22: 'INT4',
  23: 'FLOAT4E2M1',
  24: 'FLOAT8E8M0',
  25: 'UINT2',
  26: 'INT2',
};

/** The Open Inference Protocol datatype of an ONNX TensorProto.DataType code, if it has one. */
export function oipDatatypeOfOnnxElemType(code: number): TensorDatatype | undefined {
  return OIP_DATATYPE_OF_ONNX_ELEM_TYPE[code];
}

/**
 * Reads an ONNX model's signature (inputs, outputs, opsets) without reading the whole file: weights
 * (initializers, usually nearly all of a multi-GB file) are skipped by seeking past them.
 * @throws Error naming the file when it cannot be read or is not a readable ONNX model.
 */
export function readOnnxModelInfo(filePath: string): OnnxModelInfo {
  let fd: number;
  try {
    fd = fs.openSync(filePath, 'r');
  } catch (err) {
    throw new Error(`Cannot read ONNX model ${filePath}: ${(err as Error).message}`);
  }
  try {
    const stats = fs.fstatSync(fd);
    if (!stats.isFile()) {
      throw new Error(`Cannot read ONNX model ${filePath}: it is not a regular file`);
    }
    return readOnnxModelInfoFrom(fileByteSource(fd, stats.size), filePath);
  } finally {
    fs.closeSync(fd);
  }
}

/** A {@link ByteSource} over an open file descriptor, with positioned reads. */
export function fileByteSource(fd: number, sizeBytes: number): ByteSource {
  return {
    sizeBytes,
    read(position, length) {
      const out = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const n = fs.readSync(fd, out, done, length - done, position + done);
        if (n === 0) {
          throw new Error(`the file ended at byte ${position + done} while ${sizeBytes} bytes were expected`);
        }
        done += n;
      }
      return out;
    },
  };
}

/** {@link readOnnxModelInfo} over any byte source; `label` names the model in errors. */
export function readOnnxModelInfoFrom(source: ByteSource, label: string): OnnxModelInfo {
  const notOnnx = (reason: string) => new Error(`${label} is not an ONNX model: ${reason}`);
  if (source.sizeBytes === 0) {
    throw notOnnx('the file is empty');
  }
  let model: ModelFields;
  try {
    model = readModel(new Cursor(new WindowedSource(source), 0, source.sizeBytes));
  } catch (err) {
    if (err instanceof MalformedModelError) {
      throw notOnnx(err.message);
    }
    throw new Error(`Cannot read ONNX model ${label}: ${(err as Error).message}`);
  }
  if (model.irVersion === undefined) {
    throw notOnnx('it has no ir_version (ModelProto field 1)');
  }
  if (!model.graph) {
    throw notOnnx('it has no graph (ModelProto field 7)');
  }
  if (model.graph.outputs.length === 0) {
    throw notOnnx('its graph declares no outputs');
  }
  const initializers = model.graph.initializerNames;
  const signature = (kind: string) => (value: ValueInfo) => toTensorSignature(value, kind, label);
  return {
    sizeBytes: source.sizeBytes,
    irVersion: model.irVersion,
    ...(model.producerName !== undefined && { producerName: model.producerName }),
    opsetImports: model.opsetImports,
    inputs: model.graph.inputs.filter((i) => !initializers.has(i.name)).map(signature('input')),
    outputs: model.graph.outputs.map(signature('output')),
  };
}

function toTensorSignature(value: ValueInfo, kind: string, label: string): TensorSignature {
  if (value.typeKind !== 'tensor') {
    throw new Error(
      `${label}: ${kind} '${value.name}' is ${value.typeKind === undefined ? 'of no declared type' : `a ${value.typeKind}`}; ` +
        'only tensor inputs and outputs can be served over the Open Inference Protocol',
    );
  }
  const datatype = value.elemType === undefined ? undefined : oipDatatypeOfOnnxElemType(value.elemType);
  if (datatype === undefined) {
    const code = value.elemType ?? 0;
    throw new Error(
      `${label}: ${kind} '${value.name}' has ONNX element type ${ONNX_ELEM_TYPE_NAMES[code] ?? 'unknown'} (${code}), ` +
        `which the Open Inference Protocol cannot carry; supported: ${Object.values(OIP_DATATYPE_OF_ONNX_ELEM_TYPE).join(', ')}`,
    );
  }
  return { name: value.name, datatype, shape: value.shape ?? [] };
}

// ---- The parts of onnx.proto that are read, field numbers from onnx/onnx.proto ----

interface ModelFields {
  irVersion?: number;
  producerName?: string;
  opsetImports: OnnxOpsetImport[];
  graph?: GraphFields;
}

interface GraphFields {
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  initializerNames: Set<string>;
}

interface ValueInfo {
  name: string;
  typeKind?: 'tensor' | 'sequence' | 'map' | 'optional' | 'sparse tensor' | 'opaque';
  elemType?: number;
  shape?: number[];
}

function readModel(cursor: Cursor): ModelFields {
  const model: ModelFields = { opsetImports: [] };
  for (let field = cursor.next(); field; field = cursor.next()) {
    switch (field.number) {
      case 1:
        model.irVersion = Number(cursor.varintOf(field, 'ModelProto.ir_version'));
        break;
      case 2:
        model.producerName = cursor.stringOf(field, 'ModelProto.producer_name');
        break;
      case 7:
        model.graph = readGraph(cursor.messageOf(field, 'ModelProto.graph'));
        break;
      case 8:
        model.opsetImports.push(readOpset(cursor.messageOf(field, 'ModelProto.opset_import')));
        break;
    }
  }
  return model;
}

function readOpset(cursor: Cursor): OnnxOpsetImport {
  let domain = '';
  let version = 0;
  for (let field = cursor.next(); field; field = cursor.next()) {
    if (field.number === 1) {
      domain = cursor.stringOf(field, 'OperatorSetIdProto.domain');
    } else if (field.number === 2) {
      version = Number(cursor.varintOf(field, 'OperatorSetIdProto.version'));
    }
  }
  return { domain, version };
}

function readGraph(cursor: Cursor): GraphFields {
  const graph: GraphFields = { inputs: [], outputs: [], initializerNames: new Set() };
  for (let field = cursor.next(); field; field = cursor.next()) {
    switch (field.number) {
      case 5: {
        const name = readTensorName(cursor.messageOf(field, 'GraphProto.initializer'));
        if (name !== undefined) {
          graph.initializerNames.add(name);
        }
        break;
      }
      case 11:
        graph.inputs.push(readValueInfo(cursor.messageOf(field, 'GraphProto.input')));
        break;
      case 12:
        graph.outputs.push(readValueInfo(cursor.messageOf(field, 'GraphProto.output')));
        break;
      case 15: {
        // SparseTensorProto: its name is that of its `values` tensor (field 1).
        const sparse = cursor.messageOf(field, 'GraphProto.sparse_initializer');
        for (let f = sparse.next(); f; f = sparse.next()) {
          if (f.number === 1) {
            const name = readTensorName(sparse.messageOf(f, 'SparseTensorProto.values'));
            if (name !== undefined) {
              graph.initializerNames.add(name);
            }
          }
        }
        break;
      }
    }
  }
  return graph;
}

/** The tensor's name (field 8); its data fields are skipped, never read. */
function readTensorName(cursor: Cursor): string | undefined {
  let name: string | undefined;
  for (let field = cursor.next(); field; field = cursor.next()) {
    if (field.number === 8) {
      name = cursor.stringOf(field, 'TensorProto.name');
    }
  }
  return name;
}

function readValueInfo(cursor: Cursor): ValueInfo {
  const value: ValueInfo = { name: '' };
  for (let field = cursor.next(); field; field = cursor.next()) {
    if (field.number === 1) {
      value.name = cursor.stringOf(field, 'ValueInfoProto.name');
    } else if (field.number === 2) {
      readType(cursor.messageOf(field, 'ValueInfoProto.type'), value);
    }
  }
  return value;
}

const TYPE_KINDS: Readonly<Record<number, ValueInfo['typeKind']>> = {
  1: 'tensor',
  4: 'sequence',
  5: 'map',
  7: 'opaque',
  8: 'sparse tensor',
  9: 'optional',
};

function readType(cursor: Cursor, value: ValueInfo): void {
  for (let field = cursor.next(); field; field = cursor.next()) {
    const kind = TYPE_KINDS[field.number];
    if (kind === undefined) {
      continue;
    }
    value.typeKind = kind;
    if (kind === 'tensor') {
      const tensor = cursor.messageOf(field, 'TypeProto.tensor_type');
      for (let f = tensor.next(); f; f = tensor.next()) {
        if (f.number === 1) {
          value.elemType = Number(tensor.varintOf(f, 'TypeProto.Tensor.elem_type'));
        } else if (f.number === 2) {
          value.shape = readShape(tensor.messageOf(f, 'TypeProto.Tensor.shape'));
        }
      }
    }
  }
}

function readShape(cursor: Cursor): number[] {
  const shape: number[] = [];
  for (let field = cursor.next(); field; field = cursor.next()) {
    if (field.number !== 1) {
      continue;
    }
    const dimension = cursor.messageOf(field, 'TensorShapeProto.dim');
    let size = -1;
    for (let f = dimension.next(); f; f = dimension.next()) {
      if (f.number === 1) {
        const v = BigInt.asIntN(64, dimension.varintOf(f, 'TensorShapeProto.Dimension.dim_value'));
        size = v >= 0n && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : -1;
      } else if (f.number === 2) {
        size = -1;
      }
    }
    shape.push(size);
  }
  return shape;
}

// ---- Protobuf wire format, read lazily from a byte source ----

class MalformedModelError extends Error {}

const utf8 = new TextDecoder('utf-8');

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LENGTH_DELIMITED = 2;
const WIRE_FIXED32 = 5;

// What a signature field may reasonably take; junk that claims more is not a model.
const MAX_DECODED_FIELD_BYTES = 64 * 1024 * 1024;

interface Field {
  readonly number: number;
  readonly wireType: number;
  /** Offset of the key in the file (for error messages). */
  readonly keyOffset: number;
  /** Offset of the value (after the length, for a length-delimited field). */
  readonly valueOffset: number;
  /** Bytes of a length-delimited value. */
  readonly length: number;
  /** A varint's value. */
  readonly varint: bigint;
}

/** Iterates the fields of one message in `[start, end)`; skipped values are never read. */
class Cursor {
  private position: number;

  constructor(
    private readonly source: WindowedSource,
    start: number,
    private readonly end: number,
  ) {
    this.position = start;
  }

  public next(): Field | undefined {
    if (this.position >= this.end) {
      return undefined;
    }
    const keyOffset = this.position;
    const key = this.readVarint();
    const number = Number(key >> 3n);
    const wireType = Number(key & 7n);
    if (number === 0) {
      throw new MalformedModelError(`invalid protobuf field number 0 at byte ${keyOffset}`);
    }
    let length = 0;
    let varint = 0n;
    switch (wireType) {
      case WIRE_VARINT:
        varint = this.readVarint();
        return { number, wireType, keyOffset, valueOffset: this.position, length, varint };
      case WIRE_FIXED64:
        length = 8;
        break;
      case WIRE_FIXED32:
        length = 4;
        break;
      case WIRE_LENGTH_DELIMITED: {
        const declared = this.readVarint();
        if (declared > BigInt(this.end - this.position)) {
          throw new MalformedModelError(
            `field ${number} at byte ${keyOffset} declares ${declared} bytes but its message has only ${this.end - this.position} left` +
              (this.end === this.source.sizeBytes ? ' (is the file truncated?)' : ''),
          );
        }
        length = Number(declared);
        break;
      }
      default:
        throw new MalformedModelError(`unsupported protobuf wire type ${wireType} (field ${number}) at byte ${keyOffset}`);
    }
    const valueOffset = this.position;
    if (length > this.end - valueOffset) {
      throw new MalformedModelError(`field ${number} at byte ${keyOffset} runs past the end of its message`);
    }
    this.position = valueOffset + length;
    return { number, wireType, keyOffset, valueOffset, length, varint };
  }

  public varintOf(field: Field, what: string): bigint {
    this.expectWireType(field, WIRE_VARINT, what);
    return field.varint;
  }

  public stringOf(field: Field, what: string): string {
    this.expectWireType(field, WIRE_LENGTH_DELIMITED, what);
    if (field.length > MAX_DECODED_FIELD_BYTES) {
      throw new MalformedModelError(`${what} at byte ${field.keyOffset} is ${field.length} bytes long`);
    }
    return utf8.decode(this.source.read(field.valueOffset, field.length));
  }

  public messageOf(field: Field, what: string): Cursor {
    this.expectWireType(field, WIRE_LENGTH_DELIMITED, what);
    return new Cursor(this.source, field.valueOffset, field.valueOffset + field.length);
  }

  private expectWireType(field: Field, expected: number, what: string): void {
    if (field.wireType !== expected) {
      throw new MalformedModelError(`${what} (field ${field.number}) at byte ${field.keyOffset} has wire type ${field.wireType}, expected ${expected}`);
    }
  }

  private readVarint(): bigint {
    const available = Math.min(10, this.end - this.position);
    const bytes = this.source.read(this.position, available);
    let value = 0n;
    for (let i = 0; i < available; i++) {
      value |= BigInt(bytes[i] & 0x7f) << BigInt(7 * i);
      if ((bytes[i] & 0x80) === 0) {
        this.position += i + 1;
        return value;
      }
    }
    throw new MalformedModelError(
      available < 10 ? `a varint at byte ${this.position} runs past the end of its message` : `a varint at byte ${this.position} is longer than 10 bytes`,
    );
  }
}

/**
 * Serves small reads from one cached window, so walking a model's headers costs a few reads instead of
 * one per field, and skipping a field costs nothing. The window starts small after a seek (past an
 * initializer's data, say) and doubles while reads stay sequential.
 */
class WindowedSource {
  private static readonly MIN_WINDOW_BYTES = 4 * 1024;
  private static readonly MAX_WINDOW_BYTES = 1024 * 1024;
  private window: Uint8Array = new Uint8Array(0);
  private windowStart = 0;
  private windowBytes = WindowedSource.MIN_WINDOW_BYTES;

  constructor(private readonly source: ByteSource) {}

  public get sizeBytes(): number {
    return this.source.sizeBytes;
  }

  public read(position: number, length: number): Uint8Array {
    const windowEnd = this.windowStart + this.window.length;
    if (position < this.windowStart || position + length > windowEnd) {
      const sequential = position >= this.windowStart && position <= windowEnd && this.window.length > 0;
      this.windowBytes = sequential ? Math.min(this.windowBytes * 2, WindowedSource.MAX_WINDOW_BYTES) : WindowedSource.MIN_WINDOW_BYTES;
      const windowLength = Math.min(Math.max(length, this.windowBytes), this.source.sizeBytes - position);
      this.window = this.source.read(position, windowLength);
      this.windowStart = position;
    }
    return this.window.subarray(position - this.windowStart, position - this.windowStart + length);
  }
}
