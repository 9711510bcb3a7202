/**
 * The SageMaker proxy's backend: each inference request is one InvokeEndpoint call.
 *
 * `@aws-sdk/client-sagemaker-runtime` is imported inside createSageMakerBackend, never at the top,
 * so the ONNX Runtime handler, which shares this core, never loads it.
 */
import type { InvokeEndpointCommandInput, InvokeEndpointCommandOutput, SageMakerRuntimeClient } from '@aws-sdk/client-sagemaker-runtime';
import type { BackendMetadata, BackendModel, BackendRequest, BackendResult, InferenceBackend } from './backend';
import type { SageMakerProxyConfig } from '../config/config';
import { ENV } from '../../../contract/environment';
import { SAGEMAKER_HEADER, SAGEMAKER_PASSED_CONTAINER_STATUSES } from '../../../contract/sagemaker';
import { InferenceError, badRequest, redactServerDetail } from '../protocol/errors';

type SageMakerSdk = typeof import('@aws-sdk/client-sagemaker-runtime');

/** The proxy does not know the endpoint's model: hooks see an empty signature. */
const UNKNOWN_MODEL: BackendModel = { signature: { inputs: [], outputs: [] } };

type PassedHeaders = Pick<InvokeEndpointCommandInput, 'CustomAttributes' | 'TargetModel' | 'TargetVariant' | 'InferenceId'>;

/** Printable US-ASCII, as SageMaker's API reference has these headers. */
const PRINTABLE = /^[\x20-\x7e]*$/;
const PRINTABLE_NOT_BLANK_FIRST = /^[\x21-\x7e][\x20-\x7e]*$/;
const VARIANT_NAME = /^[a-zA-Z0-9](-*[a-zA-Z0-9])*$/;

/**
 * Each header a caller may set, the `InvokeEndpoint` parameter it becomes, and SageMaker's rule for
 * it (its API reference), so that a bad value is a 400 naming the header rather than SageMaker's
 * ValidationError.
 */
const PASSED_HEADERS: ReadonlyArray<{ header: string; parameter: keyof PassedHeaders; maxLength: number; pattern: RegExp; rule: string }> = [
  { header: SAGEMAKER_HEADER.CUSTOM_ATTRIBUTES, parameter: 'CustomAttributes', maxLength: 1024, pattern: PRINTABLE, rule: 'printable ASCII characters' },
  {
    header: SAGEMAKER_HEADER.TARGET_MODEL,
    parameter: 'TargetModel',
    maxLength: 1024,
    pattern: PRINTABLE_NOT_BLANK_FIRST,
    rule: 'printable ASCII characters, the first not a space',
  },
  { header: SAGEMAKER_HEADER.TARGET_VARIANT, parameter: 'TargetVariant', maxLength: 63, pattern: VARIANT_NAME, rule: 'a production variant name (letters, digits and hyphens)' },
  { header: SAGEMAKER_HEADER.INFERENCE_ID, parameter: 'InferenceId', maxLength: 64, pattern: PRINTABLE_NOT_BLANK_FIRST, rule: 'printable ASCII characters, the first not a space' },
];

/** The SageMaker headers among `headers` (the request's, names in lower case), checked; an empty one counts as absent. */
function passedHeaders(headers: Readonly<Record<string, string>>): PassedHeaders {
  const passed: { -readonly [K in keyof PassedHeaders]: PassedHeaders[K] } = {};
  for (const { header, parameter, maxLength, pattern, rule } of PASSED_HEADERS) {
    const value = headers[header.toLowerCase()];
    if (value === undefined || value === '') continue;
    if (value.length > maxLength || !pattern.test(value)) {
      const shown = value.length > 80 ? `${JSON.stringify(value.slice(0, 80))}… (${value.length} characters)` : JSON.stringify(value);
      throw badRequest(`the ${header} header must be ${rule}, at most ${maxLength} characters, got: ${shown}`);
    }
    passed[parameter] = value;
  }
  return passed;
}

export async function createSageMakerBackend(config: SageMakerProxyConfig): Promise<SageMakerBackend> {
  const sdk = await loadSdk();
  // The SDK reads the region, the credentials and AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME (or
  // AWS_ENDPOINT_URL) from the environment itself. Retries use its standard mode, which retries
  // throttling (ModelNotReadyException is a 429, so it counts) and SageMaker's own 500/502/503/504,
  // not a container's failure (ModelError, a 424) nor a validation error.
  const client = new sdk.SageMakerRuntimeClient({ maxAttempts: config.maxAttempts });
  return new SageMakerBackend(config, client, sdk);
}

export class SageMakerBackend implements InferenceBackend {
  constructor(
    private readonly config: SageMakerProxyConfig,
    private readonly client: SageMakerRuntimeClient,
    private readonly sdk: Pick<SageMakerSdk, 'InvokeEndpointCommand'>,
  ) {}

  /**
   * Nothing to load: the endpoint is SageMaker's to run. Readiness and warm-up therefore answer at
   * once without calling SageMaker, which would cost an inference and say nothing about the next one.
   */
  load(): Promise<BackendModel> {
    return Promise.resolve(UNKNOWN_MODEL);
  }

  /** The endpoint's signature is unknown here: the model metadata lists no tensors. */
  metadata(): BackendMetadata {
    return { platform: 'sagemaker', inputs: [], outputs: [] };
  }

  async infer(_model: BackendModel, request: BackendRequest): Promise<BackendResult> {
    const body = request.body;
    // The endpoint knows its model and checks the tensors; only the shape every container takes is checked here.
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw badRequest('the request body must be a JSON object, such as {"inputs": [...]} (Open Inference Protocol) or {"instances": [...]}');
    }
    const headers = passedHeaders(request.headers ?? {});
    // The text as it came, when no hook changed it: a re-serialised body would lose the digits
    // of 64-bit integers past 2^53.
    const payload = request.json ?? JSON.stringify(body);
    // SageMaker's own limit (the construct sets it: 4 MiB for a serverless endpoint), checked on
    // what is sent, which preprocess may have made larger than what came.
    const payloadBytes = Buffer.byteLength(payload);
    if (payloadBytes > this.config.maxBodyBytes) {
      throw new InferenceError(413, `the request for the SageMaker endpoint is ${payloadBytes} bytes; the endpoint takes at most ${this.config.maxBodyBytes} bytes`);
    }
    // One budget for every attempt, retries included, rather than a timeout per attempt: a retry
    // after a slow failure would otherwise outlast API Gateway's 29 s, and the caller would get the
    // gateway's bare 504 instead of this one. A quick throttle still leaves the retry most of it.
    const deadline = AbortSignal.timeout(this.config.timeoutMs);
    // InferenceMs is the whole call as the caller waits for it: a retry and its back-off included.
    const started = performance.now();
    let output: InvokeEndpointCommandOutput;
    try {
      output = await this.client.send(
        new this.sdk.InvokeEndpointCommand({
          EndpointName: this.config.endpointName,
          Body: payload,
          ContentType: this.config.contentType,
          Accept: this.config.accept,
          ...headers,
        }),
        { abortSignal: deadline },
      );
    } catch (e) {
      throw this.describeFailure(e, deadline.aborted);
    }
    const inferenceMs = performance.now() - started;
    return { ...this.readAnswer(output.ContentType, output.Body), inferenceMs };
  }

  private readAnswer(contentType: string | undefined, body: Uint8Array | undefined): { response: unknown; json: string } {
    const type = (contentType ?? '').split(';')[0].trim().toLowerCase();
    if (type !== 'application/json' && !type.endsWith('+json')) {
      throw new InferenceError(
        502,
        'the SageMaker endpoint answered something other than JSON',
        {},
        `${this.endpoint()} answered ${contentType ? `Content-Type ${contentType}` : 'with no Content-Type'}; this API answers JSON only, so the endpoint must answer application/json (${ENV.SAGEMAKER_ACCEPT} is ${this.config.accept})`,
      );
    }
    const json = Buffer.from(body ?? new Uint8Array()).toString('utf8');
    try {
      return { response: JSON.parse(json), json };
    } catch (e) {
      throw new InferenceError(502, 'the SageMaker endpoint answered invalid JSON', {}, `${this.endpoint()} answered invalid JSON: ${(e as Error).message}`);
    }
  }

  /**
   * The answer an SDK failure deserves, told apart by the exception's name and HTTP status. The
   * caller gets what happened and whether to retry; the endpoint's name, SageMaker's request id, the
   * container's log stream ARN and the SDK's own message go to the log (the InferenceError's detail).
   */
  private describeFailure(e: unknown, timedOut: boolean): InferenceError {
    const err = (e ?? {}) as SdkError;
    const status = err.$metadata?.httpStatusCode;
    const requestId = err.$metadata?.requestId ? `; SageMaker request id ${err.$metadata.requestId}` : '';
    const said = `${err.name}: ${err.message}`;
    const endpoint = this.endpoint();
    const retryAfter = retryAfterOf(err);
    const detail = (text: string) => `${text}${requestId}`;
    if (timedOut || err.name === 'TimeoutError') {
      return new InferenceError(
        504,
        'the SageMaker endpoint did not answer in time',
        {},
        detail(`${endpoint} did not answer within ${this.config.timeoutMs} ms (${ENV.SAGEMAKER_TIMEOUT_MS}): ${said}`),
      );
    }
    switch (err.name) {
      case 'ModelError': {
        // The container answered an error: SageMaker wraps it in a 424 with the original status.
        const original = err.OriginalStatusCode;
        const logged = detail(
          `the model container of ${endpoint} failed with status ${original ?? 'unknown'}: ${err.OriginalMessage ?? err.message}${err.LogStreamArn ? `; container logs: ${err.LogStreamArn}` : ''}`,
        );
        if (original !== undefined && original >= 400 && original < 500) {
          // The container refused the request: the caller's to fix, so a 4xx (a 502 here would let
          // any caller raise the server-error alarm on purpose). Its reason is passed on, without
          // anything that reads as a location on the container. A status that says something of
          // its own is kept; others (401, 404...) would speak of this API, not of the model.
          const reason = redactAws(err.OriginalMessage ?? '');
          const answered = PASSED_CONTAINER_STATUSES.has(original) ? original : 400;
          return new InferenceError(
            answered,
            `the model refused the request (status ${original})${reason ? `: ${reason}` : ''}`,
            answered === 429 ? { 'Retry-After': retryAfter ?? '1' } : {},
            logged,
          );
        }
        return new InferenceError(502, `the model container failed on this request (status ${original ?? 'unknown'})`, {}, logged);
      }
      case 'ModelNotReadyException':
        return new InferenceError(
          503,
          'the SageMaker endpoint is not ready to serve; retry later',
          retryAfter ? { 'Retry-After': retryAfter } : {},
          detail(`${endpoint}: ${said}`),
        );
      case 'ValidationError':
        // A missing endpoint is this function's wiring, which the caller cannot fix: a 500, like
        // any other misconfiguration. Anything else SageMaker refuses is about the request.
        if (/endpoint\b.*\bnot found/i.test(err.message ?? '')) {
          return new InferenceError(
            500,
            'the SageMaker endpoint this function invokes does not exist',
            {},
            detail(`${endpoint} does not exist in this account and region; check ${ENV.SAGEMAKER_ENDPOINT_NAME} (${said})`),
          );
        }
        return new InferenceError(400, `SageMaker rejected the request: ${redactAws(err.message ?? '')}`, {}, detail(`${endpoint}: ${said}`));
      case 'AccessDeniedException':
        return new InferenceError(
          500,
          'this function may not invoke its SageMaker endpoint',
          {},
          detail(`this function may not invoke ${endpoint}: its role needs sagemaker:InvokeEndpoint on the endpoint's ARN (${said})`),
        );
      case 'ServiceUnavailable':
        return new InferenceError(503, 'SageMaker is unavailable; retry later', retryAfter ? { 'Retry-After': retryAfter } : {}, detail(`${endpoint}: ${said}`));
    }
    if (status === 429 || /throttl/i.test(err.name ?? '')) {
      return new InferenceError(429, 'the SageMaker endpoint is throttling requests; retry later', { 'Retry-After': retryAfter ?? '1' }, detail(`${endpoint}: ${said}`));
    }
    if (status === undefined) {
      return new InferenceError(502, 'cannot call SageMaker', {}, detail(`${endpoint}: ${said}`));
    }
    if (status >= 400 && status < 500) {
      // SageMaker refused this function's credentials or signature: its wiring, not the request.
      if (status === 401 || status === 403 || CREDENTIAL_ERRORS.has(err.name ?? '')) {
        return new InferenceError(
          500,
          'this function may not invoke its SageMaker endpoint',
          {},
          detail(`SageMaker refused this function's call to ${endpoint} (status ${status}): check its role's credentials and region (${said})`),
        );
      }
      // Anything else SageMaker refuses is about the request (its size, its headers): the caller's
      // to fix, so a 4xx, never a 502 that counts towards the server-error alarms and rollbacks.
      if (status === 413) {
        return new InferenceError(
          413,
          `the request is too large for the SageMaker endpoint; it takes at most ${this.config.maxBodyBytes} bytes`,
          {},
          detail(`${endpoint}: ${said}`),
        );
      }
      const reason = redactAws(err.message ?? '');
      return new InferenceError(
        PASSED_CONTAINER_STATUSES.has(status) ? status : 400,
        `SageMaker refused the request (status ${status})${reason ? `: ${reason}` : ''}`,
        {},
        detail(`${endpoint}: ${said}`),
      );
    }
    // SageMaker's own 5xx.
    return new InferenceError(502, `SageMaker failed on this request (status ${status})`, {}, detail(`${endpoint}: ${said}`));
  }

  private endpoint(): string {
    return `SageMaker endpoint '${this.config.endpointName}'`;
  }
}

/** A message from SageMaker or a container without the server's own details, account ids included. */
function redactAws(message: string): string {
  return redactServerDetail(message).replace(/\b\d{12}\b/g, '…');
}

/** A model container's (or SageMaker's) 4xx statuses that mean the same at this API. */
const PASSED_CONTAINER_STATUSES: ReadonlySet<number> = new Set(SAGEMAKER_PASSED_CONTAINER_STATUSES);

/** AWS's errors about a call's credentials or signature, whatever status they come with (some with 400). */
const CREDENTIAL_ERRORS: ReadonlySet<string> = new Set([
  'UnrecognizedClientException',
  'InvalidSignatureException',
  'SignatureDoesNotMatch',
  'IncompleteSignature',
  'InvalidClientTokenId',
  'MissingAuthenticationToken',
  'ExpiredTokenException',
  'ExpiredToken',
  'RequestExpired',
]);

interface SdkError {
  readonly name?: string;
  readonly message?: string;
  readonly $metadata?: { readonly httpStatusCode?: number; readonly requestId?: string };
  readonly $response?: { readonly headers?: Record<string, string | undefined> };
  readonly OriginalStatusCode?: number;
  readonly OriginalMessage?: string;
  readonly LogStreamArn?: string;
}

/** SageMaker's own Retry-After, when it sends one in seconds. */
function retryAfterOf(err: SdkError): string | undefined {
  const headers = err.$response?.headers ?? {};
  const key = Object.keys(headers).find((k) => k.toLowerCase() === 'retry-after');
  const value = key ? headers[key]?.trim() : undefined;
  return value && /^\d+$/.test(value) ? value : undefined;
}

async function loadSdk(): Promise<SageMakerSdk> {
  const loaded = (await import('@aws-sdk/client-sagemaker-runtime')) as SageMakerSdk & { default?: SageMakerSdk };
  // As for the S3 client (s3-model.ts): a CommonJS build behind a dynamic import may expose its
  // named exports only as `default`.
  return typeof loaded.SageMakerRuntimeClient === 'function' ? loaded : loaded.default!;
}
