import type * as Ort from 'onnxruntime-node';
import type { BackendMetadata, BackendRequest, BackendResult, InferenceBackend } from './backend';
import type { ServiceConfig } from './config';
import { ORT_TYPE_OF } from './datatypes';
import { InferenceError } from './errors';
import { type LoadedModel, type ModelRuntime, loadOnnxRuntime } from './model-runtime';
import { type InferPlan, type OutputResult, buildInferResponse, planInference } from './protocol';
import type { TensorSpec } from './tensors';

/** Runs the model with onnxruntime in this function: the requests are checked against its signature. */
export class OnnxBackend implements InferenceBackend<LoadedModel> {
  constructor(
    private readonly config: ServiceConfig,
    private readonly runtime: ModelRuntime,
  ) {}

  load(): Promise<LoadedModel> {
    return this.runtime.ensureLoaded();
  }

  metadata(model: LoadedModel): BackendMetadata {
    const spec = (s: TensorSpec) => ({
      name: s.name,
      datatype: s.datatype,
      shape: s.shape.map((d) => (typeof d === 'number' ? d : -1)),
    });
    return { platform: 'onnxruntime_onnx', inputs: model.signature.inputs.map(spec), outputs: model.signature.outputs.map(spec) };
  }

  async infer(model: LoadedModel, request: BackendRequest): Promise<BackendResult> {
    const plan = planInference(request.body, model.signature);
    const started = performance.now();
    const results = await this.run(model, plan);
    const inferenceMs = performance.now() - started;
    const response = buildInferResponse(plan, results, { name: this.config.modelName, version: this.config.modelVersion });
    return { response, inferenceMs };
  }

  private async run(model: LoadedModel, plan: InferPlan): Promise<Map<string, OutputResult>> {
    const ort = loadOnnxRuntime();
    const feeds: Record<string, Ort.Tensor> = {};
    for (const [name, t] of plan.feeds) {
      feeds[name] = new ort.Tensor(ORT_TYPE_OF[t.datatype] as Ort.Tensor.Type, t.data, t.shape);
    }
    let out: Ort.InferenceSession.OnnxValueMapType;
    try {
      // The failure is answered and logged here; onnxruntime's own log line would only repeat it.
      out = await model.session.run(
        feeds,
        plan.outputs.map((o) => o.name),
        { logSeverityLevel: 4 },
      );
    } catch (e) {
      const message = (e as Error).message;
      // onnxruntime's own input checks (e.g. a symbolic dimension the graph constrains) are the
      // client's mistake, not the model's.
      if (/invalid dimensions|invalid rank|shape mismatch|incompatible dimensions/i.test(message)) {
        throw new InferenceError(400, `the model rejected the input: ${message}`);
      }
      throw new InferenceError(500, `the model failed on this request: ${message}`);
    }
    const results = new Map<string, OutputResult>();
    for (const o of plan.outputs) {
      const t = out[o.name] as Ort.Tensor;
      results.set(o.name, { dims: t.dims, data: t.data });
    }
    return results;
  }
}
