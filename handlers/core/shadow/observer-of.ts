/**
 * The observer an ONNX handler gets from its environment: data capture (DATA_CAPTURE_*) and the
 * shadow (SHADOW_*), or none when neither is set, so that a handler without them runs as before.
 * The configuration is read at once (a bad value makes the function misconfigured, as readConfig
 * does); the parts are built once the handler's telemetry exists.
 */
import { OnnxBackend } from '../backends/onnx-backend';
import { captureSink } from '../capture/capture-sink';
import { DataCapture } from '../capture/data-capture';
import type { AnswerObserver, ObserverTelemetry } from '../capture/observer';
import type { ServiceConfig } from '../config/config';
import { readCaptureConfig, readShadowConfig } from '../config/observation-config';
import { ModelRuntime } from '../model/model-runtime';
import { CaptureAndShadow } from './post-answer';
import { Shadow } from './shadow';

export interface HandlerObservation {
  readonly observer: AnswerObserver;
  /** Loads the shadow model; undefined without one. */
  readonly preload?: () => Promise<void>;
}

export function observerOf(config: ServiceConfig, env: NodeJS.ProcessEnv): ((telemetry: ObserverTelemetry) => HandlerObservation) | undefined {
  const capture = readCaptureConfig(env);
  const shadow = readShadowConfig(env);
  if (!capture && !shadow) return undefined;
  return (telemetry) => {
    const dataCapture = capture
      ? new DataCapture(capture, captureSink(capture.destination, config.modelName), telemetry, { name: config.modelName, version: config.modelVersion })
      : undefined;
    let shadowRun: Shadow | undefined;
    if (shadow) {
      const runtime = new ModelRuntime(shadow.model, {
        onLoaded: (m) => telemetry.logger.info('shadow model loaded', { version: shadow.model.modelVersion, loadMs: m.loadMs }),
        onFailed: (e) => telemetry.logger.error('the shadow model failed to load; the next shadowed request retries', { version: shadow.model.modelVersion, error: e.message }),
      });
      shadowRun = new Shadow(shadow, new OnnxBackend(shadow.model, runtime), telemetry);
    }
    return { observer: new CaptureAndShadow(dataCapture, shadowRun), preload: shadowRun ? () => shadowRun.preload() : undefined };
  };
}
