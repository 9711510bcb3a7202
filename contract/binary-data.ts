/**
 * The Open Inference Protocol's binary tensor data extension (Triton's and KServe's): a body made of
 * a JSON header followed by raw tensor bytes. The API answers such bodies, and API Gateway must pass
 * them to the function base64-encoded (a REST API's binary media types).
 */

/** The header that gives the JSON header's length in bytes, on requests and answers with binary data. */
export const INFERENCE_HEADER_CONTENT_LENGTH = 'Inference-Header-Content-Length';

/** The content type of a body with binary tensor data. */
export const BINARY_TENSOR_CONTENT_TYPE = 'application/octet-stream';
