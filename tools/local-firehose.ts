/**
 * A stand-in for Amazon Data Firehose's PutRecord and PutRecordBatch on 127.0.0.1, for tests and
 * the demo. It speaks the service's AWS JSON 1.1 wire protocol as `@aws-sdk/client-firehose` writes
 * and reads it:
 *
 * - `POST /` with `X-Amz-Target: Firehose_20150804.<Operation>` and a JSON body
 *   (`DeliveryStreamName`, `Record.Data` or `Records[].Data` in base64);
 * - a 200 carries `{"RecordId": ..., "Encrypted": ...}` (PutRecordBatch: `FailedPutCount` and
 *   `RequestResponses`);
 * - an error carries `{"__type": code, "message": ...}` with its status (400 for
 *   ResourceNotFoundException, 500 for ServiceUnavailableException, which the SDK retries).
 *
 * The records it took are kept, decoded, per stream (`records`); what it answers is up to each
 * test: `respondWith(behaviour)`, by default every put is taken.
 */
import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import { type RecordedRequest, type ServiceBehaviour, startRecordingServer } from './local-service';

const REGION = 'us-east-1';
const TARGET_PREFIX = 'Firehose_20150804.';

/** One request the server received. */
export interface FirehoseRequest extends RecordedRequest {
  /** `PutRecord`, `PutRecordBatch`, ... from X-Amz-Target. */
  readonly operation: string;
  readonly streamName?: string;
  /** The records' bytes, decoded from base64. */
  readonly data: Buffer[];
}

/** What the service answers to one request. */
export interface FirehoseAnswer {
  /** An error code (`ResourceNotFoundException`, `ServiceUnavailableException`...) instead of taking the records. @default - none: taken */
  readonly error?: string;
  /** @default - 400, or 500 for ServiceUnavailableException */
  readonly status?: number;
  readonly message?: string;
  /** Waits this long before answering. @default 0 */
  readonly delayMs?: number;
}

export type FirehoseBehaviour = ServiceBehaviour<FirehoseRequest, FirehoseAnswer>;

export interface LocalFirehose {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** What the server received since the last `respondWith`, in order. */
  readonly requests: FirehoseRequest[];
  /** The records taken so far, per stream name, in order (kept across `respondWith`). */
  readonly records: Map<string, Buffer[]>;
  /** The environment the SDK needs to reach this server: endpoint override, region, fake credentials. */
  env(): Record<string, string>;
  respondWith(behaviour: FirehoseBehaviour): void;
  stop(): Promise<void>;
}

export async function startLocalFirehose(): Promise<LocalFirehose> {
  const records = new Map<string, Buffer[]>();
  const server = await startRecordingServer<FirehoseRequest, FirehoseAnswer>({
    describe: (request) => {
      const target = String(request.headers['x-amz-target'] ?? '');
      let body: { DeliveryStreamName?: string; Record?: { Data?: string }; Records?: Array<{ Data?: string }> } = {};
      try {
        body = JSON.parse(request.text);
      } catch {
        // An unparsable body is answered as a bad request below.
      }
      const data = [...(body.Record ? [body.Record] : []), ...(body.Records ?? [])].map((r) => Buffer.from(r.Data ?? '', 'base64'));
      return Object.assign(request, {
        operation: target.startsWith(TARGET_PREFIX) ? target.slice(TARGET_PREFIX.length) : '',
        streamName: body.DeliveryStreamName,
        data,
      });
    },
    initialBehaviour: () => ({}),
    reject: (r) =>
      r.method !== 'POST' || (r.operation !== 'PutRecord' && r.operation !== 'PutRecordBatch')
        ? { error: 'UnknownOperationException', message: `no operation ${r.method} ${r.operation || r.rawPath}` }
        : !r.streamName
          ? { error: 'InvalidArgumentException', message: 'DeliveryStreamName is required' }
          : undefined,
    behaviourFailed: (e) => ({ error: 'ServiceUnavailableException', message: `the test's behaviour threw: ${e.message}` }),
    send: (res, request, answer) => send(res, request, answer, records),
  });
  return {
    url: server.url,
    requests: server.requests,
    records,
    env: () => ({
      AWS_ENDPOINT_URL_FIREHOSE: server.url,
      AWS_REGION: REGION,
      AWS_ACCESS_KEY_ID: 'AKIALOCALFIREHOSE000',
      AWS_SECRET_ACCESS_KEY: 'local-firehose-secret',
    }),
    respondWith: (behaviour) => server.respondWith(behaviour),
    stop: () => server.stop(),
  };
}

function send(res: http.ServerResponse, request: FirehoseRequest, a: FirehoseAnswer, records: Map<string, Buffer[]>): void {
  let status = 200;
  let body: unknown;
  if (a.error) {
    status = a.status ?? (a.error === 'ServiceUnavailableException' ? 500 : 400);
    body = { __type: a.error, message: a.message ?? a.error };
  } else {
    const kept = records.get(request.streamName!) ?? [];
    kept.push(...request.data);
    records.set(request.streamName!, kept);
    body =
      request.operation === 'PutRecord'
        ? { RecordId: randomUUID(), Encrypted: true }
        : { FailedPutCount: 0, Encrypted: true, RequestResponses: request.data.map(() => ({ RecordId: randomUUID() })) };
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/x-amz-json-1.1', 'Content-Length': Buffer.byteLength(text), 'x-amzn-RequestId': randomUUID() });
  res.end(text);
}
