/**
 * Property-based tests of the bundled handler: generated requests, valid ones and ones broken in
 * every way the protocol allows, over every event shape. A broken request gets a 4xx with
 * {"error": message} naming what is wrong (never a 5xx, a throw or a hang), and a valid request
 * right after it still gets the reference's answer. Among them: values nested past the limit
 * anywhere in the body, names every object inherits (`toString`, `__proto__`...) as values, names,
 * fields and path segments, and requests to a model whose output's size comes from their values.
 * The seed is fixed; fast-check prints the seed and path of a failure, and RELIABILITY_SEED=<n>
 * runs another one.
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { type EventOptions, functionUrlEvent, httpApiEvent, restEvent } from '../../../fixtures/events';
import { type Handler, handlerForModel } from '../../support/handler';
import { type BadRequest, badRequests, padTo } from '../../support/reliability-bad-requests';
import { INHERITED_NAMES, type ModelUnderTest, answerMismatch, mlpUnderTest, multiIoUnderTest, render, validDraft } from '../../support/reliability-requests';
import { constantOfShapeModel } from '../../../tools/onnx';

const SEED = Number(process.env.RELIABILITY_SEED ?? 20240607);
/** Small, so that bodies over the limit are cheap to make. */
const MAX_BODY_BYTES = 4096;
/** Far above any answer here (milliseconds): a handler waiting on something that never comes fails instead of hanging the run. */
const CALL_TIMEOUT_MS = 3000;

const EVENTS = { rest: restEvent, 'http-api': httpApiEvent, 'function-url': functionUrlEvent };
type EventKind = keyof typeof EVENTS;
const eventKind = fc.constantFrom(...(Object.keys(EVENTS) as EventKind[]));

/** Content types docs/protocol.md accepts for a JSON body ('' is a header without a value, undefined none at all). */
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
    fc.constantFrom(
      'v2',
      'models',
      'scorer',
      'other',
      'infer',
      'ready',
      'health',
      'live',
      'versions',
      '1',
      '2',
      '',
      'prod',
      '%',
      '%zz',
      '%E0%A4%A',
      '%2F',
      '..',
      'v2%2Fmodels',
      ...INHERITED_NAMES,
    ),
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

describe('generated requests to a model whose output is as large as their values say', () => {
  const model = constantOfShapeModel({ value: 1.5 });
  /** Small, so that answers over it are cheap to make: 2048 values at the very least. */
  const MAX_RESPONSE_BYTES = 4096;
  const INT64_MAX = 2n ** 63n - 1n;
  let handler: Handler;
  beforeAll(async () => {
    handler = await handlerForModel(model.bytes, { MODEL_NAME: 'fill', MAX_RESPONSE_BYTES: String(MAX_RESPONSE_BYTES) });
  });

  /** Dimensions: mostly small, some negative, some at int64's extremes (sent as decimal strings). */
  const dim = fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom(0n, 1n, 2n, 3n, 5n, 10n, 32n, 100n, 1000n) },
    { weight: 1, arbitrary: fc.constantFrom(-1n, -2n, -1000n, -(2n ** 63n)) },
    { weight: 1, arbitrary: fc.constantFrom(2n ** 40n, 2n ** 61n, 2n ** 62n, INT64_MAX) },
  );

  /**
   * What onnxruntime makes of the dimensions: a negative one is refused; a product (taken in order,
   * as it does) past int64, or a byte size past it, overflows; a size it would have to allocate
   * between a million values and that is left out (whether it fits depends on the machine's memory).
   */
  function outcome(dims: readonly bigint[]): 'refused' | 'overflow' | 'memory' | 'unreturnable' | { count: number } {
    if (dims.some((d) => d < 0n)) return 'refused';
    let product = 1n;
    for (const d of dims) {
      product *= d;
      if (product > INT64_MAX) return 'overflow';
    }
    if (product * 4n > INT64_MAX) return 'overflow';
    if (product > 1_000_000n) return 'memory';
    // An empty answer with a dimension JavaScript cannot hold exactly: onnxruntime-node cannot return it.
    return dims.some((d) => d >= 2n ** 53n) ? 'unreturnable' : { count: Number(product) };
  }

  it('answers each with its values, or a 422 that says why (the model refused them, or the answer is too large), never a 5xx; then the next request', async () => {
    const json = (d: bigint) => (d >= -(2n ** 53n) && d <= 2n ** 53n ? String(d) : `"${d}"`);
    await fc.assert(
      fc.asyncProperty(fc.array(dim, { maxLength: 4 }), eventKind, async (dims, kind) => {
        const expected = outcome(dims);
        fc.pre(expected !== 'memory');
        const text = `{"inputs":[{"name":"shape","datatype":"INT64","shape":[${dims.length}],"data":[${dims.map(json).join(',')}]}]}`;
        const r = await bounded(handler(httpEvent(kind, { text }, 'POST', '/v2/models/fill/infer'))).then(answerOf);
        const what = `[${dims.join(',')}]: ${r.text.slice(0, 300)}`;
        if (expected === 'refused' || expected === 'overflow') {
          expect(r.status, what).toBe(422);
          expect(r.body.error, what).toMatch(/^the model cannot compute an answer from the values of input 'shape': its ConstantOfShape node refused them/);
          expect(r.body.error, what).not.toMatch(/onnxruntime_src|\.(cc|h):\d+/);
        } else if (expected === 'unreturnable') {
          expect(r.status, what).toBe(422);
          expect(r.body.error, what).toMatch(/^the model's answer to the values of input 'shape' has a dimension past 2\^53/);
        } else if (expected.count * 2 > MAX_RESPONSE_BYTES) {
          // Refused on the count alone, before a value of the answer is written.
          expect(r.status, what).toBe(422);
          expect(r.body.error, what).toMatch(/^the answer has at least \d+ bytes of JSON \(output 'filled' \[[\d,]*\]\), over the response limit of 4096 bytes/);
        } else if (r.status === 422) {
          // Few enough values, but written out they are over the limit: the values' JSON counted
          // before the answer is built, or the answer's writing stopped at the limit.
          expect(expected.count * 4, what).toBeGreaterThan(MAX_RESPONSE_BYTES - 400);
          expect(r.body.error, what).toMatch(/^the answer (has at least \d+ bytes of JSON \(output 'filled' \[[\d,]*\]\), over|takes more than) the response limit of 4096 bytes/);
        } else {
          expect(r.status, what).toBe(200);
          expect(r.body.outputs[0].shape, what).toEqual(dims.map(Number));
          expect(r.body.outputs[0].data, what).toEqual(new Array(expected.count).fill(model.value));
          expect(Buffer.byteLength(r.text)).toBeLessThanOrEqual(MAX_RESPONSE_BYTES);
        }
        const after = await bounded(
          handler(httpEvent('rest', { text: '{"inputs":[{"name":"shape","datatype":"INT64","shape":[2],"data":[2,3]}]}' }, 'POST', '/v2/models/fill/infer')),
        ).then(answerOf);
        expect(after.status, `after ${what}`).toBe(200);
        expect(after.body.outputs[0].data).toEqual(new Array(6).fill(model.value));
      }),
      { seed: SEED, numRuns: 400 },
    );
  });
});
