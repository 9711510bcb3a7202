// The demo's hooks, bundled by the Hooks demo stack (and served locally with
// `npx cdk-serverless-inference serve --model demo/model/demo.onnx --name demo --hooks demo/hooks/demo-hooks.ts`):
// named measurements in, a class name out, and one log line per prediction once the caller has it.
import { type AfterResponseContext, badRequest, type HookContext, type InferResponse } from 'cdk-serverless-inference/handler';

/** The demo model's classes, in the order of its `probabilities` output. */
const CLASSES = ['alpha', 'beta', 'gamma'];
const FEATURES = ['a', 'b', 'c', 'd'];

/** `{"a": 0.5, "b": -1.2, "c": 3.3, "d": 0.7}` (or a list of such) in, the model's input tensor out. */
export function preprocess(body: unknown, context: HookContext) {
  const rows = Array.isArray(body) ? body : [body];
  const data = rows.flatMap((row, i) =>
    FEATURES.map((f) => {
      const value = (row as Record<string, unknown> | null)?.[f];
      if (typeof value !== 'number') throw badRequest(`row ${i}: '${f}' must be a number`);
      return value;
    }),
  );
  return { inputs: [{ name: context.signature.inputs[0].name, shape: [rows.length, FEATURES.length], datatype: 'FP32', data }] };
}

/** The model's outputs in, one `{ class, confidence }` per row out. */
export function postprocess(response: InferResponse) {
  const probabilities = response.outputs.find((o) => o.name === 'probabilities')!.data as number[];
  const labels = response.outputs.find((o) => o.name === 'label')!.data as number[];
  return { predictions: labels.map((label, row) => ({ class: CLASSES[label], confidence: probabilities[row * CLASSES.length + label] })) };
}

/**
 * Once the caller has the answer: one structured log line per prediction, which a metric filter
 * or a subscription can count or ship on. An `afterResponse` may as well write to a database or
 * put an event; the function's role needs the permission, as for any code of the function.
 */
export async function afterResponse(response: unknown, context: AfterResponseContext) {
  for (const prediction of (response as ReturnType<typeof postprocess>).predictions) {
    context.logger.info('prediction', { requestId: context.requestId, request: context.request, ...prediction });
  }
}
