// The inference function's entry: the shared handler configured by environment variables. Top-level
// await keeps the model load inside Lambda's init phase (see createInferenceHandler).
import { createInferenceHandler } from '../core/onnx-handler';

export const handler = await createInferenceHandler();
