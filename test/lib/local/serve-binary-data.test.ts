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

  it.each([
    ["no Content-Type (as Triton's client sends it)", undefined],
    ['Content-Type application/json', 'application/json'],
  ])('reads binary tensor data with %s byte for byte, bytes that are not UTF-8 included', async (_name, type) => {
    // The first id's bytes F0 9F 98 41 are not UTF-8; decoded as text they would become EF BF BD 41,
    // as many bytes, and the model would get another id. Every other byte here is ASCII.
    const ids = Buffer.from(raw(BigInt64Array.from([0n, 1n, 2n, 3n])));
    Buffer.from([0xf0, 0x9f, 0x98, 0x41]).copy(ids, 0);
    const first = ids.readBigInt64LE(0);
    const text = Buffer.from([2, 0, 0, 0, 0x6f, 0x6b]);
    const halves = raw(Uint16Array.from([0x3c00, 0x3c00])); // 1, 1
    const header = Buffer.from(
      JSON.stringify({
        inputs: [
          { name: 'ids', shape: [1, 4], datatype: 'INT64', parameters: { binary_data_size: 32 } },
          { name: 'mask', shape: [1, 4], datatype: 'BOOL', parameters: { binary_data_size: 4 } },
          { name: 'text', shape: [1], datatype: 'BYTES', parameters: { binary_data_size: text.length } },
          { name: 'halves', shape: [1, 2], datatype: 'FP16', parameters: { binary_data_size: 4 } },
        ],
        outputs: [{ name: 'ids_times_two' }, { name: 'text_echo' }, { name: 'halves_plus_half' }],
      }),
    );
    const r = await fetch(`${server.url}/v2/models/model/infer`, {
      method: 'POST',
      // A Blob of no type: fetch then sends no Content-Type unless one is given.
      headers: { [HEADER]: String(header.length), ...(type ? { 'Content-Type': type } : {}) },
      body: new Blob([Buffer.concat([header, ids, Buffer.from([1, 0, 1, 0]), text, halves])]),
    });
    const json = (await r.json()) as any;
    expect(r.status, JSON.stringify(json)).toBe(200);
    const out = (name: string) => json.outputs.find((o: any) => o.name === name).data;
    expect(out('ids_times_two')).toEqual([Number(first * 2n), 2, 4, 6]);
    expect(out('text_echo')).toEqual(['ok']);
    expect(out('halves_plus_half')).toEqual([1.5, 1.5]);
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
