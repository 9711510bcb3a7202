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
import http from 'node:http';
import type { AddressInfo } from 'node:net';

const REGION = 'us-east-1';
const ACCOUNT = '123456789012';
const ACCESS_KEY_ID = 'AKIALOCALSAGEMAKER00';
const SECRET_ACCESS_KEY = 'local-sagemaker-secret';

/** One request the server received. */
export interface Invocation {
  readonly method: string;
  readonly path: string;
  /** Decoded from the path; undefined when the path is not an invocation. */
  readonly endpointName?: string;
  /** Header names in lower case, as Node gives them. */
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
  /** The body as UTF-8 text. */
  readonly text: string;
  /** The `x-amzn-RequestId` answered. */
  readonly requestId: string;
  /** Whether the client hung up before the answer was sent (a client-side timeout). */
  abandoned: boolean;
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
export type Behaviour = (invocation: Invocation, attempt: number) => InvocationAnswer | Promise<InvocationAnswer>;

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
  const requests: Invocation[] = [];
  let behaviour: Behaviour = (invocation) => endpointNotFound(invocation.endpointName ?? '');

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = (req.url ?? '/').split('?')[0];
      const match = INVOCATION_PATH.exec(path);
      const body = Buffer.concat(chunks);
      const invocation: Invocation = {
        method: req.method ?? '',
        path,
        endpointName: match ? decodeURIComponent(match[1]) : undefined,
        headers: req.headers,
        body,
        text: body.toString('utf8'),
        requestId: randomUUID(),
        abandoned: false,
      };
      requests.push(invocation);
      res.on('close', () => {
        if (!res.writableFinished) invocation.abandoned = true;
      });
      const attempt = requests.length - 1;
      answer(invocation, attempt).then(
        (a) => send(res, invocation, a),
        (e: Error) => send(res, invocation, sageMakerError('InternalFailure', 500, `the test's behaviour threw: ${e.message}`)),
      );
    });
  });

  const answer = async (invocation: Invocation, attempt: number): Promise<InvocationAnswer> => {
    if (invocation.method !== 'POST' || invocation.endpointName === undefined) {
      return sageMakerError('UnknownOperationException', 404, `no operation ${invocation.method} ${invocation.path}`);
    }
    const a = await behaviour(invocation, attempt);
    if (a.delayMs) await new Promise((resolve) => setTimeout(resolve, a.delayMs));
    return a;
  };

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    requests,
    env: () => ({
      AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME: url,
      AWS_REGION: REGION,
      AWS_ACCESS_KEY_ID: ACCESS_KEY_ID,
      AWS_SECRET_ACCESS_KEY: SECRET_ACCESS_KEY,
    }),
    respondWith(next) {
      behaviour = next;
      requests.length = 0;
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) => server.close((e) => (e ? reject(e) : resolve())));
    },
  };
}

function send(res: http.ServerResponse, invocation: Invocation, a: InvocationAnswer): void {
  if (invocation.abandoned || res.destroyed) return;
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
