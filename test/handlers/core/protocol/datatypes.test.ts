import { beforeAll, describe, expect, it } from 'vitest';
import { identityAllTypesModel, multiIoModel } from '../../../../tools/onnx';
import { call, infer, restEvent } from '../../../../fixtures/events';
import { type Handler, handlerForModel } from '../../../support/handler';

const OIP: Record<string, string> = {
  float32: 'FP32',
  float16: 'FP16',
  float64: 'FP64',
  int8: 'INT8',
  int16: 'INT16',
  int32: 'INT32',
  int64: 'INT64',
  uint8: 'UINT8',
  uint16: 'UINT16',
  uint32: 'UINT32',
  uint64: 'UINT64',
  bool: 'BOOL',
  string: 'BYTES',
};

/** What each datatype's input carries, and what must come back (as parsed JSON, or as raw JSON text). */
const CASES: Record<string, { send: unknown[]; expect: unknown[]; rawText?: string }> = {
  float32: { send: [1.5, -0.25, 3.4e38, 'NaN'], expect: [1.5, -0.25, Math.fround(3.4e38), 'NaN'] },
  // Neither 0.1 nor -0.3 is a float16: the nearest are 0.0999755859375 (0x2E66, rounded down) and
  // -0.300048828125 (0xB4CD, rounded up).
  float16: { send: [0.5, -0.3, 65504, 0.1], expect: [0.5, -0.300048828125, 65504, 0.0999755859375] },
  float64: { send: [1e300, -1e-300, 0.1, '-Infinity'], expect: [1e300, -1e-300, 0.1, '-Infinity'] },
  int8: { send: [-128, 127, 0, -1], expect: [-128, 127, 0, -1] },
  int16: { send: [-32768, 32767, 5, -7], expect: [-32768, 32767, 5, -7] },
  int32: { send: [-2147483648, 2147483647, 0, 123], expect: [-2147483648, 2147483647, 0, 123] },
  int64: {
    send: ['-9223372036854775808', '9223372036854775807', 42, -42],
    expect: [],
    rawText: '[-9223372036854775808,9223372036854775807,42,-42]',
  },
  uint8: { send: [0, 255, 1, 2], expect: [0, 255, 1, 2] },
  uint16: { send: [0, 65535, 1, 2], expect: [0, 65535, 1, 2] },
  uint32: { send: [0, 4294967295, 1, 2], expect: [0, 4294967295, 1, 2] },
  uint64: {
    send: ['18446744073709551615', 0, 7, '9007199254740993'],
    expect: [],
    rawText: '[18446744073709551615,0,7,9007199254740993]',
  },
  bool: { send: [true, false, true, true], expect: [true, false, true, true] },
  string: { send: ['héllo', '', '日本', 'a"b'], expect: ['héllo', '', '日本', 'a"b'] },
};

describe('every datatype onnxruntime-node supports, through the bundled handler', () => {
  const model = identityAllTypesModel();
  let handler: Handler;

  beforeAll(async () => {
    handler = await handlerForModel(model.bytes);
  });

  it('reports each input and output with its protocol datatype', async () => {
    const r = await call(handler, restEvent('GET', '/v2/models/model'));
    expect(r.status).toBe(200);
    for (const t of model.elemTypes) {
      expect(r.body.inputs).toContainEqual(expect.objectContaining({ name: `x_${t}`, datatype: OIP[t] }));
      expect(r.body.outputs).toContainEqual(expect.objectContaining({ name: `y_${t}`, datatype: OIP[t] }));
    }
  });

  it('round-trips the values of every datatype exactly', async () => {
    const inputs = model.spec.inputs.map((i) => ({
      name: i.name,
      datatype: OIP[i.elemType],
      shape: i.shape!.length === 1 ? [4] : [1, 4],
      data: CASES[i.elemType].send,
    }));
    const r = await infer(handler, { inputs });
    expect(r.status, r.text).toBe(200);
    expect(r.body.outputs).toHaveLength(model.elemTypes.length);
    for (const t of model.elemTypes) {
      const out = r.body.outputs.find((o: any) => o.name === `y_${t}`);
      expect(out.datatype).toBe(OIP[t]);
      expect(out.shape).toEqual(model.spec.inputs.find((i) => i.elemType === t)!.shape!.length === 1 ? [4] : [1, 4]);
      const c = CASES[t];
      if (c.rawText) {
        // Past 2^53 JSON.parse would round; the response text must carry every digit.
        expect(r.text).toContain(`"name":"y_${t}","datatype":"${OIP[t]}","shape":${JSON.stringify(out.shape)},"data":${c.rawText}`);
      } else {
        expect(out.data).toEqual(c.expect);
      }
    }
  });
});

describe('a model with several inputs and outputs of different datatypes', () => {
  const model = multiIoModel();
  let handler: Handler;
  const request = {
    inputs: [
      { name: 'ids', datatype: 'INT64', shape: [2, 4], data: [1, 2, 3, 4, -5, 6, 7, 1000000] },
      { name: 'mask', datatype: 'BOOL', shape: [2, 4], data: [true, false, false, true, false, false, true, true] },
      { name: 'text', datatype: 'BYTES', shape: [2], data: ['first', 'second'] },
      { name: 'halves', datatype: 'FP16', shape: [2, 2], data: [1, -0.5, 0.25, 1024] },
    ],
  };

  beforeAll(async () => {
    handler = await handlerForModel(model.bytes);
  });

  it('computes each output as the graph defines it', async () => {
    const r = await infer(handler, request);
    expect(r.status, r.text).toBe(200);
    const out = Object.fromEntries(r.body.outputs.map((o: any) => [o.name, o]));
    expect(out.ids_times_two).toEqual({ name: 'ids_times_two', datatype: 'INT64', shape: [2, 4], data: [2, 4, 6, 8, -10, 12, 14, 2000000] });
    expect(out.mask_inverted.data).toEqual([false, true, true, false, true, true, false, false]);
    expect(out.text_echo).toEqual({ name: 'text_echo', datatype: 'BYTES', shape: [2], data: ['first', 'second'] });
    expect(out.halves_plus_half).toMatchObject({ datatype: 'FP32', data: [1.5, 0, 0.75, 1024.5] });
    // 1024.5 is not a float16: the nearest (ties to even) is 1024.
    expect(out.halves_plus_half_fp16).toMatchObject({ datatype: 'FP16', data: [1.5, 0, 0.75, 1024] });
  });

  it('returns only the selected outputs, in the order asked', async () => {
    const r = await infer(handler, { ...request, outputs: [{ name: 'text_echo' }, { name: 'ids_times_two' }] });
    expect(r.status).toBe(200);
    expect(r.body.outputs.map((o: any) => o.name)).toEqual(['text_echo', 'ids_times_two']);
  });

  it('refuses the instances form for a model with several inputs, naming them', async () => {
    const r = await infer(handler, { instances: [[1, 2, 3, 4]] });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatch(/one input.*'ids', 'mask', 'text', 'halves'/);
  });
});
