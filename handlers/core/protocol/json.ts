import { randomBytes } from 'node:crypto';
import { RawJsonNumber } from './datatypes';

/**
 * The marker's nonce, drawn once per process: a fresh one per call cost a `randomBytes` (about a
 * tenth of a small request's handling). It never leaves the process (every marker is replaced
 * before the text is returned), so a string in a body can no more forge it than a per-call one.
 */
const NONCE = randomBytes(16).toString('hex');
const MARKER_PREFIX = `\u0000${NONCE}:`;
const MARKER = new RegExp(`"\\\\u0000${NONCE}:(\\d+)"`, 'g');

/** Whether this Node.js has `JSON.rawJSON` (21 and later), which RawJsonNumber's toJSON uses. */
const HAS_RAW_JSON = typeof (JSON as { rawJSON?: unknown }).rawJSON === 'function';

/**
 * JSON.stringify that writes `RawJsonNumber`s as bare numbers, so 64-bit integers past 2^53 keep
 * every digit. Where `JSON.rawJSON` exists, their own toJSON does it. Elsewhere each one is first
 * written as a quoted marker with the process's random nonce, which no string in the body can
 * forge, and then unquoted.
 */
export function stringifyJson(value: unknown): string {
  // A replacer takes JSON.stringify off its fast path (about twice the time on a small answer):
  // only needed once an answer has had a 64-bit integer past 2^53.
  if (RawJsonNumber.made === 0 || HAS_RAW_JSON) return JSON.stringify(value);
  let raw: string[] | undefined;
  const text = JSON.stringify(value, function (this: Record<string, unknown>, key: string, v: unknown) {
    // The replacer gets what toJSON returned; the holder still has the RawJsonNumber itself.
    const original = this[key];
    if (original instanceof RawJsonNumber) {
      raw ??= [];
      raw.push(original.text);
      return `${MARKER_PREFIX}${raw.length - 1}`;
    }
    return v;
  });
  if (!raw) {
    return text;
  }
  const numbers = raw;
  return text.replace(MARKER, (_m, i: string) => numbers[Number(i)]);
}

/** How stringifyJsonWithin counts, and what it keeps. */
export interface BoundedJsonOptions {
  /** The most bytes the text may take: past them the writing stops. */
  readonly maxBytes: number;
  /**
   * Count the text as it stands inside a JSON string (a buffered HTTP answer's body, in the JSON
   * payload Lambda sends back), where each `"` and `\` takes one byte more.
   * @default false
   */
  readonly escaped?: boolean;
  /** Count only, keeping no text (for a value that Lambda's runtime writes itself). @default false */
  readonly countOnly?: boolean;
}

/**
 * stringifyJson's text of `value`, or undefined as soon as it is known to take more than
 * `maxBytes`: an answer too large to send is never built whole, and what is written of it before
 * the limit is all that is ever held. With `countOnly`, the empty string when it fits.
 *
 * A value that a quick walk bounds within the limit (most answers) is written by JSON.stringify at
 * once. Others are written piece by piece: runs of numbers, strings, booleans and short arrays of
 * numbers (an output's `data`, a prediction's rows) with one JSON.stringify of their slice each, the
 * rest walked as JSON.stringify walks it (toJSON, skipped and nulled values, key order, a TypeError
 * on a cycle or a BigInt). A value JSON cannot write (undefined) gives the empty string.
 */
export function stringifyJsonWithin(value: unknown, options: BoundedJsonOptions): string | undefined {
  const escaped = options.escaped ?? false;
  if (jsonBytesAtMost(value, options.maxBytes, escaped) <= options.maxBytes) {
    return options.countOnly ? '' : (stringifyJson(value) ?? '');
  }
  const sink = new TextSink(options.maxBytes, escaped, !options.countOnly);
  return new BoundedJsonWriter(sink).write(value) ? sink.text : undefined;
}

/** Where writeJson's pieces of JSON text go, in order. */
export interface JsonSink {
  /** Takes a piece (`plain`: ASCII without `"` or `\`, as numbers and punctuation are); false stops the writing. */
  write(piece: string, plain: boolean): boolean;
  /** Whether `bytes` more can still be taken: a long string is refused on its length before it is escaped. */
  reserve(bytes: number): boolean;
}

/**
 * stringifyJson's text of `value`, handed to `sink` piece by piece (as stringifyJsonWithin writes
 * it, a small value at once); false when the sink stopped it.
 */
export function writeJson(value: unknown, sink: JsonSink): boolean {
  if (jsonBytesAtMost(value, RUN_BYTES, false) <= RUN_BYTES) {
    const text = stringifyJson(value);
    return text === undefined || sink.write(text, false);
  }
  return new BoundedJsonWriter(sink).write(value);
}

/**
 * The bytes a text gains written as a JSON string, without its quotes: one for each `"`, `\` and
 * short-escaped control character (`\n`), five for any other control character (`\u001f`), three
 * for a lone surrogate (`\udc00`, against the three bytes of its UTF-8 replacement).
 */
export function jsonEscapeBytes(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 34 || c === 92) {
      n += 1;
    } else if (c < 32) {
      n += c === 8 || c === 9 || c === 10 || c === 12 || c === 13 ? 1 : 5;
    } else if (c >= 0xd800 && c <= 0xdfff) {
      const next = text.charCodeAt(i + 1);
      if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) i++;
      else n += 3;
    }
  }
  return n;
}

/**
 * The most bytes a number's JSON takes: `-1.7976931348623157e+308` and `-0.0000012345678901234567`
 * have 24 and 25 characters.
 */
const MAX_NUMBER_BYTES = 25;

/**
 * An upper bound of the bytes of `value`'s JSON (counted as `escaped` says), or Infinity as soon as
 * it passes `max`, or at a value it does not bound (one with a toJSON, a boxed primitive, a BigInt).
 * No JSON character takes more than six bytes (`\u001f`), seven escaped again (`\\u001f`). Walked
 * without recursion: a cycle only adds to the count until it passes `max`.
 */
function jsonBytesAtMost(value: unknown, max: number, escaped: boolean): number {
  const perChar = escaped ? 7 : 6;
  const quotes = escaped ? 4 : 2;
  let total = 0;
  const pending: unknown[] = [value];
  while (pending.length > 0) {
    const v = pending.pop();
    const bytes = primitiveBytesAtMost(v, perChar, quotes);
    if (bytes >= 0) {
      total += bytes;
    } else if (typeof v !== 'object' || isSpecialObject(v as object)) {
      return Infinity;
    } else if (Array.isArray(v)) {
      total += 2 + v.length;
      for (let i = 0; i < v.length && total <= max; i++) {
        const e = v[i];
        const b = primitiveBytesAtMost(e, perChar, quotes);
        if (b >= 0) total += b;
        else pending.push(e);
      }
    } else {
      const o = v as Record<string, unknown>;
      total += 2;
      for (const k of Object.keys(o)) {
        if (total > max) break;
        total += 2 + k.length * perChar + quotes;
        pending.push(o[k]);
      }
    }
    if (total > max) return Infinity;
  }
  return total;
}

/** The most bytes a primitive's JSON takes (an array's `null` for undefined, a function, a symbol); -1 for an object or a BigInt. */
function primitiveBytesAtMost(v: unknown, perChar: number, quotes: number): number {
  switch (typeof v) {
    case 'number':
      return MAX_NUMBER_BYTES;
    case 'boolean':
      return 5;
    case 'string':
      return v.length * perChar + quotes;
    case 'undefined':
    case 'function':
    case 'symbol':
      return 4;
    case 'object':
      if (v === null) return 4;
      return v instanceof RawJsonNumber ? v.text.length : -1;
    default:
      return -1;
  }
}

/** An object that JSON.stringify does not write as its own properties. */
function isSpecialObject(v: object): boolean {
  return typeof (v as { toJSON?: unknown }).toJSON === 'function' || v instanceof Number || v instanceof String || v instanceof Boolean || v instanceof BigInt;
}

/** The bytes (at most) of the pieces written with one JSON.stringify: a bound on what one step allocates. */
const RUN_BYTES = 64 * 1024;
/** The longest array of numbers written inside a run, as one of its elements. */
const RUN_ROW_LENGTH = 64;

/** Thrown inside the writer once its sink has stopped it; caught in BoundedJsonWriter.write. */
const OVER_LIMIT = Symbol('over the byte limit');

/** stringifyJsonWithin's sink: counts the text's bytes (escaped, or not), keeps it (or not), up to its limit. */
class TextSink implements JsonSink {
  text = '';
  private bytes = 0;

  constructor(
    private readonly max: number,
    private readonly escaped: boolean,
    private readonly keep: boolean,
  ) {}

  write(piece: string, plain: boolean): boolean {
    this.bytes += plain ? piece.length : Buffer.byteLength(piece) + (this.escaped ? jsonEscapeBytes(piece) : 0);
    if (this.bytes > this.max) return false;
    if (this.keep) this.text += piece;
    return true;
  }

  reserve(bytes: number): boolean {
    return this.bytes + bytes <= this.max;
  }
}

class BoundedJsonWriter {
  /** The objects and arrays being written, innermost last: a cycle is refused as JSON.stringify refuses it. */
  private readonly open: object[] = [];

  constructor(private readonly sink: JsonSink) {}

  /** Writes `value` whole; false when the sink stopped it. */
  write(value: unknown): boolean {
    try {
      this.value(value, '');
      return true;
    } catch (e) {
      if (e === OVER_LIMIT) return false;
      throw e;
    }
  }

  /** Writes `raw` (the property `key` of its holder); false when JSON has nothing to write for it (undefined, a function, a symbol). */
  private value(raw: unknown, key: string): boolean {
    return this.resolved(resolve(raw, key));
  }

  /** Text of ASCII characters other than `"` and `\` (numbers, punctuation, literals). */
  private plain(s: string): void {
    if (!this.sink.write(s, true)) throw OVER_LIMIT;
  }

  /** Any JSON text (it may hold strings). */
  private any(s: string): void {
    if (!this.sink.write(s, false)) throw OVER_LIMIT;
  }

  /** A string, refused on its length before it is escaped: it takes at least a byte per character, and its quotes. */
  private string(s: string): void {
    if (!this.sink.reserve(s.length + 2)) throw OVER_LIMIT;
    this.any(JSON.stringify(s));
  }

  /** Writes a value whose toJSON, if any, has been called. */
  private resolved(v: unknown): boolean {
    switch (typeof v) {
      case 'string':
        this.string(v);
        return true;
      case 'number':
        this.plain(Number.isFinite(v) ? String(v) : 'null');
        return true;
      case 'boolean':
        this.plain(v ? 'true' : 'false');
        return true;
      case 'bigint':
        // JSON.stringify's own TypeError.
        this.any(JSON.stringify(v));
        return true;
      case 'object':
        if (v === null) {
          this.plain('null');
        } else if (v instanceof RawJsonNumber) {
          this.plain(v.text);
        } else if (v instanceof Number || v instanceof String || v instanceof Boolean || v instanceof BigInt) {
          this.any(JSON.stringify(v));
        } else {
          if (this.open.includes(v)) throw new TypeError('Converting circular structure to JSON');
          this.open.push(v);
          if (Array.isArray(v)) this.array(v);
          else this.object(v as Record<string, unknown>);
          this.open.pop();
        }
        return true;
      default:
        return false;
    }
  }

  private array(a: readonly unknown[]): void {
    this.plain('[');
    const n = a.length;
    for (let i = 0; i < n; ) {
      if (i > 0) this.plain(',');
      // A run of elements whose JSON is bounded, written with one JSON.stringify of their slice.
      let j = i;
      let bytes = 0;
      let strings = false;
      while (j < n) {
        const b = runElementBytes(a[j]);
        if (b < 0 || (j > i && bytes + b > RUN_BYTES)) break;
        if (typeof a[j] === 'string') strings = true;
        bytes += b;
        j++;
        if (bytes > RUN_BYTES) break;
      }
      if (j - i > 1) {
        const run = JSON.stringify(a.slice(i, j)).slice(1, -1);
        if (strings) this.any(run);
        else this.plain(run);
        i = j;
      } else {
        if (!this.value(a[i], String(i))) this.plain('null');
        i++;
      }
    }
    this.plain(']');
  }

  private object(o: Record<string, unknown>): void {
    this.plain('{');
    let first = true;
    for (const k of Object.keys(o)) {
      const v = resolve(o[k], k);
      if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
      if (!first) this.plain(',');
      first = false;
      this.string(k);
      this.plain(':');
      this.resolved(v);
    }
    this.plain('}');
  }
}

/**
 * The most bytes an array element's JSON takes, for one that may go in a run: a number, a boolean,
 * null, a string, or a short array of numbers, booleans and nulls; -1 for any other.
 */
function runElementBytes(e: unknown): number {
  switch (typeof e) {
    case 'number':
      return MAX_NUMBER_BYTES + 1;
    case 'boolean':
      return 6;
    case 'string':
      return e.length * 6 + 3;
    case 'object': {
      if (e === null) return 5;
      if (!Array.isArray(e) || e.length > RUN_ROW_LENGTH || typeof (e as { toJSON?: unknown }).toJSON === 'function') return -1;
      for (let k = 0; k < e.length; k++) {
        const t = typeof e[k];
        if (t !== 'number' && t !== 'boolean' && e[k] !== null) return -1;
      }
      return (MAX_NUMBER_BYTES + 1) * e.length + 3;
    }
    default:
      return -1;
  }
}

/** A value as JSON.stringify sees it: after its toJSON, if it has one (a RawJsonNumber's is written as its text). */
function resolve(v: unknown, key: string): unknown {
  if (((typeof v === 'object' && v !== null) || typeof v === 'bigint') && !(v instanceof RawJsonNumber)) {
    const toJSON = (v as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') return toJSON.call(v, key);
  }
  return v;
}
