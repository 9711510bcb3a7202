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
