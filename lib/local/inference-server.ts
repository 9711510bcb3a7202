import { randomUUID } from 'node:crypto';
import * as http from 'node:http';
import { BlockList, type AddressInfo } from 'node:net';

/** A Lambda handler as the local server calls it. */
export type LambdaHandler = (event: unknown, context: { awsRequestId: string }) => Promise<unknown>;

export interface InferenceServerOptions {
  /** The handler to serve. */
  readonly handler: LambdaHandler;
  /** @default 8080 (0 picks a free port) */
  readonly port?: number;
  /** Only loopback by default: this server has no authentication. @default '127.0.0.1' */
  readonly host?: string;
}

export interface RunningInferenceServer {
  /** e.g. `http://127.0.0.1:8080` */
  readonly url: string;
  readonly port: number;
  /** The address the server listens on, e.g. `127.0.0.1`, `::` or `0.0.0.0`. */
  readonly address: string;
  /** Whether only this machine can reach the server (it listens on a loopback address). */
  readonly loopbackOnly: boolean;
  close(): Promise<void>;
}

/** API Gateway's own payload limit: a larger body never reaches the function there either. */
const API_GATEWAY_MAX_BODY_BYTES = 10 * 1024 * 1024;

const TOO_LARGE_BODY = JSON.stringify({ message: 'Request Too Long' });

/**
 * Serves a Lambda handler over HTTP the way API Gateway's REST API (proxy integration) calls it:
 * each request becomes a v1 proxy event, and the handler's answer becomes the HTTP response.
 */
export async function startInferenceServer(options: InferenceServerOptions): Promise<RunningInferenceServer> {
  const server = http.createServer((req, res) => {
    void serve(options.handler, req, res);
  });
  // A client that asks before sending its body (`Expect: 100-continue`, as curl does for large
  // ones) is told 413 at once if the body it announces is too large, and never sends it.
  server.on('checkContinue', (req, res) => {
    if (declaredLength(req) > API_GATEWAY_MAX_BODY_BYTES) {
      refuseTooLarge(req, res);
      return;
    }
    res.writeContinue();
    void serve(options.handler, req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 8080, options.host ?? '127.0.0.1', () => resolve());
  });
  const { port, address } = server.address() as AddressInfo;
  const host = address.includes(':') ? `[${address}]` : address;
  return {
    url: `http://${host}:${port}`,
    port,
    address,
    loopbackOnly: isLoopbackAddress(address),
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((e) => (e ? reject(e) : resolve()));
      }),
  };
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');
LOOPBACK.addSubnet('::ffff:127.0.0.0', 104, 'ipv6');

/** Whether an address that a server listens on is reachable from this machine only. */
export function isLoopbackAddress(address: string): boolean {
  return LOOPBACK.check(address, address.includes(':') ? 'ipv6' : 'ipv4');
}

/** Whether the handler has its model loaded, and if not, what it answered. */
export interface Readiness {
  readonly ready: boolean;
  /** Why not: the handler's answer (its `error` or `message`), or what it threw. */
  readonly reason?: string;
}

/**
 * Asks the handler `GET /v2/health/ready`, as a readiness probe would: the library's handler loads
 * its model (or waits for the load under way) before it answers.
 */
export async function checkReadiness(handler: LambdaHandler): Promise<Readiness> {
  const requestId = randomUUID();
  let result: ProxyResult;
  try {
    result = (await handler(proxyEvent('GET', new URL('/v2/health/ready', 'http://localhost'), {}, { body: null, isBase64Encoded: false }, requestId), {
      awsRequestId: requestId,
    })) as ProxyResult;
  } catch (e) {
    return { ready: false, reason: e instanceof Error ? e.message : String(e) };
  }
  if ((result?.statusCode ?? 200) === 200) {
    return { ready: true };
  }
  const body = result?.isBase64Encoded ? Buffer.from(result.body ?? '', 'base64').toString('utf8') : (result?.body ?? '');
  let reason = body;
  try {
    const parsed = JSON.parse(body) as { error?: unknown; message?: unknown };
    const said = parsed.error ?? parsed.message;
    if (typeof said === 'string') reason = said;
  } catch {
    // Not JSON: the body as it is.
  }
  return { ready: false, reason: reason || `the readiness check answered ${result?.statusCode}` };
}

interface ProxyResult {
  statusCode?: number;
  headers?: Record<string, string>;
  body?: string;
  isBase64Encoded?: boolean;
}

/**
 * The body as the REST API passes it: base64-encoded, whatever its Content-Type or none, as every
 * type is a binary media type there (see InferenceApi). Its bytes reach the handler as the client
 * sent them: never decoded as UTF-8 text, which would replace bytes that are not UTF-8.
 */
function eventBody(body: Buffer): { body: string | null; isBase64Encoded: boolean } {
  return body.length === 0 ? { body: null, isBase64Encoded: false } : { body: body.toString('base64'), isBase64Encoded: true };
}

function proxyEvent(
  method: string,
  url: { readonly pathname: string; readonly searchParams: URLSearchParams },
  headers: Record<string, string>,
  body: { body: string | null; isBase64Encoded: boolean },
  requestId: string,
) {
  return {
    resource: '/{proxy+}',
    path: url.pathname,
    httpMethod: method,
    headers,
    queryStringParameters: url.searchParams.size > 0 ? Object.fromEntries(url.searchParams) : null,
    ...body,
    requestContext: { requestId, stage: 'local', httpMethod: method, path: url.pathname },
  };
}

async function serve(handler: LambdaHandler, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const requestId = randomUUID();
  try {
    const body = await readBody(req, API_GATEWAY_MAX_BODY_BYTES);
    if (body === undefined) {
      refuseTooLarge(req, res);
      return;
    }
    const url = requestUrl(req.url);
    if (typeof url === 'string') {
      // A client's mistake, answered here as API Gateway answers a request it cannot route: the
      // handler is never called.
      send(res, 400, { 'Content-Type': 'application/json' }, JSON.stringify({ error: url }));
      return;
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) {
      if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(',') : v;
    }
    const event = proxyEvent(req.method ?? 'GET', url, headers, eventBody(body), requestId);
    const result = (await handler(event, { awsRequestId: requestId })) as ProxyResult;
    const payload = result.isBase64Encoded ? Buffer.from(result.body ?? '', 'base64') : (result.body ?? '');
    send(res, result.statusCode ?? 200, result.headers ?? {}, payload);
  } catch (e) {
    // API Gateway answers a function error with a 502; so does this server, with the cause in its log.
    console.error(`request ${requestId} failed in the handler:`, e);
    send(res, 502, { 'Content-Type': 'application/json' }, JSON.stringify({ message: 'Internal server error' }));
  }
}

/** A plain path: segments of unreserved characters, none empty or dot-only, no query. */
const PLAIN_PATH = /^(?:\/(?!\.{1,2}(?:\/|$))[A-Za-z0-9._~-]+)+$/;

/**
 * What the request asks for: parsed by URL (normalised, percent-encoded as needed), except a plain
 * path, which URL would leave as it is; or, for a request target URL cannot parse (`//[::1/v2`,
 * `http://x:99999/`), a message that names it.
 */
function requestUrl(raw: string | undefined): { readonly pathname: string; readonly searchParams: URLSearchParams } | string {
  if (raw !== undefined && PLAIN_PATH.test(raw)) return { pathname: raw, searchParams: NO_PARAMETERS };
  try {
    return new URL(raw ?? '/', 'http://localhost');
  } catch {
    return `the request target ${JSON.stringify((raw ?? '').slice(0, 200))} is not a path or URL that can be parsed`;
  }
}

const NO_PARAMETERS = new URLSearchParams();

/** The Content-Length a request announces (0 when it has none, as with a chunked body). */
function declaredLength(req: http.IncomingMessage): number {
  const n = Number(req.headers['content-length'] ?? 0);
  return Number.isFinite(n) ? n : 0;
}

/**
 * The request's body, or undefined as soon as it is known to exceed `limit`: an announced length
 * over it is refused before a byte is read, and a chunked body stops being read at the limit.
 */
function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer | undefined> {
  if (declaredLength(req) > limit) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        // Stop reading here: the rest of the body is never read (refuseTooLarge closes the connection).
        req.off('data', onData);
        req.pause();
        resolve(undefined);
      } else {
        chunks.push(c);
      }
    };
    req.on('data', onData);
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/**
 * How long a refused connection stays open, reading nothing, after its 413 is sent: a client still
 * sending its body (as fetch does) reads the answer in that time instead of a connection reset.
 */
const REFUSED_CONNECTION_LINGER_MS = 2_000;

/**
 * Answers 413 and closes the connection without reading the rest of the body, however much the
 * client still sends.
 */
function refuseTooLarge(req: http.IncomingMessage, res: http.ServerResponse): void {
  // Nothing more of the body is read. Once the answer is sent, Node reads and discards the body
  // that nobody read, by resuming the request: this one is never resumed.
  req.pause();
  req.resume = () => req;
  // Node ends a `Connection: close` answer with destroySoon(), which destroys the socket as soon as
  // the answer is written. With the body's rest unread, the kernel then resets the connection, and
  // a client that is still sending sees the reset, not the 413. So: end this side (the answer, then
  // FIN), read nothing more, and destroy the socket after a grace period.
  const socket = req.socket;
  socket.destroySoon = () => {
    socket.end();
    setTimeout(() => socket.destroy(), REFUSED_CONNECTION_LINGER_MS).unref();
  };
  send(res, 413, { 'Content-Type': 'application/json', Connection: 'close' }, TOO_LARGE_BODY);
}

function send(res: http.ServerResponse, status: number, headers: Record<string, string>, body: string | Buffer): void {
  // With its length known, as API Gateway sends it, the answer goes out whole, without chunked framing.
  res.writeHead(status, { ...headers, 'Content-Length': String(typeof body === 'string' ? Buffer.byteLength(body) : body.length) });
  res.end(body);
}
