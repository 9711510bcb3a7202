/**
 * Where capture records go: Amazon Data Firehose (the deployed function: one PutRecord per record,
 * which Firehose batches into S3 objects under hourly prefixes), or a local folder of hourly JSON
 * Lines files (`serve --data-capture DIR`), in the same `yyyy/mm/dd/hh` layout.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { threadId } from 'node:worker_threads';
import { FIREHOSE_MAX_RECORD_BYTES } from '../../../contract/capture';
import type { CaptureDestination } from '../config/observation-config';

export interface CaptureSink {
  /** Writes one record (a JSON line, its newline included) of the hour of `time`; rejects when it could not. */
  write(line: Buffer, time: Date, deadline: number | undefined): Promise<void>;
}

export function captureSink(destination: CaptureDestination, modelName: string): CaptureSink {
  return destination.kind === 'firehose' ? new FirehoseSink(destination.streamName) : new DirectorySink(destination.dir, modelName);
}

/** `yyyy/mm/dd/hh` of `time`, in UTC. */
export function hourPrefix(time: Date): string {
  const two = (n: number) => String(n).padStart(2, '0');
  return `${time.getUTCFullYear()}/${two(time.getUTCMonth() + 1)}/${two(time.getUTCDate())}/${two(time.getUTCHours())}`;
}

/** Appends to `DIR/yyyy/mm/dd/hh/<model>-<process>-<thread>.jsonl`: one file per writer, so that lines never interleave. */
class DirectorySink implements CaptureSink {
  constructor(
    private readonly dir: string,
    private readonly modelName: string,
  ) {}

  async write(line: Buffer, time: Date): Promise<void> {
    const folder = path.join(this.dir, hourPrefix(time));
    await fs.promises.mkdir(folder, { recursive: true });
    await fs.promises.appendFile(path.join(folder, `${this.modelName}-${process.pid}-${threadId}.jsonl`), line);
  }
}

type FirehoseSdk = typeof import('@aws-sdk/client-firehose');

/** How long one PutRecord may take, its retry included, unless the invocation's time left is shorter. */
const FIREHOSE_TIMEOUT_MS = 3_000;

/**
 * PutRecord, one record per request. Firehose bills each record rounded up to 5 KB whether it comes
 * alone or in a batch, so batching here would save nothing and would lose what a frozen or recycled
 * instance still held; Firehose itself batches into S3 objects.
 */
class FirehoseSink implements CaptureSink {
  private client?: Promise<{ sdk: FirehoseSdk; client: InstanceType<FirehoseSdk['FirehoseClient']> }>;

  constructor(private readonly streamName: string) {}

  async write(line: Buffer, _time: Date, deadline: number | undefined): Promise<void> {
    if (line.length > FIREHOSE_MAX_RECORD_BYTES) {
      throw new Error(`the record is ${line.length} bytes, over Firehose's limit of ${FIREHOSE_MAX_RECORD_BYTES} bytes per record`);
    }
    this.client ??= loadFirehose().then((sdk) => ({
      sdk,
      // The SDK reads AWS_REGION and AWS_ENDPOINT_URL_FIREHOSE / AWS_ENDPOINT_URL itself.
      client: new sdk.FirehoseClient({ maxAttempts: 2, requestHandler: { connectionTimeout: 1_000, requestTimeout: FIREHOSE_TIMEOUT_MS } }),
    }));
    const { sdk, client } = await this.client.catch((e) => {
      this.client = undefined;
      throw e;
    });
    const ms = Math.min(FIREHOSE_TIMEOUT_MS, deadline === undefined ? FIREHOSE_TIMEOUT_MS : deadline - Date.now());
    if (ms <= 0) throw new Error('no time was left in the invocation to send the record');
    await client.send(new sdk.PutRecordCommand({ DeliveryStreamName: this.streamName, Record: { Data: line } }), { abortSignal: AbortSignal.timeout(ms) });
  }
}

async function loadFirehose(): Promise<FirehoseSdk> {
  const loaded = (await import('@aws-sdk/client-firehose')) as FirehoseSdk & { default?: FirehoseSdk };
  // esbuild with code splitting exposes a CommonJS package behind a dynamic import only as `default`.
  return typeof loaded.FirehoseClient === 'function' ? loaded : loaded.default!;
}
