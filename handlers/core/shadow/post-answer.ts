/**
 * Data capture and the shadow together, as the handler's observer: on each infer answer, the
 * inference id header at once; once the answer is sent, the shadow's run (when it samples the
 * request) and then the capture record, with the shadow's answer beside the live one. A request the
 * shadow runs on is captured whatever capture's own sampling says, so that every comparison can be
 * read back.
 */
import { INFERENCE_ID_HEADER } from '../../../contract/capture';
import type { DataCapture } from '../capture/data-capture';
import { inferenceIdOf } from '../capture/data-capture';
import type { AnswerObserver, ObservedAnswer, Observation } from '../capture/observer';
import type { Shadow, ShadowOutcome } from './shadow';

export class CaptureAndShadow implements AnswerObserver {
  constructor(
    private readonly capture: DataCapture | undefined,
    private readonly shadow: Shadow | undefined,
  ) {}

  observe(answer: ObservedAnswer): Observation {
    const inferenceId = inferenceIdOf(answer.request);
    const shadowed = this.shadow?.sampled() ?? false;
    const captured = shadowed || (this.capture?.sampled() ?? false);
    return {
      headers: { [INFERENCE_ID_HEADER]: inferenceId },
      run: async (deadline) => {
        let outcome: ShadowOutcome | undefined;
        if (shadowed) outcome = await this.shadow!.run(answer.live, answer.requestId, deadline);
        if (captured && this.capture) await this.capture.write(answer, inferenceId, outcome, deadline);
      },
    };
  }
}
