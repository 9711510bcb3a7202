/**
 * The binary tensor data extension of the Open Inference Protocol (Triton's and KServe's): tensor
 * data as raw bytes after the JSON header, little-endian, row major, without padding; BOOL one byte
 * per element (0 or 1); BYTES each element as a 4-byte little-endian length followed by its bytes.
 */
import type { Datatype, OipTensor, TensorData } from './datatypes';
import { badRequest } from './errors';

/** The bytes after the JSON header, read input by input in the order the request lists them. */
export class BinarySection {
  private offset = 0;

  constructor(readonly bytes: Buffer) {}

  /** The next `size` bytes, for input `name`: a 400 when they run past the body. */
  take(size: number, name: string): Buffer {
    const left = this.bytes.length - this.offset;
    if (size > left) {
      throw badRequest(
        `input '${name}': binary_data_size is ${size} but only ${left} bytes of binary data are left after the JSON header${this.offset > 0 ? ' and the inputs before it' : ''}`,
      );
    }
    const part = this.bytes.subarray(this.offset, this.offset + size);
    this.offset += size;
    return part;
  }

  /** A 400 when bytes are left over once every input has taken its own. */
  checkConsumed(): void {
    const left = this.bytes.length - this.offset;
    if (left > 0) {
      throw badRequest(`the body has ${left} bytes of binary data after the JSON header that no input claims (the inputs' binary_data_size add up to ${this.offset} bytes)`);
    }
  }
}

/** Bytes per element of each fixed-size datatype. */
const ELEMENT_BYTES: Record<Exclude<Datatype, 'BYTES'>, number> = {
  BOOL: 1,
  UINT8: 1,
  INT8: 1,
  UINT16: 2,
  INT16: 2,
  FP16: 2,
  UINT32: 4,
  INT32: 4,
  FP32: 4,
  UINT64: 8,
  INT64: 8,
  FP64: 8,
};

/** The typed array of each fixed-size datatype, over aligned bytes. */
type View = (b: ArrayBufferLike, offset: number, length: number) => Exclude<TensorData, string[]>;
const VIEW: Record<Exclude<Datatype, 'BYTES'>, View> = {
  BOOL: (b, o, n) => new Uint8Array(b, o, n),
  UINT8: (b, o, n) => new Uint8Array(b, o, n),
  INT8: (b, o, n) => new Int8Array(b, o, n),
  UINT16: (b, o, n) => new Uint16Array(b, o, n),
  INT16: (b, o, n) => new Int16Array(b, o, n),
  FP16: (b, o, n) => new Uint16Array(b, o, n),
  UINT32: (b, o, n) => new Uint32Array(b, o, n),
  INT32: (b, o, n) => new Int32Array(b, o, n),
  FP32: (b, o, n) => new Float32Array(b, o, n),
  UINT64: (b, o, n) => new BigUint64Array(b, o, n),
  INT64: (b, o, n) => new BigInt64Array(b, o, n),
  FP64: (b, o, n) => new Float64Array(b, o, n),
};

// Typed arrays use the machine's byte order; the extension's is little-endian, as Lambda's are.
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** onnxruntime-node ends a string at its first NUL and replaces a lone surrogate: refused rather than changed. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: the NUL is what this looks for
const UNCARRIABLE = /\u0000/;

/**
 * One input's binary data as onnxruntime's tensor data: the byte count must be what the shape and
 * datatype make, and every BYTES element must fit in it.
 */
export function decodeBinaryTensor(bytes: Buffer, datatype: Datatype, shape: readonly number[], name: string): TensorData {
  const count = shape.reduce((a, b) => a * b, 1);
  if (datatype === 'BYTES') {
    // Every element takes at least its 4-byte length: a shape that claims more elements than the
    // bytes hold is refused before anything is allocated for them (an array past 2^32 - 1 elements
    // cannot even be made).
    const room = Math.floor(bytes.length / 4);
    if (count > room) {
      throw badRequest(
        `input '${name}' (BYTES): shape [${shape.join(',')}] holds ${Number.isSafeInteger(count) ? count : 'more than 2^53'} elements, but its binary_data_size of ${bytes.length} bytes has room for at most ${room} (each element takes at least its 4-byte length)`,
      );
    }
    return decodeBinaryStrings(bytes, count, name);
  }
  const expected = count * ELEMENT_BYTES[datatype];
  if (bytes.length !== expected) {
    throw badRequest(
      `input '${name}': binary_data_size is ${bytes.length} but shape [${shape.join(',')}] of ${datatype} takes ${expected} bytes (${count} elements of ${ELEMENT_BYTES[datatype]})`,
    );
  }
  if (!LITTLE_ENDIAN) {
    throw badRequest('binary tensor data is not supported on a big-endian machine');
  }
  // A typed array must start at a multiple of its element size: a section that does not is copied
  // into memory of its own (not zero-filled first: every byte is written).
  let aligned = bytes;
  if (bytes.byteOffset % ELEMENT_BYTES[datatype] !== 0) {
    aligned = Buffer.allocUnsafeSlow(expected);
    bytes.copy(aligned);
  }
  const data = VIEW[datatype](aligned.buffer, aligned.byteOffset, expected / ELEMENT_BYTES[datatype]);
  if (datatype === 'BOOL') {
    const i = (data as Uint8Array).findIndex((v) => v > 1);
    if (i >= 0) throw badRequest(`input '${name}' (BOOL): byte ${i} is ${(data as Uint8Array)[i]}; a BOOL element is 0 (false) or 1 (true)`);
  }
  return data;
}

function decodeBinaryStrings(bytes: Buffer, count: number, name: string): string[] {
  const out = new Array<string>(count);
  let at = 0;
  for (let i = 0; i < count; i++) {
    if (at + 4 > bytes.length) {
      throw badRequest(`input '${name}' (BYTES): element ${i} has no 4-byte length: its ${bytes.length} bytes of binary data end at byte ${at}`);
    }
    const length = bytes.readUInt32LE(at);
    at += 4;
    if (at + length > bytes.length) {
      throw badRequest(`input '${name}' (BYTES): element ${i} is ${length} bytes long, past the end of the input's ${bytes.length} bytes of binary data (it starts at byte ${at})`);
    }
    let text: string;
    try {
      text = UTF8.decode(bytes.subarray(at, at + length));
    } catch {
      throw badRequest(`input '${name}' (BYTES): element ${i} is not valid UTF-8, which onnxruntime's strings need`);
    }
    if (UNCARRIABLE.test(text)) {
      throw badRequest(`input '${name}' (BYTES): element ${i} holds a NUL byte, which onnxruntime cannot carry`);
    }
    out[i] = text;
    at += length;
  }
  if (at !== bytes.length) {
    throw badRequest(`input '${name}' (BYTES): its ${count} elements take ${at} bytes but binary_data_size is ${bytes.length}`);
  }
  return out;
}

/** An output's data as the extension's bytes: onnxruntime's typed array as it is, strings length-prefixed. */
export function encodeBinaryTensor(data: unknown, datatype: Datatype): Buffer {
  if (datatype === 'BYTES') {
    const parts: Buffer[] = [];
    for (const s of data as readonly string[]) {
      const text = Buffer.from(s, 'utf8');
      const length = Buffer.allocUnsafe(4);
      length.writeUInt32LE(text.length, 0);
      parts.push(length, text);
    }
    return Buffer.concat(parts);
  }
  if (!LITTLE_ENDIAN) {
    throw new Error('binary tensor data is not supported on a big-endian machine');
  }
  const view = data as ArrayBufferView;
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength);
}

/** The size in bytes of an output's binary data, before it is built. */
export function binaryTensorBytes(datatype: Datatype, count: number, strings?: readonly string[]): number {
  if (datatype !== 'BYTES') return count * ELEMENT_BYTES[datatype];
  let bytes = count * 4;
  for (const s of strings ?? []) bytes += Buffer.byteLength(s);
  return bytes;
}

/**
 * The bytes of an output answered as binary tensor data, kept beside its JSON (which has no `data`)
 * until the answer is written: under a symbol, so that JSON.stringify leaves them out.
 */
const BINARY_DATA = Symbol('binary tensor data');

/** An output of the binary tensor data extension: its JSON (with `parameters.binary_data_size`) and its bytes. */
export function binaryOutput(json: Omit<OipTensor, 'data'>, bytes: Buffer): OipTensor {
  return Object.assign(json, { [BINARY_DATA]: bytes }) as unknown as OipTensor;
}

/** The binary data of an answer's output, if it is answered in binary. */
export function binaryDataOf(output: unknown): Buffer | undefined {
  return typeof output === 'object' && output !== null ? (output as { [BINARY_DATA]?: Buffer })[BINARY_DATA] : undefined;
}
