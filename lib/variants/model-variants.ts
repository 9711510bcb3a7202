import type { ModelPackaging } from '../packaging/model-packaging';

/** One model version of an A/B test besides the endpoint's own model. */
export interface ModelVariant {
  /**
   * The variant's name: the answer's `X-Inference-Variant` header and `parameters.variant`, and
   * the `variant` dimension of its metrics. Letters, digits, `.`, `_` and `-`, up to 64.
   */
  readonly name: string;

  /** Its share of the traffic, relative to the other variants' weights (`primaryWeight` included). */
  readonly weight: number;

  /**
   * How the function gets this variant's model: `S3ModelPackaging` (fetched to /tmp at cold start;
   * give several variants one `bucket`) or `LayerModelPackaging` (a layer at `/opt/models/<file>`).
   * A packaging that replaces the function's code or puts it in a VPC (bundled, container, EFS)
   * cannot carry a second model and is refused. Give each variant its own packaging.
   */
  readonly packaging: ModelPackaging;

  /**
   * The model version its answers report (`model_version`).
   * @default - the model's identity where it is known at synth (the first 16 hex digits of its
   * content hash, or its pinned S3 version), else the variant's name
   */
  readonly modelVersion?: string;
}

/**
 * A/B variants of an endpoint: its own model and one or more others, served side by side by the
 * same function, each request answered by one of them by weight, sticky by a header if you name
 * one. The function routes (not a weighted Lambda alias, which cannot be sticky by header): every
 * variant's model is loaded by every instance, so `memorySize` must hold them all.
 */
export interface ModelVariantsOptions {
  /**
   * The name of the variant that serves the endpoint's own model (its `model` or `packaging`).
   * @default 'primary'
   */
  readonly primaryName?: string;

  /** The share of the endpoint's own model, relative to the variants' weights. */
  readonly primaryWeight: number;

  /** The other variants: at least one; with the primary, at most 10 (SageMaker's limit of production variants). */
  readonly variants: ModelVariant[];

  /**
   * The request header whose value decides the variant (a user id, a session id): the same value
   * gets the same variant on every instance and every version, while the names, order and weights
   * stay. Requests without it are assigned at random by weight.
   * @default - every request assigned at random by weight
   */
  readonly stickyHeader?: string;
}
