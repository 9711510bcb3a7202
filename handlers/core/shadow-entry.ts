/**
 * A shadow function's entry (`ShadowMode.SHADOW_FUNCTION`): the live function's shadow events go to
 * the candidate, any other event to the handler as usual. The live function invokes it
 * asynchronously, so what it returns goes nowhere; its metrics are flushed as the handler's are.
 */
import type { InferenceEntry, InvocationContext } from './handler';
import { writeValue } from './http/streaming';
import { type ShadowCandidate, shadowEventOf } from './shadow/candidate';
import type { Telemetry } from './telemetry';

/** How long before the function's timeout a shadow event's record is given up. */
const MARGIN_MS = 500;

export function withShadowEvents(entry: InferenceEntry, candidate: ShadowCandidate, telemetry: Telemetry): InferenceEntry {
  const handleShadow = async (event: unknown, context: InvocationContext | undefined): Promise<unknown> => {
    const shadowEvent = shadowEventOf(event)!;
    const remaining = context?.getRemainingTimeInMillis?.();
    try {
      return await candidate.handle(shadowEvent, remaining === undefined ? undefined : Date.now() + Math.max(0, remaining - MARGIN_MS));
    } finally {
      telemetry.flush();
    }
  };
  return {
    handle: (event, context) => (shadowEventOf(event) ? handleShadow(event, context) : entry.handle(event, context)),
    handleStream: async (event, responseStream, context) => {
      if (!shadowEventOf(event)) return entry.handleStream(event, responseStream, context);
      await writeValue(responseStream, await handleShadow(event, context));
    },
  };
}
