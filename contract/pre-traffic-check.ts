/**
 * What the pre-traffic hook and the construct that deploys it agree on. Plain constants only, so
 * the construct can import this module without pulling in the AWS SDK.
 */

/** The environment variables the construct sets on the hook function. */
export const PRE_TRAFFIC_ENV = {
  /** ARN of the version being deployed, qualified with its version number (`...:function:NAME:7`). */
  TARGET_VERSION_ARN: 'TARGET_VERSION_ARN',
  /**
   * The infer request to send, as JSON text: `{"inputs": [...]}` or `{"instances": [...]}`. Sent byte
   * for byte. Either this or SAMPLE_REQUEST_FILE.
   */
  SAMPLE_REQUEST: 'SAMPLE_REQUEST',
  /**
   * A file holding the infer request, relative to the function's code (LAMBDA_TASK_ROOT), as the
   * construct ships it: a sample may be far larger than the 4 KB Lambda allows all variables together.
   */
  SAMPLE_REQUEST_FILE: 'SAMPLE_REQUEST_FILE',
  /** Optional JSON array of the output names an `inputs` request must get back, no more and no fewer. */
  EXPECTED_OUTPUTS: 'EXPECTED_OUTPUTS',
  /**
   * Optional answer the sample must get, as JSON text: `{"outputs": [{"name", "data", "datatype"?,
   * "shape"?}]}` for an `inputs` request, `{"predictions": [...]}` for `instances`. Float values match
   * within ANSWER_TOLERANCE; `"NaN"`, `"Infinity"` and `"-Infinity"` match only themselves; INT64 and
   * UINT64 values may be decimal strings. Either this or EXPECTED_ANSWER_FILE.
   */
  EXPECTED_ANSWER: 'EXPECTED_ANSWER',
  /** A file holding the expected answer, relative to the function's code, as the construct ships it. */
  EXPECTED_ANSWER_FILE: 'EXPECTED_ANSWER_FILE',
  /**
   * How far a float of the answer may be from the expected one: by this times its magnitude, or by
   * this when the magnitude is below 1. Default DEFAULT_ANSWER_TOLERANCE.
   */
  ANSWER_TOLERANCE: 'ANSWER_TOLERANCE',
  /** Optional budget for the invocation of the new version, retry included, in milliseconds. */
  CHECK_TIMEOUT_MS: 'CHECK_TIMEOUT_MS',
  /**
   * For a function with A/B variants: a JSON object of variant name → file (relative to the
   * function's code) holding the sample request with that variant in its `parameters.variant`. The
   * check sends each, so that every variant answers the sample, and names the variant that fails.
   */
  VARIANT_SAMPLE_FILES: 'VARIANT_SAMPLE_FILES',
} as const;

export const DEFAULT_CHECK_TIMEOUT_MS = 60_000;

/** The files the construct puts beside the check's code, named by SAMPLE_REQUEST_FILE and EXPECTED_ANSWER_FILE. */
export const PRE_TRAFFIC_FILES = {
  SAMPLE_REQUEST: 'sample-request.json',
  EXPECTED_ANSWER: 'expected-answer.json',
} as const;

/** ANSWER_TOLERANCE when unset: float32 arithmetic differs that little between machines and optimisations. */
export const DEFAULT_ANSWER_TOLERANCE = 1e-4;

/** Lambda's longest invocation: a budget above it could never be used. */
export const MAX_CHECK_TIMEOUT_MS = 900_000;

/** Budget for reporting the verdict to CodeDeploy, retries included. */
export const REPORT_TIMEOUT_MS = 10_000;

/**
 * How much longer than CHECK_TIMEOUT_MS the hook function's timeout should be: the report's budget
 * plus room for a cold start. With less, the handler shortens the invocation's budget to what the
 * remaining time allows, so that a verdict is still reported.
 */
export const HOOK_TIMEOUT_HEADROOM_MS = REPORT_TIMEOUT_MS + 5_000;
