/**
 * The binary tensor data extension over real HTTP to `cdk-serverless-inference serve`: the body is
 * assembled by hand (a JSON header, then raw little-endian bytes) and sent as
 * application/octet-stream with Inference-Header-Content-Length, as Triton's and KServe's clients
 * send it; the answer's bytes are read back the same way.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { multiIoModel } from '../../../tools/onnx';
import { writeModel } from '../../support/handler';
import { type Served, startServe } from '../../support/serve';

const HEADER = 'Inference-Header-Content-Length';

function raw(a: ArrayBufferView): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

describe.each([
  ['one process', []],
  ['--workers 2', ['--workers', '2']],
])('serve, binary tensor data over real HTTP (%s)', (_name, extra) => {
  const model = multiIoModel();
  let server: Served;
  beforeAll(async () => {
    server = await startServe(['--model', writeModel(model.bytes), '--port', '0', ...extra]);
  }, 30_000);
  afterAll(() => {
    server?.child.kill('SIGTERM');
  });

  it('reads binary inputs of every kind and answers binary outputs, every byte intact', async () => {
    // Bytes that are not UTF-8 (0xff, 0xfe, lone continuation bytes) must survive the server.
    const ids = BigInt64Array.from([-1n, 0x7f_ff_ff_ff_ff_ff_ff_fen, 255n, -256n]);
    const mask = Uint8Array.from([1, 0, 1, 0]);
    const word = Buffer.from('naïve', 'utf8');
    const length = Buffer.alloc(4);
    length.writeUInt32LE(word.length);
    const text = Buffer.concat([length, word]);
    const halves = Uint16Array.from([0x3800, 0xbc00]); // 0.5, -1
    const header = Buffer.from(
      JSON.stringify({
        inputs: [
          { name: 'ids', shape: [1, 4], datatype: 'INT64', parameters: { binary_data_size: 32 } },
          { name: 'mask', shape: [1, 4], datatype: 'BOOL', parameters: { binary_data_size: 4 } },
          { name: 'text', shape: [1], datatype: 'BYTES', parameters: { binary_data_size: text.length } },
          { name: 'halves', shape: [1, 2], datatype: 'FP16', parameters: { binary_data_size: 4 } },
        ],
        outputs: [{ name: 'ids_times_two', parameters: { binary_data: true } }, { name: 'text_echo', parameters: { binary_data: true } }, { name: 'halves_plus_half' }],
      }),
    );
    const body = Buffer.concat([header, raw(ids), raw(mask), text, raw(halves)]);
    const r = await fetch(`${server.url}/v2/models/model/infer`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/octet-stream', [HEADER]: String(header.length) },
      body,
    });
    const answer = Buffer.from(await r.arrayBuffer());
    expect(r.status, answer.toString()).toBe(200);
    expect(r.headers.get('content-type')).toBe('application/octet-stream');
    const n = Number(r.headers.get(HEADER));
    const json = JSON.parse(answer.subarray(0, n).toString('utf8'));
    expect(json.outputs.map((o: any) => o.parameters?.binary_data_size)).toEqual([32, 4 + word.length, undefined]);
    const doubled = new BigInt64Array(Uint8Array.from(answer.subarray(n, n + 32)).buffer);
    expect(Array.from(doubled)).toEqual(Array.from(ids, (v) => BigInt.asIntN(64, v * 2n)));
    expect(answer.readUInt32LE(n + 32)).toBe(word.length);
    expect(answer.subarray(n + 36).toString('utf8')).toBe('naïve');
    expect(json.outputs[2].data).toEqual([1, -0.5]);
  });

  it('answers bad framing with a 400 in JSON', async () => {
    const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'text', shape: [1], datatype: 'BYTES', parameters: { binary_data_size: 8 } }] }));
    const r = await fetch(`${server.url}/v2/models/model/infer`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/octet-stream', [HEADER]: String(header.length + 100) },
      body: Buffer.concat([header, Buffer.from([0xff, 0, 0, 0, 1, 2, 3, 4])]),
    });
    expect(r.status).toBe(400);
    expect(((await r.json()) as { error: string }).error).toMatch(/Inference-Header-Content-Length header says the JSON header is \d+ bytes, but the body has only \d+/);
  });
});
