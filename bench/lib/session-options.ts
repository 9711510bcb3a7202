/**
 * The handler's onnxruntime options, for the bare `session.run` baselines: taken from the module
 * the handler creates its sessions with, and from the same configuration (readConfig over the
 * same environment), so that a ratio compares like with like.
 */
import type * as Ort from 'onnxruntime-node';
import { readConfig } from '../../handlers/core/config/config';
import { ONNX_RUN_OPTIONS, onnxSessionOptions } from '../../handlers/core/model/session-options';

/** The variable a child script reads both option sets from, as JSON. */
export const SESSION_OPTIONS_ENV = 'BENCH_SESSION_OPTIONS';

export interface HandlerOrtOptions {
  readonly session: Ort.InferenceSession.SessionOptions;
  readonly run: Ort.InferenceSession.RunOptions;
}

/** The options the handler would use for the model at `modelPath`, under `env` (ORT_INTRA_OP_THREADS, ...). */
export function handlerOrtOptions(modelPath: string, env: Record<string, string> = {}): HandlerOrtOptions {
  return { session: onnxSessionOptions(readConfig({ ...env, MODEL_PATH: modelPath })), run: ONNX_RUN_OPTIONS };
}

/** The same, as the environment of a child script. */
export function handlerOrtOptionsEnv(modelPath: string, env: Record<string, string> = {}): Record<string, string> {
  return { [SESSION_OPTIONS_ENV]: JSON.stringify(handlerOrtOptions(modelPath, env)) };
}
