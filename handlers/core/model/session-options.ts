import type * as Ort from 'onnxruntime-node';
import type { HandlerConfig } from '../config/config';

/**
 * The options every onnxruntime session of the handler is created with, for the .onnx and the
 * precompiled model alike. One place for them, so that what measures the handler against a bare
 * `session.run` (bench/) creates its session the same way.
 *
 * The precompiled model holds the portable (basic) optimisations already; the levels above
 * (fusions, layout) depend on the CPU and are left to this instance, as ORT_GRAPH_OPTIMIZATION_LEVEL
 * says. onnxruntime applies them to an ORT-format graph as to an ONNX one, writing new initializers
 * rather than into the mapped file.
 */
export function onnxSessionOptions(config: Pick<HandlerConfig, 'intraOpThreads' | 'interOpThreads' | 'graphOptimizationLevel'>): Ort.InferenceSession.SessionOptions {
  return {
    intraOpNumThreads: config.intraOpThreads,
    interOpNumThreads: config.interOpThreads,
    graphOptimizationLevel: config.graphOptimizationLevel,
    executionMode: 'sequential',
    logSeverityLevel: 3,
    // No memory arena: onnxruntime's arena grows to the largest request it served and never
    // gives the memory back, so one request for a large output (a ConstantOfShape of what the
    // caller asked) would leave the instance that much fuller for its whole life. Without it,
    // tensors are allocated per run and freed when the run ends. onnxruntime-node 1.30 offers
    // no cap on the arena (its max_mem needs OrtArenaCfg, which the Node binding does not
    // expose) nor on a run's memory, so this is the memory bound it allows. Measured on MLPs
    // from 4→16 (batch 2) to 1024→2048 (batch 64): the same run times with and without it.
    enableCpuMemArena: false,
  };
}

/**
 * The options of every `session.run`: a failed run is answered and logged by the handler, and
 * onnxruntime's own log line would only repeat it.
 */
export const ONNX_RUN_OPTIONS: Ort.InferenceSession.RunOptions = { logSeverityLevel: 4 };
