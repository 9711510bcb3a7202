/**
 * Asynchronous inference in the handler: the accept path (a request stored in S3 under a new id,
 * its message sent to the queue, 202), pre-signed uploads for bodies too large for the API, the
 * status of an id (pending, done, failed, read from S3), and the processing of the queue's SQS
 * events with partial batch failures. The model runs through `AsyncRunner`, the same inference the
 * synchronous route runs (hooks included).
 */
import { randomUUID } from 'node:crypto';
import { ASYNC_ACCEPTED_STATUS, ASYNC_ID_PATTERN, ASYNC_INPUT_LOCATION_HEADER, ASYNC_PREFIX, ASYNC_STATUS, type AsyncQueueMessage } from '../../../contract/async-inference';
import type { AsyncConfig } from '../config/async-config';
import { type HttpRequest, type HttpResponse, jsonResponse, readJsonBody } from '../http/events';
import { InferenceError, badRequest, notFound } from '../protocol/errors';
import { stringifyJson } from '../protocol/json';
import { checkJsonTextNesting } from '../protocol/nesting';
import { AsyncAws, type AsyncOutcome, type S3Object, parseS3Location, s3Uri } from './async-aws';
import type { AsyncRoute } from './async-routes';
import { type SqsBatchResponse, type SqsEvent, type SqsRecord, receiveCount } from './sqs-event';

/** What asynchronous inference needs of the handler above it. */
export interface AsyncRunner {
  /** Runs one infer request as the synchronous route does; the answer's JSON value. */
  infer(body: unknown, text: string, requestId: string): Promise<unknown>;
  /** The status and message a failure is answered with (and logs it, as the synchronous route does). */
  describe(e: unknown, requestId: string): { readonly status: number; readonly message: string };
  readonly logger: {
    info(message: string, extra: Record<string, unknown>): void;
    warn(message: string, extra: Record<string, unknown>): void;
    error(message: string, extra: Record<string, unknown>): void;
  };
}

const INPUT_HEADER = ASYNC_INPUT_LOCATION_HEADER.toLowerCase();

export class AsyncInference {
  private readonly aws: AsyncAws;

  constructor(
    private readonly config: AsyncConfig,
    private readonly modelName: string,
    private readonly maxBodyBytes: number,
    private readonly runner: AsyncRunner,
  ) {
    this.aws = new AsyncAws(config);
  }

  /** The answer to an asynchronous route. */
  async http(route: AsyncRoute, request: HttpRequest, requestId: string): Promise<HttpResponse> {
    switch (route.kind) {
      case 'accept':
        return this.accept(request, requestId);
      case 'upload':
        return this.upload();
      case 'status':
        return this.status(route.id);
    }
  }

  private own(prefix: string, id: string): S3Object {
    return { bucket: this.config.bucket, key: `${prefix}${id}.json` };
  }

  /**
   * Accepts a request: its body, or the S3 object that `X-Inference-Input-Location` names. The
   * request is stored (a body under requests/, a reference as an empty marker there, so that its
   * status is `pending` at once), its message sent, and the answer is 202 with the id and where
   * the result will be.
   */
  private async accept(request: HttpRequest, requestId: string): Promise<HttpResponse> {
    const id = randomUUID();
    const marker = this.own(ASYNC_PREFIX.REQUESTS, id);
    const reference = request.headers[INPUT_HEADER];
    let input: S3Object;
    if (reference !== undefined) {
      if ((request.rawBody ?? '').trim() !== '') {
        throw badRequest(`a request with ${ASYNC_INPUT_LOCATION_HEADER} has its body in S3: send no body with it`);
      }
      input = await this.checkInputLocation(reference);
      await this.aws.putJson(marker, '', { 'input-location': s3Uri(input) });
    } else {
      // The body as it came (JSON; binary tensor data needs the synchronous route), kept as text so
      // that nothing (a 64-bit integer, say) changes on the way.
      const body = readJsonBody(request, this.maxBodyBytes, false);
      checkInferRequestShape(body.value);
      input = marker;
      await this.aws.putJson(marker, body.text);
    }
    const message: AsyncQueueMessage = {
      id,
      model_name: this.modelName,
      input_location: s3Uri(input),
      output_location: s3Uri(this.own(ASYNC_PREFIX.RESULTS, id)),
      failure_location: s3Uri(this.own(ASYNC_PREFIX.ERRORS, id)),
    };
    try {
      await this.aws.send(JSON.stringify(message));
    } catch (e) {
      // Not queued, not accepted: the stored request would only say `pending` for ever.
      await this.aws.delete(marker).catch(() => undefined);
      throw new InferenceError(503, 'the request could not be queued; try again', { 'Retry-After': '1' }, `SendMessage failed: ${(e as Error)?.message ?? e}`);
    }
    this.runner.logger.info('asynchronous request accepted', { requestId, inferenceId: id, input: message.input_location });
    const statusPath = `${request.path.replace(/\/+$/, '')}/${id}`;
    return jsonResponse(
      ASYNC_ACCEPTED_STATUS,
      stringifyJson({
        id,
        model_name: this.modelName,
        status: ASYNC_STATUS.PENDING,
        output_location: message.output_location,
        failure_location: message.failure_location,
        status_path: statusPath,
      }),
      { Location: statusPath },
    );
  }

  /** A caller's S3 URI, in a bucket the function may read, naming an object within the size limit. */
  private async checkInputLocation(uri: string): Promise<S3Object> {
    const location = parseS3Location(uri);
    if (!location) throw badRequest(`${ASYNC_INPUT_LOCATION_HEADER} must be an S3 URI, s3://bucket/key, got: ${JSON.stringify(uri.slice(0, 200))}`);
    const ownUpload = location.bucket === this.config.bucket && location.key.startsWith(ASYNC_PREFIX.UPLOADS);
    if (!ownUpload && !this.config.inputBuckets.includes(location.bucket)) {
      const allowed = [`s3://${this.config.bucket}/${ASYNC_PREFIX.UPLOADS}`, ...this.config.inputBuckets.map((b) => `s3://${b}/`)];
      throw new InferenceError(403, `${ASYNC_INPUT_LOCATION_HEADER} must be under ${allowed.join(' or ')}; the function may not read ${uri}`);
    }
    const size = await this.aws.size(location);
    if (size === undefined) throw badRequest(`${ASYNC_INPUT_LOCATION_HEADER} names ${uri}, which does not exist`);
    if (size > this.config.maxInputBytes) {
      throw new InferenceError(413, `the request body at ${uri} is ${size} bytes; the limit is ${this.config.maxInputBytes} bytes`);
    }
    return location;
  }

  /** A pre-signed URL to PUT a large request body to, and the location to name when accepting it. */
  private async upload(): Promise<HttpResponse> {
    const upload = { bucket: this.config.bucket, key: `${ASYNC_PREFIX.UPLOADS}${randomUUID()}.json` };
    const url = await this.aws.presignPut(upload, this.config.uploadUrlExpiresS);
    return jsonResponse(
      200,
      stringifyJson({
        upload_url: url,
        method: 'PUT',
        input_location: s3Uri(upload),
        expires_in_seconds: this.config.uploadUrlExpiresS,
        max_bytes: this.config.maxInputBytes,
        next: `PUT the request body to upload_url, then POST to this route's parent with the header ${ASYNC_INPUT_LOCATION_HEADER}: ${s3Uri(upload)}`,
      }),
    );
  }

  /** `done` once the result exists, `failed` once the failure does, `pending` while only the request does. */
  private async status(id: string): Promise<HttpResponse> {
    if (!ASYNC_ID_PATTERN.test(id)) throw badRequest(`an inference id is a UUID as the 202 answer gave it (lower case), got: ${JSON.stringify(id.slice(0, 100))}`);
    const result = this.own(ASYNC_PREFIX.RESULTS, id);
    if ((await this.aws.size(result)) !== undefined) {
      return jsonResponse(200, stringifyJson({ id, status: ASYNC_STATUS.DONE, output_location: s3Uri(result) }));
    }
    const failure = this.own(ASYNC_PREFIX.ERRORS, id);
    const record = await this.aws.read(failure, 1024 * 1024);
    if (Buffer.isBuffer(record)) {
      const { error, status_code } = JSON.parse(record.toString('utf8')) as { error?: string; status_code?: number };
      return jsonResponse(200, stringifyJson({ id, status: ASYNC_STATUS.FAILED, error, status_code, failure_location: s3Uri(failure) }));
    }
    if ((await this.aws.size(this.own(ASYNC_PREFIX.REQUESTS, id))) !== undefined) {
      return jsonResponse(200, stringifyJson({ id, status: ASYNC_STATUS.PENDING, output_location: s3Uri(result) }));
    }
    throw notFound(`no asynchronous inference '${id}': it was never accepted, or its records expired`);
  }

  /**
   * Processes the queue's records one after another (they share the instance's CPU), and answers
   * the messages to keep: those that failed for a passing reason, and those that are not requests.
   */
  async process(event: SqsEvent): Promise<SqsBatchResponse> {
    const batchItemFailures: Array<{ itemIdentifier: string }> = [];
    for (const record of event.Records) {
      if (!(await this.processRecord(record))) batchItemFailures.push({ itemIdentifier: record.messageId });
    }
    return { batchItemFailures };
  }

  /** Whether the record is done with (succeeded, or failed for good and recorded). */
  private async processRecord(record: SqsRecord): Promise<boolean> {
    const message = this.readMessage(record.body);
    if (typeof message === 'string') {
      // Nothing to record it under: kept, so that it reaches the dead-letter queue for a person to look at.
      this.runner.logger.error('an SQS message that is not an asynchronous inference request; left to the dead-letter queue', { messageId: record.messageId, reason: message });
      return false;
    }
    const { id } = message;
    const outcome = { id, model_name: message.model_name, input_location: message.input_location };
    let answer: unknown;
    try {
      answer = await this.run(message, id);
    } catch (e) {
      const { status, message: reason } = this.runner.describe(e, id);
      const lastAttempt = receiveCount(record) >= this.config.maxReceiveCount;
      if (status >= 500 && !lastAttempt) {
        this.runner.logger.warn('asynchronous request failed; the queue retries it', { inferenceId: id, attempt: receiveCount(record), status });
        return false;
      }
      const error = status >= 500 ? `${reason}; gave up after ${receiveCount(record)} attempts` : reason;
      try {
        await this.aws.putJson(parseS3Location(message.failure_location)!, stringifyJson({ id, status: ASYNC_STATUS.FAILED, status_code: status, error }));
        await this.aws.notify({ ...outcome, status: 'failed', failure_location: message.failure_location, error });
      } catch (recording) {
        this.runner.logger.error('the failure of an asynchronous request could not be recorded; the queue retries it', { inferenceId: id, error: String(recording) });
        return false;
      }
      // A passing failure at its last attempt still goes to the dead-letter queue (and its alarm).
      return status < 500;
    }
    try {
      await this.aws.putJson(parseS3Location(message.output_location)!, stringifyJson(answer));
      await this.aws.notify({ ...outcome, status: 'succeeded', output_location: message.output_location } satisfies AsyncOutcome);
    } catch (e) {
      this.runner.logger.error('the result of an asynchronous request could not be written or notified; the queue retries it', { inferenceId: id, error: String(e) });
      return false;
    }
    return true;
  }

  /**
   * The queue message, or why it is not one of ours: another model's, or locations other than
   * those the accept path writes (whoever may send to the queue must not steer where the function
   * reads or writes).
   */
  private readMessage(body: string): AsyncQueueMessage | string {
    let value: Partial<AsyncQueueMessage>;
    try {
      value = JSON.parse(body) as Partial<AsyncQueueMessage>;
    } catch {
      return 'the body is not JSON';
    }
    if (typeof value !== 'object' || value === null) return 'the body is not a JSON object';
    if (typeof value.id !== 'string' || !ASYNC_ID_PATTERN.test(value.id)) return 'no id, or an id that is not a UUID';
    if (value.model_name !== this.modelName) return `it is for the model ${JSON.stringify(value.model_name)}, not ${JSON.stringify(this.modelName)}`;
    if (value.output_location !== s3Uri(this.own(ASYNC_PREFIX.RESULTS, value.id))) return 'output_location is not where this function writes results';
    if (value.failure_location !== s3Uri(this.own(ASYNC_PREFIX.ERRORS, value.id))) return 'failure_location is not where this function writes failures';
    const input = typeof value.input_location === 'string' ? parseS3Location(value.input_location) : undefined;
    if (!input || !this.readable(input)) return 'input_location is not an object this function may read';
    return value as AsyncQueueMessage;
  }

  /** Whether a request body may be read from there: the function's requests and uploads, or an allowed input bucket. */
  private readable(o: S3Object): boolean {
    if (o.bucket === this.config.bucket) return o.key.startsWith(ASYNC_PREFIX.REQUESTS) || o.key.startsWith(ASYNC_PREFIX.UPLOADS);
    return this.config.inputBuckets.includes(o.bucket);
  }

  /** Reads the request body from S3 and runs it. */
  private async run(message: AsyncQueueMessage, id: string): Promise<unknown> {
    const location = parseS3Location(message.input_location)!;
    const bytes = await this.aws.read(location, this.config.maxInputBytes);
    if (bytes === undefined) throw badRequest(`the request body ${message.input_location} does not exist (it expired, or was deleted)`);
    if (bytes === 'too-large') throw new InferenceError(413, `the request body ${message.input_location} is over the limit of ${this.config.maxInputBytes} bytes`);
    const text = bytes.toString('utf8');
    if (text.trim() === '') throw badRequest(`the request body ${message.input_location} is empty`);
    checkJsonTextNesting(text);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (e) {
      throw badRequest(`the request body ${message.input_location} is not valid JSON: ${(e as Error).message}`);
    }
    checkInferRequestShape(body);
    return this.runner.infer(body, text, id);
  }
}

/** The least an infer request is: a JSON object. The rest is checked when it runs, as the synchronous route checks it. */
function checkInferRequestShape(value: unknown): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw badRequest('an infer request is a JSON object (the same body as POST /v2/models/{name}/infer)');
  }
}
