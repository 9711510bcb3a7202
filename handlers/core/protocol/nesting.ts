import { badRequest, type InferenceError } from './errors';

/**
 * How deep a request may nest arrays and objects. An infer request needs four levels around its
 * data (body, `inputs`, tensor, `data`) and `data` itself at most 32 (see tensors.ts); 64 leaves
 * room for `parameters` and unknown fields. Anything deeper is refused at once, before any code
 * walks it: describing it in an error, JSON.stringify and every other recursive walk stay within
 * this bound, so no request can overflow the stack (a 500) or make the handler crawl through
 * millions of levels.
 */
export const MAX_JSON_DEPTH = 64;

/** How many steps of the path to the offending value a message shows. */
const SHOWN_STEPS = 8;

/**
 * Refuses JSON text nested deeper than `max`, before it is parsed: a linear scan that keeps only
 * the path to where it is (parsing three million levels takes over a second; this takes
 * milliseconds). Malformed text is left to JSON.parse, which says where it broke.
 */
export function checkJsonTextNesting(text: string, max = MAX_JSON_DEPTH): void {
  if (openingsAtMost(text, max)) return;
  // One entry per open array or object: whether it is an array, the index of the current element
  // (arrays) or the last key read (objects).
  const arrays: boolean[] = [];
  const indices: number[] = [];
  const keys: string[] = [];
  let expectKey = false;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const end = stringEnd(text, i);
      if (end < 0) return;
      if (expectKey) {
        // Kept raw: only a refusal shows the keys, and decoding each one cost a JSON.parse.
        keys[keys.length - 1] = text.slice(i + 1, Math.min(end, i + 1 + 2 * MAX_KEY_SHOWN));
        expectKey = false;
      }
      i = end;
    } else if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      if (arrays.length >= max) {
        throw tooDeep(
          max,
          arrays.map((isArray, f) => (isArray ? indices[f] : decodeKey(keys[f]))),
        );
      }
      arrays.push(c === 0x5b);
      indices.push(0);
      keys.push('');
      expectKey = c === 0x7b;
    } else if (c === 0x5d /* ] */ || c === 0x7d /* } */) {
      arrays.pop();
      indices.pop();
      keys.pop();
      expectKey = false;
    } else if (c === 0x2c /* , */ && arrays.length > 0) {
      if (arrays[arrays.length - 1]) indices[indices.length - 1]++;
      else expectKey = true;
    }
  }
}

/**
 * Whether the text holds no more than `max` opening brackets, counted with the engine's own search:
 * text cannot nest deeper than it opens, so a request with few of them (every binary tensor
 * header, most JSON ones) needs no scan at all. Brackets inside strings count too; that only
 * sends a few more texts to the scan.
 */
function openingsAtMost(text: string, max: number): boolean {
  let count = 0;
  for (const bracket of ['[', '{']) {
    for (let i = text.indexOf(bracket); i >= 0; i = text.indexOf(bracket, i + 1)) {
      if (++count > max) return false;
    }
  }
  return true;
}

/** The index of the quote that closes the string opening at `start`, or -1 when it never closes. */
function stringEnd(text: string, start: number): number {
  let from = start + 1;
  for (;;) {
    const q = text.indexOf('"', from);
    if (q < 0) return -1;
    let backslashes = 0;
    for (let b = q - 1; b > start && text.charCodeAt(b) === 0x5c; b--) backslashes++;
    if (backslashes % 2 === 0) return q;
    from = q + 1;
  }
}

/** A key as JSON.parse would read it, when its text (perhaps cut short) still parses. */
function decodeKey(raw: string): string {
  try {
    return JSON.parse(`"${raw}"`) as string;
  } catch {
    return raw;
  }
}

interface Frame {
  readonly value: object;
  readonly depth: number;
  readonly parent?: Frame;
  readonly step?: string | number;
}

/**
 * Refuses a parsed value nested deeper than `max` (a direct invocation's payload, which Lambda
 * parsed): the same check and message as checkJsonTextNesting, without recursion. Containers are
 * visited in document order, so the path named is that of the first too-deep one.
 */
export function checkJsonValueNesting(value: unknown, max = MAX_JSON_DEPTH): void {
  if (typeof value !== 'object' || value === null) return;
  const stack: Frame[] = [{ value, depth: 1 }];
  while (stack.length > 0) {
    const frame = stack.pop()!;
    if (frame.depth > max) {
      const steps: Array<string | number> = [];
      for (let f: Frame | undefined = frame; f?.parent; f = f.parent) steps.push(f.step!);
      throw tooDeep(max, steps.reverse());
    }
    const v = frame.value;
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) {
        const x: unknown = v[i];
        if (typeof x === 'object' && x !== null) stack.push({ value: x, depth: frame.depth + 1, parent: frame, step: i });
      }
    } else {
      const keys = Object.keys(v);
      for (let i = keys.length - 1; i >= 0; i--) {
        const x: unknown = (v as Record<string, unknown>)[keys[i]];
        if (typeof x === 'object' && x !== null) stack.push({ value: x, depth: frame.depth + 1, parent: frame, step: keys[i] });
      }
    }
  }
}

const MAX_KEY_SHOWN = 24;

function tooDeep(max: number, steps: ReadonlyArray<string | number>): InferenceError {
  return badRequest(`the request is nested deeper than ${max} levels, at ${formatPath(steps)}; no inference request needs that many`);
}

/** `inputs[0].data[0][0]…`: the first steps of a path into a request, keys quoted when they must be. */
export function formatPath(steps: ReadonlyArray<string | number>): string {
  let path = '';
  for (const step of steps.slice(0, SHOWN_STEPS)) {
    if (typeof step === 'number') {
      path += `[${step}]`;
    } else if (/^[A-Za-z_$][\w$]*$/.test(step) && step.length <= MAX_KEY_SHOWN) {
      path += path === '' ? step : `.${step}`;
    } else {
      path += `[${JSON.stringify(step.length > MAX_KEY_SHOWN ? `${step.slice(0, MAX_KEY_SHOWN)}…` : step)}]`;
    }
  }
  if (steps.length > SHOWN_STEPS) path += '…';
  return path === '' ? 'the top level' : path;
}
