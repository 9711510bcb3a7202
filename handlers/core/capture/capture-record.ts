/**
 * A capture record: one JSON line in SageMaker Data Capture's format (`captureData.endpointInput`
 * and `endpointOutput` with `observedContentType`, `mode`, `data` and `encoding`; `eventMetadata`
 * with `eventId`, `inferenceId` and `inferenceTime`; `eventVersion`), so that tools that read
 * SageMaker's capture read it, plus this library's metadata: the model's name and version, the
 * variant, the latencies, and a shadow's answer and how it compared.
 */
import * as zlib from 'node:zlib';
import { CAPTURE_EVENT_VERSION, CAPTURE_MODE, type CaptureModeName } from '../../../contract/capture';
import type { HttpRequest, HttpResponse } from '../http/events';

/** A captured body: JSON as its text, anything else (binary tensor data, compressed bytes that would not inflate) in base64. */
export interface CapturedPayload {
  readonly observedContentType: string;
  readonly mode: 'INPUT' | 'OUTPUT';
  readonly data: string;
  readonly encoding: 'JSON' | 'BASE64';
}

/** How a shadow's answer compared, in a record's metadata. */
export interface ShadowMetadata {
  readonly modelVersion: string;
  /** The shadow model's inference time; absent when it failed. */
  readonly inferenceMs?: number;
  /** The shadow's inference time over the live model's. */
  readonly latencyRatio?: number;
  /** Whether its answer agreed with the live one; absent when it failed. */
  readonly agreed?: boolean;
  /** Why it disagreed (the first output that did), or why it failed. */
  readonly detail?: string;
  readonly failed?: boolean;
}

export interface CaptureMetadata {
  readonly eventId: string;
  readonly inferenceId: string;
  /** ISO 8601, UTC. */
  readonly inferenceTime: string;
  readonly requestId: string;
  readonly modelName: string;
  readonly modelVersion: string;
  readonly variant?: string;
  /** From the event to the answer built. */
  readonly latencyMs: number;
  /** The model's own time (InferenceMs). */
  readonly inferenceMs: number;
  readonly shadow?: ShadowMetadata;
}

export interface CaptureRecord {
  readonly captureData: {
    readonly endpointInput?: CapturedPayload;
    readonly endpointOutput?: CapturedPayload;
    /** The shadow model's answer, for a shadowed request whose shadow answered. */
    readonly shadowOutput?: CapturedPayload;
  };
  readonly eventMetadata: CaptureMetadata;
  readonly eventVersion: string;
}

/** The largest body inflated for capture: Lambda's payload limit several times over is never captured. */
const MAX_INFLATED_BYTES = 64 * 1024 * 1024;

/** The request's body as the model got it: base64 and Content-Encoding undone. */
export function capturedInput(request: HttpRequest): CapturedPayload {
  const raw = request.rawBody === undefined ? Buffer.alloc(0) : Buffer.from(request.rawBody, request.isBase64Encoded ? 'base64' : 'utf8');
  return payload(inflate(raw, request.headers['content-encoding']), request.headers['content-type'] ?? 'application/json', 'INPUT');
}

/** The answer's body as the caller reads it: base64 and Content-Encoding undone. */
export function capturedOutput(response: HttpResponse): CapturedPayload {
  const raw = Buffer.from(response.body, response.isBase64Encoded ? 'base64' : 'utf8');
  return payload(inflate(raw, headerOf(response.headers, 'content-encoding')), headerOf(response.headers, 'content-type') ?? 'application/json', 'OUTPUT');
}

/** A JSON value (a shadow's answer) as a captured output. */
export function capturedJson(value: unknown, mode: 'INPUT' | 'OUTPUT'): CapturedPayload {
  return { observedContentType: 'application/json', mode, data: JSON.stringify(value), encoding: 'JSON' };
}

/** The record of one request, with what `mode` says to capture of it. */
export function captureRecord(
  mode: CaptureModeName,
  parts: { input: () => CapturedPayload; output: () => CapturedPayload; shadowOutput?: CapturedPayload },
  metadata: CaptureMetadata,
): CaptureRecord {
  const input = mode !== CAPTURE_MODE.OUTPUT ? parts.input() : undefined;
  const output = mode !== CAPTURE_MODE.INPUT ? parts.output() : undefined;
  return {
    captureData: {
      ...(input ? { endpointInput: input } : {}),
      ...(output ? { endpointOutput: output } : {}),
      ...(parts.shadowOutput && mode !== CAPTURE_MODE.INPUT ? { shadowOutput: parts.shadowOutput } : {}),
    },
    eventMetadata: metadata,
    eventVersion: CAPTURE_EVENT_VERSION,
  };
}

function payload(bytes: Buffer, contentType: string, mode: 'INPUT' | 'OUTPUT'): CapturedPayload {
  if (isJsonType(contentType)) {
    const text = bytes.toString('utf8');
    // Only text that survives the round trip is captured as text; anything else goes in base64.
    if (Buffer.byteLength(text) === bytes.length && Buffer.from(text, 'utf8').equals(bytes)) {
      return { observedContentType: contentType, mode, data: text, encoding: 'JSON' };
    }
  }
  return { observedContentType: contentType, mode, data: bytes.toString('base64'), encoding: 'BASE64' };
}

function isJsonType(contentType: string): boolean {
  const media = contentType.split(';')[0].trim().toLowerCase();
  return media === 'application/json' || media.endsWith('+json') || media === 'application/x-www-form-urlencoded';
}

/** The bytes inflated by their Content-Encoding; as they are when there is none, or they do not inflate. */
function inflate(bytes: Buffer, coding: string | undefined): Buffer {
  const c = coding?.trim().toLowerCase();
  if (!c || c === 'identity') return bytes;
  try {
    if (c === 'gzip') return zlib.gunzipSync(bytes, { maxOutputLength: MAX_INFLATED_BYTES });
    if (c === 'deflate') return zlib.inflateSync(bytes, { maxOutputLength: MAX_INFLATED_BYTES });
  } catch {
    // Kept as it came: the record still has the bytes, in base64.
  }
  return bytes;
}

function headerOf(headers: Readonly<Record<string, string>>, name: string): string | undefined {
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === name) return v;
  return undefined;
}
