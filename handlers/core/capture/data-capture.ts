/**
 * Data capture: a sampled share of infer requests, with their answers, written as capture records
 * once the answer is sent. Whatever goes wrong (a record too large, Firehose refusing or out of
 * reach, no time left) is logged, counted as CaptureFailed and the record dropped: the answer is
 * already sent, and capture never fails a request.
 */
import { randomUUID } from 'node:crypto';
import { INFERENCE_ID_HEADER } from '../../../contract/capture';
import { METRIC } from '../../../contract/metrics';
import type { CaptureConfig } from '../config/observation-config';
import type { HttpRequest } from '../http/events';
import { type CaptureRecord, type CapturedPayload, type ShadowMetadata, captureRecord, capturedInput, capturedOutput } from './capture-record';
import type { CaptureSink } from './capture-sink';
import type { ObservedAnswer, ObserverTelemetry } from './observer';

/** A caller's inference id: 1 to 64 printable ASCII characters, not starting with a space (SageMaker's InferenceId). */
const INFERENCE_ID = /^[\x21-\x7e][\x20-\x7e]{0,63}$/;

/** The caller's inference id (the X-Inference-Id header), or a new one. */
export function inferenceIdOf(request: HttpRequest): string {
  const given = request.headers[INFERENCE_ID_HEADER.toLowerCase()];
  return given !== undefined && INFERENCE_ID.test(given) ? given : randomUUID();
}

/** True for `percent` % of the calls. */
export function sample(percent: number, random: () => number = Math.random): boolean {
  return percent >= 100 || (percent > 0 && random() * 100 < percent);
}

export class DataCapture {
  constructor(
    private readonly config: CaptureConfig,
    private readonly sink: CaptureSink,
    private readonly telemetry: ObserverTelemetry,
    private readonly model: { readonly name: string; readonly version: string },
  ) {}

  /** Whether this request is one of the sampled share. */
  sampled(): boolean {
    return sample(this.config.samplingPercent);
  }

  /** Writes the record of one answer (with a shadow's, if it ran); never throws. */
  async write(answer: ObservedAnswer, inferenceId: string, shadow: ShadowPart | undefined, deadline: number | undefined): Promise<void> {
    let record: CaptureRecord;
    try {
      record = this.record(answer, inferenceId, shadow);
    } catch (e) {
      this.failed(answer.requestId, inferenceId, e);
      return;
    }
    await this.writeRecord(record, deadline);
  }

  /** The record of one answer, as `write` writes it. */
  record(answer: ObservedAnswer, inferenceId: string, shadow?: ShadowPart): CaptureRecord {
    return captureRecord(
      this.config.mode,
      { input: () => capturedInput(answer.request), output: () => capturedOutput(answer.response), shadowOutput: shadow?.output },
      {
        eventId: randomUUID(),
        inferenceId,
        inferenceTime: answer.receivedAt.toISOString(),
        requestId: answer.requestId,
        modelName: this.model.name,
        modelVersion: this.model.version,
        ...(answer.variant !== undefined ? { variant: answer.variant } : {}),
        latencyMs: round(answer.latencyMs),
        inferenceMs: round(answer.live.inferenceMs),
        ...(shadow ? { shadow: shadow.metadata } : {}),
      },
    );
  }

  /** Writes a record built by `record` (here, or by the live function for its shadow function); never throws. */
  async writeRecord(record: CaptureRecord, deadline: number | undefined): Promise<void> {
    const { requestId, inferenceId, inferenceTime } = record.eventMetadata;
    try {
      await this.sink.write(Buffer.from(`${JSON.stringify(record)}\n`, 'utf8'), new Date(inferenceTime), deadline);
      this.telemetry.record(METRIC.CAPTURED, 1);
    } catch (e) {
      this.failed(requestId, inferenceId, e);
    }
  }

  private failed(requestId: string, inferenceId: string, e: unknown): void {
    this.telemetry.logger.warn('data capture failed; the record was dropped (the answer was sent)', { requestId, inferenceId, error: (e as Error)?.message ?? String(e) });
    this.telemetry.record(METRIC.CAPTURE_FAILED, 1);
  }
}

/** A shadow's answer and how it compared, for a record. */
export interface ShadowPart {
  readonly output?: CapturedPayload;
  readonly metadata: ShadowMetadata;
}

/** Milliseconds to a microsecond, as JSON should carry them. */
export function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
