/**
 * A 64-bit integer past 2^53 keeps every digit on every path an answer takes out of the function:
 * HTTP through API Gateway (REST, HTTP API) and Function URLs, buffered or streamed, and the
 * direct invocations of the warmer, the pre-traffic check and other callers, buffered or streamed.
 * The inference bundle runs as Lambda runs it (tools/local-function.ts), so the runtime's own
 * JSON.stringify writes the buffered answers, as on Lambda.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { functionUrlEvent, httpApiEvent, restEvent } from '../../../../fixtures/events';
import { inferenceHandlerDir } from '../../../../lib/private/package-paths';
import { type LocalFunction, startLocalFunction } from '../../../../tools/local-function';
import { buildOnnxModel } from '../../../../tools/onnx';
import { writeModel } from '../../../support/handler';

/** `ids` INT64 = Identity(`x` INT64): what is sent comes back. */
const MODEL = buildOnnxModel({
  graphName: 'int64_identity',
  inputs: [{ name: 'x', elemType: 'int64', shape: ['n'] }],
  outputs: [{ name: 'ids', elemType: 'int64', shape: ['n'] }],
  nodes: [{ opType: 'Identity', inputs: ['x'], outputs: ['ids'] }],
});

// 2^53 + 1 and the largest INT64: JSON.parse would round both, so they are sent as strings.
const REQUEST = { inputs: [{ name: 'x', datatype: 'INT64', shape: [3], data: ['9007199254740993', '9223372036854775807', -5] }] };
const EXACT = '"data":[9007199254740993,9223372036854775807,-5]';
const INFER_PATH = '/v2/models/ids/infer';

/** The prelude (status and headers) and body a streamed HTTP answer carries. */
function readPrelude(bytes: Buffer): { statusCode: number; body: string } {
  const end = bytes.indexOf(Buffer.alloc(8));
  return { statusCode: JSON.parse(bytes.subarray(0, end).toString('utf8')).statusCode, body: bytes.subarray(end + 8).toString('utf8') };
}

describe('an INT64 past 2^53, through the inference bundle as Lambda runs it', () => {
  let buffered: LocalFunction;
  let streaming: LocalFunction;

  beforeAll(() => {
    const environment = { MODEL_PATH: writeModel(MODEL), MODEL_NAME: 'ids' };
    buffered = startLocalFunction({ codeDir: inferenceHandlerDir(), environment });
    streaming = startLocalFunction({ codeDir: inferenceHandlerDir(), environment: { ...environment, RESPONSE_STREAMING: '1' } });
  });

  afterAll(async () => {
    await Promise.all([buffered?.stop(), streaming?.stop()]);
  });

  async function payloadOf(fn: LocalFunction, event: unknown): Promise<string> {
    const answer = await fn.invoke({ text: JSON.stringify(event) });
    expect(answer.functionError, String(answer.payload)).toBeUndefined();
    return Buffer.from(answer.payload as Buffer).toString('utf8');
  }

  const httpEvents: Array<[string, unknown]> = [
    ['REST API', restEvent('POST', INFER_PATH, REQUEST)],
    ['HTTP API', httpApiEvent('POST', INFER_PATH, REQUEST)],
    ['Function URL', functionUrlEvent('POST', INFER_PATH, REQUEST)],
  ];
  for (const [name, event] of httpEvents) {
    it(`keeps every digit in a buffered ${name} answer`, async () => {
      const answer = JSON.parse(await payloadOf(buffered, event));
      expect(answer.statusCode).toBe(200);
      expect(answer.body).toContain(EXACT);
    });
  }

  for (const [name, event] of httpEvents) {
    it(`keeps every digit in a streamed ${name} answer`, async () => {
      const bytes = Buffer.from(await payloadOf(streaming, event), 'utf8');
      const { statusCode, body } = readPrelude(bytes);
      expect(statusCode).toBe(200);
      expect(body).toContain(EXACT);
    });
  }

  it("keeps every digit in a direct invocation's answer, which the runtime writes with its own JSON.stringify", async () => {
    const text = await payloadOf(buffered, REQUEST);
    expect(text).toContain(EXACT);
    expect(text).not.toContain('"text"');
  });

  it("keeps every digit in a streamed direct invocation's answer", async () => {
    const text = await payloadOf(streaming, REQUEST);
    expect(text).toContain(EXACT);
    expect(text).not.toContain('"text"');
  });
});
