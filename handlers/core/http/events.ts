import { BINARY_TENSOR_CONTENT_TYPE, INFERENCE_HEADER_CONTENT_LENGTH } from '../../../contract/binary-data';
import { InferenceError } from '../protocol/errors';
import { checkJsonTextNesting } from '../protocol/nesting';
import { type WarmupRequest, readWarmup } from './warmup';

/** An HTTP request, whatever Lambda event carried it. */
export interface HttpRequest {
  readonly method: string;
  readonly path: string;
  /** Header names in lower case. */
  readonly headers: Readonly<Record<string, string>>;
  /** The body as the event carries it. */
  readonly rawBody?: string;
  /** Whether `rawBody` is base64 (binary media types, Function URLs). */
  readonly isBase64Encoded: boolean;
}

/** An HTTP answer, in the shape API Gateway (REST and HTTP APIs) and Function URLs all accept. */
export interface HttpResponse {
  readonly statusCode: number;
  readonly headers: Record<string, string>;
  readonly body: string;
  /** True for a binary body (the binary tensor data extension), sent base64-encoded as Lambda requires. */
  readonly isBase64Encoded: boolean;
}

export type IncomingEvent =
  | { readonly kind: 'http'; readonly request: HttpRequest }
  | { readonly kind: 'warmup'; readonly warmup: WarmupRequest }
  /** A direct invocation whose payload is the infer request body itself. */
  | { readonly kind: 'direct'; readonly body: unknown };

/**
 * Tells apart the events the handler accepts: API Gateway REST proxy (v1), HTTP API and Function URL
 * (payload 2.0), a warmer's ping, and a direct invocation (anything else).
 */
export function readEvent(event: unknown): IncomingEvent {
  const warmup = readWarmup(event);
  if (warmup) {
    return { kind: 'warmup', warmup };
  }
  const e = (event ?? {}) as ProxyEventFields;
  if (typeof e.httpMethod === 'string' && e.requestContext) {
    return { kind: 'http', request: httpRequest(e.httpMethod, e.path ?? '/', e.headers, e.body, e.isBase64Encoded) };
  }
  if (e.version === '2.0' && e.requestContext?.http) {
    return {
      kind: 'http',
      request: httpRequest(e.requestContext.http.method, e.rawPath ?? '/', e.headers, e.body, e.isBase64Encoded),
    };
  }
  return { kind: 'direct', body: event };
}

/** What readEvent reads of a REST API (v1) or HTTP API and Function URL (2.0) event; none of it is checked yet. */
interface ProxyEventFields {
  readonly version?: unknown;
  readonly httpMethod?: unknown;
  readonly path?: string;
  readonly rawPath?: string;
  readonly requestContext?: { readonly http?: { readonly method: string } };
  readonly headers?: Record<string, string | undefined> | null;
  readonly body?: string | null;
  readonly isBase64Encoded?: boolean;
}

function httpRequest(
  method: string,
  path: string,
  rawHeaders: Record<string, string | undefined> | null | undefined,
  rawBody: string | null | undefined,
  base64: boolean | undefined,
): HttpRequest {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(rawHeaders ?? {})) {
    if (v !== undefined) headers[k.toLowerCase()] = v;
  }
  return { method: method.toUpperCase(), path, headers, rawBody: rawBody ?? undefined, isBase64Encoded: !!base64 };
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function decodeBody(body: string, base64: boolean, maxBodyBytes: number): string {
  if (!base64) {
    if (Buffer.byteLength(body) > maxBodyBytes) throw tooLarge(Buffer.byteLength(body), maxBodyBytes);
    return body;
  }
  return decodeBodyBytes(body, true, maxBodyBytes).toString('utf8');
}

/**
 * The body's bytes, the limit applied to them (not to their base64 text). `align` places them so
 * that byte `align` of the body starts at a multiple of 8 in memory, where it can (the binary
 * tensor data after a JSON header is then viewed as typed arrays without a copy).
 */
function decodeBodyBytes(body: string, base64: boolean, maxBodyBytes: number, align = 0): Buffer {
  if (!base64) {
    const bytes = Buffer.from(body, 'utf8');
    if (bytes.length > maxBodyBytes) throw tooLarge(bytes.length, maxBodyBytes);
    return bytes;
  }
  // The common case, decoded without a regular expression over the text: Node's decoder skips what
  // is not base64, so a body that decodes to the length its text promises held nothing else, but
  // for base64url's '-' and '_' (which it reads as '+' and '/'), looked for first.
  const padding = body.endsWith('==') ? 2 : body.endsWith('=') ? 1 : 0;
  const promised = (body.length / 4) * 3 - padding;
  if (body.length % 4 === 0 && promised <= maxBodyBytes && !body.includes('-') && !body.includes('_')) {
    const shift = (8 - (align % 8)) % 8;
    const bytes = Buffer.allocUnsafeSlow(shift + promised);
    if (bytes.write(body, shift, 'base64') === promised) return bytes.subarray(shift);
  }
  const compact = body.replace(/\s+/g, '');
  if (compact.length % 4 !== 0 || !BASE64.test(compact)) {
    throw new InferenceError(400, 'the request body is marked base64-encoded but is not valid base64');
  }
  const size = (compact.length / 4) * 3 - (compact.endsWith('==') ? 2 : compact.endsWith('=') ? 1 : 0);
  if (size > maxBodyBytes) throw tooLarge(size, maxBodyBytes);
  return Buffer.from(compact, 'base64');
}

function tooLarge(size: number, max: number): InferenceError {
  return new InferenceError(413, `the request body is ${size} bytes; the limit is ${max} bytes`);
}

/** A JSON request body, parsed, with its text as the client sent it. */
export interface JsonBody {
  readonly value: unknown;
  readonly text: string;
  /**
   * With the binary tensor data extension (an `Inference-Header-Content-Length` header), the bytes
   * after the JSON header; `value` and `text` are then the JSON header's.
   */
  readonly binary?: Buffer;
}

const HEADER_LENGTH = INFERENCE_HEADER_CONTENT_LENGTH.toLowerCase();

/**
 * Reads a request of the binary tensor data extension: a JSON header of the length the
 * `Inference-Header-Content-Length` header gives, then the tensors' bytes. Its content type is
 * `application/octet-stream` (as Triton's and KServe's clients send it, and what a REST API passes
 * to the function base64-encoded), or JSON; any other is refused with a 415, as for JSON bodies.
 */
function readBinaryBody(request: HttpRequest, header: string, maxBodyBytes: number): JsonBody {
  const type = (request.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (type !== BINARY_TENSOR_CONTENT_TYPE && !isJsonContentType(type)) {
    throw new InferenceError(
      415,
      `Content-Type ${type} is not supported; send binary tensor data as ${BINARY_TENSOR_CONTENT_TYPE} with the ${INFERENCE_HEADER_CONTENT_LENGTH} header, or the request as application/json`,
    );
  }
  if (!/^\s*\d{1,15}\s*$/.test(header)) {
    throw new InferenceError(400, `the ${INFERENCE_HEADER_CONTENT_LENGTH} header must be the JSON header's length in bytes, got: ${JSON.stringify(header.slice(0, 40))}`);
  }
  const length = Number(header);
  const body = request.rawBody === undefined ? Buffer.alloc(0) : decodeBodyBytes(request.rawBody, request.isBase64Encoded, maxBodyBytes, length);
  if (length > body.length) {
    throw new InferenceError(400, `the ${INFERENCE_HEADER_CONTENT_LENGTH} header says the JSON header is ${length} bytes, but the body has only ${body.length}`);
  }
  const text = body.subarray(0, length).toString('utf8');
  if (text.trim() === '') {
    throw new InferenceError(400, `the request's JSON header is empty (${INFERENCE_HEADER_CONTENT_LENGTH}: ${length}); send the inference request as JSON before the tensor bytes`);
  }
  checkJsonTextNesting(text);
  return { value: parseJson(text, `the request's JSON header (its first ${length} bytes, per ${INFERENCE_HEADER_CONTENT_LENGTH})`), text, binary: body.subarray(length) };
}

/**
 * Whether a Content-Type says JSON: `application/json` or a JSON-based type (`application/*+json`,
 * RFC 6839), in any case, with any parameters. Everything else, `text/plain` included, is refused
 * with a 415: API Gateway's request validator checks `application/json` bodies only, so a body of
 * another type would reach the function without the validator's checks, and a JSON body should
 * say what it is. No Content-Type at all counts as JSON: API Gateway itself takes a request
 * without one as `application/json` (its documented default when it picks a mapping template), a
 * caller that sends no header has claimed no other format, and the body must parse as JSON anyway.
 */
export function isJsonContentType(header: string | undefined): boolean {
  const type = (header ?? '').split(';')[0].trim().toLowerCase();
  return type === '' || type === 'application/json' || /^application\/[^/\s]+\+json$/.test(type);
}

/**
 * Parses a JSON request body, checking its content type, size and nesting first. The text is kept
 * for a backend that forwards the body as it came.
 */
export function readJsonBody(request: HttpRequest, maxBodyBytes: number, binaryTensorData = false): JsonBody {
  const header = request.headers[HEADER_LENGTH];
  if (header !== undefined) {
    if (!binaryTensorData) {
      throw new InferenceError(415, 'the binary tensor data extension is not supported; send the tensors as JSON');
    }
    return readBinaryBody(request, header, maxBodyBytes);
  }
  const contentType = request.headers['content-type'];
  if (!isJsonContentType(contentType)) {
    const type = (contentType ?? '').split(';')[0].trim().toLowerCase();
    throw new InferenceError(415, `Content-Type ${type} is not supported; send the request as application/json`);
  }
  const body = request.rawBody === undefined ? '' : decodeBody(request.rawBody, request.isBase64Encoded, maxBodyBytes);
  if (body.trim() === '') {
    throw new InferenceError(400, 'the request has no body; send the inference request as JSON');
  }
  checkJsonTextNesting(body);
  return { value: parseJson(body, 'the request body'), text: body };
}

/** JSON.parse with a 400 that says where the text broke. */
function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new InferenceError(400, `${what} is not valid JSON: ${(e as Error).message}`);
  }
}

export function jsonResponse(statusCode: number, body: string, headers: Record<string, string> = {}): HttpResponse {
  return { statusCode, headers: { 'Content-Type': 'application/json', ...headers }, body, isBase64Encoded: false };
}

/**
 * An answer of the binary tensor data extension: the JSON header, then the outputs' bytes, with
 * `Inference-Header-Content-Length`; base64-encoded, as Lambda carries binary bodies.
 */
export function binaryResponse(statusCode: number, json: string, binary: readonly Buffer[]): HttpResponse {
  const header = Buffer.from(json, 'utf8');
  return {
    statusCode,
    headers: { 'Content-Type': BINARY_TENSOR_CONTENT_TYPE, [INFERENCE_HEADER_CONTENT_LENGTH]: String(header.length) },
    body: Buffer.concat([header, ...binary]).toString('base64'),
    isBase64Encoded: true,
  };
}
