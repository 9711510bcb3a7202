/**
 * The observer an ONNX handler gets from its environment: data capture (DATA_CAPTURE_*) and the
 * shadow (SHADOW_*: a model run here, or a shadow function invoked), or none when neither is set,
 * so that a handler without them runs as before; and, on a shadow function (SHADOW_CANDIDATE), what
 * takes the live function's shadow events. The configuration is read at once (a bad value makes
 * the function misconfigured, as readConfig does); the parts are built once the telemetry exists.
 */
import type { InferenceBackend } from '../backends/backend';
import { OnnxBackend } from '../backends/onnx-backend';
import { captureSink } from '../capture/capture-sink';
import { DataCapture } from '../capture/data-capture';
import type { AnswerObserver, ObserverTelemetry } from '../capture/observer';
import type { ServiceConfig } from '../config/config';
import { readAgreementRule, readCaptureConfig, readShadowCandidate, readShadowConfig } from '../config/observation-config';
import { ModelRuntime } from '../model/model-runtime';
import { ShadowCandidate } from './candidate';
import { CaptureAndShadow } from './post-answer';
import { RemoteShadow } from './remote-shadow';
import { Shadow } from './shadow';

export interface HandlerObservation {
  readonly observer?: AnswerObserver;
  /** Loads the shadow model; undefined without one. */
  readonly preload?: () => Promise<void>;
  /** On a shadow function: what takes the shadow events, with the function's own backend (the candidate). */
  readonly candidate?: (backend: InferenceBackend) => ShadowCandidate;
}

export function observerOf(config: ServiceConfig, env: NodeJS.ProcessEnv): ((telemetry: ObserverTelemetry) => HandlerObservation) | undefined {
  const capture = readCaptureConfig(env);
  const shadow = readShadowConfig(env);
  const candidate = readShadowCandidate(env) ? readAgreementRule(env) : undefined;
  if (!capture && !shadow && !candidate) return undefined;
  return (telemetry) => {
    const dataCapture = capture
      ? new DataCapture(capture, captureSink(capture.destination, config.modelName), telemetry, { name: config.modelName, version: config.modelVersion })
      : undefined;
    let shadowRun: Shadow | RemoteShadow | undefined;
    let preload: (() => Promise<void>) | undefined;
    if (shadow?.functionName) {
      shadowRun = new RemoteShadow(shadow.functionName, shadow.samplingPercent);
    } else if (shadow?.model) {
      const model = shadow.model;
      const runtime = new ModelRuntime(model, {
        onLoaded: (m) => telemetry.logger.info('shadow model loaded', { version: model.modelVersion, loadMs: m.loadMs }),
        onFailed: (e) => telemetry.logger.error('the shadow model failed to load; the next shadowed request retries', { version: model.modelVersion, error: e.message }),
      });
      const local = new Shadow(shadow, model.modelVersion, new OnnxBackend(model, runtime), telemetry);
      shadowRun = local;
      preload = () => local.preload();
    }
    return {
      observer: capture || shadow ? new CaptureAndShadow(dataCapture, shadowRun, telemetry) : undefined,
      preload,
      candidate: candidate ? (backend) => new ShadowCandidate(candidate, config.modelVersion, backend, dataCapture, telemetry) : undefined,
    };
  };
}
