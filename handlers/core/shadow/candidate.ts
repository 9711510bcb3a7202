/**
 * The shadow function's side of `ShadowMode.SHADOW_FUNCTION`: a function whose model is the
 * candidate takes the live function's shadow event, runs the candidate on the same request,
 * compares with the live answer, counts as the in-invocation shadow does (`ShadowAgreement`,
 * `ShadowFailed`, `ShadowInferenceMs`, `ShadowLatencyRatio`) and writes the completed capture record.
 */
import { SHADOW_EVENT_KEY } from '../../../contract/capture';
import type { InferenceBackend } from '../backends/backend';
import type { DataCapture } from '../capture/data-capture';
import type { ObserverTelemetry } from '../capture/observer';
import type { ShadowConfig } from '../config/observation-config';
import { compareWithFlat } from './agreement';
import { type ShadowOutcome, failedShadow, measuredShadow } from './shadow';
import type { ShadowEvent } from './remote-shadow';

/** The shadow event in a Lambda event, if it is one. */
export function shadowEventOf(event: unknown): ShadowEvent | undefined {
  const e = (event as Record<string, unknown> | null)?.[SHADOW_EVENT_KEY];
  return e !== null && typeof e === 'object' ? (e as ShadowEvent) : undefined;
}

export class ShadowCandidate {
  constructor(
    private readonly rule: Pick<ShadowConfig, 'agreement' | 'tolerance'>,
    private readonly modelVersion: string,
    private readonly backend: InferenceBackend,
    private readonly capture: DataCapture | undefined,
    private readonly telemetry: ObserverTelemetry,
  ) {}

  /** Runs one shadow event; never throws (there is no one to answer: the invocation is asynchronous). */
  async handle(event: ShadowEvent, deadline: number | undefined): Promise<{ agreed?: boolean }> {
    const meta = event.record.eventMetadata;
    let outcome: ShadowOutcome;
    try {
      const model = await this.backend.load();
      const result = await this.backend.infer(model, { body: event.request.body, binary: event.request.binary ? Buffer.from(event.request.binary, 'base64') : undefined });
      const agreement = compareWithFlat(event.live, result.response, { kind: this.rule.agreement, tolerance: this.rule.tolerance });
      outcome = measuredShadow(result, agreement, event.liveInferenceMs, this.modelVersion, this.telemetry);
    } catch (e) {
      outcome = failedShadow(e, meta.requestId, this.modelVersion, this.telemetry);
    }
    const { output, metadata: shadow } = outcome;
    const record = {
      ...event.record,
      captureData: { ...event.record.captureData, ...(output && event.record.captureData.endpointOutput ? { shadowOutput: output } : {}) },
      eventMetadata: { ...meta, shadow },
    };
    await this.capture?.writeRecord(record, deadline);
    return { agreed: shadow.agreed };
  }
}
