/**
 * What the model repository's constructs and handler agree on: the layout of the repository, its
 * index route and the status of a model too large for the budget.
 */

/** The file of a model version: `<name>/<version>/model.onnx`, as Triton's repository lays it out. */
export const REPOSITORY_MODEL_FILE = 'model.onnx';

/** The model precompiled in ORT format, beside the .onnx; used when present. */
export const REPOSITORY_PRECOMPILED_FILE = 'model.ort';

/**
 * The optional per-model config, `<name>/config.json`: `{"defaultVersion": "2"}` chooses the version
 * that routes without a version serve (else the highest numbered version).
 */
export const REPOSITORY_MODEL_CONFIG_FILE = 'config.json';

/** Triton's repository extension: `POST /v2/repository/index` lists the models and their state. */
export const REPOSITORY_INDEX_ROUTE = { method: 'POST', segments: ['repository', 'index'] } as const;

/**
 * A model or version name: letters, digits, `_`, `-` and `.`, not starting with `.`, at most 128
 * characters. Anything else (a `/`, `..`, an encoded separator) is refused with a 400 before the
 * repository is read.
 */
export const REPOSITORY_NAME_PATTERN = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}$/;

/**
 * The status of a request for a model larger than the whole memory (or /tmp) budget: 507
 * Insufficient Storage. It is the server's limit, not the request's fault (not a 4xx), and no retry
 * can succeed (not a 503, which clients retry): the operator raises the function's memory or
 * removes the model.
 */
export const MODEL_TOO_LARGE_STATUS = 507;

/**
 * What a loaded model is charged against a repository's memory budget, as a multiple of its file's
 * size: onnxruntime's copy of the weights, and the copy its MatMul and Gemm kernels prepack (measured
 * in bench/model-repository.ts: 100 MatMul models of 9.5 MiB held about twice their files in
 * resident memory).
 */
export const REPOSITORY_SESSION_MEMORY_RATIO = 2;
