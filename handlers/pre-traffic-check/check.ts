import { type ExpectedAnswer, type ExpectedOutput, isObject, type PreTrafficConfig } from './config';
import { parseExactJson } from './json';

/** What the new version answered to the direct invocation. */
export interface InvokeAnswer {
  /** Lambda's `X-Amz-Function-Error` (`Unhandled`, `Handled`), absent on success. */
  readonly functionError?: string;
  readonly payload: string;
}

/** A short description of the answer for the log: enough to see what came back without the data. */
export type AnswerSummary =
  | { readonly outputs: Array<{ name: unknown; datatype: unknown; shape: unknown; elements: number | undefined }> }
  | { readonly predictions: number }
  | { readonly functionError: string }
  | { readonly unreadable: string };

export interface CheckResult {
  readonly problems: string[];
  readonly summary: AnswerSummary;
}

/** How many values of one output a problem names before it only counts them. */
const SHOWN = 3;

/** Every way the answer falls short of the right answer to the sample request. */
export function checkAnswer(config: Pick<PreTrafficConfig, 'sample' | 'expectedOutputs' | 'expectedAnswer' | 'tolerance'>, answer: InvokeAnswer): CheckResult {
  if (answer.functionError) {
    return { problems: [functionErrorProblem(answer)], summary: { functionError: answer.functionError } };
  }
  let body: unknown;
  try {
    body = parseExactJson(answer.payload);
  } catch {
    return { problems: [`the answer is not JSON: ${answer.payload.slice(0, 200)}`], summary: { unreadable: answer.payload.slice(0, 200) } };
  }
  if (!isObject(body)) {
    return { problems: [`the answer is not a JSON object: ${answer.payload.slice(0, 200)}`], summary: { unreadable: answer.payload.slice(0, 200) } };
  }
  const list = config.sample.form === 'inputs' ? 'outputs' : 'predictions';
  if (body[list] === undefined && typeof body.error === 'string') {
    // A 200 whose body is an error: a hook or a handler that answers failures as values.
    return { problems: [`the answer is an error, not an infer response: ${body.error.slice(0, 500)}`], summary: { unreadable: answer.payload.slice(0, 200) } };
  }
  if (body[list] === undefined && typeof body.statusCode === 'number') {
    const text = typeof body.body === 'string' ? body.body.slice(0, 300) : '';
    return { problems: [`the answer is an HTTP response (statusCode ${body.statusCode}), not an infer response: ${text}`], summary: { unreadable: answer.payload.slice(0, 200) } };
  }
  const tolerance = config.tolerance;
  if (config.sample.form === 'inputs') {
    const expected = config.expectedAnswer?.form === 'inputs' ? config.expectedAnswer : undefined;
    return checkOutputs(body, config.expectedOutputs, expected, tolerance);
  }
  const expected = config.expectedAnswer?.form === 'instances' ? config.expectedAnswer : undefined;
  return checkPredictions(body, config.sample.instanceCount, expected, tolerance);
}

function functionErrorProblem(answer: InvokeAnswer): string {
  let detail = answer.payload.slice(0, 500);
  try {
    const err = JSON.parse(answer.payload) as { errorType?: unknown; errorMessage?: unknown };
    if (typeof err.errorMessage === 'string') detail = `${String(err.errorType ?? 'Error')}: ${err.errorMessage}`;
  } catch {
    // Not Lambda's error object: the raw text says more than nothing.
  }
  return `the function failed (${answer.functionError}): ${detail}`;
}

function checkOutputs(
  body: Record<string, unknown>,
  expectedNames: readonly string[] | undefined,
  expectedAnswer: Extract<ExpectedAnswer, { form: 'inputs' }> | undefined,
  tolerance: number,
): CheckResult {
  const outputs = body.outputs;
  if (!Array.isArray(outputs) || outputs.length === 0) {
    const got = outputs === undefined ? `keys ${JSON.stringify(Object.keys(body))}` : describe(outputs);
    return { problems: [`'outputs' must be a non-empty array, got: ${got}`], summary: { outputs: [] } };
  }
  const problems: string[] = [];
  const summary: Array<{ name: unknown; datatype: unknown; shape: unknown; elements: number | undefined }> = [];
  const expectedByName = new Map((expectedAnswer?.outputs ?? []).map((o) => [o.name, o]));
  outputs.forEach((o: unknown, i) => {
    if (!isObject(o)) {
      problems.push(`output ${i} is not an object`);
      summary.push({ name: undefined, datatype: undefined, shape: undefined, elements: undefined });
      return;
    }
    const label = typeof o.name === 'string' ? `output ${i} ('${o.name}')` : `output ${i}`;
    if (typeof o.name !== 'string' || o.name === '') problems.push(`${label}: 'name' must be a non-empty string, got: ${describe(o.name)}`);
    if (typeof o.datatype !== 'string' || o.datatype === '') problems.push(`${label}: 'datatype' must be a non-empty string, got: ${describe(o.datatype)}`);
    const shapeOk = Array.isArray(o.shape) && o.shape.every((d) => Number.isInteger(d) && d >= 0);
    if (!shapeOk) problems.push(`${label}: 'shape' must be an array of non-negative integers, got: ${describe(o.shape)}`);
    const dataOk = Array.isArray(o.data);
    if (!dataOk) problems.push(`${label}: 'data' must be an array, got: ${typeof o.data}`);
    if (shapeOk && dataOk) {
      const shape = o.shape as number[];
      const needed = shape.reduce((a, b) => a * b, 1);
      const length = (o.data as unknown[]).length;
      if (length !== needed) problems.push(`${label}: 'data' has ${length} elements, shape [${shape.join(',')}] needs ${needed}`);
    }
    const expected = typeof o.name === 'string' ? expectedByName.get(o.name) : undefined;
    if (dataOk && typeof o.datatype === 'string') {
      problems.push(...checkValues(label, o.datatype, o.data as unknown[], expected !== undefined));
    }
    if (expected && dataOk) {
      problems.push(...compareOutput(label, o, expected, tolerance));
    }
    summary.push({ name: o.name, datatype: o.datatype, shape: o.shape, elements: dataOk ? (o.data as unknown[]).length : undefined });
  });
  const names = outputs.map((o: unknown) => (isObject(o) ? o.name : undefined));
  if (expectedNames) {
    problems.push(...checkNames(names, expectedNames));
  }
  if (expectedAnswer) {
    const missing = expectedAnswer.outputs.map((o) => o.name).filter((n) => !names.includes(n));
    if (missing.length) problems.push(`output(s) of the expected answer missing: ${missing.join(', ')}`);
  }
  return { problems, summary: { outputs: summary } };
}

function checkNames(names: unknown[], expected: readonly string[]): string[] {
  const problems: string[] = [];
  const got = names.filter((n): n is string => typeof n === 'string');
  const missing = expected.filter((n) => !got.includes(n));
  const unexpected = got.filter((n) => !expected.includes(n));
  const repeated = got.filter((n, i) => got.indexOf(n) !== i);
  if (missing.length) problems.push(`expected output(s) missing: ${missing.join(', ')}`);
  if (unexpected.length) problems.push(`unexpected output(s): ${unexpected.join(', ')}`);
  if (repeated.length) problems.push(`output(s) named more than once: ${[...new Set(repeated)].join(', ')}`);
  return problems;
}

function checkPredictions(
  body: Record<string, unknown>,
  instanceCount: number,
  expected: Extract<ExpectedAnswer, { form: 'instances' }> | undefined,
  tolerance: number,
): CheckResult {
  const predictions = body.predictions;
  if (!Array.isArray(predictions)) {
    const got = predictions === undefined ? `keys ${JSON.stringify(Object.keys(body))}` : describe(predictions);
    return { problems: [`'predictions' must be an array, got: ${got}`], summary: { predictions: 0 } };
  }
  const problems = predictions.length === instanceCount ? [] : [`'predictions' has ${predictions.length} items for ${instanceCount} instances`];
  const differences: string[] = [];
  if (expected) {
    compareJson(predictions, expected.predictions, 'predictions', tolerance, differences);
  } else {
    findNonFinite(predictions, 'predictions', differences);
  }
  if (differences.length > 0) {
    const shown = differences.slice(0, SHOWN).join('; ');
    problems.push(expected ? `'predictions' differs from the expected answer at ${differences.length} place(s): ${shown}` : `'predictions' holds ${shown}`);
  }
  return { problems, summary: { predictions: predictions.length } };
}

// ---- Values against their datatype ----

type Verdict = 'ok' | 'non-finite' | 'wrong';

const INT_RANGES: Record<string, readonly [bigint, bigint]> = {
  INT8: [-(2n ** 7n), 2n ** 7n - 1n],
  INT16: [-(2n ** 15n), 2n ** 15n - 1n],
  INT32: [-(2n ** 31n), 2n ** 31n - 1n],
  INT64: [-(2n ** 63n), 2n ** 63n - 1n],
  UINT8: [0n, 2n ** 8n - 1n],
  UINT16: [0n, 2n ** 16n - 1n],
  UINT32: [0n, 2n ** 32n - 1n],
  UINT64: [0n, 2n ** 64n - 1n],
};

const FLOAT_MAX: Record<string, number> = { FP16: 65504, FP32: 3.4028234663852886e38, FP64: Number.MAX_VALUE };

/** The protocol's spelling of the floats JSON has no number for. */
const NON_FINITE = ['NaN', 'Infinity', '-Infinity'];

function judge(datatype: string, v: unknown): Verdict {
  if (datatype === 'BOOL') return typeof v === 'boolean' ? 'ok' : 'wrong';
  if (datatype === 'BYTES') return typeof v === 'string' ? 'ok' : 'wrong';
  const range = INT_RANGES[datatype];
  if (range) {
    const n = typeof v === 'bigint' ? v : typeof v === 'number' && Number.isInteger(v) ? BigInt(v) : undefined;
    return n !== undefined && n >= range[0] && n <= range[1] ? 'ok' : 'wrong';
  }
  const max = FLOAT_MAX[datatype];
  if (typeof v === 'string' && NON_FINITE.includes(v)) return 'non-finite';
  // A float's answer is never a BigInt: JSON has no integer type, and floats past 2^53 are still floats.
  const n = typeof v === 'bigint' ? Number(v) : v;
  return typeof n === 'number' && Number.isFinite(n) && Math.abs(n) <= max ? 'ok' : 'wrong';
}

/**
 * Every value must be one its datatype can hold. NaN and the infinities are problems unless the
 * expected answer gives this output (it then says where they belong).
 */
function checkValues(label: string, datatype: string, data: unknown[], expected: boolean): string[] {
  if (!(datatype in INT_RANGES || datatype in FLOAT_MAX || datatype === 'BOOL' || datatype === 'BYTES')) {
    return [`${label}: 'datatype' ${JSON.stringify(datatype)} is not one of the protocol's`];
  }
  const wrong: number[] = [];
  const nonFinite: number[] = [];
  data.forEach((v, i) => {
    const verdict = judge(datatype, v);
    if (verdict === 'wrong') wrong.push(i);
    else if (verdict === 'non-finite') nonFinite.push(i);
  });
  const problems: string[] = [];
  if (wrong.length > 0) {
    const shown = wrong.slice(0, SHOWN).map((i) => `[${i}] ${describe(data[i])}`);
    problems.push(`${label}: ${wrong.length} of ${data.length} values are not ${datatype} values, e.g. ${shown.join(', ')}`);
  }
  if (nonFinite.length > 0 && !expected) {
    const shown = nonFinite.slice(0, SHOWN).map((i) => `[${i}] ${String(data[i])}`);
    problems.push(`${label}: ${nonFinite.length} of ${data.length} values are NaN or infinite, e.g. ${shown.join(', ')} (give an expected answer if the model should answer them)`);
  }
  return problems;
}

// ---- Against the expected answer ----

function compareOutput(label: string, actual: Record<string, unknown>, expected: ExpectedOutput, tolerance: number): string[] {
  const problems: string[] = [];
  const datatype = typeof actual.datatype === 'string' ? actual.datatype : '';
  if (expected.datatype !== undefined && expected.datatype !== datatype) problems.push(`${label}: datatype ${datatype}, expected ${expected.datatype}`);
  if (expected.shape !== undefined && JSON.stringify(expected.shape) !== JSON.stringify(actual.shape)) {
    problems.push(`${label}: shape ${describe(actual.shape)}, expected [${expected.shape.join(',')}]`);
  }
  const data = actual.data as unknown[];
  if (data.length !== expected.data.length) {
    problems.push(`${label}: ${data.length} values, the expected answer has ${expected.data.length}`);
    return problems;
  }
  const differing: number[] = [];
  for (let i = 0; i < data.length; i++) {
    if (!sameValue(expected.datatype ?? datatype, data[i], expected.data[i], tolerance)) differing.push(i);
  }
  if (differing.length > 0) {
    const shown = differing.slice(0, SHOWN).map((i) => `[${i}] ${describe(data[i])}, expected ${describe(expected.data[i])}`);
    problems.push(`${label}: ${differing.length} of ${data.length} values differ from the expected answer (tolerance ${tolerance}): ${shown.join('; ')}`);
  }
  return problems;
}

/** One value against the expected one: floats within the tolerance, everything else exactly. */
function sameValue(datatype: string, actual: unknown, expected: unknown, tolerance: number): boolean {
  if (datatype in INT_RANGES) {
    const a = asBigInt(actual);
    const e = asBigInt(expected);
    return a !== undefined && a === e;
  }
  if (datatype in FLOAT_MAX) return closeFloat(actual, expected, tolerance);
  return actual === expected;
}

/** An integer as a BigInt: a JSON number, a BigInt from the exact parse, or a decimal string (INT64 written so that it keeps its digits). */
function asBigInt(v: unknown): bigint | undefined {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt(v);
  if (typeof v === 'string' && /^-?\d{1,20}$/.test(v)) return BigInt(v);
  return undefined;
}

function closeFloat(actual: unknown, expected: unknown, tolerance: number): boolean {
  if (typeof expected === 'string' && NON_FINITE.includes(expected)) return actual === expected;
  const a = typeof actual === 'bigint' ? Number(actual) : actual;
  const e = typeof expected === 'bigint' ? Number(expected) : typeof expected === 'string' && expected.trim() !== '' ? Number(expected) : expected;
  if (typeof a !== 'number' || typeof e !== 'number' || !Number.isFinite(a) || !Number.isFinite(e)) return false;
  return Math.abs(a - e) <= tolerance * Math.max(1, Math.abs(e));
}

/** Predictions have no datatype: numbers match within the tolerance, everything else exactly, at every depth. */
function compareJson(actual: unknown, expected: unknown, at: string, tolerance: number, differences: string[]): void {
  if (differences.length > SHOWN * 10) return;
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual) || actual.length !== expected.length) {
      differences.push(`${at} is ${describe(actual)}, expected ${expected.length} items`);
      return;
    }
    for (const [i, e] of expected.entries()) compareJson(actual[i], e, `${at}[${i}]`, tolerance, differences);
    return;
  }
  if (isObject(expected)) {
    if (!isObject(actual)) {
      differences.push(`${at} is ${describe(actual)}, expected an object`);
      return;
    }
    for (const key of Object.keys(expected)) compareJson(actual[key], expected[key], `${at}.${key}`, tolerance, differences);
    return;
  }
  if (!sameScalar(actual, expected, tolerance)) differences.push(`${at} is ${describe(actual)}, expected ${describe(expected)}`);
}

/** A scalar of a prediction: integers past 2^53 (or given as decimal strings) exactly, other numbers within the tolerance. */
function sameScalar(actual: unknown, expected: unknown, tolerance: number): boolean {
  const digits = typeof expected === 'string' && /^-?\d{1,20}$/.test(expected) && typeof actual !== 'string';
  if (typeof actual === 'bigint' || typeof expected === 'bigint' || digits) {
    const a = asBigInt(actual);
    return a !== undefined && a === asBigInt(expected);
  }
  if (typeof expected === 'number' || (typeof expected === 'string' && NON_FINITE.includes(expected))) return closeFloat(actual, expected, tolerance);
  return actual === expected;
}

/** Without an expected answer, a prediction holding NaN or an infinity is wrong wherever it is. */
function findNonFinite(value: unknown, at: string, found: string[]): void {
  if (found.length > SHOWN) return;
  if (typeof value === 'string' && NON_FINITE.includes(value)) found.push(`${value} at ${at}`);
  else if (Array.isArray(value)) for (const [i, v] of value.entries()) findNonFinite(v, `${at}[${i}]`, found);
  else if (isObject(value)) for (const [k, v] of Object.entries(value)) findNonFinite(v, `${at}.${k}`, found);
}

/** A value as a problem shows it: short, BigInts with every digit. */
function describe(v: unknown): string {
  if (typeof v === 'bigint') return v.toString();
  if (v === undefined) return 'undefined';
  const text = JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x)) ?? String(v);
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}
