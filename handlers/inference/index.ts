// The inference function's entry: the shared handler configured by environment variables, with the
// users' hooks module bundled beside it when there is one, buffered or streaming (lambda-entry.ts).
// Top-level await keeps the model load inside Lambda's init phase (see createInferenceHandler).
import { lambdaHandler } from '../core/lambda-entry';
import { createInferenceEntry } from '../core/onnx-handler';

export const handler = await lambdaHandler((hooks) => createInferenceEntry({ hooks }), import.meta.url);
