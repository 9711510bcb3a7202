/**
 * JSON.parse, except that an integer JSON.parse would round (past 2^53) becomes a BigInt with every
 * digit: the new version's INT64 answers are compared exactly. Strict JSON only, as the protocol's.
 */

/** Deeper than any answer the check reads: a bound, so that a malicious answer cannot overflow the stack. */
const MAX_DEPTH = 512;

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const INTEGER = /^-?\d+$/;
const WHITESPACE = /[ \t\n\r]*/y;

export function parseExactJson(text: string): unknown {
  let i = 0;

  const fail = (what: string): never => {
    throw new SyntaxError(`${what} at position ${i}`);
  };
  const skip = (): void => {
    WHITESPACE.lastIndex = i;
    WHITESPACE.exec(text);
    i = WHITESPACE.lastIndex;
  };
  const string = (): string => {
    const start = i;
    i++;
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        // JSON.parse reads the escapes; the quotes around it make the slice a JSON string on its own.
        return JSON.parse(text.slice(start, i)) as string;
      }
      if (c === 0x5c) i++;
      else if (c < 0x20) fail('a control character in a string');
      i++;
    }
    return fail('an unterminated string');
  };
  const value = (depth: number): unknown => {
    if (depth > MAX_DEPTH) fail(`nesting deeper than ${MAX_DEPTH}`);
    skip();
    const c = text[i];
    if (c === '{') {
      i++;
      const object: Record<string, unknown> = {};
      skip();
      if (text[i] === '}') {
        i++;
        return object;
      }
      for (;;) {
        skip();
        if (text[i] !== '"') fail('expected a property name');
        const key = string();
        skip();
        if (text[i] !== ':') fail("expected ':'");
        i++;
        Object.defineProperty(object, key, { value: value(depth + 1), enumerable: true, writable: true, configurable: true });
        skip();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return object;
        }
        fail("expected ',' or '}'");
      }
    }
    if (c === '[') {
      i++;
      const array: unknown[] = [];
      skip();
      if (text[i] === ']') {
        i++;
        return array;
      }
      for (;;) {
        array.push(value(depth + 1));
        skip();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return array;
        }
        fail("expected ',' or ']'");
      }
    }
    if (c === '"') return string();
    for (const [word, v] of [
      ['true', true],
      ['false', false],
      ['null', null],
    ] as const) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return v;
      }
    }
    NUMBER.lastIndex = i;
    const match = NUMBER.exec(text);
    if (!match) return fail('unexpected text');
    i = NUMBER.lastIndex;
    const n = Number(match[0]);
    return Number.isSafeInteger(n) || !INTEGER.test(match[0]) ? n : BigInt(match[0]);
  };

  const result = value(0);
  skip();
  if (i !== text.length) fail('unexpected text after the value');
  return result;
}
