/**
 * What the pre-traffic hook and the construct that deploys it agree on. Plain constants only, so
 * the construct can import this module without pulling in the AWS SDK.
 */

/** The environment variables the construct sets on the hook function. */
export const PRE_TRAFFIC_ENV = {
  /** ARN of the version being deployed, qualified with its version number (`...:function:NAME:7`). */
  TARGET_VERSION_ARN: 'TARGET_VERSION_ARN',
  /** The infer request to send, as JSON text: `{"inputs": [...]}` or `{"instances": [...]}`. Sent byte for byte. */
  SAMPLE_REQUEST: 'SAMPLE_REQUEST',
  /** Optional JSON array of the output names an `inputs` request must get back, no more and no fewer. */
  EXPECTED_OUTPUTS: 'EXPECTED_OUTPUTS',
  /** Optional budget for the invocation of the new version, retry included, in milliseconds. */
  CHECK_TIMEOUT_MS: 'CHECK_TIMEOUT_MS',
} as const;

export const DEFAULT_CHECK_TIMEOUT_MS = 60_000;

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
