/**
 * The AWS side of asynchronous inference: the bucket (requests, uploads, results, failures), the
 * queue and the notifications (SNS or EventBridge). Each SDK is imported when it is first used, so
 * a function without asynchronous inference never loads them (they are chunks of their own).
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { SNSClient } from '@aws-sdk/client-sns';
import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { ASYNC_NOTIFICATION } from '../../../contract/async-inference';
import type { AsyncConfig } from '../config/async-config';
import { httpStatusOf } from '../model/s3-fetch-error';

/** esbuild with code splitting exposes a CommonJS package behind a dynamic import only as `default`. */
function named<T extends object>(loaded: T & { default?: T }, probe: keyof T): T {
  return typeof loaded[probe] === 'function' ? loaded : loaded.default!;
}

const s3Sdk = async () => named((await import('@aws-sdk/client-s3')) as typeof import('@aws-sdk/client-s3'), 'S3Client');
const sqsSdk = async () => named((await import('@aws-sdk/client-sqs')) as typeof import('@aws-sdk/client-sqs'), 'SQSClient');
const snsSdk = async () => named((await import('@aws-sdk/client-sns')) as typeof import('@aws-sdk/client-sns'), 'SNSClient');
const eventsSdk = async () => named((await import('@aws-sdk/client-eventbridge')) as typeof import('@aws-sdk/client-eventbridge'), 'EventBridgeClient');
const presignerSdk = async () => named((await import('@aws-sdk/s3-request-presigner')) as typeof import('@aws-sdk/s3-request-presigner'), 'getSignedUrl');

export interface S3Object {
  readonly bucket: string;
  readonly key: string;
}

export function s3Uri(o: S3Object): string {
  return `s3://${o.bucket}/${o.key}`;
}

/** `s3://bucket/key`, or undefined when the text is not one. */
export function parseS3Location(uri: string): S3Object | undefined {
  const match = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri.trim());
  return match ? { bucket: match[1], key: match[2] } : undefined;
}

/** What a notification says of one request. */
export interface AsyncOutcome {
  readonly id: string;
  readonly model_name: string;
  readonly status: 'succeeded' | 'failed';
  readonly input_location: string;
  readonly output_location?: string;
  readonly failure_location?: string;
  readonly error?: string;
}

/** The clients, made once per instance when first needed. */
export class AsyncAws {
  private s3?: Promise<S3Client>;
  private sqs?: Promise<SQSClient>;
  private sns?: Promise<SNSClient>;
  private events?: Promise<EventBridgeClient>;

  constructor(private readonly config: AsyncConfig) {}

  private s3Client(): Promise<S3Client> {
    this.s3 ??= s3Sdk().then(
      ({ S3Client }) =>
        new S3Client({
          forcePathStyle: this.config.forcePathStyle,
          // A pre-signed PUT must not carry a checksum of an empty body (the SDK's default adds one
          // that every upload then fails), and the request objects are small JSON written whole.
          requestChecksumCalculation: 'WHEN_REQUIRED',
          responseChecksumValidation: 'WHEN_REQUIRED',
        }),
    );
    return this.s3;
  }

  async putJson(o: S3Object, text: string | Buffer, metadata?: Record<string, string>): Promise<void> {
    const { PutObjectCommand } = await s3Sdk();
    await (await this.s3Client()).send(new PutObjectCommand({ Bucket: o.bucket, Key: o.key, Body: text, ContentType: 'application/json', Metadata: metadata }));
  }

  /** The object's size, or undefined when it does not exist. */
  async size(o: S3Object): Promise<number | undefined> {
    const { HeadObjectCommand } = await s3Sdk();
    try {
      const head = await (await this.s3Client()).send(new HeadObjectCommand({ Bucket: o.bucket, Key: o.key }));
      return head.ContentLength ?? 0;
    } catch (e) {
      if (httpStatusOf(e) === 404) return undefined;
      throw e;
    }
  }

  /** The object's bytes, or undefined when it does not exist; `tooLarge` when it is over `maxBytes`. */
  async read(o: S3Object, maxBytes: number): Promise<Buffer | 'too-large' | undefined> {
    const { GetObjectCommand } = await s3Sdk();
    try {
      const answer = await (await this.s3Client()).send(new GetObjectCommand({ Bucket: o.bucket, Key: o.key }));
      if ((answer.ContentLength ?? 0) > maxBytes) {
        (answer.Body as { destroy?: () => void } | undefined)?.destroy?.();
        return 'too-large';
      }
      return Buffer.from(await answer.Body!.transformToByteArray());
    } catch (e) {
      if (httpStatusOf(e) === 404) return undefined;
      throw e;
    }
  }

  async delete(o: S3Object): Promise<void> {
    const { DeleteObjectCommand } = await s3Sdk();
    await (await this.s3Client()).send(new DeleteObjectCommand({ Bucket: o.bucket, Key: o.key }));
  }

  /** A URL that PUTs one object, valid `expiresS` seconds (and no longer than the function's credentials). */
  async presignPut(o: S3Object, expiresS: number): Promise<string> {
    const [{ PutObjectCommand }, { getSignedUrl }] = await Promise.all([s3Sdk(), presignerSdk()]);
    return getSignedUrl(await this.s3Client(), new PutObjectCommand({ Bucket: o.bucket, Key: o.key }), { expiresIn: expiresS });
  }

  async send(body: string): Promise<void> {
    const { SQSClient, SendMessageCommand } = await sqsSdk();
    this.sqs ??= Promise.resolve(new SQSClient({}));
    await (await this.sqs).send(new SendMessageCommand({ QueueUrl: this.config.queueUrl, MessageBody: body }));
  }

  /** Sends the notifications configured for this outcome: SNS, EventBridge, both or none. */
  async notify(outcome: AsyncOutcome): Promise<void> {
    const sends: Promise<unknown>[] = [];
    const topic = outcome.status === 'succeeded' ? this.config.successTopicArn : this.config.errorTopicArn;
    if (topic) sends.push(this.publish(topic, outcome));
    if (this.config.eventBus) sends.push(this.putEvent(this.config.eventBus, outcome));
    await Promise.all(sends);
  }

  private async publish(topicArn: string, outcome: AsyncOutcome): Promise<void> {
    const { SNSClient, PublishCommand } = await snsSdk();
    this.sns ??= Promise.resolve(new SNSClient({}));
    await (await this.sns).send(
      new PublishCommand({
        TopicArn: topicArn,
        Message: JSON.stringify(outcome),
        // Subscribers can filter on these without reading the message.
        MessageAttributes: {
          status: { DataType: 'String', StringValue: outcome.status },
          model_name: { DataType: 'String', StringValue: outcome.model_name },
        },
      }),
    );
  }

  private async putEvent(eventBus: string, outcome: AsyncOutcome): Promise<void> {
    const { EventBridgeClient, PutEventsCommand } = await eventsSdk();
    this.events ??= Promise.resolve(new EventBridgeClient({}));
    const answer = await (await this.events).send(
      new PutEventsCommand({
        Entries: [
          {
            EventBusName: eventBus,
            Source: ASYNC_NOTIFICATION.SOURCE,
            DetailType: outcome.status === 'succeeded' ? ASYNC_NOTIFICATION.SUCCEEDED : ASYNC_NOTIFICATION.FAILED,
            Detail: JSON.stringify(outcome),
          },
        ],
      }),
    );
    // PutEvents answers 200 with the entries it could not put counted and explained.
    if ((answer.FailedEntryCount ?? 0) > 0) {
      const entry = answer.Entries?.[0];
      throw new Error(`EventBridge refused the notification: ${entry?.ErrorCode ?? 'unknown'} ${entry?.ErrorMessage ?? ''}`.trim());
    }
  }
}
