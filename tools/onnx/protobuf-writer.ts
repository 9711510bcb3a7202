/**
 * A minimal protobuf wire-format encoder: enough to write ONNX files without a protobuf dependency.
 * See https://protobuf.dev/programming-guides/encoding/ for the wire format.
 */

export const WIRE_VARINT = 0;
export const WIRE_FIXED64 = 1;
export const WIRE_LENGTH_DELIMITED = 2;
export const WIRE_FIXED32 = 5;

/** Base-128 varint; negative values are written as 64-bit two's complement (10 bytes), as int64 requires. */
export function encodeVarint(value: number | bigint): Uint8Array {
  if (typeof value === 'number' && !Number.isSafeInteger(value)) {
    throw new Error(`Cannot encode ${value} as a varint: expected a safe integer or a bigint`);
  }
  let v = BigInt.asUintN(64, BigInt(value));
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Uint8Array.from(out);
}

/** The key that starts every field: field number and wire type. */
export function encodeFieldKey(fieldNumber: number, wireType: number): Uint8Array {
  if (!Number.isInteger(fieldNumber) || fieldNumber < 1 || fieldNumber > 0x1fffffff) {
    throw new Error(`Invalid protobuf field number ${fieldNumber}: expected an integer from 1 to 536870911`);
  }
  return encodeVarint(fieldNumber * 8 + wireType);
}

/** Key and length of a length-delimited field whose content is written separately (e.g. streamed). */
export function encodeLengthDelimitedHeader(fieldNumber: number, contentLength: number): Uint8Array {
  return concatBytes([encodeFieldKey(fieldNumber, WIRE_LENGTH_DELIMITED), encodeVarint(contentLength)]);
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const total = parts.reduce((sum, p) => sum + p.length, 0);
  const out = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

const textEncoder = new TextEncoder();

/** Appends fields in call order; `finish()` returns the message bytes. */
export class ProtoWriter {
  private readonly parts: Uint8Array[] = [];
  private byteLength = 0;

  /** Bytes written so far. */
  public get length(): number {
    return this.byteLength;
  }

  /** int32, int64, uint64, enum: all varints on the wire. */
  public varint(fieldNumber: number, value: number | bigint): this {
    return this.push(encodeFieldKey(fieldNumber, WIRE_VARINT), encodeVarint(value));
  }

  public bool(fieldNumber: number, value: boolean): this {
    return this.varint(fieldNumber, value ? 1 : 0);
  }

  public float(fieldNumber: number, value: number): this {
    const data = new Uint8Array(4);
    new DataView(data.buffer).setFloat32(0, value, true);
    return this.push(encodeFieldKey(fieldNumber, WIRE_FIXED32), data);
  }

  public double(fieldNumber: number, value: number): this {
    const data = new Uint8Array(8);
    new DataView(data.buffer).setFloat64(0, value, true);
    return this.push(encodeFieldKey(fieldNumber, WIRE_FIXED64), data);
  }

  public fixed32(fieldNumber: number, value: number): this {
    const data = new Uint8Array(4);
    new DataView(data.buffer).setUint32(0, value, true);
    return this.push(encodeFieldKey(fieldNumber, WIRE_FIXED32), data);
  }

  public fixed64(fieldNumber: number, value: bigint): this {
    const data = new Uint8Array(8);
    new DataView(data.buffer).setBigUint64(0, BigInt.asUintN(64, value), true);
    return this.push(encodeFieldKey(fieldNumber, WIRE_FIXED64), data);
  }

  public bytes(fieldNumber: number, data: Uint8Array): this {
    return this.push(encodeLengthDelimitedHeader(fieldNumber, data.length), data);
  }

  public string(fieldNumber: number, value: string): this {
    return this.bytes(fieldNumber, textEncoder.encode(value));
  }

  /** An embedded message, from another writer or already-encoded bytes. */
  public message(fieldNumber: number, message: ProtoWriter | Uint8Array): this {
    return this.bytes(fieldNumber, message instanceof ProtoWriter ? message.finish() : message);
  }

  public packedVarints(fieldNumber: number, values: readonly (number | bigint)[]): this {
    return this.bytes(fieldNumber, concatBytes(values.map((v) => encodeVarint(v))));
  }

  public packedFloats(fieldNumber: number, values: readonly number[]): this {
    const data = new Uint8Array(values.length * 4);
    const view = new DataView(data.buffer);
    for (const [i, v] of values.entries()) view.setFloat32(i * 4, v, true);
    return this.bytes(fieldNumber, data);
  }

  public packedDoubles(fieldNumber: number, values: readonly number[]): this {
    const data = new Uint8Array(values.length * 8);
    const view = new DataView(data.buffer);
    for (const [i, v] of values.entries()) view.setFloat64(i * 8, v, true);
    return this.bytes(fieldNumber, data);
  }

  /** Bytes already encoded as whole fields (e.g. a header whose content is streamed after). */
  public raw(data: Uint8Array): this {
    return this.push(data);
  }

  public finish(): Uint8Array {
    return concatBytes(this.parts);
  }

  private push(...chunks: Uint8Array[]): this {
    for (const chunk of chunks) {
      this.parts.push(chunk);
      this.byteLength += chunk.length;
    }
    return this;
  }
}
