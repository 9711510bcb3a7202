/**
 * The live side of `ShadowMode.SHADOW_FUNCTION`: once the answer is sent, an asynchronous `Invoke`
 * of the shadow function with what the live model was asked (after `preprocess`), its answer
 * flattened for the comparison, and the capture record, which the shadow function completes with
 * its own answer and writes. The event must fit an asynchronous payload (1 MB).
 */
import { ASYNC_INVOKE_MAX_PAYLOAD_BYTES, SHADOW_EVENT_KEY } from '../../../contract/capture';
import type { CaptureRecord } from '../capture/capture-record';
import { sample } from '../capture/data-capture';
import type { ObservedAnswer } from '../capture/observer';
import { type Flat, flattenAnswer } from './agreement';

/** What the shadow function gets. */
export interface ShadowEvent {
  /** The backend request's body (after `preprocess`) and its binary tensor data, in base64. */
  readonly request: { readonly body: unknown; readonly binary?: string };
  /** The live answer, flattened. */
  readonly live: Record<string, Flat>;
  readonly liveInferenceMs: number;
  /** The capture record, without the shadow's part. */
  readonly record: CaptureRecord;
}

type LambdaSdk = typeof import('@aws-sdk/client-lambda');

/** How long the `Invoke` may take, its retry included, unless the invocation's time left is shorter. */
const INVOKE_TIMEOUT_MS = 3_000;

export class RemoteShadow {
  private client?: Promise<{ sdk: LambdaSdk; client: InstanceType<LambdaSdk['LambdaClient']> }>;

  constructor(
    private readonly functionName: string,
    private readonly samplingPercent: number,
  ) {}

  sampled(): boolean {
    return sample(this.samplingPercent);
  }

  /** Sends the shadow function its event; rejects when it could not. */
  async send(answer: ObservedAnswer, record: CaptureRecord, deadline: number | undefined): Promise<void> {
    const event: ShadowEvent = {
      request: { body: answer.live.request.body, ...(answer.live.request.binary ? { binary: answer.live.request.binary.toString('base64') } : {}) },
      live: flattenAnswer(answer.live.response),
      liveInferenceMs: answer.live.inferenceMs,
      record,
    };
    const payload = Buffer.from(JSON.stringify({ [SHADOW_EVENT_KEY]: event }), 'utf8');
    if (payload.length > ASYNC_INVOKE_MAX_PAYLOAD_BYTES) {
      throw new Error(`the shadow event is ${payload.length} bytes, over the ${ASYNC_INVOKE_MAX_PAYLOAD_BYTES} bytes of an asynchronous invocation`);
    }
    this.client ??= loadLambda().then((sdk) => ({
      sdk,
      // The SDK reads AWS_REGION and AWS_ENDPOINT_URL_LAMBDA / AWS_ENDPOINT_URL itself.
      client: new sdk.LambdaClient({ maxAttempts: 2, requestHandler: { connectionTimeout: 1_000, requestTimeout: INVOKE_TIMEOUT_MS } }),
    }));
    const { sdk, client } = await this.client.catch((e) => {
      this.client = undefined;
      throw e;
    });
    const ms = Math.min(INVOKE_TIMEOUT_MS, deadline === undefined ? INVOKE_TIMEOUT_MS : deadline - Date.now());
    if (ms <= 0) throw new Error('no time was left in the invocation to invoke the shadow function');
    await client.send(new sdk.InvokeCommand({ FunctionName: this.functionName, InvocationType: 'Event', Payload: payload }), { abortSignal: AbortSignal.timeout(ms) });
  }
}

async function loadLambda(): Promise<LambdaSdk> {
  const loaded = (await import('@aws-sdk/client-lambda')) as LambdaSdk & { default?: LambdaSdk };
  return typeof loaded.LambdaClient === 'function' ? loaded : loaded.default!;
}
