/**
 * A stand-in for Lambda's Invoke API on 127.0.0.1, for tests. It speaks the REST-JSON wire protocol
 * as `@aws-sdk/client-lambda` reads it:
 *
 * - `POST /2015-03-31/functions/{FunctionName}/invocations[?Qualifier=...]`, the payload as the body
 *   and the invocation type in `X-Amz-Invocation-Type`. The SDK sends a qualified ARN given as
 *   FunctionName as one percent-encoded path segment (`arn%3Aaws%3Alambda%3A...%3A7`);
 * - a 200 carries the function's payload; a function error is still a 200, flagged by
 *   `X-Amz-Function-Error` (`Unhandled`), with Lambda's `{errorType, errorMessage}` as the payload;
 * - a service error carries its code in `x-amzn-ErrorType` and `{Type, message}` as the body.
 *
 * What the function answers is up to each test: `respondWith(behaviour)`.
 */
import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import { type RecordedRequest, type ServiceBehaviour, startRecordingServer } from './local-service';

const REGION = 'eu-west-1';
const ACCESS_KEY_ID = 'AKIALOCALLAMBDA00000';
const SECRET_ACCESS_KEY = 'local-lambda-secret';

/** One request the server received. */
export interface LambdaInvocation extends RecordedRequest {
  /** Decoded from the path: a name, a partial ARN or a full ARN, qualified or not. */
  readonly functionName?: string;
  /** The `Qualifier` query parameter, when sent. */
  readonly qualifier?: string;
}

/** What the function (or the service) answers to one invocation. */
export interface LambdaAnswer {
  /** A string or Buffer is sent as it is; anything else as JSON. @default - empty */
  readonly payload?: unknown;
  /** Sets `X-Amz-Function-Error`, as Lambda does when the function threw. */
  readonly functionError?: 'Unhandled' | 'Handled';
  /** @default 200 */
  readonly status?: number;
  readonly headers?: Readonly<Record<string, string>>;
  /** Waits this long before answering, like a slow function. @default 0 */
  readonly delayMs?: number;
  /** Drops the connection without answering, like a network failure. */
  readonly hangUp?: boolean;
}

/** Answers an invocation; `attempt` counts the invocations since `respondWith`, from 0. */
export type LambdaBehaviour = ServiceBehaviour<LambdaInvocation, LambdaAnswer>;

export interface LocalLambda {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** What the server received since the last `respondWith`, in order. */
  readonly invocations: LambdaInvocation[];
  /** The environment the SDK needs to reach this server: endpoint override, region, fake credentials. */
  env(): Record<string, string>;
  /** Sets how the function answers from now on and forgets the invocations recorded so far. */
  respondWith(behaviour: LambdaBehaviour): void;
  stop(): Promise<void>;
}

/** The function threw `errorType` with `errorMessage`, as Lambda reports it to a RequestResponse caller. */
export function functionError(errorType: string, errorMessage: string): LambdaAnswer {
  return { functionError: 'Unhandled', payload: { errorType, errorMessage, trace: [] } };
}

/** An error of the Lambda service itself (throttling, missing function...), in the protocol's shape. */
export function lambdaServiceError(code: string, status: number, message: string): LambdaAnswer {
  return { status, headers: { 'x-amzn-ErrorType': code }, payload: { Type: 'User', message } };
}

const INVOCATION_PATH = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/;

export async function startLocalLambda(): Promise<LocalLambda> {
  const server = await startRecordingServer<LambdaInvocation, LambdaAnswer>({
    describe: (request) => {
      const match = INVOCATION_PATH.exec(request.rawPath);
      return Object.assign(request, {
        functionName: match ? decodeURIComponent(match[1]) : undefined,
        qualifier: request.query.get('Qualifier') ?? undefined,
      });
    },
    initialBehaviour: (invocation) => lambdaServiceError('ResourceNotFoundException', 404, `Function not found: ${invocation.functionName}`),
    reject: (invocation) =>
      invocation.method !== 'POST' || invocation.functionName === undefined
        ? lambdaServiceError('UnknownOperationException', 404, `no operation ${invocation.method} ${invocation.rawPath}`)
        : undefined,
    behaviourFailed: (e) => lambdaServiceError('ServiceException', 500, `the test's behaviour threw: ${e.message}`),
    send,
  });
  return {
    url: server.url,
    invocations: server.requests,
    env: () => ({
      AWS_ENDPOINT_URL_LAMBDA: server.url,
      AWS_REGION: REGION,
      AWS_ACCESS_KEY_ID: ACCESS_KEY_ID,
      AWS_SECRET_ACCESS_KEY: SECRET_ACCESS_KEY,
    }),
    respondWith: (behaviour) => server.respondWith(behaviour),
    stop: () => server.stop(),
  };
}

function send(res: http.ServerResponse, invocation: LambdaInvocation, a: LambdaAnswer): void {
  if (a.hangUp) {
    res.socket?.destroy();
    return;
  }
  const p = a.payload;
  const body = p === undefined ? '' : typeof p === 'string' || Buffer.isBuffer(p) ? p : JSON.stringify(p);
  res.writeHead(a.status ?? 200, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(body),
    'x-amzn-RequestId': randomUUID(),
    'X-Amz-Executed-Version': /:(\d+)$/.exec(invocation.functionName ?? '')?.[1] ?? invocation.qualifier ?? '$LATEST',
    ...(a.functionError ? { 'X-Amz-Function-Error': a.functionError } : {}),
    ...a.headers,
  });
  res.end(body);
}
