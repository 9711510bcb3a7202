/**
 * Builds ONNX model files from a plain description, so tests, demos and benchmarks can make the
 * models they need without downloading any. Field numbers follow onnx/onnx.proto.
 */
import { ProtoWriter, concatBytes, encodeFieldKey, encodeLengthDelimitedHeader, encodeVarint, WIRE_LENGTH_DELIMITED } from './protobuf-writer';
import { floatToHalfBits } from '../../handlers/core/protocol/float16';

export type OnnxElemType = 'float32' | 'float16' | 'float64' | 'int8' | 'int16' | 'int32' | 'int64' | 'uint8' | 'uint16' | 'uint32' | 'uint64' | 'bool' | 'string';

/** TensorProto.DataType codes. */
export const ONNX_ELEM_TYPE_CODES: Readonly<Record<OnnxElemType, number>> = {
  float32: 1,
  uint8: 2,
  int8: 3,
  uint16: 4,
  int16: 5,
  int32: 6,
  int64: 7,
  string: 8,
  bool: 9,
  float16: 10,
  float64: 11,
  uint32: 12,
  uint64: 13,
};

export const ALL_ELEM_TYPES = Object.keys(ONNX_ELEM_TYPE_CODES) as OnnxElemType[];

/** A fixed size, or a symbolic name such as `'batch'`. */
export type OnnxDim = number | string;

export interface OnnxValueSpec {
  readonly name: string;
  readonly elemType: OnnxElemType;
  /** Omit to declare a tensor of unknown rank (no shape at all). */
  readonly shape?: readonly OnnxDim[];
}

/**
 * Tensor contents: numbers (bigints too for 64-bit integers), booleans, strings, or bytes that are
 * already the little-endian raw data.
 */
export type OnnxTensorValues = readonly number[] | readonly bigint[] | readonly boolean[] | readonly string[] | Uint8Array;

export interface OnnxInitializerSpec {
  readonly name: string;
  readonly elemType: OnnxElemType;
  readonly dims: readonly number[];
  readonly values: OnnxTensorValues;
}

export type OnnxAttributeSpec =
  | { readonly type: 'int'; readonly value: number | bigint }
  | { readonly type: 'float'; readonly value: number }
  | { readonly type: 'string'; readonly value: string }
  | { readonly type: 'ints'; readonly value: readonly (number | bigint)[] }
  | { readonly type: 'floats'; readonly value: readonly number[] }
  | { readonly type: 'strings'; readonly value: readonly string[] }
  | { readonly type: 'tensor'; readonly value: OnnxInitializerSpec };

/** Shorthands for node attributes: `{ to: attr.int(1), alpha: attr.float(0.5) }`. */
export const attr = {
  int: (value: number | bigint): OnnxAttributeSpec => ({ type: 'int', value }),
  float: (value: number): OnnxAttributeSpec => ({ type: 'float', value }),
  string: (value: string): OnnxAttributeSpec => ({ type: 'string', value }),
  ints: (value: readonly (number | bigint)[]): OnnxAttributeSpec => ({ type: 'ints', value }),
  floats: (value: readonly number[]): OnnxAttributeSpec => ({ type: 'floats', value }),
  strings: (value: readonly string[]): OnnxAttributeSpec => ({ type: 'strings', value }),
  tensor: (value: OnnxInitializerSpec): OnnxAttributeSpec => ({ type: 'tensor', value }),
};

export interface OnnxNodeSpec {
  readonly opType: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attributes?: Readonly<Record<string, OnnxAttributeSpec>>;
  /** @default '' (the standard ai.onnx domain) */
  readonly domain?: string;
  readonly name?: string;
}

export interface OnnxOpsetImport {
  readonly domain: string;
  readonly version: number;
}

export interface OnnxModelSpec {
  readonly graphName: string;
  readonly inputs: readonly OnnxValueSpec[];
  readonly outputs: readonly OnnxValueSpec[];
  readonly nodes: readonly OnnxNodeSpec[];
  readonly initializers?: readonly OnnxInitializerSpec[];
  /** Version of the default (ai.onnx) operator set. @default 17 */
  readonly opset?: number;
  /** Operator sets of other domains. @default - none */
  readonly extraOpsets?: readonly OnnxOpsetImport[];
  /** @default 8 */
  readonly irVersion?: number;
  /** @default 'cdk-serverless-inference' */
  readonly producerName?: string;
  /**
   * List every initializer as a graph input too, as files written for IR version < 4 do.
   * @default false
   */
  readonly listInitializersAsInputs?: boolean;
}

export const DEFAULT_OPSET = 17;
export const DEFAULT_IR_VERSION = 8;
export const DEFAULT_PRODUCER_NAME = 'cdk-serverless-inference';

// Field numbers from onnx.proto.
const MODEL = { irVersion: 1, producerName: 2, graph: 7, opsetImport: 8 } as const;
const GRAPH = { node: 1, name: 2, initializer: 5, input: 11, output: 12 } as const;
const NODE = { input: 1, output: 2, name: 3, opType: 4, attribute: 5, domain: 7 } as const;
const ATTRIBUTE = { name: 1, f: 2, i: 3, s: 4, t: 5, floats: 7, ints: 8, strings: 9, type: 20 } as const;
const ATTRIBUTE_TYPE = { float: 1, int: 2, string: 3, tensor: 4, floats: 6, ints: 7, strings: 8 } as const;
const TENSOR = { dims: 1, dataType: 2, stringData: 6, name: 8, rawData: 9 } as const;
const VALUE_INFO = { name: 1, type: 2 } as const;
const TYPE = { tensorType: 1 } as const;
const TENSOR_TYPE = { elemType: 1, shape: 2 } as const;
const SHAPE = { dim: 1 } as const;
const DIMENSION = { dimValue: 1, dimParam: 2 } as const;
const OPSET = { domain: 1, version: 2 } as const;

/** Serializes a model. The same spec always gives the same bytes. */
export function buildOnnxModel(spec: OnnxModelSpec): Uint8Array {
  return new ProtoWriter()
    .varint(MODEL.irVersion, spec.irVersion ?? DEFAULT_IR_VERSION)
    .string(MODEL.producerName, spec.producerName ?? DEFAULT_PRODUCER_NAME)
    .message(MODEL.graph, encodeGraphFields(spec))
    .raw(encodeOpsetImports(spec))
    .finish();
}

/** The start of a model whose last bytes are the raw data of one more initializer, written separately. */
export interface OnnxModelPrefix {
  /** Everything before the trailing initializer's raw data. */
  readonly prefix: Uint8Array;
  /** Size of the whole file: `prefix.length + rawDataLength`. */
  readonly totalBytes: number;
}

/** The initializer whose raw data a caller streams after an {@link OnnxModelPrefix}. */
export interface TrailingInitializer {
  readonly name: string;
  readonly rawDataLength: number;
  /**
   * Its element type.
   * @default uint8
   */
  readonly elemType?: Exclude<OnnxElemType, 'string'>;
  /**
   * Its shape: the raw data must hold exactly that many elements.
   * @default [rawDataLength]
   */
  readonly dims?: readonly number[];
}

/**
 * Serializes a model whose graph ends with an initializer of `rawDataLength` bytes (uint8 and flat
 * unless told otherwise), leaving those bytes out so a caller can stream them (a multi-GB model is
 * never held in memory). The graph is the model's last field and the raw data the graph's last
 * bytes, so `prefix` + data is the whole file.
 */
export function buildOnnxModelPrefix(spec: OnnxModelSpec, trailing: TrailingInitializer): OnnxModelPrefix {
  const n = trailing.rawDataLength;
  const header = new ProtoWriter();
  for (const d of trailing.dims ?? [n]) header.varint(TENSOR.dims, d);
  const tensorHeader = header
    .varint(TENSOR.dataType, ONNX_ELEM_TYPE_CODES[trailing.elemType ?? 'uint8'])
    .string(TENSOR.name, trailing.name)
    .raw(encodeLengthDelimitedHeader(TENSOR.rawData, n))
    .finish();
  const tensorLength = tensorHeader.length + n;
  const initializerHeader = encodeLengthDelimitedHeader(GRAPH.initializer, tensorLength);
  const graphFields = encodeGraphFields(spec);
  const graphLength = graphFields.length + initializerHeader.length + tensorLength;
  const prefix = concatBytes([
    new ProtoWriter()
      .varint(MODEL.irVersion, spec.irVersion ?? DEFAULT_IR_VERSION)
      .string(MODEL.producerName, spec.producerName ?? DEFAULT_PRODUCER_NAME)
      .raw(encodeOpsetImports(spec))
      .finish(),
    encodeFieldKey(MODEL.graph, WIRE_LENGTH_DELIMITED),
    encodeVarint(graphLength),
    graphFields,
    initializerHeader,
    tensorHeader,
  ]);
  return { prefix, totalBytes: prefix.length + n };
}

function encodeOpsetImports(spec: OnnxModelSpec): Uint8Array {
  const opsets: OnnxOpsetImport[] = [{ domain: '', version: spec.opset ?? DEFAULT_OPSET }, ...(spec.extraOpsets ?? [])];
  const w = new ProtoWriter();
  for (const opset of opsets) {
    w.message(MODEL.opsetImport, new ProtoWriter().string(OPSET.domain, opset.domain).varint(OPSET.version, opset.version));
  }
  return w.finish();
}

function encodeGraphFields(spec: OnnxModelSpec): Uint8Array {
  const initializers = spec.initializers ?? [];
  const w = new ProtoWriter();
  for (const node of spec.nodes) {
    w.message(GRAPH.node, encodeNode(node));
  }
  w.string(GRAPH.name, spec.graphName);
  for (const initializer of initializers) {
    w.message(GRAPH.initializer, encodeTensor(initializer));
  }
  const inputs = spec.listInitializersAsInputs ? [...spec.inputs, ...initializers.map((i) => ({ name: i.name, elemType: i.elemType, shape: i.dims }))] : spec.inputs;
  for (const input of inputs) {
    w.message(GRAPH.input, encodeValueInfo(input));
  }
  for (const output of spec.outputs) {
    w.message(GRAPH.output, encodeValueInfo(output));
  }
  return w.finish();
}

function encodeNode(node: OnnxNodeSpec): ProtoWriter {
  const w = new ProtoWriter();
  for (const name of node.inputs) w.string(NODE.input, name);
  for (const name of node.outputs) w.string(NODE.output, name);
  if (node.name !== undefined) {
    w.string(NODE.name, node.name);
  }
  w.string(NODE.opType, node.opType);
  for (const [name, attribute] of Object.entries(node.attributes ?? {})) {
    w.message(NODE.attribute, encodeAttribute(name, attribute));
  }
  if (node.domain) {
    w.string(NODE.domain, node.domain);
  }
  return w;
}

// Repeated scalars are written unpacked, as proto2's onnx.proto declares them; readers accept both.
function encodeAttribute(name: string, attribute: OnnxAttributeSpec): ProtoWriter {
  const w = new ProtoWriter().string(ATTRIBUTE.name, name);
  switch (attribute.type) {
    case 'float':
      w.float(ATTRIBUTE.f, attribute.value);
      break;
    case 'int':
      w.varint(ATTRIBUTE.i, attribute.value);
      break;
    case 'string':
      w.string(ATTRIBUTE.s, attribute.value);
      break;
    case 'tensor':
      w.message(ATTRIBUTE.t, encodeTensor(attribute.value));
      break;
    case 'floats':
      for (const v of attribute.value) w.float(ATTRIBUTE.floats, v);
      break;
    case 'ints':
      for (const v of attribute.value) w.varint(ATTRIBUTE.ints, v);
      break;
    case 'strings':
      for (const v of attribute.value) w.string(ATTRIBUTE.strings, v);
      break;
  }
  return w.varint(ATTRIBUTE.type, ATTRIBUTE_TYPE[attribute.type]);
}

function encodeTensor(tensor: OnnxInitializerSpec): ProtoWriter {
  const count = tensor.dims.reduce((product, d) => product * d, 1);
  if (!(tensor.values instanceof Uint8Array) && tensor.values.length !== count) {
    throw new Error(`Tensor '${tensor.name}' has dims [${tensor.dims.join(', ')}] (${count} elements) but ${tensor.values.length} values`);
  }
  const w = new ProtoWriter();
  for (const d of tensor.dims) w.varint(TENSOR.dims, d);
  w.varint(TENSOR.dataType, ONNX_ELEM_TYPE_CODES[tensor.elemType]);
  if (tensor.elemType === 'string') {
    for (const v of tensor.values as readonly string[]) w.string(TENSOR.stringData, v);
    return w.string(TENSOR.name, tensor.name);
  }
  return w.string(TENSOR.name, tensor.name).bytes(TENSOR.rawData, encodeRawData(tensor.elemType, tensor.values));
}

function encodeValueInfo(value: OnnxValueSpec): ProtoWriter {
  const tensorType = new ProtoWriter().varint(TENSOR_TYPE.elemType, ONNX_ELEM_TYPE_CODES[value.elemType]);
  if (value.shape !== undefined) {
    const shape = new ProtoWriter();
    for (const dim of value.shape) {
      shape.message(SHAPE.dim, typeof dim === 'string' ? new ProtoWriter().string(DIMENSION.dimParam, dim) : new ProtoWriter().varint(DIMENSION.dimValue, dim));
    }
    tensorType.message(TENSOR_TYPE.shape, shape);
  }
  return new ProtoWriter().string(VALUE_INFO.name, value.name).message(VALUE_INFO.type, new ProtoWriter().message(TYPE.tensorType, tensorType));
}

const ELEM_BYTES: Readonly<Record<Exclude<OnnxElemType, 'string'>, number>> = {
  float32: 4,
  float16: 2,
  float64: 8,
  int8: 1,
  int16: 2,
  int32: 4,
  int64: 8,
  uint8: 1,
  uint16: 2,
  uint32: 4,
  uint64: 8,
  bool: 1,
};

type ElementWriter = (view: DataView, offset: number, value: number | bigint | boolean | string) => void;

/** How one element is written at `offset`, little-endian. */
const WRITE_ELEMENT: Readonly<Record<Exclude<OnnxElemType, 'string'>, ElementWriter>> = {
  float32: (view, offset, value) => view.setFloat32(offset, Number(value), true),
  float16: (view, offset, value) => view.setUint16(offset, floatToHalfBits(Number(value)), true),
  float64: (view, offset, value) => view.setFloat64(offset, Number(value), true),
  int8: (view, offset, value) => view.setInt8(offset, Number(value)),
  int16: (view, offset, value) => view.setInt16(offset, Number(value), true),
  int32: (view, offset, value) => view.setInt32(offset, Number(value), true),
  int64: (view, offset, value) => view.setBigInt64(offset, BigInt(value as number | bigint), true),
  uint8: (view, offset, value) => view.setUint8(offset, Number(value)),
  uint16: (view, offset, value) => view.setUint16(offset, Number(value), true),
  uint32: (view, offset, value) => view.setUint32(offset, Number(value), true),
  uint64: (view, offset, value) => view.setBigUint64(offset, BigInt(value as number | bigint), true),
  bool: (view, offset, value) => view.setUint8(offset, value ? 1 : 0),
};

/** Little-endian, fixed-width raw data, as TensorProto.raw_data requires. */
export function encodeRawData(elemType: Exclude<OnnxElemType, 'string'>, values: OnnxTensorValues): Uint8Array {
  if (values instanceof Uint8Array) {
    return values;
  }
  const size = ELEM_BYTES[elemType];
  const out = new Uint8Array(values.length * size);
  const view = new DataView(out.buffer);
  const write = WRITE_ELEMENT[elemType];
  for (const [i, value] of values.entries()) write(view, i * size, value);
  return out;
}
