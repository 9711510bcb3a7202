// The inference function's entry: the shared handler configured by environment variables, with the
// users' hooks module bundled beside it when there is one, buffered or streaming (lambda-entry.ts).
// Top-level await keeps the model load inside Lambda's init phase (see createInferenceHandler).
// With MODEL_REPOSITORY_PATH or MODEL_REPOSITORY_S3_URI it serves a model repository instead.
import { lambdaHandler } from '../core/lambda-entry';
import { createInferenceEntry } from '../core/onnx-handler';
import { createModelRepositoryEntry } from '../core/repository-handler';
import { isRepositoryEnvironment } from '../core/repository/repository-config';

export const handler = await lambdaHandler(
  (hooks) => (isRepositoryEnvironment(process.env) ? createModelRepositoryEntry({ hooks }) : createInferenceEntry({ hooks })),
  import.meta.url,
);
