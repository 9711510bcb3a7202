/**
 * What the handler hands over once an infer answer is built and before it is sent, for work that
 * runs after it (data capture, the shadow): the request and the answer as they went over the wire,
 * and the backend's request and answer. The handler knows only this interface; the observer decides
 * at once (sampling, the inference id header) and does its work after the answer is sent.
 */
import type { BackendRequest } from '../backends/backend';
import type { MetricName } from '../../../contract/metrics';
import type { HttpRequest, HttpResponse } from '../http/events';

/** One infer request and its answer, as the handler built it. */
export interface ObservedAnswer {
  readonly requestId: string;
  /** The HTTP request as it came. */
  readonly request: HttpRequest;
  /** The answer as it is sent (before the observation's headers are added). */
  readonly response: HttpResponse;
  /** What the backend was asked (after `preprocess`), what it answered (before `postprocess`) and its model time. */
  readonly live: { readonly request: BackendRequest; readonly response: unknown; readonly inferenceMs: number };
  /** From the event to the answer built, in milliseconds. */
  readonly latencyMs: number;
  /** When the request came in. */
  readonly receivedAt: Date;
  /**
   * The variant that served the request, where an endpoint has several.
   * @default - none
   */
  readonly variant?: string;
}

/** What an observer does with one answer: headers now, and work once the answer is sent. */
export interface Observation {
  /** Headers added to the answer. */
  readonly headers: Readonly<Record<string, string>>;
  /**
   * Runs once the answer is sent, given up at `deadline` (a Date.now() time) when there is one. It
   * never throws: its failures are logged and counted by the observer.
   */
  run(deadline: number | undefined): Promise<void>;
}

export interface AnswerObserver {
  /** Decides what to do with an answer, at once; undefined for nothing. Never throws. */
  observe(answer: ObservedAnswer): Observation | undefined;
}

/** The handler's logs and metrics, as observers use them. */
export interface ObserverTelemetry {
  readonly logger: {
    info(message: string, extra: Record<string, unknown>): void;
    warn(message: string, extra: Record<string, unknown>): void;
    error(message: string, extra: Record<string, unknown>): void;
  };
  record(name: MetricName, value: number): void;
}
