import type { ModelSignature } from '../protocol/protocol';

/**
 * What runs the model behind the shared request handling of handler.ts: onnxruntime inside the
 * function (onnx-backend.ts) or a SageMaker endpoint (sagemaker-backend.ts). Routes, event parsing,
 * error answers, warm-up, hooks and telemetry belong to the handler; a backend only gets ready,
 * describes the model and runs inference.
 */
export interface InferenceBackend<M extends BackendModel = BackendModel> {
  /**
   * The model, ready to serve. The first call starts loading it (and so does a later call after a
   * failure, once the backend is ready to try again). Rejects with the reason it cannot serve,
   * which the handler answers with a 503: the error's message goes to the log, its `summary` (if
   * it has one) to the caller, and its `retryAt` (a performance.now() time) becomes Retry-After.
   */
  load(): Promise<M>;
  /** `GET /v2/models/{name}` without the name and versions, which the handler adds. */
  metadata(model: M): BackendMetadata;
  /**
   * Runs one inference request (after `preprocess`). A failure with a meaning for the caller is
   * thrown as an `InferenceError` with its status; anything else is answered as an internal error.
   */
  infer(model: M, request: BackendRequest): Promise<BackendResult>;
  /**
   * Whether the backend reads and writes the binary tensor data extension (`request.binary`, and
   * outputs carrying their bytes, see binary-data.ts's binaryOutput). Without it such requests get a 415.
   */
  readonly binaryTensorData?: boolean;
}

export interface BackendModel {
  /** The inputs and outputs hooks see; empty when the backend cannot know them. */
  readonly signature: ModelSignature;
}

export interface TensorMetadata {
  readonly name: string;
  readonly datatype: string;
  /** -1 for a dimension of any size. */
  readonly shape: readonly number[];
}

export interface BackendMetadata {
  readonly platform: string;
  readonly inputs: readonly TensorMetadata[];
  readonly outputs: readonly TensorMetadata[];
}

export interface BackendRequest {
  /** The inference request: the parsed body, or what `preprocess` made of it. */
  readonly body: unknown;
  /** The body's JSON text as the client sent it; absent when `preprocess` ran or no text came (a direct invocation). */
  readonly json?: string;
  /**
   * The bytes after the JSON header of a body of the binary tensor data extension (the inputs'
   * `binary_data_size` sections, in the order of the inputs); `body` is the JSON header.
   */
  readonly binary?: Buffer;
  /**
   * The answer is to be compressed (the request's Accept-Encoding asks): its size against the
   * response limit is known only once compressed, so it is not refused for the JSON its values
   * take uncompressed past the least they can take.
   */
  readonly answerCompressed?: boolean;
  /** The HTTP request's headers (names in lower case); absent for a direct invocation. */
  readonly headers?: Readonly<Record<string, string>>;
}

export interface BackendResult {
  /** The inference response, as `postprocess` sees it. */
  readonly response: unknown;
  /** Time spent in the model itself (the InferenceMs metric), without request checks or answer building. */
  readonly inferenceMs: number;
  /** The response's JSON text as the model sent it; the HTTP answer carries it unchanged unless `postprocess` runs. */
  readonly json?: string;
  /** With dynamic batching: how many requests the run that answered this one took (1: it ran alone). */
  readonly batchRequests?: number;
  /** Headers the HTTP answer carries besides its own (the variant that answered). */
  readonly headers?: Readonly<Record<string, string>>;
}
