/**
 * A/B variants: two or more models served side by side by one function, each request answered by
 * one of them, chosen by weight (sticky by a caller's header when one is configured). The
 * constructs write MODEL_VARIANTS (see environment.ts) as the JSON of `VariantSpec[]`; the handler
 * reads it, loads every variant and routes each request.
 */
import { ENV } from './environment';

/**
 * One variant as MODEL_VARIANTS lists it. A variant with no `env` of its own serves the function's
 * own model (MODEL_PATH or MODEL_S3_URI); another one's `env` says where its model is with the
 * same variables (MODEL_PATH, MODEL_S3_URI, MODEL_S3_VERSION_ID, MODEL_PRECOMPILED_PATH,
 * MODEL_PRECOMPILED_S3_URI), and only those.
 */
export interface VariantSpec {
  /** The variant's name: in the answer's header and parameters, and the metrics' `variant` dimension. */
  readonly name: string;
  /** Its share of the traffic, relative to the others' (positive). */
  readonly weight: number;
  /** The model version its answers report (`model_version`). @default - MODEL_VERSION */
  readonly version?: string;
  /** Where its model is. @default - the function's own model */
  readonly env?: Readonly<Record<string, string>>;
}

/** HTTP headers of the variants: the answer's, and the caller's choice of one. */
export const VARIANT_HEADER = {
  /** On every answer of a function with variants: the name of the variant that answered. */
  SERVED_BY: 'X-Inference-Variant',
  /**
   * On a request: the name of the variant to answer it, whatever the weights (SageMaker's
   * TargetVariant); an unknown name is a 400 that lists the variants.
   */
  TARGET: 'X-Inference-Target-Variant',
} as const;

/**
 * The key of the infer answer's `parameters` that names the variant that answered; in a request's
 * `parameters`, the variant to answer it (for direct invocations, which have no headers).
 */
export const VARIANT_PARAMETER = 'variant';

/** The per-variant embedded metrics, in the handler's namespace, with the `variant` dimension besides `service` and `model`. */
export const VARIANT_METRIC = {
  /** 1 per infer request a variant answered or failed. Count. */
  REQUESTS: 'VariantRequests',
  /** 1 per infer request a variant failed: its model refused the values (422) or failed (5xx); 0 otherwise. Count. */
  ERRORS: 'VariantErrors',
  /** Time of the variant's `session.run`. Milliseconds. */
  INFERENCE_MS: 'VariantInferenceMs',
} as const;

/** The dimension that names the variant on VARIANT_METRIC's metrics. */
export const VARIANT_METRIC_DIMENSION = 'variant';

/** The environment variables of a variant's `env`: where its model is, nothing else. */
export const VARIANT_LOCATION_ENV: readonly string[] = [ENV.MODEL_PATH, ENV.MODEL_S3_URI, ENV.MODEL_S3_VERSION_ID, ENV.MODEL_PRECOMPILED_PATH, ENV.MODEL_PRECOMPILED_S3_URI];

/** A variant's name: letters, digits, `.`, `_` and `-`, 1 to 64 (a header value and a metric dimension). */
export const VARIANT_NAME_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
