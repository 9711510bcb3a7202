/**
 * Dynamic batching through the bundled handler (BATCH_MAX_SIZE, BATCH_MAX_QUEUE_DELAY_MS): concurrent
 * requests with different inputs are merged into one run, and each caller gets exactly its own
 * rows; an invalid request among them is refused alone, a run that fails on one request's values
 * fails that request only, and requests that cannot merge are answered as without batching.
 */
import { describe, expect, it } from 'vitest';
import { infer } from '../../../../fixtures/events';
import { gatherModel, mlpModel, multiIoModel } from '../../../../tools/onnx';
import { type Handler, handlerForModel } from '../../../support/handler';
import { logged } from '../../../support/logs';

const BATCHING = { BATCH_MAX_SIZE: '32', BATCH_MAX_QUEUE_DELAY_MS: '20' };

/** A handler with its embedded metrics on, so that each request's BatchRequests figure shows. */
async function batchingHandler(bytes: Uint8Array, env: Record<string, string> = BATCHING): Promise<Handler> {
  const saved = process.env.POWERTOOLS_METRICS_DISABLED;
  process.env.POWERTOOLS_METRICS_DISABLED = 'false';
  try {
    return await handlerForModel(bytes, env);
  } finally {
    process.env.POWERTOOLS_METRICS_DISABLED = saved;
  }
}

/** Each request's BatchRequests figure: overlapping invocations share one metrics line, as arrays. */
const batchFigures = (logs: any[]) => logs.filter((l) => l._aws?.CloudWatchMetrics && l.BatchRequests !== undefined).flatMap((l) => [l.BatchRequests].flat() as number[]);

describe('dynamic batching in the handler', () => {
  const multi = multiIoModel();
  /** Request i of the multi-input model: i % 3 + 1 rows, every value its own. */
  const multiRequest = (i: number) => {
    const rows = (i % 3) + 1;
    return {
      rows,
      ids: Array.from({ length: rows * 4 }, (_, k) => i * 100 + k),
      mask: Array.from({ length: rows * 4 }, (_, k) => (i + k) % 2 === 0),
      text: Array.from({ length: rows }, (_, k) => `request ${i} row ${k}`),
      halves: Array.from({ length: rows * 2 }, (_, k) => (i + k) / 4),
    };
  };
  const body = (r: ReturnType<typeof multiRequest>, id: string) => ({
    id,
    inputs: [
      { name: 'ids', shape: [r.rows, 4], datatype: 'INT64', data: r.ids },
      { name: 'mask', shape: [r.rows, 4], datatype: 'BOOL', data: r.mask },
      { name: 'text', shape: [r.rows], datatype: 'BYTES', data: r.text },
      { name: 'halves', shape: [r.rows, 2], datatype: 'FP16', data: r.halves },
    ],
  });

  it('merges concurrent requests with different inputs, answers each with exactly its own rows, and refuses an invalid one alone', async () => {
    const handler = await batchingHandler(multi.bytes);
    const requests = Array.from({ length: 12 }, (_, i) => multiRequest(i));
    const invalid = [
      // A datatype the model does not take, and a row of the wrong width: both refused before any batch.
      { ...body(requests[0], 'bad-datatype'), inputs: body(requests[0], 'x').inputs.map((t) => (t.name === 'ids' ? { ...t, datatype: 'FP32' } : t)) },
      { ...body(requests[1], 'bad-width'), inputs: body(requests[1], 'x').inputs.map((t) => (t.name === 'halves' ? { ...t, shape: [requests[1].rows, 3] } : t)) },
    ];
    const { result: answers, logs } = await logged(() =>
      Promise.all([
        ...requests.slice(0, 6).map((r, i) => infer(handler, body(r, `req-${i}`))),
        infer(handler, invalid[0]),
        ...requests.slice(6).map((r, i) => infer(handler, body(r, `req-${i + 6}`))),
        infer(handler, invalid[1]),
      ]),
    );
    const valid = [...answers.slice(0, 6), ...answers.slice(7, 13)];
    valid.forEach((answer, i) => {
      const r = requests[i];
      expect(answer.status, JSON.stringify(answer.body)).toBe(200);
      expect(answer.body.id).toBe(`req-${i}`);
      const out = (name: string) => answer.body.outputs.find((o: any) => o.name === name);
      expect(out('ids_times_two')).toMatchObject({ shape: [r.rows, 4], data: r.ids.map((v) => v * multi.idsFactor) });
      expect(out('mask_inverted')).toMatchObject({ shape: [r.rows, 4], data: r.mask.map((v) => !v) });
      expect(out('text_echo')).toMatchObject({ shape: [r.rows], data: r.text });
      expect(out('halves_plus_half')).toMatchObject({ shape: [r.rows, 2], data: r.halves.map((v) => v + multi.halvesAddend) });
    });
    expect(answers[6].status).toBe(400);
    expect(answers[6].body.error).toMatch(/input 'ids'.*FP32/);
    expect(answers[13].status).toBe(400);
    expect(answers[13].body.error).toMatch(/input 'halves'/);
    // The twelve valid requests were answered by merged runs, not one run each.
    const figures = batchFigures(logs);
    expect(figures).toHaveLength(12);
    expect(Math.max(...figures)).toBeGreaterThan(1);
  });

  it('answers a run that one request’s values make fail with a 422 for that request, and the others with their own rows', async () => {
    const gather = gatherModel();
    const handler = await batchingHandler(gather.bytes);
    const indices = [[0, 1], [3], [2, 7], [1, 1, 2], [0]];
    const { result: answers, logs } = await logged(() =>
      Promise.all(indices.map((idx) => infer(handler, { inputs: [{ name: 'idx', shape: [idx.length], datatype: 'INT64', data: idx }] }))),
    );
    answers.forEach((answer, i) => {
      if (i === 2) {
        expect(answer.status).toBe(422);
        expect(answer.body.error).toMatch(/Gather/);
        return;
      }
      expect(answer.status, JSON.stringify(answer.body)).toBe(200);
      expect(answer.body.outputs[0].data).toEqual(indices[i].map((k) => gather.table[k]));
    });
    // After the merged run failed, each request ran alone.
    expect(batchFigures(logs).filter((n) => n === 1)).toHaveLength(4);
  });

  it('runs alone the requests that cannot merge: other dimensions, a batch too large, an output not in rows', async () => {
    const mlp = mlpModel({ seed: 5, label: true });
    const handler = await batchingHandler(mlp.bytes, { BATCH_MAX_SIZE: '4', BATCH_MAX_QUEUE_DELAY_MS: '20' });
    const row = (i: number) => [0, 1, 2, 3].map((j) => Math.fround(Math.cos(i * 3.1 + j) * 2));
    const rows = [[row(1)], [row(2), row(3), row(4), row(5), row(6)], [row(7)], [row(8), row(9)]];
    const answers = await Promise.all(rows.map((r) => infer(handler, { inputs: [{ name: 'input', shape: [r.length, 4], datatype: 'FP32', data: r.flat() }] })));
    answers.forEach((answer, i) => {
      expect(answer.status, JSON.stringify(answer.body)).toBe(200);
      const probabilities = answer.body.outputs.find((o: any) => o.name === 'probabilities');
      expect(probabilities.shape).toEqual([rows[i].length, mlp.classes]);
      const expected = mlp.predict(rows[i]).flat();
      for (const [k, p] of (probabilities.data as number[]).entries()) expect(p).toBeCloseTo(expected[k], 5);
    });
    const multi = multiIoModel();
    // A request whose rows disagree with the others' widths is refused as without batching.
    const single = await batchingHandler(multi.bytes);
    const bad = await infer(single, {
      inputs: [
        { name: 'ids', shape: [2, 4], datatype: 'INT64', data: Array(8).fill(1) },
        { name: 'mask', shape: [1, 4], datatype: 'BOOL', data: Array(4).fill(true) },
        { name: 'text', shape: [2], datatype: 'BYTES', data: ['a', 'b'] },
        { name: 'halves', shape: [2, 2], datatype: 'FP16', data: [0, 0, 0, 0] },
      ],
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatch(/dimension 'batch'/);
  });

  it('leaves batching off unless BATCH_MAX_SIZE is 2 or more, and refuses a malformed one with the variable’s name', async () => {
    const mlp = mlpModel({ seed: 5 });
    const off = await batchingHandler(mlp.bytes, { BATCH_MAX_SIZE: '1' });
    const { logs } = await logged(() => infer(off, { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] }));
    expect(batchFigures(logs)).toEqual([]);
    const { result: answer, text } = await logged(async () => {
      const misconfigured = await handlerForModel(mlp.bytes, { BATCH_MAX_SIZE: '16', BATCH_MAX_QUEUE_DELAY_MS: 'soon' });
      return infer(misconfigured, { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] });
    });
    expect(answer.status).toBe(500);
    expect(text).toContain('BATCH_MAX_QUEUE_DELAY_MS must be a non-negative integer, got: soon');
  });
});
