/**
 * Data capture and the shadow together, as the handler's observer: on each infer answer, the
 * inference id header at once; once the answer is sent, the shadow's run (when it samples the
 * request) and then the capture record, with the shadow's answer beside the live one. A request the
 * shadow runs on is captured whatever capture's own sampling says, so that every comparison can be
 * read back. With a shadow function, the record goes to it with the request, and it writes it.
 */
import { INFERENCE_ID_HEADER } from '../../../contract/capture';
import { METRIC } from '../../../contract/metrics';
import type { DataCapture } from '../capture/data-capture';
import { inferenceIdOf } from '../capture/data-capture';
import type { AnswerObserver, ObservedAnswer, Observation, ObserverTelemetry } from '../capture/observer';
import type { RemoteShadow } from './remote-shadow';
import type { Shadow, ShadowOutcome } from './shadow';

export class CaptureAndShadow implements AnswerObserver {
  constructor(
    private readonly capture: DataCapture | undefined,
    private readonly shadow: Shadow | RemoteShadow | undefined,
    private readonly telemetry?: ObserverTelemetry,
  ) {}

  observe(answer: ObservedAnswer): Observation {
    const inferenceId = inferenceIdOf(answer.request);
    const shadowed = this.shadow?.sampled() ?? false;
    const captured = shadowed || (this.capture?.sampled() ?? false);
    return {
      headers: { [INFERENCE_ID_HEADER]: inferenceId },
      run: async (deadline) => {
        let outcome: ShadowOutcome | undefined;
        if (shadowed && this.shadow && 'send' in this.shadow) {
          if (await this.sendToShadowFunction(this.shadow, answer, inferenceId, deadline)) return;
          outcome = { metadata: { modelVersion: 'shadow function', failed: true, detail: 'the shadow function could not be invoked' } };
        } else if (shadowed && this.shadow && 'run' in this.shadow) {
          outcome = await this.shadow.run(answer.live, answer.requestId, deadline);
        }
        if (captured && this.capture) await this.capture.write(answer, inferenceId, outcome, deadline);
      },
    };
  }

  /** Whether the shadow function has the request (and will write its record). */
  private async sendToShadowFunction(shadow: RemoteShadow, answer: ObservedAnswer, inferenceId: string, deadline: number | undefined): Promise<boolean> {
    try {
      if (!this.capture) throw new Error('a shadow function needs data capture, which writes its records');
      await shadow.send(answer, this.capture.record(answer, inferenceId), deadline);
      return true;
    } catch (e) {
      this.telemetry?.logger.warn('the shadow function could not be invoked; the caller had the live answer', {
        requestId: answer.requestId,
        error: (e as Error)?.message ?? String(e),
      });
      this.telemetry?.record(METRIC.SHADOW_FAILED, 1);
      return false;
    }
  }
}
