/**
 * A stand-in on 127.0.0.1 for the three calls asynchronous inference makes besides S3: SQS
 * `SendMessage`, SNS `Publish` and EventBridge `PutEvents`, each in its own wire protocol as the AWS
 * SDK v3 clients speak it:
 *
 * - SQS: AWS JSON 1.0 (`X-Amz-Target: AmazonSQS.SendMessage`); the answer's `MD5OfMessageBody` is
 *   the body's MD5, which the SDK checks;
 * - EventBridge: AWS JSON 1.1 (`X-Amz-Target: AWSEvents.PutEvents`), `FailedEntryCount` and one
 *   result per entry;
 * - SNS: the query protocol (a form body, `Action=Publish`), answered in XML.
 *
 * One server answers all three; the SDKs find it through AWS_ENDPOINT_URL_SQS, _SNS and
 * _EVENTBRIDGE. What it answers is up to each test (`respondWith`): success by default.
 */
import { createHash, randomUUID } from 'node:crypto';
import type http from 'node:http';
import { type RecordedRequest, type ServiceBehaviour, startRecordingServer } from './local-service';

/** Decoded parameters: each service's own, read by tests as they please. */
// biome-ignore lint/suspicious/noExplicitAny: the parameters of three services, read field by field in tests.
export type MessagingParams = Record<string, any>;

export type MessagingOperation = 'SQS.SendMessage' | 'SNS.Publish' | 'EventBridge.PutEvents';

/** One request, with its operation and its parameters decoded. */
export interface MessagingCall extends RecordedRequest {
  /** Undefined for a request that is none of the three. */
  readonly operation?: MessagingOperation;
  /** The JSON body's fields, or the form's parameters (SNS), as sent. */
  readonly params: MessagingParams;
}

/** How the service answers one call. */
export interface MessagingAnswer {
  /** An error answer in the service's shape instead of success. @default - success */
  readonly error?: { readonly status: number; readonly code: string; readonly message: string };
  /** PutEvents only: answer 200 with the entry refused (`FailedEntryCount: 1`). @default false */
  readonly refuseEntries?: boolean;
  /** @default 0 */
  readonly delayMs?: number;
}

export type MessagingBehaviour = ServiceBehaviour<MessagingCall, MessagingAnswer>;

export interface LocalMessaging {
  readonly url: string;
  /** What the server received since the last `respondWith`, in order. */
  readonly requests: MessagingCall[];
  /** The calls of one operation, their parameters. */
  calls(operation: MessagingOperation): Array<MessagingParams>;
  /** The endpoint overrides the SDKs read (region and credentials come from elsewhere, e.g. the local S3). */
  env(): Record<string, string>;
  respondWith(behaviour: MessagingBehaviour): void;
  stop(): Promise<void>;
}

export async function startLocalMessaging(): Promise<LocalMessaging> {
  const server = await startRecordingServer<MessagingCall, MessagingAnswer>({
    describe: (request) => Object.assign(request, decode(request)),
    initialBehaviour: () => ({}),
    reject: (call) =>
      call.operation === undefined ? { error: { status: 400, code: 'UnknownOperationException', message: `no operation: ${call.method} ${call.rawPath}` } } : undefined,
    behaviourFailed: (e) => ({ error: { status: 500, code: 'InternalFailure', message: `the test's behaviour threw: ${e.message}` } }),
    send,
  });
  return {
    url: server.url,
    requests: server.requests,
    calls: (operation) => server.requests.filter((r) => r.operation === operation).map((r) => r.params),
    env: () => ({ AWS_ENDPOINT_URL_SQS: server.url, AWS_ENDPOINT_URL_SNS: server.url, AWS_ENDPOINT_URL_EVENTBRIDGE: server.url }),
    respondWith: (behaviour) => server.respondWith(behaviour),
    stop: () => server.stop(),
  };
}

function decode(request: RecordedRequest): { operation?: MessagingOperation; params: MessagingParams } {
  const target = String(request.headers['x-amz-target'] ?? '');
  if (target === 'AmazonSQS.SendMessage') return { operation: 'SQS.SendMessage', params: JSON.parse(request.text) };
  if (target === 'AWSEvents.PutEvents') return { operation: 'EventBridge.PutEvents', params: JSON.parse(request.text) };
  const form = new URLSearchParams(request.text);
  if (form.get('Action') === 'Publish') return { operation: 'SNS.Publish', params: Object.fromEntries(form) };
  return { params: {} };
}

function send(res: http.ServerResponse, call: MessagingCall, a: MessagingAnswer): void {
  const requestId = randomUUID();
  const reply = (status: number, contentType: string, body: string, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body), 'x-amzn-RequestId': requestId, ...headers });
    res.end(body);
  };
  if (call.operation === 'SNS.Publish') {
    if (a.error) {
      reply(
        a.error.status,
        'text/xml',
        `<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>Sender</Type><Code>${a.error.code}</Code><Message>${a.error.message}</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>`,
      );
      return;
    }
    reply(
      200,
      'text/xml',
      `<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishResult><MessageId>${randomUUID()}</MessageId></PublishResult><ResponseMetadata><RequestId>${requestId}</RequestId></ResponseMetadata></PublishResponse>`,
    );
    return;
  }
  const json = call.operation === 'SQS.SendMessage' ? 'application/x-amz-json-1.0' : 'application/x-amz-json-1.1';
  if (a.error) {
    const namespace = call.operation === 'SQS.SendMessage' ? 'com.amazonaws.sqs' : 'com.amazonaws.events';
    reply(a.error.status, json, JSON.stringify({ __type: `${namespace}#${a.error.code}`, message: a.error.message }), {
      ...(call.operation === 'SQS.SendMessage' ? { 'x-amzn-query-error': `AWS.SimpleQueueService.${a.error.code};Sender` } : {}),
    });
    return;
  }
  if (call.operation === 'SQS.SendMessage') {
    const md5 = createHash('md5')
      .update(String(call.params.MessageBody ?? ''), 'utf8')
      .digest('hex');
    reply(200, json, JSON.stringify({ MD5OfMessageBody: md5, MessageId: randomUUID() }));
    return;
  }
  const entries = (call.params.Entries ?? []) as unknown[];
  const results = entries.map(() => (a.refuseEntries ? { ErrorCode: 'InternalFailure', ErrorMessage: 'refused by the test' } : { EventId: randomUUID() }));
  reply(200, json, JSON.stringify({ FailedEntryCount: a.refuseEntries ? entries.length : 0, Entries: results }));
}
