/**
 * Property-based tests of the bundled handler: generated requests, valid ones and ones broken in
 * every way the protocol allows, over every event shape. A broken request gets a 4xx with
 * {"error": message} naming what is wrong (never a 5xx, a throw or a hang), and a valid request
 * right after it still gets the reference's answer. The seed is fixed; fast-check prints the seed
 * and path of a failure, and RELIABILITY_SEED=<n> runs another one.
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { type EventOptions, functionUrlEvent, httpApiEvent, restEvent } from './support/events';
import { type Handler, handlerForModel } from './support/handler';
import { type BadRequest, badRequests, padTo } from './support/reliability-bad-requests';
import { type ModelUnderTest, answerMismatch, mlpUnderTest, multiIoUnderTest, render, validDraft } from './support/reliability-requests';

const SEED = Number(process.env.RELIABILITY_SEED ?? 20240607);
/** Small, so that bodies over the limit are cheap to make. */
const MAX_BODY_BYTES = 4096;
/** Far above any answer here (milliseconds): a handler waiting on something that never comes fails instead of hanging the run. */
const CALL_TIMEOUT_MS = 3000;

const EVENTS = { rest: restEvent, 'http-api': httpApiEvent, 'function-url': functionUrlEvent };
type EventKind = keyof typeof EVENTS;
const eventKind = fc.constantFrom(...(Object.keys(EVENTS) as EventKind[]));

/** Content types the README accepts for a JSON body ('' is a header without a value, undefined none at all). */
const ACCEPTED_TYPES = [undefined, 'application/json; charset=utf-8', 'application/vnd.kserve+json', 'APPLICATION/JSON', ''];

interface Sent {
  readonly text: string;
  readonly contentType?: string;
  readonly base64?: 'encode' | 'raw';
}

function httpEvent(kind: EventKind, sent: Sent, method: string, path: string) {
  const options: EventOptions = {
    headers: sent.contentType !== undefined ? { 'Content-Type': sent.contentType } : undefined,
    base64: sent.base64 === 'encode',
  };
  const event = EVENTS[kind](method, path, sent.text, options);
  return sent.base64 === 'raw' ? { ...event, isBase64Encoded: true } : event;
}

/** The handler's answer, or a failure saying that it did not come in time. */
async function bounded<T>(call: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${CALL_TIMEOUT_MS} ms`)), CALL_TIMEOUT_MS);
  });
  try {
    return await Promise.race([call, hang]);
  } finally {
    clearTimeout(timer);
  }
}

/** An HTTP answer as API Gateway takes it, with its body parsed. */
function answerOf(r: any): { status: number; body: any; text: string } {
  expect(typeof r?.statusCode).toBe('number');
  expect(typeof r.body).toBe('string');
  expect(r.headers['Content-Type']).toBe('application/json');
  return { status: r.statusCode, body: JSON.parse(r.body), text: r.body };
}

/** The parsed body of a request refused for what it says (not for its size, media type or encoding). */
function parsedBody(bad: BadRequest): { value: unknown } | undefined {
  if (bad.status !== 400 || bad.contentType !== undefined || bad.base64 !== undefined) return undefined;
  try {
    return { value: JSON.parse(bad.text) };
  } catch {
    return undefined;
  }
}

const models: ModelUnderTest[] = [mlpUnderTest(), multiIoUnderTest()];

describe.each(models)('generated requests to $name', (model) => {
  let handler: Handler;
  const infer = (kind: EventKind, sent: Sent) => bounded(handler(httpEvent(kind, sent, 'POST', `/v2/models/${model.name}/infer`))).then(answerOf);

  beforeAll(async () => {
    handler = await handlerForModel(model.bytes, { MODEL_NAME: model.name, MAX_BODY_BYTES: String(MAX_BODY_BYTES) });
  });

  it('answers every valid request with the reference’s answer, up to a body of exactly the limit', async () => {
    await fc.assert(
      fc.asyncProperty(validDraft(model), eventKind, fc.constantFrom(...ACCEPTED_TYPES), fc.boolean(), fc.boolean(), async (draft, kind, contentType, encode, padded) => {
        const text = JSON.stringify(render(model, draft));
        fc.pre(Buffer.byteLength(text) < MAX_BODY_BYTES - 64);
        const r = await infer(kind, { text: padded ? padTo(text, MAX_BODY_BYTES, 'é€😀') : text, contentType, base64: encode ? 'encode' : undefined });
        expect(answerMismatch(model, draft, r.status, r.text)).toBeUndefined();
      }),
      { seed: SEED, numRuns: 300 },
    );
  });

  it('refuses every broken request with a 4xx naming the problem, and answers a valid one right after', async () => {
    const valid = JSON.stringify(render(model, model.fixed));
    await fc.assert(
      fc.asyncProperty(badRequests(model, MAX_BODY_BYTES), eventKind, async (bad, kind) => {
        // Only the requests meant to be too large may be.
        fc.pre(bad.status === 413 || Buffer.byteLength(bad.text) <= MAX_BODY_BYTES);
        const r = await infer(kind, bad);
        expect(r.status, `${bad.what}: ${r.text}`).toBe(bad.status);
        expect(Object.keys(r.body)).toEqual(['error']);
        expect(r.body.error).toEqual(expect.any(String));
        expect(r.body.error.length).toBeGreaterThan(0);
        for (const m of bad.mentions) expect(r.body.error, bad.what).toContain(m);

        // The same body sent by direct invocation fails as a function error with the same message.
        const direct = parsedBody(bad);
        if (direct) {
          const failure = await bounded(
            handler(direct.value).then(
              () => undefined,
              (e: Error) => e,
            ),
          );
          expect(failure?.name, bad.what).toBe('InferenceRequestError');
          expect(failure?.message).toBe(`[${bad.status}] ${r.body.error}`);
        }

        const after = await infer('rest', { text: valid });
        expect(answerMismatch(model, model.fixed, after.status, after.text), `after ${bad.what}`).toBeUndefined();
      }),
      { seed: SEED, numRuns: 1000 },
    );
  });
});

describe('generated methods and paths', () => {
  const model = mlpUnderTest('scorer');
  let handler: Handler;
  beforeAll(async () => {
    handler = await handlerForModel(model.bytes, { MODEL_NAME: model.name });
  });

  const segment = fc.oneof(
    fc.constantFrom('v2', 'models', 'scorer', 'other', 'infer', 'ready', 'health', 'live', 'versions', '1', '2', '', 'prod', '%', '%zz', '%E0%A4%A', '%2F', '..', 'v2%2Fmodels'),
    fc.string({ maxLength: 6 }).map(encodeURIComponent),
  );
  const method = fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS', 'TRACE', 'get', 'post');

  it('answers any method and path with JSON, a 4xx {"error"} for what it does not serve, never a 5xx', async () => {
    const valid = JSON.stringify(render(model, model.fixed));
    await fc.assert(
      fc.asyncProperty(fc.array(segment, { maxLength: 7 }), method, eventKind, async (segments, verb, kind) => {
        const path = `/${segments.join('/')}`;
        const r = answerOf(await bounded(handler(httpEvent(kind, { text: valid }, verb, path))));
        expect(r.status, `${verb} ${path}: ${r.text}`).toBeLessThan(500);
        if (r.status >= 400) {
          expect(Object.keys(r.body)).toEqual(['error']);
          expect(r.body.error.length).toBeGreaterThan(0);
        } else if (r.body.outputs) {
          expect(answerMismatch(model, model.fixed, r.status, r.text)).toBeUndefined();
        }
      }),
      { seed: SEED, numRuns: 500 },
    );
  });
});
