import { isObject, type SampleForm } from './config';

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

/** Every way the answer falls short of a well-formed response to the sample request. */
export function checkAnswer(sample: SampleForm, expectedOutputs: readonly string[] | undefined, answer: InvokeAnswer): CheckResult {
  if (answer.functionError) {
    return { problems: [functionErrorProblem(answer)], summary: { functionError: answer.functionError } };
  }
  let body: unknown;
  try {
    body = JSON.parse(answer.payload);
  } catch {
    return { problems: [`the answer is not JSON: ${answer.payload.slice(0, 200)}`], summary: { unreadable: answer.payload.slice(0, 200) } };
  }
  if (!isObject(body)) {
    return { problems: [`the answer is not a JSON object: ${answer.payload.slice(0, 200)}`], summary: { unreadable: answer.payload.slice(0, 200) } };
  }
  return sample.form === 'inputs' ? checkOutputs(body, expectedOutputs) : checkPredictions(body, sample.instanceCount);
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

function checkOutputs(body: Record<string, unknown>, expected: readonly string[] | undefined): CheckResult {
  const outputs = body.outputs;
  if (!Array.isArray(outputs) || outputs.length === 0) {
    const got = outputs === undefined ? `keys ${JSON.stringify(Object.keys(body))}` : JSON.stringify(outputs).slice(0, 200);
    return { problems: [`'outputs' must be a non-empty array, got: ${got}`], summary: { outputs: [] } };
  }
  const problems: string[] = [];
  const summary: Array<{ name: unknown; datatype: unknown; shape: unknown; elements: number | undefined }> = [];
  outputs.forEach((o: unknown, i) => {
    if (!isObject(o)) {
      problems.push(`output ${i} is not an object`);
      summary.push({ name: undefined, datatype: undefined, shape: undefined, elements: undefined });
      return;
    }
    const label = typeof o.name === 'string' ? `output ${i} ('${o.name}')` : `output ${i}`;
    if (typeof o.name !== 'string' || o.name === '') problems.push(`${label}: 'name' must be a non-empty string, got: ${JSON.stringify(o.name)}`);
    if (typeof o.datatype !== 'string' || o.datatype === '') problems.push(`${label}: 'datatype' must be a non-empty string, got: ${JSON.stringify(o.datatype)}`);
    const shapeOk = Array.isArray(o.shape) && o.shape.every((d) => Number.isInteger(d) && d >= 0);
    if (!shapeOk) problems.push(`${label}: 'shape' must be an array of non-negative integers, got: ${JSON.stringify(o.shape)}`);
    const dataOk = Array.isArray(o.data);
    if (!dataOk) problems.push(`${label}: 'data' must be an array, got: ${typeof o.data}`);
    if (shapeOk && dataOk) {
      const shape = o.shape as number[];
      const needed = shape.reduce((a, b) => a * b, 1);
      const length = (o.data as unknown[]).length;
      if (length !== needed) problems.push(`${label}: 'data' has ${length} elements, shape [${shape.join(',')}] needs ${needed}`);
    }
    summary.push({ name: o.name, datatype: o.datatype, shape: o.shape, elements: dataOk ? (o.data as unknown[]).length : undefined });
  });
  if (expected) {
    const names = outputs.map((o: unknown) => (isObject(o) ? o.name : undefined));
    problems.push(...checkNames(names, expected));
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

function checkPredictions(body: Record<string, unknown>, instanceCount: number): CheckResult {
  const predictions = body.predictions;
  if (!Array.isArray(predictions)) {
    const got = predictions === undefined ? `keys ${JSON.stringify(Object.keys(body))}` : JSON.stringify(predictions).slice(0, 200);
    return { problems: [`'predictions' must be an array, got: ${got}`], summary: { predictions: 0 } };
  }
  const problems = predictions.length === instanceCount ? [] : [`'predictions' has ${predictions.length} items for ${instanceCount} instances`];
  return { problems, summary: { predictions: predictions.length } };
}
