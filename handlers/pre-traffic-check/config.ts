import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_ANSWER_TOLERANCE, DEFAULT_CHECK_TIMEOUT_MS, MAX_CHECK_TIMEOUT_MS, PRE_TRAFFIC_ENV as ENV } from '../../contract/pre-traffic-check';
import { parseExactJson } from './json';

/** What the sample request asks for, which decides what a correct answer looks like. */
export type SampleForm = { readonly form: 'inputs' } | { readonly form: 'instances'; readonly instanceCount: number };

/** One output of the expected answer: its data, and its datatype and shape when given. */
export interface ExpectedOutput {
  readonly name: string;
  readonly datatype?: string;
  readonly shape?: readonly number[];
  readonly data: readonly unknown[];
}

/** The answer the sample must get, in the form of the sample's answer. */
export type ExpectedAnswer = { readonly form: 'inputs'; readonly outputs: readonly ExpectedOutput[] } | { readonly form: 'instances'; readonly predictions: readonly unknown[] };

export interface PreTrafficConfig {
  readonly targetVersionArn: string;
  /** The request exactly as configured: it is sent as this text, never re-serialised. */
  readonly sampleRequest: string;
  readonly sample: SampleForm;
  readonly expectedOutputs?: readonly string[];
  readonly expectedAnswer?: ExpectedAnswer;
  readonly tolerance: number;
  readonly checkTimeoutMs: number;
  /** With A/B variants: the sample for each variant (naming it in `parameters.variant`), sent instead of `sampleRequest`. */
  readonly variantSamples?: ReadonlyArray<{ readonly variant: string; readonly text: string }>;
}

export type ConfigResult = { readonly ok: true; readonly config: PreTrafficConfig } | { readonly ok: false; readonly problems: string[] };

// A version number as qualifier: an alias or $LATEST would test something other than the new code.
const VERSION_ARN = /^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]+:\d+$/;

/** Where relative file names point: the function's code, as Lambda unpacks it, or this bundle's folder elsewhere. */
function codeDir(env: NodeJS.ProcessEnv): string {
  return env.LAMBDA_TASK_ROOT ?? path.dirname(fileURLToPath(import.meta.url));
}

/** Reads every variable and reports every problem at once, so one failed deployment tells all. */
export function readConfig(env: NodeJS.ProcessEnv): ConfigResult {
  const problems: string[] = [];

  const targetVersionArn = env[ENV.TARGET_VERSION_ARN] ?? '';
  if (!targetVersionArn) {
    problems.push(`${ENV.TARGET_VERSION_ARN} is not set: expected the ARN of the version being deployed`);
  } else if (!VERSION_ARN.test(targetVersionArn)) {
    problems.push(`${ENV.TARGET_VERSION_ARN} must be a function ARN qualified with a version number (arn:aws:lambda:REGION:ACCOUNT:function:NAME:N), got: ${targetVersionArn}`);
  }

  const request = readText(env, ENV.SAMPLE_REQUEST, ENV.SAMPLE_REQUEST_FILE, problems);
  const sample = request === undefined ? undefined : readSample(request, problems);
  const expectedOutputs = readExpectedOutputs(env[ENV.EXPECTED_OUTPUTS], problems);
  const answer = readText(env, ENV.EXPECTED_ANSWER, ENV.EXPECTED_ANSWER_FILE, problems, false);
  const expectedAnswer = answer === undefined || !sample ? undefined : readExpectedAnswer(answer, sample, problems);
  const tolerance = readTolerance(env[ENV.ANSWER_TOLERANCE], problems);
  const checkTimeoutMs = readTimeout(env[ENV.CHECK_TIMEOUT_MS], problems);

  const variantSamples = readVariantSamples(env, problems);

  if (problems.length > 0 || !sample || request === undefined) return { ok: false, problems };
  return { ok: true, config: { targetVersionArn, sampleRequest: request.text, sample, expectedOutputs, expectedAnswer, tolerance, checkTimeoutMs, variantSamples } };
}

/** A JSON text given in the variable `name` itself, or in the file `fileName` names; `undefined` when neither (or unreadable). */
function readText(env: NodeJS.ProcessEnv, name: string, fileName: string, problems: string[], required = true): { text: string; from: string } | undefined {
  const inline = env[name] || undefined;
  const file = env[fileName] || undefined;
  if (inline !== undefined && file !== undefined) {
    problems.push(`${name} and ${fileName} are both set: give one of them`);
    return undefined;
  }
  if (file !== undefined) {
    const at = path.resolve(codeDir(env), file);
    try {
      return { text: readFileSync(at, 'utf8'), from: `${fileName} (${at})` };
    } catch (e) {
      problems.push(`${fileName}: cannot read ${at}: ${(e as Error).message}`);
      return undefined;
    }
  }
  if (inline !== undefined) return { text: inline, from: name };
  if (required) problems.push(`${name} is not set (nor ${fileName}): expected an infer request such as {"inputs": [...]} or {"instances": [...]}`);
  return undefined;
}

function parse(source: { text: string; from: string }, problems: string[]): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: parseExactJson(source.text) };
  } catch (e) {
    problems.push(`${source.from} is not valid JSON (${(e as Error).message}): ${source.text.slice(0, 200)}`);
    return { ok: false };
  }
}

function readSample(source: { text: string; from: string }, problems: string[]): SampleForm | undefined {
  const name = source.from;
  const parsed = parse(source, problems);
  if (!parsed.ok) return undefined;
  const body = parsed.value;
  if (!isObject(body)) {
    problems.push(`${name} must be a JSON object with 'inputs' or 'instances', got: ${source.text.slice(0, 200)}`);
    return undefined;
  }
  const hasInputs = 'inputs' in body;
  const hasInstances = 'instances' in body;
  if (hasInputs === hasInstances) {
    problems.push(`${name} must have exactly one of 'inputs' and 'instances'`);
    return undefined;
  }
  const list = hasInputs ? body.inputs : body.instances;
  if (!Array.isArray(list) || list.length === 0) {
    problems.push(`${name}: '${hasInputs ? 'inputs' : 'instances'}' must be a non-empty array`);
    return undefined;
  }
  return hasInputs ? { form: 'inputs' } : { form: 'instances', instanceCount: list.length };
}

function readExpectedAnswer(source: { text: string; from: string }, sample: SampleForm, problems: string[]): ExpectedAnswer | undefined {
  const name = source.from;
  const parsed = parse(source, problems);
  if (!parsed.ok) return undefined;
  const body = parsed.value;
  if (sample.form === 'instances') {
    if (!isObject(body) || !Array.isArray(body.predictions)) {
      problems.push(`${name} must be {"predictions": [...]}, the answer to an 'instances' request, got: ${source.text.slice(0, 200)}`);
      return undefined;
    }
    return { form: 'instances', predictions: body.predictions };
  }
  if (!isObject(body) || !Array.isArray(body.outputs) || body.outputs.length === 0) {
    problems.push(`${name} must be {"outputs": [{"name": ..., "data": [...]}, ...]}, the answer to an 'inputs' request, got: ${source.text.slice(0, 200)}`);
    return undefined;
  }
  const outputs: ExpectedOutput[] = [];
  body.outputs.forEach((o: unknown, i) => {
    const label = isObject(o) && typeof o.name === 'string' ? `${name}: output ${i} ('${o.name}')` : `${name}: output ${i}`;
    if (!isObject(o) || typeof o.name !== 'string' || o.name === '') {
      problems.push(`${label} must have a non-empty 'name'`);
      return;
    }
    const shapeOk = o.shape === undefined || (Array.isArray(o.shape) && o.shape.every((d) => Number.isInteger(d) && (d as number) >= 0));
    const datatypeOk = o.datatype === undefined || typeof o.datatype === 'string';
    if (!Array.isArray(o.data)) problems.push(`${label}: 'data' must be an array of the values expected, in row-major order`);
    if (!shapeOk) problems.push(`${label}: 'shape' must be an array of non-negative integers, got: ${String(o.shape)}`);
    if (!datatypeOk) problems.push(`${label}: 'datatype' must be a string`);
    if (Array.isArray(o.data) && shapeOk && datatypeOk) {
      outputs.push({ name: o.name, data: o.data, datatype: o.datatype as string | undefined, shape: o.shape as number[] | undefined });
    }
  });
  return outputs.length === body.outputs.length ? { form: 'inputs', outputs } : undefined;
}

function readExpectedOutputs(text: string | undefined, problems: string[]): string[] | undefined {
  if (text === undefined || text === '') return undefined;
  let names: unknown;
  try {
    names = JSON.parse(text);
  } catch {
    names = undefined;
  }
  if (!Array.isArray(names) || names.length === 0 || !names.every((n) => typeof n === 'string' && n !== '')) {
    problems.push(`${ENV.EXPECTED_OUTPUTS} must be a JSON array of output names, such as ["probabilities"], got: ${text.slice(0, 200)}`);
    return undefined;
  }
  return names;
}

function readTolerance(text: string | undefined, problems: string[]): number {
  if (text === undefined || text === '') return DEFAULT_ANSWER_TOLERANCE;
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0) {
    problems.push(`${ENV.ANSWER_TOLERANCE} must be a number >= 0, got: ${JSON.stringify(text)}`);
    return DEFAULT_ANSWER_TOLERANCE;
  }
  return value;
}

function readTimeout(text: string | undefined, problems: string[]): number {
  if (text === undefined || text === '') return DEFAULT_CHECK_TIMEOUT_MS;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1 || value > MAX_CHECK_TIMEOUT_MS) {
    problems.push(`${ENV.CHECK_TIMEOUT_MS} must be a whole number of milliseconds between 1 and ${MAX_CHECK_TIMEOUT_MS}, got: ${JSON.stringify(text)}`);
    return DEFAULT_CHECK_TIMEOUT_MS;
  }
  return value;
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** VARIANT_SAMPLE_FILES: each variant's sample, read from its file beside the code. */
function readVariantSamples(env: NodeJS.ProcessEnv, problems: string[]): Array<{ variant: string; text: string }> | undefined {
  const raw = env[ENV.VARIANT_SAMPLE_FILES];
  if (raw === undefined || raw === '') return undefined;
  let files: unknown;
  try {
    files = JSON.parse(raw);
  } catch (e) {
    problems.push(`${ENV.VARIANT_SAMPLE_FILES} is not valid JSON: ${(e as Error).message}`);
    return undefined;
  }
  if (!isObject(files) || Object.keys(files).length === 0 || Object.values(files).some((f) => typeof f !== 'string' || f === '')) {
    problems.push(`${ENV.VARIANT_SAMPLE_FILES} must be a JSON object of variant names to file names, got: ${raw}`);
    return undefined;
  }
  const samples: Array<{ variant: string; text: string }> = [];
  for (const [variant, file] of Object.entries(files as Record<string, string>)) {
    const at = path.resolve(codeDir(env), file);
    try {
      samples.push({ variant, text: readFileSync(at, 'utf8') });
    } catch (e) {
      problems.push(`${ENV.VARIANT_SAMPLE_FILES}: cannot read the sample of variant '${variant}' at ${at}: ${(e as Error).message}`);
    }
  }
  return samples;
}
