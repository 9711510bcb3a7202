/**
 * The SQS event as Lambda's event source mapping sends it (the AWS Lambda Developer Guide's
 * "Example standard queue message event"), and the partial batch response it reads back when the
 * mapping reports batch item failures. Only what the handler reads is typed.
 */

export interface SqsRecord {
  readonly messageId: string;
  readonly receiptHandle?: string;
  readonly body: string;
  readonly attributes?: {
    /** How many times the message was received, this time included, as a decimal string. */
    readonly ApproximateReceiveCount?: string;
    readonly SentTimestamp?: string;
  };
  readonly messageAttributes?: Record<string, unknown>;
  readonly md5OfBody?: string;
  readonly eventSource: 'aws:sqs';
  readonly eventSourceARN?: string;
  readonly awsRegion?: string;
}

export interface SqsEvent {
  readonly Records: readonly SqsRecord[];
}

/** What the event source mapping reads back with ReportBatchItemFailures: the messages to keep. */
export interface SqsBatchResponse {
  readonly batchItemFailures: Array<{ readonly itemIdentifier: string }>;
}

/** Whether an event is SQS's: records, every one from `aws:sqs` with a message id and a body. */
export function isSqsEvent(event: unknown): event is SqsEvent {
  const records = (event as { Records?: unknown } | null | undefined)?.Records;
  return (
    Array.isArray(records) &&
    records.length > 0 &&
    records.every((r) => (r as SqsRecord | null)?.eventSource === 'aws:sqs' && typeof (r as SqsRecord).messageId === 'string' && typeof (r as SqsRecord).body === 'string')
  );
}

/** How many times the record's message was received, this time included (1 when SQS did not say). */
export function receiveCount(record: SqsRecord): number {
  const n = Number(record.attributes?.ApproximateReceiveCount);
  return Number.isInteger(n) && n > 0 ? n : 1;
}
