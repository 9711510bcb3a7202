import * as fs from 'node:fs';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ENV } from '../../../../contract/environment';
import { HOOKS_MODULE_FILE } from '../../../../contract/hooks';
import { WARMER_SOURCE } from '../../../../contract/warmup';
import { base64Length, binaryResponse } from '../../../../handlers/core/http/events';
import { writeHttpResponse } from '../../../../handlers/core/http/streaming';
import { inferenceHandlerDir } from '../../../../lib/private/package-paths';
import { mlpModel } from '../../../../tools/onnx';
import { restEvent } from '../../../../fixtures/events';
import { writeModel } from '../../../support/handler';
import { logged, withLogLevel } from '../../../support/logs';

const ROOT = path.resolve(__dirname, '../../../..');
const mlp = mlpModel({ inputs: 4, hidden: 8, classes: 3, seed: 21 });
const PRELUDE_TYPE = 'application/vnd.awslambda.http-integration-response';

/** What the Lambda runtime's response stream receives: the content type set on it, and every byte, with when it finished. */
class CapturedStream extends Writable {
  contentType?: string;
  finishedAt?: number;
  private readonly chunks: Buffer[] = [];
  // The runtime's own stream writes the prelude through this hook (see HttpResponseStream.from).
  _onBeforeFirstWrite?: (write: (chunk: string | Uint8Array) => void) => void;

  constructor() {
    super();
    this.once('finish', () => (this.finishedAt = performance.now()));
  }

  setContentType(type: string): void {
    this.contentType = type;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.chunks.push(chunk);
    callback();
  }

  bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/**
 * `awslambda` as Lambda's Node.js runtime defines it, written from its documented wire format: the
 * handler is marked, and `HttpResponseStream.from` sets the integration content type and writes the
 * JSON metadata, then eight NUL bytes, before the first write of the body.
 */
const RUNTIME = {
  streamifyResponse: <H extends object>(h: H) => Object.assign(h, { [Symbol.for('aws.lambda.runtime.handler.streaming')]: 'response' }),
  HttpResponseStream: {
    from(stream: CapturedStream, prelude: Record<string, unknown>) {
      stream.setContentType(PRELUDE_TYPE);
      const first = (chunk: Buffer, encoding: BufferEncoding, cb: () => void) => {
        stream.write = Writable.prototype.write;
        Writable.prototype.write.call(stream, Buffer.concat([Buffer.from(JSON.stringify(prelude)), Buffer.alloc(8), Buffer.from(chunk)]), encoding, cb);
        return true;
      };
      stream.write = first as typeof stream.write;
      return stream;
    },
  },
};

type StreamingHandler = (event: unknown, stream: Writable, context?: object) => Promise<void>;

/** The prelude and body of an HTTP answer on the stream. */
function readHttp(stream: CapturedStream): { metadata: { statusCode: number; headers: Record<string, string> }; body: Buffer } {
  expect(stream.contentType).toBe(PRELUDE_TYPE);
  const bytes = stream.bytes();
  const end = bytes.indexOf(Buffer.alloc(8));
  expect(end).toBeGreaterThan(0);
  return { metadata: JSON.parse(bytes.subarray(0, end).toString('utf8')), body: bytes.subarray(end + 8) };
}

const HOOKS = `
export function postprocess(response, context) {
  return { ...response, hooked: context.request.tag ?? null };
}
export async function afterResponse(response, context) {
  globalThis.__afterCalls ??= [];
  await new Promise((r) => setTimeout(r, context.request.sleepMs ?? 0));
  if (context.request.fail) throw new Error('after failed on purpose');
  globalThis.__afterCalls.push({ response, statusCode: context.statusCode, tag: context.request.tag });
}
`;

// Inside the repo, so that the handler's require('onnxruntime-node') finds the installed package.
fs.mkdirSync(path.join(ROOT, 'node_modules', '.cache'), { recursive: true });
const DIR = fs.mkdtempSync(path.join(ROOT, 'node_modules', '.cache', 'csi-streaming-'));
afterAll(() => fs.rmSync(DIR, { recursive: true, force: true }));

describe('the prebuilt entry with RESPONSE_STREAMING=1 and a hooks module', () => {
  let handler: StreamingHandler;
  const calls = () => (globalThis as { __afterCalls?: Array<{ tag: string; statusCode: number; response: unknown }> }).__afterCalls ?? [];

  beforeAll(async () => {
    fs.cpSync(inferenceHandlerDir(), DIR, { recursive: true });
    fs.writeFileSync(path.join(DIR, HOOKS_MODULE_FILE), HOOKS);
    (globalThis as { awslambda?: unknown }).awslambda = RUNTIME;
    const saved = { ...process.env };
    Object.assign(process.env, {
      [ENV.MODEL_PATH]: writeModel(mlp.bytes),
      [ENV.MODEL_NAME]: 'iris',
      [ENV.RESPONSE_STREAMING]: '1',
      [ENV.HOOKS_MODULE]: HOOKS_MODULE_FILE,
      POWERTOOLS_METRICS_DISABLED: 'false',
    });
    try {
      handler = await withLogLevel(async () => (await import(`${pathToFileURL(path.join(DIR, 'index.mjs')).href}?streaming`)).handler, 'WARN');
    } finally {
      process.env = saved;
    }
  });
  afterAll(() => {
    delete (globalThis as { awslambda?: unknown }).awslambda;
  });

  it('is marked as a streaming handler for the runtime', () => {
    expect((handler as unknown as Record<symbol, unknown>)[Symbol.for('aws.lambda.runtime.handler.streaming')]).toBe('response');
  });

  it('writes the status and headers as the prelude, then the JSON body, and ends the stream before afterResponse ends', async () => {
    const stream = new CapturedStream();
    const input = [5.1, 3.5, 1.4, 0.2];
    const started = performance.now();
    await handler(restEvent('POST', '/v2/models/iris/infer', { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: input }], tag: 'slow', sleepMs: 400 }), stream, {
      awsRequestId: 'r-1',
      getRemainingTimeInMillis: () => 60_000,
    });
    const returned = performance.now();
    const { metadata, body } = readHttp(stream);
    expect(metadata).toEqual({ statusCode: 200, headers: { 'Content-Type': 'application/json' } });
    const answer = JSON.parse(body.toString('utf8'));
    expect(answer.hooked).toBe('slow');
    expect(answer.outputs[0].data).toHaveLength(3);
    // The caller had the whole answer when the hook started its 400 ms sleep.
    expect(returned - stream.finishedAt!).toBeGreaterThanOrEqual(350);
    expect(stream.finishedAt! - started).toBeLessThan(returned - started);
    expect(calls().find((c) => c.tag === 'slow')).toEqual({ tag: 'slow', statusCode: 200, response: answer });
  });

  it('streams a binary answer as its bytes, not base64', async () => {
    const stream = new CapturedStream();
    await handler(
      restEvent('POST', '/v2/models/iris/infer', { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }], parameters: { binary_data_output: true } }),
      stream,
      { awsRequestId: 'r-2' },
    );
    const { metadata, body } = readHttp(stream);
    expect(metadata.statusCode).toBe(200);
    expect(metadata.headers['Content-Type']).toBe('application/octet-stream');
    const headerLength = Number(metadata.headers['Inference-Header-Content-Length']);
    const header = JSON.parse(body.subarray(0, headerLength).toString('utf8'));
    const sizes = header.outputs.map((o: { parameters: { binary_data_size: number } }) => o.parameters.binary_data_size);
    expect(body.length).toBe(headerLength + sizes.reduce((a: number, b: number) => a + b, 0));
  });

  it('streams a long answer whole, a slice at a time, never splitting a character', async () => {
    // 1.2 million UTF-16 code units of surrogate pairs, one character apart: a pair straddles the
    // writer's slice boundary in one of the two answers.
    for (const tag of ['😀'.repeat(600_000), `a${'😀'.repeat(600_000)}`]) {
      const stream = new CapturedStream();
      await handler(restEvent('POST', '/v2/models/iris/infer', { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }], tag }), stream, {
        awsRequestId: 'r-long',
      });
      const { metadata, body } = readHttp(stream);
      expect(metadata.statusCode).toBe(200);
      expect(JSON.parse(body.toString('utf8')).hooked === tag).toBe(true);
    }
  });

  it('streams a binary answer of more than a slice of base64 as its exact bytes', async () => {
    const rows = Array.from({ length: 70_000 }, (_, i) => [Math.sin(i), Math.cos(i), (i % 7) / 7, 1]);
    const stream = new CapturedStream();
    await handler(
      restEvent('POST', '/v2/models/iris/infer', {
        inputs: [{ name: 'input', shape: [rows.length, 4], datatype: 'FP32', data: rows.flat() }],
        parameters: { binary_data_output: true },
      }),
      stream,
      { awsRequestId: 'r-binary-long' },
    );
    const { metadata, body } = readHttp(stream);
    expect(metadata.statusCode).toBe(200);
    const headerLength = Number(metadata.headers['Inference-Header-Content-Length']);
    const bytes = body.subarray(headerLength);
    // 840 000 bytes: 1.12 million characters of base64 in a buffered answer.
    expect(bytes.length).toBe(rows.length * 3 * 4);
    const got = new Float32Array(Uint8Array.from(bytes).buffer);
    const expected = mlp.predict(rows).flat();
    const worst = expected.reduce((w, v, i) => Math.max(w, Math.abs(v - got[i])), 0);
    expect(worst).toBeLessThan(1e-5);
  });

  it('answers an error with its status in the prelude and runs no afterResponse', async () => {
    const before = calls().length;
    const stream = new CapturedStream();
    await handler(restEvent('POST', '/v2/models/iris/infer', { inputs: [{ name: 'nope', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] }), stream, {
      awsRequestId: 'r-3',
    });
    const { metadata, body } = readHttp(stream);
    expect(metadata.statusCode).toBe(400);
    expect(JSON.parse(body.toString('utf8')).error).toContain('nope');
    expect(calls().length).toBe(before);
  });

  it("writes a warm-up's answer as plain JSON, as a buffered Invoke returns it", async () => {
    const stream = new CapturedStream();
    await handler({ source: WARMER_SOURCE, holdMs: 0 }, stream, { awsRequestId: 'r-4' });
    expect(stream.contentType).toBe('application/json');
    expect(JSON.parse(stream.bytes().toString('utf8'))).toMatchObject({ warmed: true, modelReady: true });
  });

  it('throws the error of a failed direct invocation, writing nothing', async () => {
    const stream = new CapturedStream();
    await expect(handler({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2] }] }, stream, { awsRequestId: 'r-5' })).rejects.toThrow(/^\[400\]/);
    expect(stream.bytes().length).toBe(0);
  });

  it('logs and counts an afterResponse that throws, with the answer sent whole', async () => {
    const stream = new CapturedStream();
    const { text } = await logged(() =>
      handler(restEvent('POST', '/v2/models/iris/infer', { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }], fail: true }), stream, {
        awsRequestId: 'r-6',
      }),
    );
    expect(readHttp(stream).metadata.statusCode).toBe(200);
    expect(text).toContain('the afterResponse hook failed; the answer was sent');
    expect(text).toContain('after failed on purpose');
    expect(text).toMatch(/"AfterResponseFailed":1/);
  });

  it("gives up an afterResponse that would outlive the function's remaining time, and says so", async () => {
    const stream = new CapturedStream();
    const started = performance.now();
    const { text } = await logged(() =>
      handler(
        restEvent('POST', '/v2/models/iris/infer', { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }], tag: 'late', sleepMs: 3000 }),
        stream,
        {
          awsRequestId: 'r-7',
          getRemainingTimeInMillis: () => 800,
        },
      ),
    );
    expect(performance.now() - started).toBeLessThan(2000);
    expect(readHttp(stream).metadata.statusCode).toBe(200);
    expect(text).toContain("did not finish within the function's remaining time");
    expect(text).toMatch(/"AfterResponseFailed":1/);
  });

  it('gives afterResponse the time left less a margin, so that it is given up and logged before the function times out', async () => {
    const stream = new CapturedStream();
    const deadline = performance.now() + 1000;
    // The hook would end 200 ms after the function's deadline.
    const { text } = await logged(() =>
      handler(
        restEvent('POST', '/v2/models/iris/infer', { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }], tag: 'deadline', sleepMs: 1200 }),
        stream,
        {
          awsRequestId: 'r-8',
          getRemainingTimeInMillis: () => Math.round(deadline - performance.now()),
        },
      ),
    );
    const returned = performance.now();
    expect(readHttp(stream).metadata.statusCode).toBe(200);
    expect(text).toContain("did not finish within the function's remaining time");
    expect(calls().some((c) => c.tag === 'deadline')).toBe(false);
    // Before the deadline, with the margin left for the log line and the metrics' flush.
    expect(returned).toBeLessThan(deadline);
  });
});

describe('a binary answer written to a response stream (the source modules)', () => {
  const header = JSON.stringify({ outputs: [{ name: 'y', datatype: 'FP32', shape: [3], parameters: { binary_data_size: 12 } }] });
  const values = Buffer.from(Float32Array.from([1.5, -2, 3.25]).buffer);

  beforeAll(() => {
    (globalThis as { awslambda?: unknown }).awslambda = RUNTIME;
  });
  afterAll(() => {
    delete (globalThis as { awslambda?: unknown }).awslambda;
  });

  it('writes the bytes as they are and never makes their base64, which only a buffered answer needs', async () => {
    const response = binaryResponse(200, header, [values]);
    const encode = vi.spyOn(Buffer.prototype, 'toString');
    const stream = new CapturedStream();
    try {
      await writeHttpResponse(stream, response);
      expect(encode.mock.calls.filter(([encoding]) => encoding === 'base64')).toEqual([]);
    } finally {
      encode.mockRestore();
    }
    const { metadata, body } = readHttp(stream);
    expect(metadata.headers['Inference-Header-Content-Length']).toBe(String(Buffer.byteLength(header)));
    expect(body).toEqual(Buffer.concat([Buffer.from(header), values]));
  });

  it('is, buffered, the four fields Lambda reads, its body the base64 of the same bytes', () => {
    const response = binaryResponse(200, header, [values]);
    const json = JSON.parse(JSON.stringify(response));
    expect(Object.keys(json)).toEqual(['statusCode', 'headers', 'body', 'isBase64Encoded']);
    expect(Buffer.from(json.body, 'base64')).toEqual(Buffer.concat([Buffer.from(header), values]));
    expect(json.body.length).toBe(base64Length(Buffer.byteLength(header) + values.length));
  });
});
