/**
 * The SageMaker proxy handler, as bundled, with the real SageMaker Runtime client talking to a local
 * stand-in for InvokeEndpoint (tools/local-sagemaker.ts). The SDK finds the stand-in through
 * AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME, as it would find any endpoint override on Lambda.
 */
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { endpointNotFound, type InvocationAnswer, modelError, sageMakerError, startLocalSageMaker, type LocalSageMaker } from '../../tools/local-sagemaker';
import { call, functionUrlEvent, httpApiEvent, infer, restEvent } from '../../fixtures/events';
import { type Handler, importCoreBundle } from '../support/handler';
import { logged, withLogLevel } from '../support/logs';
import { loadedText } from '../support/bundle-text';
import { bundleUserEntry } from '../support/user-entry';

const ROOT = path.resolve(__dirname, '../..');
const HANDLERS = path.join(ROOT, 'assets', 'handlers');
const ENDPOINT = 'iris-endpoint';
const MODEL = 'iris';

let sm: LocalSageMaker;

beforeAll(async () => {
  sm = await startLocalSageMaker();
  Object.assign(process.env, sm.env());
});

afterAll(async () => {
  await sm?.stop();
});

/** The bundled core's proxy, configured by `env` as the construct configures the function. */
async function proxy(env: Record<string, string> = {}): Promise<Handler> {
  const { createSageMakerProxyHandler } = await importCoreBundle();
  return createSageMakerProxyHandler({ env: { SAGEMAKER_ENDPOINT_NAME: ENDPOINT, MODEL_NAME: MODEL, ...env } });
}

/** The proxy with its logger on, for tests that read what it logs. */
function loggingProxy(env: Record<string, string> = {}): Promise<Handler> {
  return withLogLevel(() => proxy(env), 'WARN');
}

/**
 * An infer request's answer, and what was logged of its failure: what the operator needs (the
 * endpoint's name, ARNs, SageMaker's request id and words) is there, never in the answer.
 */
async function inferLogged(handler: Handler, body: unknown = OIP_REQUEST) {
  const { result: r, logs } = await logged(() => infer(handler, body, MODEL));
  const failure = logs.find((l) => l.message === 'request failed' || l.message === 'request refused');
  return { r, failure, detail: String(failure?.detail ?? '') };
}

/** Nothing of the operator's in an answer: the endpoint's name, an ARN, an account id, SageMaker's request id. */
function expectNoInternals(text: string) {
  expect(text).not.toContain(ENDPOINT);
  expect(text).not.toMatch(/arn:aws|123456789012|log-group|SageMaker request id/);
}

const OIP_REQUEST = { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [5.1, 3.5, 1.4, 0.2] }] };
const OIP_ANSWER = { model_name: MODEL, outputs: [{ name: 'probabilities', shape: [1, 3], datatype: 'FP32', data: [0.9, 0.07, 0.03] }] };

describe('forwarding to the endpoint', () => {
  it('sends the body exactly as it came, signed, to the configured endpoint, and answers the JSON it returns', async () => {
    // Spacing and a 64-bit integer past 2^53 survive only if nothing parses and re-serialises the text.
    const sent = '{ "inputs": [ {"name": "ids", "shape": [1], "datatype": "INT64", "data": [9007199254740993]} ], "id": "r-1" }';
    const returned = '{"model_name":"iris","id":"r-1","outputs":[{"name":"next","shape":[1],"datatype":"INT64","data":[9007199254740995]}]}';
    sm.respondWith(() => ({ body: returned }));
    const handler = await proxy();

    const r = await call(handler, restEvent('POST', `/v2/models/${MODEL}/infer`, sent));

    expect(r.status, r.text).toBe(200);
    expect(r.text).toBe(returned);
    expect(r.headers['Content-Type']).toBe('application/json');
    expect(sm.requests).toHaveLength(1);
    const seen = sm.requests[0];
    expect(seen.method).toBe('POST');
    expect(seen.path).toBe(`/endpoints/${ENDPOINT}/invocations`);
    expect(seen.text).toBe(sent);
    expect(seen.headers['content-type']).toBe('application/json');
    expect(seen.headers.accept).toBe('application/json');
    expect(seen.headers.authorization).toMatch(
      new RegExp(`^AWS4-HMAC-SHA256 Credential=${sm.env().AWS_ACCESS_KEY_ID}/\\d{8}/${sm.env().AWS_REGION}/sagemaker/aws4_request, SignedHeaders=\\S+, Signature=[0-9a-f]{64}$`),
    );
  });

  it('passes the instances form through as it is', async () => {
    const request = {
      instances: [
        [5.1, 3.5, 1.4, 0.2],
        [6.7, 3.0, 5.2, 2.3],
      ],
    };
    const predictions = {
      predictions: [
        [0.9, 0.07, 0.03],
        [0.01, 0.1, 0.89],
      ],
    };
    sm.respondWith(() => ({ body: predictions }));
    const handler = await proxy();

    const r = await infer(handler, request, MODEL);

    expect(r.status, r.text).toBe(200);
    expect(r.body).toEqual(predictions);
    expect(JSON.parse(sm.requests[0].text)).toEqual(request);
  });

  it('sends the configured content type and accept header', async () => {
    sm.respondWith(() => ({ body: OIP_ANSWER, contentType: 'application/vnd.kserve+json; charset=utf-8' }));
    const handler = await proxy({ SAGEMAKER_CONTENT_TYPE: 'application/jsonlines', SAGEMAKER_ACCEPT: 'application/vnd.kserve+json' });

    const r = await infer(handler, OIP_REQUEST, MODEL);

    expect(r.status, r.text).toBe(200);
    expect(r.body).toEqual(OIP_ANSWER);
    expect(sm.requests[0].headers['content-type']).toBe('application/jsonlines');
    expect(sm.requests[0].headers.accept).toBe('application/vnd.kserve+json');
  });

  it('serves the versions route, and refuses another model name without calling the endpoint', async () => {
    sm.respondWith(() => ({ body: OIP_ANSWER }));
    const handler = await proxy({ MODEL_VERSION: '3' });

    const versioned = await call(handler, restEvent('POST', `/v2/models/${MODEL}/versions/3/infer`, OIP_REQUEST));
    expect(versioned.status, versioned.text).toBe(200);
    expect(sm.requests).toHaveLength(1);

    const other = await call(handler, restEvent('POST', '/v2/models/other/infer', OIP_REQUEST));
    expect(other.status).toBe(404);
    expect(sm.requests).toHaveLength(1);
  });

  it('answers the same through a REST API, an HTTP API stage, a Function URL and a direct invocation', async () => {
    sm.respondWith(() => ({ body: OIP_ANSWER }));
    const handler = await proxy();
    const text = JSON.stringify(OIP_REQUEST);

    const rest = await call(handler, restEvent('POST', `/v2/models/${MODEL}/infer`, text));
    const httpApi = await call(handler, httpApiEvent('POST', `/prod/v2/models/${MODEL}/infer`, text));
    const url = await call(handler, functionUrlEvent('POST', `/v2/models/${MODEL}/infer`, text, { base64: true }));
    const direct = await handler(OIP_REQUEST);

    for (const r of [rest, httpApi, url]) {
      expect(r.status, r.text).toBe(200);
      expect(r.body).toEqual(OIP_ANSWER);
    }
    expect(direct).toEqual(OIP_ANSWER);
    expect(sm.requests.map((s) => s.text)).toEqual([text, text, text, text]);
  });

  it('throws a direct invocation failure as a function error with the status; the cause is in the log', async () => {
    sm.respondWith(() => modelError(ENDPOINT, 500, 'CUDA out of memory'));
    const handler = await loggingProxy();

    const { result: failure, logs } = await logged(() =>
      handler(OIP_REQUEST, { awsRequestId: 'direct-id' }).then(
        () => undefined,
        (e: Error) => e,
      ),
    );

    expect(failure?.name).toBe('InferenceServerError');
    expect(failure?.message).toBe('[502] the model container failed on this request (status 500) (request id direct-id)');
    expect(logs.find((l) => l.message === 'request failed')).toMatchObject({ requestId: 'direct-id', detail: expect.stringContaining('CUDA out of memory') });
  });
});

describe('requests refused before the endpoint', () => {
  it.each([
    ['malformed JSON', '{"inputs": [', {}, 400, /not valid JSON/],
    ['an array', '[1, 2, 3]', {}, 400, /must be a JSON object/],
    ['a string', '"hello"', {}, 400, /must be a JSON object/],
    ['no body', undefined, {}, 400, /has no body/],
    ['a form that is not JSON', 'a=1', { 'Content-Type': 'application/x-www-form-urlencoded' }, 415, /this body is not JSON; send the request as application\/json/],
    [
      'binary tensor data, which the proxy does not read',
      '{"inputs":[]}',
      { 'Content-Type': 'application/octet-stream', 'Inference-Header-Content-Length': '13' },
      415,
      /binary tensor data extension is not supported/,
    ],
    ['too large a body', JSON.stringify({ instances: [Array(40).fill(1)] }), {}, 413, /limit is 64 bytes/],
  ] as const)('answers %s without calling SageMaker', async (_what, body, headers, status, message) => {
    sm.respondWith(() => ({ body: OIP_ANSWER }));
    const handler = await proxy({ MAX_BODY_BYTES: '64' });

    const r = await call(handler, restEvent('POST', `/v2/models/${MODEL}/infer`, body, { headers }));

    expect(r.status, r.text).toBe(status);
    expect(r.body.error).toMatch(message);
    expect(sm.requests).toHaveLength(0);
  });

  it('answers warm-up, readiness, liveness and metadata without calling SageMaker', async () => {
    sm.respondWith(() => ({ body: OIP_ANSWER }));
    const handler = await proxy({ MODEL_VERSION: '7' });

    const warm = await handler({ source: 'cdk-serverless-inference.warmer', holdMs: 0 });
    const ready = await call(handler, restEvent('GET', '/v2/health/ready'));
    const modelReady = await call(handler, restEvent('GET', `/v2/models/${MODEL}/ready`));
    const live = await call(handler, restEvent('GET', '/v2/health/live'));
    const metadata = await call(handler, restEvent('GET', `/v2/models/${MODEL}`));

    expect(warm).toMatchObject({ warmed: true, modelReady: true });
    expect(warm.error).toBeUndefined();
    expect([ready.status, modelReady.status, live.status]).toEqual([200, 200, 200]);
    expect(modelReady.body).toEqual({ name: MODEL, ready: true });
    expect(metadata.body).toEqual({ name: MODEL, versions: ['7'], platform: 'sagemaker', inputs: [], outputs: [] });
    expect(sm.requests).toHaveLength(0);
  });
});

describe('SageMaker failures', () => {
  it("answers a container's refusal (ModelError, 4xx) with its status and reason; its log stream and SageMaker's request id go to the log", async () => {
    sm.respondWith(() => modelError(ENDPOINT, 400, 'shape [1,3] does not match [1,4] in /opt/ml/model/code/inference.py:42'));
    const handler = await loggingProxy();

    const { r, failure, detail } = await inferLogged(handler);

    // The caller's request was refused by the model: a 4xx, never a 5xx the caller could cause at will.
    expect(r.status).toBe(400);
    expect(sm.requests).toHaveLength(1);
    expect(r.body.error).toBe('the model refused the request (status 400): shape [1,3] does not match [1,4] in … (request id rest-request-id)');
    expectNoInternals(r.text);
    expect(failure).toMatchObject({ level: 'WARN', requestId: 'rest-request-id', status: 400 });
    expect(detail).toContain(`endpoint '${ENDPOINT}'`);
    expect(detail).toContain('/opt/ml/model/code/inference.py:42');
    expect(detail).toContain(sm.requests[0].requestId);
    expect(detail).toContain(`log-group:/aws/sagemaker/Endpoints/${ENDPOINT}`);
  });

  it("answers a container's own failure (ModelError, 5xx) with 502 and the request id; the rest goes to the log", async () => {
    sm.respondWith(() => modelError(ENDPOINT, 500, 'Traceback (most recent call last): File "/opt/ml/model/code/inference.py"'));
    const handler = await loggingProxy();

    const { r, failure, detail } = await inferLogged(handler);

    expect(r.status).toBe(502);
    expect(sm.requests).toHaveLength(1);
    expect(r.body.error).toBe('the model container failed on this request (status 500) (request id rest-request-id)');
    expectNoInternals(r.text);
    expect(failure).toMatchObject({ level: 'ERROR', requestId: 'rest-request-id', status: 502 });
    expect(detail).toContain('Traceback');
    expect(detail).toContain(sm.requests[0].requestId);
    expect(detail).toContain(`container logs: arn:aws:logs:`);
  });

  it('answers a model that is not ready with 503, after the one retry', async () => {
    sm.respondWith(() => sageMakerError('ModelNotReadyException', 429, 'Model iris is still loading'));
    const handler = await loggingProxy();

    const { r, detail } = await inferLogged(handler);

    expect(r.status).toBe(503);
    expect(r.body.error).toBe('the SageMaker endpoint is not ready to serve; retry later (request id rest-request-id)');
    expect(detail).toContain('Model iris is still loading');
    expect(sm.requests).toHaveLength(2);
  });

  it('retries a throttled call once and answers the retry', async () => {
    sm.respondWith((_invocation, attempt) => (attempt === 0 ? sageMakerError('ThrottlingException', 400, 'Rate exceeded') : { body: OIP_ANSWER }));
    const handler = await proxy();

    const r = await infer(handler, OIP_REQUEST, MODEL);

    expect(r.status, r.text).toBe(200);
    expect(r.body).toEqual(OIP_ANSWER);
    expect(sm.requests).toHaveLength(2);
    expect(sm.requests[1].text).toBe(sm.requests[0].text);
  });

  it('answers throttling that outlasts the retries with 429 and Retry-After', async () => {
    sm.respondWith(() => sageMakerError('ThrottlingException', 400, 'Rate exceeded'));
    const handler = await loggingProxy();

    const { r, detail } = await inferLogged(handler);

    expect(r.status).toBe(429);
    expect(r.headers['Retry-After']).toBe('1');
    expect(r.body.error).toBe('the SageMaker endpoint is throttling requests; retry later (request id rest-request-id)');
    expect(detail).toContain('Rate exceeded');
    expect(sm.requests).toHaveLength(2);
  });

  it("passes SageMaker's own Retry-After on, and makes as many attempts as SAGEMAKER_MAX_ATTEMPTS says", async () => {
    sm.respondWith(() => ({ ...sageMakerError('ThrottlingException', 400, 'Rate exceeded'), headers: { 'x-amzn-ErrorType': 'ThrottlingException', 'Retry-After': '7' } }));
    const once = await proxy({ SAGEMAKER_MAX_ATTEMPTS: '1' });

    const r = await infer(once, OIP_REQUEST, MODEL);

    expect(r.status).toBe(429);
    expect(r.headers['Retry-After']).toBe('7');
    expect(sm.requests).toHaveLength(1);

    sm.respondWith(() => sageMakerError('InternalFailure', 500, 'internal failure'));
    const thrice = await proxy({ SAGEMAKER_MAX_ATTEMPTS: '3' });
    const s = await infer(thrice, OIP_REQUEST, MODEL);
    expect(s.status).toBe(502);
    expect(sm.requests).toHaveLength(3);
  });

  it("answers SageMaker's own 500 with 502 after the one retry, and ServiceUnavailable with 503", async () => {
    sm.respondWith(() => sageMakerError('InternalFailure', 500, 'An internal failure occurred'));
    const handler = await loggingProxy();

    const { r, detail } = await inferLogged(handler);
    expect(r.status).toBe(502);
    expect(r.body.error).toBe('SageMaker failed on this request (status 500) (request id rest-request-id)');
    expect(detail).toContain('An internal failure occurred');
    expect(detail).toContain(sm.requests[1].requestId);
    expect(sm.requests).toHaveLength(2);

    sm.respondWith(() => sageMakerError('ServiceUnavailable', 503, 'Service is unavailable'));
    const u = await inferLogged(handler);
    expect(u.r.status).toBe(503);
    expect(u.r.body.error).toBe('SageMaker is unavailable; retry later (request id rest-request-id)');
    expect(u.detail).toContain('Service is unavailable');
  });

  it("answers a ValidationError with 400 and SageMaker's message", async () => {
    sm.respondWith(() => sageMakerError('ValidationError', 400, 'Received payload size 7000000 exceeds the maximum of 6291456 bytes'));
    const handler = await proxy();

    const r = await infer(handler, OIP_REQUEST, MODEL);

    expect(r.status).toBe(400);
    expect(r.body.error).toContain('Received payload size 7000000 exceeds the maximum of 6291456 bytes');
    expect(sm.requests).toHaveLength(1);
  });

  it('answers a missing endpoint as the function’s misconfiguration: a 500, its log naming the endpoint and the variable', async () => {
    sm.respondWith((invocation) => endpointNotFound(invocation.endpointName!));
    const handler = await loggingProxy({ SAGEMAKER_ENDPOINT_NAME: 'no-such-endpoint' });

    const { r, detail } = await inferLogged(handler);

    expect(r.status).toBe(500);
    expect(r.body.error).toBe('the SageMaker endpoint this function invokes does not exist (request id rest-request-id)');
    expect(r.text).not.toContain('no-such-endpoint');
    expect(detail).toContain("'no-such-endpoint'");
    expect(detail).toContain('SAGEMAKER_ENDPOINT_NAME');
    expect(sm.requests[0].path).toBe('/endpoints/no-such-endpoint/invocations');
  });

  it('answers a refused permission with a 500, its log naming sagemaker:InvokeEndpoint', async () => {
    sm.respondWith(() => sageMakerError('AccessDeniedException', 400, `User: arn:aws:sts::123456789012:assumed-role/fn/fn is not authorized to perform: sagemaker:InvokeEndpoint`));
    const handler = await loggingProxy();

    const { r, detail } = await inferLogged(handler);

    expect(r.status).toBe(500);
    expect(r.body.error).toBe('this function may not invoke its SageMaker endpoint (request id rest-request-id)');
    expectNoInternals(r.text);
    expect(detail).toMatch(/may not invoke SageMaker endpoint 'iris-endpoint': its role needs sagemaker:InvokeEndpoint/);
    expect(detail).toContain('arn:aws:sts::123456789012:assumed-role/fn/fn');
    expect(sm.requests).toHaveLength(1);
  });

  it('answers a slow endpoint with 504 once SAGEMAKER_TIMEOUT_MS has passed, and hangs up', async () => {
    sm.respondWith(() => ({ body: OIP_ANSWER, delayMs: 5_000 }));
    const handler = await loggingProxy({ SAGEMAKER_TIMEOUT_MS: '400' });

    const started = Date.now();
    const { r, detail } = await inferLogged(handler);
    const elapsed = Date.now() - started;

    expect(r.status).toBe(504);
    expect(r.body.error).toBe('the SageMaker endpoint did not answer in time (request id rest-request-id)');
    expect(detail).toMatch(/did not answer within 400 ms \(SAGEMAKER_TIMEOUT_MS\)/);
    expect(elapsed).toBeGreaterThanOrEqual(390);
    expect(elapsed).toBeLessThan(2_000);
    // A timed-out attempt has used the budget: no retry.
    expect(sm.requests).toHaveLength(1);
    await vi.waitFor(() => expect(sm.requests[0].abandoned).toBe(true));
  });

  it('keeps a retry within the same budget', async () => {
    sm.respondWith((_invocation, attempt) => (attempt === 0 ? sageMakerError('ThrottlingException', 400, 'Rate exceeded') : { body: OIP_ANSWER, delayMs: 5_000 }));
    // Above the SDK's largest first throttling back-off (1 s), so the retry starts.
    const handler = await proxy({ SAGEMAKER_TIMEOUT_MS: '1500' });

    const started = Date.now();
    const r = await infer(handler, OIP_REQUEST, MODEL);
    const elapsed = Date.now() - started;

    expect(r.status).toBe(504);
    expect(sm.requests).toHaveLength(2);
    expect(elapsed).toBeLessThan(2_500);
  });

  it('answers a non-JSON answer, or broken JSON, with 502; the log names what came', async () => {
    sm.respondWith(() => ({ body: '0.9,0.07,0.03\n', contentType: 'text/csv' }));
    const handler = await loggingProxy();

    const csv = await inferLogged(handler);
    expect(csv.r.status).toBe(502);
    expect(csv.r.body.error).toBe('the SageMaker endpoint answered something other than JSON (request id rest-request-id)');
    expect(csv.detail).toContain('Content-Type text/csv');

    sm.respondWith(() => ({ body: '{"outputs": [', contentType: 'application/json' }));
    const broken = await inferLogged(handler);
    expect(broken.r.status).toBe(502);
    expect(broken.r.body.error).toBe('the SageMaker endpoint answered invalid JSON (request id rest-request-id)');
    expect(broken.detail).toMatch(/answered invalid JSON/);
  });

  it('answers an unreachable SageMaker with 502', async () => {
    const down = await startLocalSageMaker();
    const url = down.url;
    await down.stop();
    process.env.AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME = url;
    try {
      const handler = await loggingProxy({ SAGEMAKER_MAX_ATTEMPTS: '1' });
      const { r, detail } = await inferLogged(handler);
      expect(r.status).toBe(502);
      expect(r.body.error).toBe('cannot call SageMaker (request id rest-request-id)');
      expect(detail).toMatch(/ECONNREFUSED/);
    } finally {
      process.env.AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME = sm.url;
    }
  });
});

describe("SageMaker's request headers, and its limits", () => {
  const HEADERS = {
    'X-Amzn-SageMaker-Custom-Attributes': 'accept_eula=true; trace=r-42',
    'X-Amzn-SageMaker-Target-Model': 'iris/v2/model.tar.gz',
    'X-Amzn-SageMaker-Target-Variant': 'Canary-2',
    'X-Amzn-SageMaker-Inference-Id': 'caller-7f3a',
  };

  it('passes the caller’s X-Amzn-SageMaker-* headers to InvokeEndpoint, signed, from a REST API and an HTTP API', async () => {
    sm.respondWith(() => ({ body: OIP_ANSWER }));
    const handler = await proxy();

    const rest = await infer(handler, OIP_REQUEST, MODEL, { headers: { ...HEADERS, 'X-Amzn-SageMaker-Target-Container-Hostname': 'other' } });
    const httpApi = await call(handler, httpApiEvent('POST', `/v2/models/${MODEL}/infer`, OIP_REQUEST, { headers: HEADERS }));

    expect([rest.status, httpApi.status]).toEqual([200, 200]);
    expect(sm.requests).toHaveLength(2);
    for (const seen of sm.requests) {
      expect(seen.headers).toMatchObject({
        'x-amzn-sagemaker-custom-attributes': HEADERS['X-Amzn-SageMaker-Custom-Attributes'],
        'x-amzn-sagemaker-target-model': HEADERS['X-Amzn-SageMaker-Target-Model'],
        'x-amzn-sagemaker-target-variant': HEADERS['X-Amzn-SageMaker-Target-Variant'],
        'x-amzn-sagemaker-inference-id': HEADERS['X-Amzn-SageMaker-Inference-Id'],
      });
      // Only the four a caller may set.
      expect(seen.headers['x-amzn-sagemaker-target-container-hostname']).toBeUndefined();
      // Signed with the rest, so SageMaker takes them.
      expect(seen.headers.authorization).toContain('x-amzn-sagemaker-target-model');
    }
  });

  it('sends none when the caller sets none, or when the request is a direct invocation', async () => {
    sm.respondWith(() => ({ body: OIP_ANSWER }));
    const handler = await proxy();

    await infer(handler, OIP_REQUEST, MODEL);
    await handler(OIP_REQUEST);

    expect(sm.requests).toHaveLength(2);
    for (const seen of sm.requests) expect(Object.keys(seen.headers).filter((h) => h.startsWith('x-amzn-sagemaker-'))).toEqual([]);
  });

  it.each([
    [
      'a variant that is no variant name',
      'X-Amzn-SageMaker-Target-Variant',
      'blue_green',
      /X-Amzn-SageMaker-Target-Variant header must be a production variant name \(letters, digits and hyphens\), at most 63 characters, got: "blue_green"/,
    ],
    ['a variant name over 63 characters', 'X-Amzn-SageMaker-Target-Variant', 'v'.repeat(64), /X-Amzn-SageMaker-Target-Variant header/],
    [
      'a model path starting with a space',
      'X-Amzn-SageMaker-Target-Model',
      ' iris.tar.gz',
      /X-Amzn-SageMaker-Target-Model header must be printable ASCII characters, the first not a space, at most 1024 characters/,
    ],
    ['a model path over 1024 characters', 'X-Amzn-SageMaker-Target-Model', `m/${'x'.repeat(1023)}`, /Target-Model header .* \(1025 characters\)/],
    ['an inference id over 64 characters', 'X-Amzn-SageMaker-Inference-Id', 'i'.repeat(65), /X-Amzn-SageMaker-Inference-Id header must be .*, at most 64 characters/],
    [
      'custom attributes that are not ASCII',
      'X-Amzn-SageMaker-Custom-Attributes',
      'langue=français',
      /X-Amzn-SageMaker-Custom-Attributes header must be printable ASCII characters, at most 1024 characters, got: "langue=français"/,
    ],
  ])('answers %s with a 400 naming the header, without calling SageMaker', async (_what, header, value, message) => {
    sm.respondWith(() => ({ body: OIP_ANSWER }));
    const handler = await proxy();

    const r = await infer(handler, OIP_REQUEST, MODEL, { headers: { [header]: value } });

    expect(r.status, r.text).toBe(400);
    expect(r.body.error).toMatch(message);
    expect(sm.requests).toHaveLength(0);
  });

  it('refuses with a 413 naming the limit a request over the endpoint’s size that preprocess made, without calling SageMaker', async () => {
    sm.respondWith(() => ({ body: OIP_ANSWER }));
    const { createSageMakerProxyHandler } = await importCoreBundle();
    const handler: Handler = await createSageMakerProxyHandler({
      env: { SAGEMAKER_ENDPOINT_NAME: ENDPOINT, MODEL_NAME: MODEL, MAX_BODY_BYTES: '1000' },
      hooks: { preprocess: (body: { measurements: number[] }) => ({ instances: Array(200).fill(body.measurements) }) },
    });

    const r = await infer(handler, { measurements: [5.1, 3.5, 1.4, 0.2] }, MODEL);

    expect(r.status, r.text).toBe(413);
    expect(r.body.error).toMatch(/^the request for the SageMaker endpoint is \d{4,} bytes; the endpoint takes at most 1000 bytes$/);
    expect(sm.requests).toHaveLength(0);
  });

  it.each<[string, () => InvocationAnswer, number, RegExp]>([
    [
      "SageMaker's own 413, with no error name",
      () => ({ status: 413, body: 'HTTP content length exceeded 6291456 bytes.', contentType: 'text/plain' }),
      413,
      /^the request is too large for the SageMaker endpoint; it takes at most 6291456 bytes/,
    ],
    [
      'an error name the proxy does not know, 400',
      () => sageMakerError('InvalidRequestException', 400, 'Target model iris/v9.tar.gz not found for endpoint arn:aws:sagemaker:us-east-1:123456789012:endpoint/iris-endpoint'),
      400,
      /^SageMaker refused the request \(status 400\): Target model iris\/v9.tar.gz not found for endpoint/,
    ],
    [
      'an unsupported media type, 415',
      () => sageMakerError('UnsupportedMediaTypeException', 415, 'Content type application/jsonlines is not supported'),
      415,
      /^SageMaker refused the request \(status 415\)/,
    ],
    ['a 404', () => sageMakerError('ResourceNotFoundException', 404, 'Inference component not found'), 400, /^SageMaker refused the request \(status 404\)/],
  ])('answers %s with a 4xx, not a 502 that would count towards the server-error alarms', async (_what, answer, status, message) => {
    sm.respondWith(answer);
    const handler = await loggingProxy();

    const { r, failure, detail } = await inferLogged(handler);

    expect(r.status, r.text).toBe(status);
    expect(r.body.error).toMatch(message);
    expectNoInternals(r.text);
    expect(failure).toMatchObject({ level: 'WARN', status });
    expect(detail).toContain(sm.requests[0].requestId);
    expect(sm.requests).toHaveLength(1);
  });

  it.each<[string, InvocationAnswer]>([
    ['a signature SageMaker refuses (403)', sageMakerError('InvalidSignatureException', 403, 'The request signature we calculated does not match the signature you provided.')],
    ['an expired token, sent as a 400', sageMakerError('ExpiredTokenException', 400, 'The security token included in the request is expired')],
  ])("answers %s as this function's misconfiguration: a 500, the cause in the log", async (_what, answer) => {
    sm.respondWith(() => answer);
    const handler = await loggingProxy();

    const { r, detail } = await inferLogged(handler);

    expect(r.status).toBe(500);
    expect(r.body.error).toBe('this function may not invoke its SageMaker endpoint (request id rest-request-id)');
    expect(detail).toMatch(/SageMaker refused this function's call to SageMaker endpoint 'iris-endpoint' \(status 40[03]\)/);
    expect(sm.requests).toHaveLength(1);
  });
});

describe('a misconfigured proxy', () => {
  it.each([
    ['no SAGEMAKER_ENDPOINT_NAME', { SAGEMAKER_ENDPOINT_NAME: '' }, /misconfigured: no SageMaker endpoint configured: set SAGEMAKER_ENDPOINT_NAME/],
    ['an ARN for a name', { SAGEMAKER_ENDPOINT_NAME: `arn:aws:sagemaker:us-east-1:123456789012:endpoint/${ENDPOINT}` }, /SAGEMAKER_ENDPOINT_NAME must be an endpoint name/],
    ['a timeout that is no number', { SAGEMAKER_TIMEOUT_MS: '25s' }, /SAGEMAKER_TIMEOUT_MS must be a non-negative integer, got: 25s/],
  ])('answers every request with a 500 saying so, and logs the variable with each request id: %s', async (_what, env, message) => {
    sm.respondWith(() => ({ body: OIP_ANSWER }));
    const { result: handler, text: initLog } = await logged(() => proxy(env));

    const { result, logs } = await logged(async () => ({
      inferred: await infer(handler, OIP_REQUEST, MODEL),
      ready: await call(handler, restEvent('GET', '/v2/health/ready')),
      warm: await handler({ source: 'cdk-serverless-inference.warmer' }),
      direct: await handler(OIP_REQUEST, { awsRequestId: 'direct-id' }).then(
        () => undefined,
        (e: Error) => e,
      ),
    }));
    const { inferred, ready, warm, direct } = result;

    const answer = /^the inference function is misconfigured; its log says why \(request id [\w-]+\)$/;
    expect([inferred.status, ready.status]).toEqual([500, 500]);
    expect(inferred.body.error).toBe('the inference function is misconfigured; its log says why (request id rest-request-id)');
    expect(ready.body.error).toMatch(answer);
    expect(warm).toMatchObject({ warmed: false, error: expect.stringMatching(answer) });
    expect(direct?.message).toBe('the inference function is misconfigured; its log says why (request id direct-id)');
    for (const text of [inferred.text, ready.text, JSON.stringify(warm), direct?.message ?? '']) {
      expect(text).not.toMatch(message);
      expect(text).not.toContain('123456789012');
    }
    expect(initLog).toMatch(message);
    expect(logs.find((l) => l.requestId === 'rest-request-id')?.error).toMatch(message);
    expect(logs.find((l) => l.requestId === 'direct-id')?.error).toMatch(message);
    expect(sm.requests).toHaveLength(0);
  });
});

describe('telemetry', () => {
  it('records the invocation time as InferenceMs', async () => {
    sm.respondWith(() => ({ body: OIP_ANSWER, delayMs: 150 }));
    const saved = process.env.POWERTOOLS_METRICS_DISABLED;
    process.env.POWERTOOLS_METRICS_DISABLED = 'false';
    const lines: string[] = [];
    const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: any) => {
      lines.push(String(chunk));
      return true;
    });
    try {
      const handler = await proxy({ MODEL_NAME: 'timed' });
      const r = await infer(handler, OIP_REQUEST, 'timed');
      expect(r.status, r.text).toBe(200);
    } finally {
      write.mockRestore();
      process.env.POWERTOOLS_METRICS_DISABLED = saved;
    }
    const metrics = lines
      .flatMap((l) => l.split('\n'))
      .filter((l) => l.includes('"_aws"'))
      .map((l) => JSON.parse(l));
    const inferenceMs = metrics.find((m) => typeof m.InferenceMs === 'number')?.InferenceMs;
    expect(inferenceMs).toBeGreaterThanOrEqual(150);
    expect(inferenceMs).toBeLessThan(5_000);
  });
});

describe('the bundles', () => {
  it('serves from the sagemaker-proxy entry, configured by the environment', async () => {
    Object.assign(process.env, { SAGEMAKER_ENDPOINT_NAME: 'entry-endpoint', MODEL_NAME: 'entry-model' });
    sm.respondWith(() => ({ body: OIP_ANSWER }));
    const { handler } = await import(pathToFileURL(path.join(HANDLERS, 'sagemaker-proxy', 'index.mjs')).href);

    const r = await infer(handler, OIP_REQUEST, 'entry-model');

    expect(r.status, r.text).toBe(200);
    expect(r.body).toEqual(OIP_ANSWER);
    expect(sm.requests[0].path).toBe('/endpoints/entry-endpoint/invocations');
  });

  it('keeps the SageMaker client out of everything the ONNX Runtime entry can load', () => {
    const reach = (entry: string) => loadedText(path.join(HANDLERS, entry, 'index.mjs'), { dynamic: true });
    // The marker is in what the proxy loads, so its absence from the inference entry means something.
    expect(reach('sagemaker-proxy')).toContain('InvokeEndpointCommand');
    expect(reach('inference')).not.toContain('InvokeEndpointCommand');
  });
});

/** A user's own entry file, as docs/hooks.md shows hooks, around the proxy. */
const HOOKS_ENTRY = `
import { createSageMakerProxyHandler, badRequest } from 'cdk-serverless-inference/handler';

const LABELS = ['setosa', 'versicolor', 'virginica'];

export const handler = await createSageMakerProxyHandler({
  hooks: {
    preprocess(body, context) {
      if (!Array.isArray(body?.measurements) || body.measurements.length !== 4) {
        throw badRequest("'measurements' must be an array of 4 numbers");
      }
      return { instances: [body.measurements] };
    },
    postprocess(response, context) {
      const scores = response.predictions[0];
      return {
        label: LABELS[scores.indexOf(Math.max(...scores))],
        scores,
        echoed: context.request.measurements,
        requestId: context.requestId,
        model: context.modelName,
        knownInputs: context.signature.inputs.length,
      };
    },
  },
});
`;

describe('hooks in a user entry file', () => {
  let handler: Handler;

  beforeAll(async () => {
    const bundle = await bundleUserEntry(HOOKS_ENTRY);
    Object.assign(process.env, { SAGEMAKER_ENDPOINT_NAME: 'hooked-endpoint', MODEL_NAME: 'hooked' });
    handler = (await import(pathToFileURL(bundle).href)).handler;
  });

  it('sends what preprocess makes and answers what postprocess makes of the endpoint’s answer', async () => {
    sm.respondWith(() => ({ body: { predictions: [[0.1, 0.7, 0.2]] } }));
    const measurements = [6.1, 2.8, 4.7, 1.2];

    const r = await call(handler, restEvent('POST', '/v2/models/hooked/infer', { measurements }));

    expect(r.status, r.text).toBe(200);
    expect(r.body).toEqual({
      label: 'versicolor',
      scores: [0.1, 0.7, 0.2],
      echoed: measurements,
      requestId: 'rest-request-id',
      model: 'hooked',
      knownInputs: 0,
    });
    expect(sm.requests).toHaveLength(1);
    expect(sm.requests[0].path).toBe('/endpoints/hooked-endpoint/invocations');
    expect(JSON.parse(sm.requests[0].text)).toEqual({ instances: [measurements] });
  });

  it("answers a hook's badRequest with 400 without calling the endpoint", async () => {
    sm.respondWith(() => ({ body: { predictions: [[1, 0, 0]] } }));

    const r = await call(handler, restEvent('POST', '/v2/models/hooked/infer', { measurements: [1, 2] }));

    expect(r.status).toBe(400);
    expect(r.body.error).toBe("'measurements' must be an array of 4 numbers");
    expect(sm.requests).toHaveLength(0);
  });

  it('answers a postprocess failure on an unexpected answer with a 500 naming the hook', async () => {
    sm.respondWith(() => ({ body: { outputs: [] } }));

    const r = await call(handler, restEvent('POST', '/v2/models/hooked/infer', { measurements: [1, 2, 3, 4] }));

    expect(r.status).toBe(500);
    expect(r.body.error).toBe('the postprocess hook failed (request id rest-request-id)');
    expect(sm.requests).toHaveLength(1);
  });
});
