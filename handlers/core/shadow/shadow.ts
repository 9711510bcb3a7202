/**
 * The shadow: a candidate model that runs on a sampled copy of the live requests once the live
 * answer is sent, in the same invocation. Its answer is compared with the live one and recorded;
 * the caller never sees it, and whatever it does (not loading, refusing the request, throwing,
 * running past the invocation's time) is logged and counted as ShadowFailed, never answered.
 */
import { METRIC } from '../../../contract/metrics';
import type { BackendRequest, InferenceBackend } from '../backends/backend';
import { type CapturedPayload, type ShadowMetadata, capturedJson } from '../capture/capture-record';
import { round, sample } from '../capture/data-capture';
import type { ObserverTelemetry } from '../capture/observer';
import type { ShadowConfig } from '../config/observation-config';
import { type Agreement, compareAnswers } from './agreement';

/** What a shadow run recorded: its answer (for the capture record) and how it compared. */
export interface ShadowOutcome {
  readonly output?: CapturedPayload;
  readonly metadata: ShadowMetadata;
}

export class Shadow {
  constructor(
    private readonly config: Pick<ShadowConfig, 'samplingPercent' | 'agreement' | 'tolerance'>,
    private readonly modelVersion: string,
    private readonly backend: InferenceBackend,
    private readonly telemetry: ObserverTelemetry,
  ) {}

  /** Starts loading the shadow model (at init, once the live one is loaded); never rejects. */
  preload(): Promise<void> {
    return this.backend.load().then(
      () => undefined,
      () => undefined,
    );
  }

  sampled(): boolean {
    return sample(this.config.samplingPercent);
  }

  /** Runs the shadow on what the live model was asked, and compares; never throws. */
  async run(live: { request: BackendRequest; response: unknown; inferenceMs: number }, requestId: string, deadline: number | undefined): Promise<ShadowOutcome> {
    const modelVersion = this.modelVersion;
    try {
      const result = await withDeadline(
        this.backend.load().then((model) => this.backend.infer(model, live.request)),
        deadline,
      );
      const agreement = compareAnswers(live.response, result.response, { kind: this.config.agreement, tolerance: this.config.tolerance });
      return measuredShadow(result, agreement, live.inferenceMs, modelVersion, this.telemetry);
    } catch (e) {
      return failedShadow(e, requestId, modelVersion, this.telemetry);
    }
  }
}

/**
 * A shadow run that answered, here or in a shadow function: its metrics recorded, and what its
 * capture record says of it (its answer, whether it agreed, its time against the live model's).
 */
export function measuredShadow(
  result: { readonly response: unknown; readonly inferenceMs: number },
  agreement: Agreement,
  liveInferenceMs: number,
  modelVersion: string,
  telemetry: ObserverTelemetry,
): ShadowOutcome {
  const ratio = liveInferenceMs > 0 ? result.inferenceMs / liveInferenceMs : undefined;
  telemetry.record(METRIC.SHADOW_AGREEMENT, agreement.agreed ? 1 : 0);
  telemetry.record(METRIC.SHADOW_INFERENCE_MS, result.inferenceMs);
  if (ratio !== undefined) telemetry.record(METRIC.SHADOW_LATENCY_RATIO, ratio);
  return {
    output: capturedJson(result.response, 'OUTPUT'),
    metadata: {
      modelVersion,
      inferenceMs: round(result.inferenceMs),
      ...(ratio !== undefined ? { latencyRatio: round(ratio) } : {}),
      agreed: agreement.agreed,
      ...(agreement.detail ? { detail: agreement.detail } : {}),
    },
  };
}

/** A shadow run that failed: logged and counted (the caller had the live answer), and recorded as failed. */
export function failedShadow(e: unknown, requestId: string | undefined, modelVersion: string, telemetry: ObserverTelemetry): ShadowOutcome {
  const message = (e as Error)?.message ?? String(e);
  telemetry.logger.warn('the shadow model failed; the caller had the live answer', { requestId, shadowVersion: modelVersion, error: message });
  telemetry.record(METRIC.SHADOW_FAILED, 1);
  return { metadata: { modelVersion, failed: true, detail: message } };
}

function withDeadline<T>(work: Promise<T>, deadline: number | undefined): Promise<T> {
  if (deadline === undefined) return work;
  let timer: NodeJS.Timeout | undefined;
  const ms = Math.max(0, deadline - Date.now());
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`it did not finish within the invocation's remaining time (${ms} ms)`)), ms);
    timer.unref();
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}
