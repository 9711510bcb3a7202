/**
 * Memory bombs: a claimed shape of 10^9, 2^31 or more than 2^53 elements with a few values of data
 * is refused with a 400 on the element count alone, before anything is allocated for it. Allocating
 * any of them would take gigabytes (or throw a RangeError, a 500), so the resident set must not move
 * and every answer must take milliseconds.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { buildOnnxModel, mlpModel, multiIoModel } from '../../../tools/onnx';
import { infer } from '../../../fixtures/events';
import { type Handler, handlerForModel } from '../../support/handler';

/** `y = x` over three free dimensions, so that a claimed shape can overflow 2^53. */
const cube = buildOnnxModel({
  graphName: 'cube',
  inputs: [{ name: 'x', elemType: 'float32', shape: ['a', 'b', 'c'] }],
  outputs: [{ name: 'y', elemType: 'float32', shape: ['a', 'b', 'c'] }],
  nodes: [{ opType: 'Identity', inputs: ['x'], outputs: ['y'] }],
});

const MAX_DIM = 2 ** 31 - 1;

interface Bomb {
  readonly what: string;
  readonly model: 'mlp' | 'multi' | 'cube';
  readonly tensor: { name: string; datatype: string; shape: number[]; data: unknown[] };
}

const BOMBS: Bomb[] = [
  { what: '10^9 FP32 (MLP)', model: 'mlp', tensor: { name: 'input', datatype: 'FP32', shape: [250_000_000, 4], data: [1, 2, 3, 4] } },
  { what: '2^31 FP32 (MLP)', model: 'mlp', tensor: { name: 'input', datatype: 'FP32', shape: [2 ** 29, 4], data: [1, 2, 3, 4] } },
  { what: '10^9 FP32', model: 'cube', tensor: { name: 'x', datatype: 'FP32', shape: [1000, 1000, 1000], data: [1] } },
  { what: '2^31 FP32', model: 'cube', tensor: { name: 'x', datatype: 'FP32', shape: [2048, 1024, 1024], data: [1, 2] } },
  { what: 'about 2^93 FP32, past 2^53', model: 'cube', tensor: { name: 'x', datatype: 'FP32', shape: [MAX_DIM, MAX_DIM, MAX_DIM], data: [1, 2, 3, 4] } },
  { what: '2^81 FP32, past 2^53', model: 'cube', tensor: { name: 'x', datatype: 'FP32', shape: [2 ** 27, 2 ** 27, 2 ** 27], data: [] } },
  { what: 'about 8.6 * 10^9 INT64', model: 'multi', tensor: { name: 'ids', datatype: 'INT64', shape: [MAX_DIM, 4], data: [1, 2, 3, 4] } },
  { what: '10^9 BYTES', model: 'multi', tensor: { name: 'text', datatype: 'BYTES', shape: [1_000_000_000], data: ['a'] } },
];

/** The element count written as the handler writes it, computed exactly (BigInt) and compared as a number. */
function claimedCount(shape: readonly number[]): bigint {
  return shape.reduce((a, d) => a * BigInt(d), 1n);
}

describe('a claimed shape far beyond its data', () => {
  const handlers: Record<Bomb['model'], Handler> = {} as any;
  beforeAll(async () => {
    handlers.mlp = await handlerForModel(mlpModel({ inputs: 4, hidden: 16, classes: 3, seed: 4 }).bytes);
    handlers.multi = await handlerForModel(multiIoModel().bytes);
    handlers.cube = await handlerForModel(cube);
  });

  it.each(BOMBS)('$what is refused with a 400 that gives both counts', async ({ model, tensor }) => {
    const r = await infer(handlers[model], { inputs: [tensor] });
    expect(r.status).toBe(400);
    const m = /^input '(.+)': shape \[([\d,]+)\] holds (\S+) elements but data has (\d+)$/.exec(r.body.error);
    expect(m, r.body.error).not.toBeNull();
    expect(m![1]).toBe(tensor.name);
    expect(m![2]).toBe(tensor.shape.join(','));
    const claimed = claimedCount(tensor.shape);
    // Past 2^53 the count is a float: close to the exact product is all that can be asked.
    expect(Math.abs(Number(m![3]) - Number(claimed)) / Number(claimed)).toBeLessThan(1e-12);
    expect(Number(m![4])).toBe(tensor.data.length);
  });

  it('allocates nothing for them: RSS stays flat over 200 of them and each answers in milliseconds', async () => {
    // Warm up first, so that compiling the code paths is not counted.
    for (const b of BOMBS) await infer(handlers[b.model], { inputs: [b.tensor] });
    const before = process.memoryUsage();
    let slowest = 0;
    for (let round = 0; round < 25; round++) {
      for (const b of BOMBS) {
        const started = performance.now();
        const r = await infer(handlers[b.model], { inputs: [b.tensor] });
        slowest = Math.max(slowest, performance.now() - started);
        expect(r.status).toBe(400);
      }
    }
    const after = process.memoryUsage();
    // One of these allocated would be 4 GB or more; 32 MB leaves room for the garbage collector.
    expect(after.rss - before.rss).toBeLessThan(32 * 2 ** 20);
    expect(after.arrayBuffers - before.arrayBuffers).toBeLessThan(8 * 2 ** 20);
    expect(slowest).toBeLessThan(250);
  });

  it('answers an empty tensor with huge other dimensions, which needs no memory either', async () => {
    const shape = [0, MAX_DIM, MAX_DIM];
    const before = process.memoryUsage().rss;
    const r = await infer(handlers.cube, { inputs: [{ name: 'x', datatype: 'FP32', shape, data: [] }] });
    expect(r.status, r.text).toBe(200);
    expect(r.body.outputs[0]).toEqual({ name: 'y', datatype: 'FP32', shape, data: [] });
    expect(process.memoryUsage().rss - before).toBeLessThan(32 * 2 ** 20);
  });
});
