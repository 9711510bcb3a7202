/**
 * Data capture and shadow testing, as the constructs configure them and the handler runs them: the
 * header that carries the inference id, the capture record's format (SageMaker Data Capture's JSON
 * Lines, with this library's metadata besides), where Firehose writes it, and how a shadow's answer
 * is compared with the live one.
 */

/**
 * The header with the inference id: answered on every infer answer of an endpoint with data capture
 * or a shadow, and read from the request when the caller sends one (1 to 64 printable ASCII
 * characters, as SageMaker's `InferenceId`), so that a caller can find its request in the capture.
 */
export const INFERENCE_ID_HEADER = 'X-Inference-Id';

/** What is captured of each sampled request (SageMaker's `CaptureMode`s, both by default). */
export const CAPTURE_MODE = {
  INPUT: 'Input',
  OUTPUT: 'Output',
  INPUT_AND_OUTPUT: 'InputAndOutput',
} as const;

export type CaptureModeName = (typeof CAPTURE_MODE)[keyof typeof CAPTURE_MODE];

/** `eventVersion` of a capture record, as SageMaker writes it. */
export const CAPTURE_EVENT_VERSION = '0';

/**
 * The largest capture record Firehose takes (1,000 KiB per record, the line's newline included): a
 * larger one is dropped and counted as a capture failure.
 */
export const FIREHOSE_MAX_RECORD_BYTES = 1_000 * 1024;

/**
 * Where a capture record lands under the capture prefix: one folder per hour, in UTC, as SageMaker's
 * `yyyy/mm/dd/hh` (the Firehose prefix `!{timestamp:yyyy/MM/dd/HH}`, and `serve --data-capture`'s
 * folders). The Glue table projects its `hour` partition from it.
 */
export const CAPTURE_HOUR_FORMAT = 'yyyy/MM/dd/HH';

/**
 * How a shadow's answer is compared with the live one: every output within a tolerance
 * (`|a - b| <= tolerance * max(1, |a|, |b|)` for floats, integers and strings exactly), or, for
 * classifiers, the index of the largest value along the last axis of each float output.
 */
export const SHADOW_AGREEMENT = {
  TOLERANCE: 'tolerance',
  ARGMAX: 'argmax',
} as const;

export type ShadowAgreementName = (typeof SHADOW_AGREEMENT)[keyof typeof SHADOW_AGREEMENT];

/** The tolerance of float outputs when SHADOW_TOLERANCE is unset. */
export const DEFAULT_SHADOW_TOLERANCE = 1e-4;

/**
 * The key of the event the live function sends its shadow function (`ShadowMode.SHADOW_FUNCTION`,
 * an asynchronous `Invoke`): what the live model was asked and answered, and the capture record.
 */
export const SHADOW_EVENT_KEY = 'cdkServerlessInferenceShadow';

/** The largest payload of an asynchronous `Invoke` (1 MB): a larger shadow event is counted as a shadow failure. */
export const ASYNC_INVOKE_MAX_PAYLOAD_BYTES = 1024 * 1024;
