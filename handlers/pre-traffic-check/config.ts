import { DEFAULT_CHECK_TIMEOUT_MS, MAX_CHECK_TIMEOUT_MS, PRE_TRAFFIC_ENV as ENV } from '../../contract/pre-traffic-check';

/** What the sample request asks for, which decides what a correct answer looks like. */
export type SampleForm = { readonly form: 'inputs' } | { readonly form: 'instances'; readonly instanceCount: number };

export interface PreTrafficConfig {
  readonly targetVersionArn: string;
  /** The request exactly as configured: it is sent as this text, never re-serialised. */
  readonly sampleRequest: string;
  readonly sample: SampleForm;
  readonly expectedOutputs?: readonly string[];
  readonly checkTimeoutMs: number;
}

export type ConfigResult = { readonly ok: true; readonly config: PreTrafficConfig } | { readonly ok: false; readonly problems: string[] };

// A version number as qualifier: an alias or $LATEST would test something other than the new code.
const VERSION_ARN = /^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]+:\d+$/;

/** Reads every variable and reports every problem at once, so one failed deployment tells all. */
export function readConfig(env: NodeJS.ProcessEnv): ConfigResult {
  const problems: string[] = [];

  const targetVersionArn = env[ENV.TARGET_VERSION_ARN] ?? '';
  if (!targetVersionArn) {
    problems.push(`${ENV.TARGET_VERSION_ARN} is not set: expected the ARN of the version being deployed`);
  } else if (!VERSION_ARN.test(targetVersionArn)) {
    problems.push(`${ENV.TARGET_VERSION_ARN} must be a function ARN qualified with a version number (arn:aws:lambda:REGION:ACCOUNT:function:NAME:N), got: ${targetVersionArn}`);
  }

  const sampleRequest = env[ENV.SAMPLE_REQUEST] ?? '';
  const sample = readSample(sampleRequest, problems);
  const expectedOutputs = readExpectedOutputs(env[ENV.EXPECTED_OUTPUTS], problems);
  const checkTimeoutMs = readTimeout(env[ENV.CHECK_TIMEOUT_MS], problems);

  if (problems.length > 0 || !sample) return { ok: false, problems };
  return { ok: true, config: { targetVersionArn, sampleRequest, sample, expectedOutputs, checkTimeoutMs } };
}

function readSample(text: string, problems: string[]): SampleForm | undefined {
  const name = ENV.SAMPLE_REQUEST;
  if (!text) {
    problems.push(`${name} is not set: expected an infer request such as {"inputs": [...]} or {"instances": [...]}`);
    return undefined;
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (e) {
    problems.push(`${name} is not valid JSON (${(e as Error).message}): ${text.slice(0, 200)}`);
    return undefined;
  }
  if (!isObject(body)) {
    problems.push(`${name} must be a JSON object with 'inputs' or 'instances', got: ${text.slice(0, 200)}`);
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
