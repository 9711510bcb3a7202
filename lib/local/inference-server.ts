import { randomUUID } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

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
  close(): Promise<void>;
}

/** API Gateway's own payload limit: a larger body never reaches the function there either. */
const API_GATEWAY_MAX_BODY_BYTES = 10 * 1024 * 1024;

/**
 * Serves a Lambda handler over HTTP the way API Gateway's REST API (proxy integration) calls it:
 * each request becomes a v1 proxy event, and the handler's answer becomes the HTTP response.
 */
export async function startInferenceServer(options: InferenceServerOptions): Promise<RunningInferenceServer> {
  const server = http.createServer((req, res) => {
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
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((e) => (e ? reject(e) : resolve()));
      }),
  };
}

async function serve(handler: LambdaHandler, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const requestId = randomUUID();
  try {
    const body = await readBody(req);
    if (body === undefined) {
      return send(res, 413, { 'Content-Type': 'application/json' }, JSON.stringify({ message: 'Request Too Long' }));
    }
    const url = new URL(req.url ?? '/', 'http://localhost');
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) {
      if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(',') : v;
    }
    const event = {
      resource: '/{proxy+}',
      path: url.pathname,
      httpMethod: req.method ?? 'GET',
      headers,
      queryStringParameters: url.searchParams.size > 0 ? Object.fromEntries(url.searchParams) : null,
      body: body.length > 0 ? body.toString('utf8') : null,
      isBase64Encoded: false,
      requestContext: { requestId, stage: 'local', httpMethod: req.method, path: url.pathname },
    };
    const result = (await handler(event, { awsRequestId: requestId })) as {
      statusCode?: number;
      headers?: Record<string, string>;
      body?: string;
      isBase64Encoded?: boolean;
    };
    const payload = result.isBase64Encoded ? Buffer.from(result.body ?? '', 'base64') : (result.body ?? '');
    send(res, result.statusCode ?? 200, result.headers ?? {}, payload);
  } catch (e) {
    // API Gateway answers a function error with a 502; so does this server, with the cause in its log.
    console.error(`request ${requestId} failed in the handler:`, e);
    send(res, 502, { 'Content-Type': 'application/json' }, JSON.stringify({ message: 'Internal server error' }));
  }
}

function readBody(req: http.IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > API_GATEWAY_MAX_BODY_BYTES) tooLarge = true;
      else chunks.push(c);
    });
    req.on('end', () => resolve(tooLarge ? undefined : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function send(res: http.ServerResponse, status: number, headers: Record<string, string>, body: string | Buffer): void {
  res.writeHead(status, headers);
  res.end(body);
}
