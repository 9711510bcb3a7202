/**
 * The part of Lambda's Node.js runtime that response streaming uses, for `serve`: the global
 * `awslambda` (`streamifyResponse`, `HttpResponseStream.from`, with the runtime's wire format: a
 * JSON prelude and eight NUL bytes before the body), and a call of a streaming handler that
 * resolves with the answer as soon as the handler ends its stream, as API Gateway and Function URLs
 * answer the client then, while the handler goes on (its `afterResponse` hook). Built on its own
 * into the package's assets (`assets/local/lambda-runtime.mjs`): `serve`'s worker threads import it
 * by URL.
 */
import { Writable } from 'node:stream';

/** The marker Lambda's runtime puts on a handler that `streamifyResponse` wrapped. */
const STREAMING = Symbol.for('aws.lambda.runtime.handler.streaming');
const STREAM_RESPONSE = 'response';
/** The content type under which the runtime sends an HTTP integration's prelude and body. */
const PRELUDE_CONTENT_TYPE = 'application/vnd.awslambda.http-integration-response';
const DELIMITER = Buffer.alloc(8);

type StreamingHandler = (event: unknown, stream: Writable, context: object) => Promise<unknown>;
type BufferedHandler = (event: unknown, context: { awsRequestId: string }) => Promise<unknown>;

/** A response stream that keeps what is written, as the runtime's sends it. */
class LocalResponseStream extends Writable {
  contentType = 'application/octet-stream';
  beforeFirstWrite?: (write: (chunk: string | Uint8Array) => void) => void;
  readonly chunks: Buffer[] = [];

  setContentType(contentType: string): void {
    this.contentType = contentType;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const first = this.beforeFirstWrite;
    if (first) {
      this.beforeFirstWrite = undefined;
      first((c) => this.chunks.push(Buffer.from(c)));
    }
    this.chunks.push(chunk);
    callback();
  }

  override _final(callback: (error?: Error | null) => void): void {
    // A stream ended without a write still sends its prelude.
    this._write(Buffer.alloc(0), 'utf8', () => callback());
  }
}

/** Puts `awslambda` on the global object, as Lambda's runtime does, unless it is there already. */
export function installLambdaRuntime(): void {
  const g = globalThis as { awslambda?: unknown };
  g.awslambda ??= {
    streamifyResponse<H extends object>(handler: H): H {
      (handler as Record<symbol, unknown>)[STREAMING] = STREAM_RESPONSE;
      return handler;
    },
    HttpResponseStream: {
      from(stream: LocalResponseStream, prelude: Record<string, unknown>): LocalResponseStream {
        stream.setContentType(PRELUDE_CONTENT_TYPE);
        const metadata = JSON.stringify(prelude);
        stream.beforeFirstWrite = (write) => {
          write(metadata);
          write(DELIMITER);
        };
        return stream;
      },
    },
  };
}

/**
 * A handler as `serve` calls it, buffered: a streaming handler's answer once its stream ends (an
 * HTTP answer, from its prelude and body, or the JSON value a buffered Invoke returns), while the
 * handler's work after that goes on and its failure is logged. Any other handler as it is.
 */
export function bufferedHandler(handler: unknown): BufferedHandler {
  if ((handler as Record<symbol, unknown> | undefined)?.[STREAMING] !== STREAM_RESPONSE) return handler as BufferedHandler;
  const streaming = handler as StreamingHandler;
  return (event, context) =>
    new Promise((resolve, reject) => {
      const stream = new LocalResponseStream();
      let answered = false;
      stream.once('finish', () => {
        answered = true;
        try {
          resolve(readAnswer(stream));
        } catch (e) {
          reject(e);
        }
      });
      Promise.resolve()
        .then(() => streaming(event, stream, context))
        .then(
          () => {
            if (!answered) reject(new Error('the streaming handler returned without ending its response stream'));
          },
          (e: unknown) => {
            if (answered) {
              console.error(`request ${context.awsRequestId}: the handler failed after its answer was sent:`, e);
            } else {
              reject(e);
            }
          },
        );
    });
}

/** What an ended stream carried, as a buffered handler would have returned it. */
function readAnswer(stream: LocalResponseStream): unknown {
  const bytes = Buffer.concat(stream.chunks);
  if (stream.contentType !== PRELUDE_CONTENT_TYPE) {
    return bytes.length === 0 ? null : JSON.parse(bytes.toString('utf8'));
  }
  const end = bytes.indexOf(DELIMITER);
  if (end < 0) throw new Error('the response stream has an HTTP prelude without its delimiter');
  const metadata = JSON.parse(bytes.subarray(0, end).toString('utf8')) as { statusCode?: number; headers?: Record<string, string> };
  return { statusCode: metadata.statusCode ?? 200, headers: metadata.headers ?? {}, body: bytes.subarray(end + DELIMITER.length).toString('base64'), isBase64Encoded: true };
}
