import { randomBytes } from 'node:crypto';
import { RawJsonNumber } from './datatypes';

/**
 * JSON.stringify that writes `RawJsonNumber`s as bare numbers, so 64-bit integers past 2^53 keep
 * every digit. Each one is first written as a quoted marker with a per-call random nonce, which
 * no string in the body can forge, and then unquoted.
 */
export function stringifyJson(value: unknown): string {
  let raw: string[] | undefined;
  const nonce = randomBytes(8).toString('hex');
  const text = JSON.stringify(value, (_key, v: unknown) => {
    if (v instanceof RawJsonNumber) {
      raw ??= [];
      raw.push(v.text);
      return `\u0000${nonce}:${raw.length - 1}`;
    }
    return v;
  });
  if (!raw) {
    return text;
  }
  const marker = new RegExp(`"\\\\u0000${nonce}:(\\d+)"`, 'g');
  return text.replace(marker, (_m, i: string) => raw![Number(i)]);
}
