import * as zlib from 'node:zlib';
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
 * `Inference-Header-Content-Length` header gives, then the tensors' bytes. The header alone marks
 * the extension, whatever the Content-Type or none: Triton's client sends no Content-Type, KServe's
 * `application/octet-stream`, and the protocol's servers look at the header only. The length is
 * the uncompressed body's, as Triton's client computes it before it compresses.
 */
function readBinaryBody(request: HttpRequest, header: string, coding: ContentCoding | undefined, maxBodyBytes: number): JsonBody {
  if (!/^\s*\d{1,15}\s*$/.test(header)) {
    throw new InferenceError(400, `the ${INFERENCE_HEADER_CONTENT_LENGTH} header must be the JSON header's length in bytes, got: ${JSON.stringify(header.slice(0, 40))}`);
  }
  const length = Number(header);
  let body: Buffer;
  if (coding !== undefined) {
    body = decodeCodedBody(request, coding, maxBodyBytes);
  } else {
    body = request.rawBody === undefined ? Buffer.alloc(0) : decodeBodyBytes(request.rawBody, request.isBase64Encoded, maxBodyBytes, length);
    // Checked before the lengths: a body whose bytes were replaced has other lengths too.
    if (!request.isBase64Encoded && body.includes(REPLACEMENT_CHARACTER, Math.min(length, body.length))) {
      throw new InferenceError(
        415,
        `the binary tensor data after the JSON header reached the function as text, with the bytes that are not UTF-8 replaced (U+FFFD), as the API in front passes a body of Content-Type ${describeType(request)} on; send it as ${BINARY_TENSOR_CONTENT_TYPE}, which every front passes unchanged`,
      );
    }
  }
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

/** What `U+FFFD` is in UTF-8: what a front that decodes bytes as UTF-8 text puts in place of bytes that are not. */
const REPLACEMENT_CHARACTER = Buffer.from('\uFFFD', 'utf8');

/** The request's media type, lower case, without parameters; `(none)` without a Content-Type. */
function describeType(request: HttpRequest): string {
  return mediaType(request.headers['content-type']) || '(none)';
}

function mediaType(header: string | undefined): string {
  return (header ?? '').split(';')[0].trim().toLowerCase();
}

/** The content codings a request body may come in (`Content-Encoding`), as Triton's client sends them. */
export type ContentCoding = 'gzip' | 'deflate';

/**
 * The request body's content coding: none (no header, or `identity`), `gzip` (`x-gzip`) or
 * `deflate`; a 415 for any other, or for several codings on top of each other.
 */
function readContentCoding(header: string | undefined): ContentCoding | undefined {
  if (header === undefined) return undefined;
  const codings = header
    .split(',')
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== '' && c !== 'identity');
  if (codings.length === 0) return undefined;
  const coding = codings[0] === 'x-gzip' ? 'gzip' : codings[0];
  if (codings.length > 1 || (coding !== 'gzip' && coding !== 'deflate')) {
    throw new InferenceError(415, `Content-Encoding ${JSON.stringify(header.slice(0, 100))} is not supported; send the body uncompressed, or compressed once as gzip or deflate`);
  }
  return coding;
}

/**
 * A compressed body, decompressed. The decompressed size is held to `maxBodyBytes` as it is
 * inflated (a small body that inflates past it is a 413 without its whole output ever being held),
 * and the compressed size too. A body that reached the function as text cannot be decompressed
 * when bytes of it were not UTF-8 (they are replaced): a 415 that says so.
 */
function decodeCodedBody(request: HttpRequest, coding: ContentCoding, maxBodyBytes: number): Buffer {
  const bytes = request.rawBody === undefined ? Buffer.alloc(0) : decodeBodyBytes(request.rawBody, request.isBase64Encoded, maxBodyBytes);
  if (!request.isBase64Encoded && bytes.includes(REPLACEMENT_CHARACTER)) {
    throw new InferenceError(
      415,
      `the request body (Content-Encoding: ${coding}) reached the function as text, with the bytes that are not UTF-8 replaced (U+FFFD), as the API in front passes a body of Content-Type ${describeType(request)} on, so it cannot be decompressed; send it uncompressed, or with a Content-Type the API passes on as binary (${BINARY_TENSOR_CONTENT_TYPE} for binary tensor data)`,
    );
  }
  // API Gateway's REST API decompresses a request body of a coding it supports before it passes the
  // request on; whether the proxy event then still names the coding is not documented. A body that
  // does not start as its coding does but as JSON does is taken as already decompressed.
  if (!startsAsCoding(bytes, coding) && startsAsJson(bytes)) return bytes;
  const options = { maxOutputLength: maxBodyBytes };
  try {
    if (coding === 'gzip') return zlib.gunzipSync(bytes, options);
    // `deflate` is the zlib format (RFC 9110); some clients send a raw deflate stream instead.
    return startsAsCoding(bytes, 'deflate') ? zlib.inflateSync(bytes, options) : zlib.inflateRawSync(bytes, options);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new InferenceError(413, `the request body decompresses (Content-Encoding: ${coding}) to more than ${maxBodyBytes} bytes; the limit is ${maxBodyBytes} bytes`);
    }
    throw new InferenceError(400, `the request body is not valid ${coding} data (Content-Encoding: ${coding}): ${(e as Error).message}`);
  }
}

/** Whether bytes begin as a gzip member (its magic number) or a zlib stream (a header of the deflate method whose check bits hold). */
function startsAsCoding(bytes: Buffer, coding: ContentCoding): boolean {
  if (bytes.length < 2) return false;
  return coding === 'gzip' ? bytes[0] === 0x1f && bytes[1] === 0x8b : (bytes[0] & 0x0f) === 8 && bytes[0] >> 4 <= 7 && ((bytes[0] << 8) | bytes[1]) % 31 === 0;
}

/** Whether bytes begin, after white space, with `{`, as every request body of the protocol does. */
function startsAsJson(bytes: Buffer): boolean {
  for (const b of bytes) {
    if (b !== 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d) return b === 0x7b;
  }
  return false;
}

/**
 * Whether a Content-Type says JSON: `application/json` or a JSON-based type (`application/*+json`,
 * RFC 6839), in any case, with any parameters. No Content-Type at all counts as JSON: API Gateway
 * itself takes a request without one as `application/json` (its documented default when it picks
 * a mapping template), a caller that sends no header has claimed no other format, and the body
 * must parse as JSON anyway. `application/x-www-form-urlencoded` is read as JSON too when the
 * body parses as JSON (see `readJsonBody`). Everything else, `text/plain` included, is refused
 * with a 415: a JSON body should say what it is.
 */
export function isJsonContentType(header: string | undefined): boolean {
  const type = mediaType(header);
  return type === '' || type === 'application/json' || /^application\/[^/\s]+\+json$/.test(type);
}

/**
 * What `curl -d` and HTML forms send. The protocol's servers (Triton, KServe) read the body as
 * JSON whatever its type, and a user trying the API with `curl -d '{...}'` means JSON: such a body
 * is read as JSON when it parses as JSON, and refused with a 415 otherwise.
 */
const FORM_CONTENT_TYPE = 'application/x-www-form-urlencoded';

/**
 * Parses a JSON request body, checking its content type, size and nesting first; a compressed
 * body (`Content-Encoding: gzip` or `deflate`) is decompressed first. The text is kept for a
 * backend that forwards the body as it came.
 */
export function readJsonBody(request: HttpRequest, maxBodyBytes: number, binaryTensorData = false): JsonBody {
  const header = request.headers[HEADER_LENGTH];
  if (header !== undefined && !binaryTensorData) {
    throw new InferenceError(415, 'the binary tensor data extension is not supported; send the tensors as JSON');
  }
  const coding = readContentCoding(request.headers['content-encoding']);
  if (header !== undefined) {
    return readBinaryBody(request, header, coding, maxBodyBytes);
  }
  const contentType = request.headers['content-type'];
  const form = mediaType(contentType) === FORM_CONTENT_TYPE;
  if (!isJsonContentType(contentType) && !form) {
    throw new InferenceError(415, `Content-Type ${mediaType(contentType)} is not supported; send the request as application/json`);
  }
  let body = '';
  if (coding !== undefined) {
    body = decodeCodedBody(request, coding, maxBodyBytes).toString('utf8');
  } else if (request.rawBody !== undefined) {
    body = decodeBody(request.rawBody, request.isBase64Encoded, maxBodyBytes);
  }
  if (body.trim() === '') {
    throw new InferenceError(400, 'the request has no body; send the inference request as JSON');
  }
  checkJsonTextNesting(body);
  if (form) {
    try {
      return { value: JSON.parse(body), text: body };
    } catch {
      throw new InferenceError(
        415,
        `Content-Type ${FORM_CONTENT_TYPE} is read as JSON, and this body is not JSON; send the request as application/json (curl -d sets ${FORM_CONTENT_TYPE})`,
      );
    }
  }
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
  const parts = [header, ...binary];
  let base64: string | undefined;
  const response: HttpResponse = {
    statusCode,
    headers: { 'Content-Type': BINARY_TENSOR_CONTENT_TYPE, [INFERENCE_HEADER_CONTENT_LENGTH]: String(header.length) },
    // Made when first read: a buffered answer (Lambda's runtime reads it); a streamed one writes the parts instead.
    get body() {
      base64 ??= Buffer.concat(parts).toString('base64');
      return base64;
    },
    isBase64Encoded: true,
  };
  BINARY_PARTS.set(response, parts);
  return response;
}

/**
 * The bytes of a binary answer made by `binaryResponse`, in order, without their base64: what a
 * response stream writes (it carries bytes as they are). Kept beside the answer, not on it, so that
 * a buffered answer's JSON is only its four fields.
 */
export function binaryPartsOf(response: HttpResponse): readonly Buffer[] | undefined {
  return BINARY_PARTS.get(response);
}

const BINARY_PARTS = new WeakMap<HttpResponse, readonly Buffer[]>();

/** The length of `bytes` bytes in base64. */
export function base64Length(bytes: number): number {
  return Math.ceil(bytes / 3) * 4;
}

/**
 * The coding to answer in: gzip or deflate, whichever the header weighs more (gzip on a tie), `*`
 * standing for those it does not name; none when it accepts neither (absent, `identity`, `br`,
 * `q=0`).
 */
export function acceptedCoding(header: string | undefined): ContentCoding | undefined {
  if (header === undefined) return undefined;
  const weights = new Map<string, number>();
  for (const part of header.split(',')) {
    const [name, ...params] = part.split(';').map((p) => p.trim().toLowerCase());
    const q = params.find((p) => p.startsWith('q='));
    const weight = q === undefined ? 1 : Number(q.slice(2));
    weights.set(name === 'x-gzip' ? 'gzip' : name, Number.isFinite(weight) ? weight : 0);
  }
  const weightOf = (coding: ContentCoding) => weights.get(coding) ?? weights.get('*') ?? 0;
  const gzip = weightOf('gzip');
  const deflate = weightOf('deflate');
  if (gzip <= 0 && deflate <= 0) return undefined;
  return gzip >= deflate ? 'gzip' : 'deflate';
}
