/**
 * A stand-in for SageMaker Runtime's InvokeEndpoint on 127.0.0.1, for tests and the demo. It speaks
 * the service's REST-JSON wire protocol as `@aws-sdk/client-sagemaker-runtime` reads it:
 *
 * - `POST /endpoints/{EndpointName}/invocations`, the body as sent, with Content-Type and Accept;
 * - a 200 carries the model's body, its Content-Type and `x-Amzn-Invoked-Production-Variant`;
 * - an error carries its code in `x-amzn-ErrorType` (`Code:namespace`, the SDK keeps what precedes
 *   the colon) and its fields in a JSON body: `Message`, and for a ModelError (HTTP 424)
 *   `OriginalStatusCode`, `OriginalMessage` and `LogStreamArn`;
 * - every answer has an `x-amzn-RequestId`, which the SDK reports as `$metadata.requestId`.
 *
 * What the model answers is up to each test: `respondWith(behaviour)`.
 */
import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import { type RecordedRequest, type ServiceBehaviour, startRecordingServer } from './local-service';

const REGION = 'us-east-1';
const ACCOUNT = '123456789012';
const ACCESS_KEY_ID = 'AKIALOCALSAGEMAKER00';
const SECRET_ACCESS_KEY = 'local-sagemaker-secret';

/** One request the server received. */
export interface Invocation extends RecordedRequest {
  /** The path as sent (`rawPath` too). */
  readonly path: string;
  /** Decoded from the path; undefined when the path is not an invocation. */
  readonly endpointName?: string;
  /** The `x-amzn-RequestId` answered. */
  readonly requestId: string;
}

/** What the endpoint answers to one invocation. */
export interface InvocationAnswer {
  /** @default 200 */
  readonly status?: number;
  /** A string or Buffer is sent as it is; anything else as JSON. @default - empty */
  readonly body?: unknown;
  /** @default 'application/json' */
  readonly contentType?: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** Waits this long before answering, like a slow model. @default 0 */
  readonly delayMs?: number;
}

/** Answers an invocation; `attempt` counts the invocations since `respondWith`, from 0. */
export type Behaviour = ServiceBehaviour<Invocation, InvocationAnswer>;

export interface LocalSageMaker {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** What the server received since the last `respondWith`, in order. */
  readonly requests: Invocation[];
  /** The environment the SDK needs to reach this server: endpoint override, region, fake credentials. */
  env(): Record<string, string>;
  /** Sets how the endpoint answers from now on and forgets the requests recorded so far. */
  respondWith(behaviour: Behaviour): void;
  stop(): Promise<void>;
}

/** An error answer in the protocol's shape. */
export function sageMakerError(code: string, status: number, message: string, fields: Record<string, unknown> = {}): InvocationAnswer {
  return {
    status,
    headers: { 'x-amzn-ErrorType': `${code}:http://internal.amazon.com/coral/com.amazon.coral.service/` },
    body: { Message: message, ...fields },
  };
}

/** The container answered an error: SageMaker's 424 with the container's status and message. */
export function modelError(endpointName: string, originalStatusCode: number, originalMessage: string): InvocationAnswer {
  const logGroup = `/aws/sagemaker/Endpoints/${endpointName}`;
  return sageMakerError(
    'ModelError',
    424,
    `Received ${originalStatusCode < 500 ? 'client' : 'server'} error (${originalStatusCode}) from primary with message "${originalMessage}". See the log group ${logGroup} in account ${ACCOUNT} for more information.`,
    {
      ErrorCode: originalStatusCode < 500 ? 'CLIENT_ERROR_FROM_MODEL' : 'SERVER_ERROR_FROM_MODEL',
      OriginalStatusCode: originalStatusCode,
      OriginalMessage: originalMessage,
      LogStreamArn: `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:${logGroup}`,
    },
  );
}

/** What SageMaker answers for an endpoint that does not exist. */
export function endpointNotFound(endpointName: string): InvocationAnswer {
  return sageMakerError('ValidationError', 400, `Endpoint ${endpointName} of account ${ACCOUNT} not found.`);
}

const INVOCATION_PATH = /^\/endpoints\/([^/]+)\/invocations$/;

export async function startLocalSageMaker(): Promise<LocalSageMaker> {
  const server = await startRecordingServer<Invocation, InvocationAnswer>({
    describe: (request) => {
      const match = INVOCATION_PATH.exec(request.rawPath);
      return Object.assign(request, {
        path: request.rawPath,
        endpointName: match ? decodeURIComponent(match[1]) : undefined,
        requestId: randomUUID(),
      });
    },
    initialBehaviour: (invocation) => endpointNotFound(invocation.endpointName ?? ''),
    reject: (invocation) =>
      invocation.method !== 'POST' || invocation.endpointName === undefined
        ? sageMakerError('UnknownOperationException', 404, `no operation ${invocation.method} ${invocation.path}`)
        : undefined,
    behaviourFailed: (e) => sageMakerError('InternalFailure', 500, `the test's behaviour threw: ${e.message}`),
    send,
  });
  return {
    url: server.url,
    requests: server.requests,
    env: () => ({
      AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME: server.url,
      AWS_REGION: REGION,
      AWS_ACCESS_KEY_ID: ACCESS_KEY_ID,
      AWS_SECRET_ACCESS_KEY: SECRET_ACCESS_KEY,
    }),
    respondWith: (behaviour) => server.respondWith(behaviour),
    stop: () => server.stop(),
  };
}

function send(res: http.ServerResponse, invocation: Invocation, a: InvocationAnswer): void {
  const body = a.body === undefined ? '' : typeof a.body === 'string' || Buffer.isBuffer(a.body) ? a.body : JSON.stringify(a.body);
  const status = a.status ?? 200;
  res.writeHead(status, {
    'Content-Type': a.contentType ?? 'application/json',
    'Content-Length': Buffer.byteLength(body),
    'x-amzn-RequestId': invocation.requestId,
    ...(status === 200 ? { 'x-Amzn-Invoked-Production-Variant': 'AllTraffic' } : {}),
    ...a.headers,
  });
  res.end(body);
}
