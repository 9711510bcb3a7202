import { badRequest, describeJson } from './errors';
import { floatToHalfBits, halfBitsToFloat } from './float16';
import { DATATYPES, type Datatype } from '../../../contract/datatypes';

export { DATATYPES, type Datatype };

/** onnxruntime's name for each datatype (`ort.Tensor.Type`). */
export const ORT_TYPE_OF: Record<Datatype, string> = {
  BOOL: 'bool',
  UINT8: 'uint8',
  UINT16: 'uint16',
  UINT32: 'uint32',
  UINT64: 'uint64',
  INT8: 'int8',
  INT16: 'int16',
  INT32: 'int32',
  INT64: 'int64',
  FP16: 'float16',
  FP32: 'float32',
  FP64: 'float64',
  BYTES: 'string',
};

const DATATYPE_OF_ORT: Record<string, Datatype> = Object.fromEntries(Object.entries(ORT_TYPE_OF).map(([dt, ort]) => [ort, dt as Datatype]));

export function isDatatype(s: unknown): s is Datatype {
  return typeof s === 'string' && Object.hasOwn(ORT_TYPE_OF, s);
}

/** The OIP datatype of an onnxruntime tensor type, or undefined for types the protocol cannot carry. */
export function datatypeOfOrtType(ortType: string): Datatype | undefined {
  return DATATYPE_OF_ORT[ortType];
}

export type TensorData = Float32Array | Float64Array | Int8Array | Int16Array | Int32Array | BigInt64Array | Uint8Array | Uint16Array | Uint32Array | BigUint64Array | string[];

interface IntRange {
  readonly min: number;
  readonly max: number;
  readonly make: (n: number) => Int8Array | Int16Array | Int32Array | Uint8Array | Uint16Array | Uint32Array;
}

const INT_RANGES: Partial<Record<Datatype, IntRange>> = {
  INT8: { min: -128, max: 127, make: (n) => new Int8Array(n) },
  INT16: { min: -32768, max: 32767, make: (n) => new Int16Array(n) },
  INT32: { min: -2147483648, max: 2147483647, make: (n) => new Int32Array(n) },
  UINT8: { min: 0, max: 255, make: (n) => new Uint8Array(n) },
  UINT16: { min: 0, max: 65535, make: (n) => new Uint16Array(n) },
  UINT32: { min: 0, max: 4294967295, make: (n) => new Uint32Array(n) },
};

const FLOAT_MAX: Partial<Record<Datatype, number>> = {
  FP16: 65504,
  FP32: 3.4028234663852886e38,
  FP64: Number.MAX_VALUE,
};

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

/**
 * JSON has no NaN or infinities; the protocol's users send them as these strings, and get them back
 * the same way. A Map, not an object: `"toString" in {...}` is true, and so would be `"constructor"`,
 * `"__proto__"` or `"valueOf"` as a float.
 */
const SPECIAL_FLOATS: ReadonlyMap<string, number> = new Map([
  ['NaN', NaN],
  ['Infinity', Infinity],
  ['-Infinity', -Infinity],
]);

/** onnxruntime-node ends a string at its first NUL and replaces a lone surrogate: refused rather than changed. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: the NUL is what this looks for
const UNCARRIABLE = /\u0000|\p{Cs}/u;

/**
 * Turns the flat JSON values of one tensor into the typed array onnxruntime takes, refusing any value
 * that is not of the datatype with a 400 that names the tensor, the index and the value.
 */
export function encodeValues(values: readonly unknown[], datatype: Datatype, tensorName: string): TensorData {
  const n = values.length;

  switch (datatype) {
    case 'BOOL': {
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) {
        const v = values[i];
        if (typeof v !== 'boolean') badValue(values, datatype, tensorName, i, 'true or false');
        out[i] = v ? 1 : 0;
      }
      return out;
    }
    case 'BYTES': {
      const out = new Array<string>(n);
      for (let i = 0; i < n; i++) {
        const v = values[i];
        if (typeof v !== 'string') badValue(values, datatype, tensorName, i, 'a string');
        if (UNCARRIABLE.test(v as string)) badValue(values, datatype, tensorName, i, 'a string without NUL characters or lone surrogates, which onnxruntime cannot carry');
        out[i] = v as string;
      }
      return out;
    }
    case 'FP16':
    case 'FP32':
    case 'FP64': {
      const max = FLOAT_MAX[datatype]!;
      const out = datatype === 'FP16' ? new Uint16Array(n) : datatype === 'FP32' ? new Float32Array(n) : new Float64Array(n);
      for (let i = 0; i < n; i++) {
        let v = values[i];
        const special = typeof v === 'string' ? SPECIAL_FLOATS.get(v) : undefined;
        if (special !== undefined) {
          v = special;
        } else if (typeof v !== 'number') {
          badValue(values, datatype, tensorName, i, 'a number (or "NaN", "Infinity", "-Infinity")');
        } else if (Math.abs(v) > max) {
          badValue(values, datatype, tensorName, i, `within ±${max}`);
        }
        out[i] = datatype === 'FP16' ? floatToHalfBits(v as number) : (v as number);
      }
      return out;
    }
    case 'INT64':
    case 'UINT64': {
      const [min, max] = datatype === 'INT64' ? [INT64_MIN, INT64_MAX] : [0n, UINT64_MAX];
      const out = datatype === 'INT64' ? new BigInt64Array(n) : new BigUint64Array(n);
      for (let i = 0; i < n; i++) {
        const b = toBigInt(values[i]);
        if (b === undefined) {
          badValue(values, datatype, tensorName, i, 'an integer (as a JSON number up to 2^53, or a decimal string for exact 64-bit values)');
        } else if (b < min || b > max) {
          badValue(values, datatype, tensorName, i, `within ${min}..${max}`);
        }
        out[i] = b!;
      }
      return out;
    }
    default: {
      const range = INT_RANGES[datatype]!;
      const out = range.make(n);
      for (let i = 0; i < n; i++) {
        const v = values[i];
        if (typeof v !== 'number' || !Number.isInteger(v)) badValue(values, datatype, tensorName, i, 'an integer');
        if ((v as number) < range.min || (v as number) > range.max) badValue(values, datatype, tensorName, i, `within ${range.min}..${range.max}`);
        out[i] = v as number;
      }
      return out;
    }
  }
}

function toBigInt(v: unknown): bigint | undefined {
  if (typeof v === 'number') {
    // Beyond 2^53 a JSON number has already lost digits: exactness needs the string form.
    return Number.isSafeInteger(v) ? BigInt(v) : undefined;
  }
  if (typeof v === 'string' && /^-?\d{1,20}$/.test(v)) {
    return BigInt(v);
  }
  return undefined;
}

/** A value that JSON can carry exactly: 64-bit integers beyond 2^53 become `RawJsonNumber`. */
export type JsonValue = number | string | boolean | RawJsonNumber;

/** `JSON.rawJSON`, standard from Node.js 21 (every Lambda runtime the library uses); undefined before. */
const rawJson = (JSON as { rawJSON?: (text: string) => unknown }).rawJSON;

/** A number already written as JSON text, so that 64-bit integers keep every digit. */
export class RawJsonNumber {
  /** How many were ever made: while none was, no value can hold one (see stringifyJson). */
  static made = 0;
  constructor(readonly text: string) {
    RawJsonNumber.made++;
  }

  /**
   * What any JSON.stringify writes, stringifyJson's or one the handler does not control (Lambda's
   * runtime writes a direct invocation's answer with its own): the bare number, every digit kept.
   * A Node.js without `JSON.rawJSON` gets the digits as a string, exact, though not a JSON number.
   */
  toJSON(): unknown {
    return rawJson ? rawJson(this.text) : this.text;
  }
}

/** Turns onnxruntime output data into the flat JSON values of the protocol. */
export function decodeValues(data: unknown, datatype: Datatype): JsonValue[] {
  switch (datatype) {
    case 'BOOL':
      return Array.from(data as Uint8Array, (v) => v !== 0);
    case 'BYTES':
      return Array.from(data as string[]);
    case 'FP16':
      return Array.from(data as Uint16Array, (bits) => jsonFloat(halfBitsToFloat(bits)));
    case 'FP32':
    case 'FP64': {
      // A loop rather than Array.from with a mapping function: several times faster on small outputs.
      const floats = data as Float32Array | Float64Array;
      const out = new Array<JsonValue>(floats.length);
      for (let i = 0; i < floats.length; i++) {
        const v = floats[i];
        out[i] = Number.isFinite(v) ? v : jsonFloat(v);
      }
      return out;
    }
    case 'INT64':
    case 'UINT64':
      return Array.from(data as BigInt64Array | BigUint64Array, (b) => (b >= -9007199254740991n && b <= 9007199254740991n ? Number(b) : new RawJsonNumber(b.toString())));
    default:
      return Array.from(data as ArrayLike<number>);
  }
}

/** Refuses a value of an input: a function of its own (not a closure per call, which the bundle would name each time). */
function badValue(values: readonly unknown[], datatype: Datatype, tensorName: string, i: number, expected: string): never {
  throw badRequest(`input '${tensorName}' (${datatype}): value at index ${i} must be ${expected}, got: ${preview(values[i])}`);
}

function jsonFloat(v: number): number | string {
  if (Number.isFinite(v)) return v;
  return Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
}

function preview(v: unknown): string {
  const s = v === undefined ? 'undefined' : (describeJson(v) ?? String(v));
  return s.length > 40 ? `${s.slice(0, 40)}...` : s;
}

/** A tensor of the Open Inference Protocol, as it stands in JSON. */
export interface OipTensor {
  readonly name: string;
  readonly shape: readonly number[];
  readonly datatype: Datatype;
  readonly parameters?: Record<string, unknown>;
  readonly data: readonly JsonValue[];
}
