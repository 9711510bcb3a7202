import { VARIANT_HEADER, VARIANT_PARAMETER } from '../../../contract/variants';
import type { BackendMetadata, BackendRequest, BackendResult, InferenceBackend } from '../backends/backend';
import type { OnnxBackend } from '../backends/onnx-backend';
import { type LoadedModel, ModelLoadError } from '../model/model-runtime';
import { isInferenceError } from '../protocol/errors';
import type { ModelSignature } from '../protocol/protocol';
import type { VariantMetrics } from './variant-metrics';
import type { VariantRouter } from './variant-router';

/** A variant as the backend runs it: its name, and the backend of its own model. */
export interface ServedVariant {
  readonly name: string;
  readonly backend: OnnxBackend;
}

/**
 * Every variant's model, loaded. This small set is what a model cache (an LRU of sessions) could
 * hold instead; the backend only asks it for the model of the variant it chose.
 */
export interface VariantModels {
  /** The first variant's signature: the one the API validates against and hooks see. */
  readonly signature: ModelSignature;
  readonly models: readonly LoadedModel[];
}

/**
 * A/B variants in one function: every variant's model loaded side by side, each infer request
 * answered by the one the router chooses. The answer names it (the X-Inference-Variant header and
 * `parameters.variant`), and each variant's requests, errors and inference time are counted with a
 * `variant` dimension.
 *
 * The function is ready only when every variant is: a variant that cannot load fails readiness
 * and the rollout's pre-traffic check, and no request is moved to another variant meanwhile, which
 * would change the split the experiment reads. The variants must take the same inputs (names and
 * datatypes), so that every request fits each of them; their outputs may differ.
 */
export class VariantBackend implements InferenceBackend<VariantModels> {
  readonly binaryTensorData = true;

  constructor(
    private readonly variants: readonly ServedVariant[],
    private readonly router: VariantRouter,
    private readonly metrics: VariantMetrics,
  ) {}

  async load(): Promise<VariantModels> {
    const models = await Promise.all(
      this.variants.map((v) =>
        v.backend.load().catch((e: unknown) => {
          const err = e as ModelLoadError;
          const named = new ModelLoadError(`variant '${v.name}': ${err.message}`, `variant '${v.name}': ${err.summary ?? 'the model cannot be loaded'}`, err);
          named.retryAt = err.retryAt;
          throw named;
        }),
      ),
    );
    const first = models[0].signature;
    for (let i = 1; i < models.length; i++) {
      const mismatch = inputMismatch(first, models[i].signature);
      if (mismatch) {
        const message = `variant '${this.variants[i].name}' takes other inputs than variant '${this.variants[0].name}' (${mismatch}): every variant must answer the same requests`;
        throw new ModelLoadError(message, message);
      }
    }
    return { signature: first, models };
  }

  metadata(set: VariantModels): BackendMetadata {
    return this.variants[0].backend.metadata(set.models[0]);
  }

  async infer(set: VariantModels, request: BackendRequest): Promise<BackendResult> {
    const i = this.router.assign(request.headers, request.body);
    const name = this.variants[i].name;
    let result: BackendResult;
    try {
      result = await this.variants[i].backend.infer(set.models[i], request);
    } catch (e) {
      // The variant's failures: its model refused the values (422) or failed (5xx). A 400 is the
      // request's own fault, the same on every variant.
      const status = isInferenceError(e) ? e.status : 500;
      this.metrics.record(name, { failed: status === 422 || status >= 500 });
      throw e;
    }
    this.metrics.record(name, { failed: false, inferenceMs: result.inferenceMs });
    return { ...result, response: withVariant(result.response, name), headers: { [VARIANT_HEADER.SERVED_BY]: name } };
  }
}

/** An Open Inference Protocol answer with `parameters.variant`; the `instances` form's `predictions` only get the header. */
function withVariant(response: unknown, variant: string): unknown {
  const r = response as { outputs?: unknown; parameters?: Record<string, unknown> } | null;
  if (r === null || typeof r !== 'object' || !('outputs' in r)) return response;
  const { outputs, ...head } = r;
  return { ...head, parameters: { ...head.parameters, [VARIANT_PARAMETER]: variant }, outputs };
}

/** How two signatures' inputs differ (names, datatypes, ranks, fixed dimensions), or undefined when they agree. */
function inputMismatch(a: ModelSignature, b: ModelSignature): string | undefined {
  const describe = (s: ModelSignature) =>
    s.inputs
      .map((t) => `${t.name}: ${t.datatype}[${t.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : '?')).join(',')}]`)
      .sort()
      .join(', ');
  const x = describe(a);
  const y = describe(b);
  return x === y ? undefined : `${y}, against ${x}`;
}
