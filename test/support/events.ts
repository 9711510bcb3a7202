/** Lambda events as API Gateway and Function URLs send them, reduced to what the handler reads. */

export interface EventOptions {
  readonly headers?: Record<string, string>;
  /** Send the body base64-encoded, as API Gateway does for binary media types. */
  readonly base64?: boolean;
}

const JSON_HEADERS = { 'Content-Type': 'application/json' };

function encodeBody(body: unknown, base64: boolean | undefined): string | null {
  if (body === undefined) return null;
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  return base64 ? Buffer.from(text).toString('base64') : text;
}

/** API Gateway REST API, Lambda proxy integration (payload 1.0). */
export function restEvent(method: string, path: string, body?: unknown, options: EventOptions = {}) {
  return {
    resource: '/v2/models/{model}/infer',
    path,
    httpMethod: method,
    headers: { ...JSON_HEADERS, ...options.headers },
    multiValueHeaders: {},
    queryStringParameters: null,
    pathParameters: null,
    stageVariables: null,
    requestContext: { requestId: 'rest-request-id', stage: 'v1', httpMethod: method, path: `/v1${path}` },
    body: encodeBody(body, options.base64),
    isBase64Encoded: !!options.base64,
  };
}

/** API Gateway HTTP API (payload 2.0); a named stage prefixes the raw path. */
export function httpApiEvent(method: string, rawPath: string, body?: unknown, options: EventOptions = {}) {
  return {
    version: '2.0',
    routeKey: `${method} /{proxy+}`,
    rawPath,
    rawQueryString: '',
    headers: { 'content-type': 'application/json', ...lower(options.headers) },
    requestContext: {
      apiId: 'abc123',
      domainName: 'abc123.execute-api.us-east-1.amazonaws.com',
      http: { method, path: rawPath, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'test' },
      requestId: 'http-request-id',
      stage: '$default',
    },
    body: encodeBody(body, options.base64) ?? undefined,
    isBase64Encoded: !!options.base64,
  };
}

/** Lambda Function URL (payload 2.0, base64 body for non-text content types). */
export function functionUrlEvent(method: string, rawPath: string, body?: unknown, options: EventOptions = {}) {
  const e = httpApiEvent(method, rawPath, body, options);
  return {
    ...e,
    routeKey: '$default',
    requestContext: { ...e.requestContext, domainName: 'abcdefg.lambda-url.us-east-1.on.aws', apiId: 'abcdefg' },
  };
}

function lower(h: Record<string, string> | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(h ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
}

/** The handler's HTTP answer with its body parsed. */
export interface Answer {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: any;
  readonly text: string;
}

export async function call(handler: (e: unknown) => Promise<any>, event: unknown): Promise<Answer> {
  const r = await handler(event);
  if (typeof r?.statusCode !== 'number' || typeof r.body !== 'string') {
    throw new Error(`not an HTTP answer: ${JSON.stringify(r)}`);
  }
  return { status: r.statusCode, headers: r.headers, body: JSON.parse(r.body), text: r.body };
}

/** POST an infer request over a REST API event. */
export function infer(handler: (e: unknown) => Promise<any>, body: unknown, model = 'model', options: EventOptions = {}) {
  return call(handler, restEvent('POST', `/v2/models/${model}/infer`, body, options));
}
