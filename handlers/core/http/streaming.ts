/**
 * Writing an answer to Lambda's response stream (`awslambda.streamifyResponse`), the way API
 * Gateway's STREAM transfer mode and Function URLs' RESPONSE_STREAM read it: for an HTTP answer, a
 * JSON metadata prelude (status and headers) and eight NUL bytes, written by the runtime's own
 * `awslambda.HttpResponseStream.from`, then the body's bytes.
 */
import type { Writable } from 'node:stream';
import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import { binaryPartsOf, type HttpResponse } from './events';
import { stringifyJson } from '../protocol/json';

/** Lambda's response stream: a Writable, with the content type the runtime sends it under. */
export type ResponseStream = Writable & { setContentType?(contentType: string): void };

/** What the Node.js runtime of Lambda puts on `globalThis.awslambda` (and `serve` puts there too). */
export interface LambdaStreamingRuntime {
  streamifyResponse<H>(handler: H): H;
  readonly HttpResponseStream: { from(stream: ResponseStream, metadata: Record<string, unknown>): ResponseStream };
}

/** The runtime's streaming API, or an error that says why a streaming entry cannot run here. */
export function streamingRuntime(): LambdaStreamingRuntime {
  const runtime = (globalThis as { awslambda?: LambdaStreamingRuntime }).awslambda;
  if (!runtime?.streamifyResponse || !runtime.HttpResponseStream) {
    throw new Error(
      'response streaming needs the Lambda Node.js runtime (its global `awslambda`); outside Lambda, serve the entry with `cdk-serverless-inference serve`, or unset RESPONSE_STREAMING',
    );
  }
  return runtime;
}

/**
 * An HTTP answer: status and headers in the prelude, then the body as bytes. A binary body is
 * written as its bytes (a stream carries them as they are; base64 is for buffered answers only).
 */
export async function writeHttpResponse(stream: ResponseStream, response: HttpResponse): Promise<void> {
  const http = streamingRuntime().HttpResponseStream.from(stream, { statusCode: response.statusCode, headers: response.headers });
  const parts = binaryPartsOf(response);
  if (parts) {
    // A binary answer's bytes as they are: no base64 made, and none decoded.
    for (const part of parts) {
      if (part.length > 0 && !http.write(part)) await once(http, 'drain');
    }
    http.end();
    await finished(http);
    return;
  }
  // The runtime writes the prelude on the first write: an empty body still needs one. A long body
  // goes a slice at a time, as the stream drains: no second copy of the whole answer is made as bytes.
  const text = response.body;
  let at = 0;
  do {
    let end = Math.min(text.length, at + STREAM_SLICE_CHARS);
    // Never between the two halves of a surrogate pair: each half alone would be written as U+FFFD.
    if (!response.isBase64Encoded && end < text.length && isHighSurrogate(text.charCodeAt(end - 1))) end++;
    const more = http.write(Buffer.from(text.slice(at, end), response.isBase64Encoded ? 'base64' : 'utf8'));
    at = end;
    if (!more && at < text.length) await once(http, 'drain');
  } while (at < text.length);
  http.end();
  await finished(http);
}

/** Characters of a body turned into bytes at once: a multiple of 4, so that base64 slices decode on their own. */
const STREAM_SLICE_CHARS = 1024 * 1024;

function isHighSurrogate(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}

/**
 * A warm-up's or direct invocation's answer: its JSON, which a buffered `Invoke` of the function
 * returns, written as an HTTP answer's body is (64-bit integers past 2^53 with every digit).
 */
export async function writeValue(stream: ResponseStream, value: unknown): Promise<void> {
  stream.setContentType?.('application/json');
  stream.write(stringifyJson(value) ?? 'null');
  stream.end();
  await finished(stream);
}
