/**
 * The requests that the protocol's official clients send, recorded from the clients themselves
 * (fixtures/clients: NVIDIA's tritonclient.http and KServe's InferenceRESTClient, every option
 * they have for the REST protocol), replayed byte for byte through every front the handler has: a
 * REST API event as API Gateway builds it with the API's binary media types (`*\/*`), an HTTP API
 * and a Function URL event (payload 2.0), and over HTTP to `serve`. Every answer is read as the
 * clients read it (its Content-Encoding undone, its binary outputs cut by
 * Inference-Header-Content-Length) and checked against onnxruntime run on the demo model directly.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_MODEL_FILE } from '../../fixtures/demo-model';
import { createHandler, type Handler } from '../support/handler';
import { type Served, startServe } from '../support/serve';

interface RecordedRequest {
  readonly name: string;
  /** The client call that sent it. */
  readonly call: string;
  readonly method: string;
  readonly target: string;
  /** In the order the client sent them, in its case. */
  readonly headers: ReadonlyArray<readonly [string, string]>;
  /** base64 */
  readonly body: string;
}

interface Recording {
  readonly client: string;
  readonly input: { readonly name: string; readonly shape: number[]; readonly data: number[] };
  readonly requests: RecordedRequest[];
}

const FIXTURES = path.join(__dirname, '../../fixtures/clients');
const recordings: Array<[string, Recording]> = fs
  .readdirSync(FIXTURES)
  .filter((f) => f.endsWith('.json'))
  .map((f) => [f, JSON.parse(fs.readFileSync(path.join(FIXTURES, f), 'utf8')) as Recording]);

/** An answer as a client reads it: status, headers in lower case, the body's bytes as they came. */
interface Answer {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: Buffer;
}

type Front = (r: RecordedRequest) => Promise<Answer>;

function headerOf(r: RecordedRequest, name: string): string | undefined {
  return r.headers.find(([k]) => k.toLowerCase() === name)?.[1];
}

function lambdaAnswer(result: any): Answer {
  const headers = Object.fromEntries(Object.entries(result.headers as Record<string, string>).map(([k, v]) => [k.toLowerCase(), v]));
  return { status: result.statusCode, headers, body: Buffer.from(result.body, result.isBase64Encoded ? 'base64' : 'utf8') };
}

/** A REST API (v1) proxy event: with every media type binary, a body always comes base64-encoded. */
function restEvent(r: RecordedRequest) {
  const body = Buffer.from(r.body, 'base64');
  return {
    resource: '/v2/models/demo/infer',
    path: r.target,
    httpMethod: r.method,
    headers: Object.fromEntries(r.headers),
    multiValueHeaders: Object.fromEntries(r.headers.map(([k, v]) => [k, [v]])),
    queryStringParameters: null,
    requestContext: { requestId: 'rest-request-id', stage: 'prod', httpMethod: r.method, path: `/prod${r.target}` },
    body: body.length > 0 ? body.toString('base64') : null,
    isBase64Encoded: body.length > 0,
  };
}

/**
 * A payload 2.0 event (HTTP API, Function URL): header names in lower case, and the body as text
 * for a JSON or text/* Content-Type, base64-encoded for any other or none, as those fronts pass it.
 */
function v2Event(r: RecordedRequest, domainName: string) {
  const body = Buffer.from(r.body, 'base64');
  const type = (headerOf(r, 'content-type') ?? '').split(';')[0].trim().toLowerCase();
  const text = type === 'application/json' || type.startsWith('text/');
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: r.target,
    rawQueryString: '',
    headers: Object.fromEntries(r.headers.map(([k, v]) => [k.toLowerCase(), v])),
    requestContext: { domainName, http: { method: r.method, path: r.target, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1' }, requestId: 'v2-request-id', stage: '$default' },
    ...(body.length > 0 ? { body: text ? body.toString('utf8') : body.toString('base64'), isBase64Encoded: !text } : { isBase64Encoded: false }),
  };
}

/** Sends the recorded request over HTTP as it was recorded: its headers in their order and case, its body's bytes. */
function overHttp(url: string): Front {
  const { hostname, port } = new URL(url);
  return (r) =>
    new Promise((resolve, reject) => {
      const req = http.request({ host: hostname, port, method: r.method, path: r.target, headers: r.headers.flat(), setHost: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers as Record<string, string>, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(Buffer.from(r.body, 'base64'));
    });
}

/** The coding an answer must come in: the one the request's Accept-Encoding prefers, gzip first. */
function askedCoding(r: RecordedRequest): string | undefined {
  const accept = (headerOf(r, 'accept-encoding') ?? '').toLowerCase();
  return accept.includes('gzip') ? 'gzip' : accept.includes('deflate') ? 'deflate' : undefined;
}

/** The outputs of an infer answer, read as the clients read them: each from its JSON `data` or its binary bytes. */
function readOutputs(a: Answer): Map<string, number[]> {
  const coding = a.headers['content-encoding'];
  const body = coding === 'gzip' ? zlib.gunzipSync(a.body) : coding === 'deflate' ? zlib.inflateSync(a.body) : a.body;
  const length = a.headers['inference-header-content-length'];
  const jsonLength = length === undefined ? body.length : Number(length);
  const json = JSON.parse(body.subarray(0, jsonLength).toString('utf8'));
  const outputs = new Map<string, number[]>();
  let at = jsonLength;
  for (const o of json.outputs) {
    const size = o.parameters?.binary_data_size;
    if (size === undefined) {
      outputs.set(o.name, o.data);
      continue;
    }
    const bytes = Uint8Array.from(body.subarray(at, at + size)).buffer;
    outputs.set(o.name, o.datatype === 'INT64' ? Array.from(new BigInt64Array(bytes), Number) : Array.from(new Float32Array(bytes)));
    at += size;
  }
  expect(at, 'the binary outputs take the rest of the body').toBe(body.length);
  return outputs;
}

let reference: Map<string, number[]>;
let handler: Handler;

beforeAll(async () => {
  // The reference: onnxruntime on the demo model, with the tensor the clients sent.
  const { input } = recordings[0][1];
  const session = await ort.InferenceSession.create(DEMO_MODEL_FILE);
  const results = await session.run({ [input.name]: new ort.Tensor('float32', Float32Array.from(input.data), input.shape) });
  reference = new Map(Object.entries(results).map(([name, t]) => [name, Array.from(t.data as ArrayLike<number | bigint>, Number)]));
  handler = await createHandler({ MODEL_PATH: DEMO_MODEL_FILE, MODEL_NAME: 'demo', MODEL_VERSION: '1' });
});

function checkAnswer(r: RecordedRequest, a: Answer): void {
  expect(a.status, `${r.name}: ${a.body.toString('utf8').slice(0, 300)}`).toBe(200);
  if (!r.target.endsWith('/infer')) {
    const body = JSON.parse(a.body.toString('utf8'));
    if (r.target.startsWith('/v2/models/demo') && !r.target.endsWith('/ready')) expect(body.name).toBe('demo');
    return;
  }
  expect(a.headers['content-encoding'], r.name).toBe(askedCoding(r));
  const outputs = readOutputs(a);
  expect([...outputs.keys()].sort()).toEqual([...reference.keys()].sort());
  for (const [name, want] of reference) {
    const got = outputs.get(name)!;
    expect(got.length, name).toBe(want.length);
    got.forEach((v, i) => {
      expect(v, `${r.name}: ${name}[${i}]`).toBeCloseTo(want[i], 6);
    });
  }
}

describe.each(recordings)('the requests of %s', (_file, recording) => {
  it('were recorded with the tensor whose bytes are not UTF-8, and cover the client options', () => {
    expect(recording.input.data[0]).toBe(new Float32Array(Uint8Array.from([0xf0, 0x9f, 0x98, 0x41]).buffer)[0]);
    expect(recording.requests.some((r) => r.target.endsWith('/infer'))).toBe(true);
  });

  const fronts: Array<[string, () => Front]> = [
    ['REST API event (v1, every media type binary)', () => async (r) => lambdaAnswer(await handler(restEvent(r)))],
    ['HTTP API event (2.0)', () => async (r) => lambdaAnswer(await handler(v2Event(r, 'abc123.execute-api.eu-west-1.amazonaws.com')))],
    ['Function URL event (2.0)', () => async (r) => lambdaAnswer(await handler(v2Event(r, 'abcdefg.lambda-url.eu-west-1.on.aws')))],
  ];
  describe.each(fronts)('%s', (_front, front) => {
    it.each(recording.requests.map((r) => [r.name, r] as const))('%s', async (_name, r) => {
      checkAnswer(r, await front()(r));
    });
  });

  describe('over HTTP to serve', () => {
    let served: Served;
    beforeAll(async () => {
      served = await startServe(['--model', DEMO_MODEL_FILE, '--name', 'demo', '--model-version', '1', '--port', '0']);
    }, 30_000);
    afterAll(() => {
      served?.child.kill('SIGTERM');
    });

    it.each(recording.requests.map((r) => [r.name, r] as const))('%s', async (_name, r) => {
      checkAnswer(r, await overHttp(served.url)(r));
    });
  });
});
