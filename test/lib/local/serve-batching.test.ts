/**
 * `serve --workers N --batch-size B`: the handler's batcher in each worker, as an endpoint's
 * `batching` prop sets it on Managed Instances. Concurrent requests with different inputs are
 * merged within a worker and each caller gets exactly its own rows.
 */
import { describe, expect, it } from 'vitest';
import { batchSettings, DEFAULT_CONCURRENCY_PER_WORKER, workerSettings } from '../../../lib/local/cli';
import { multiIoModel } from '../../../tools/onnx';
import { writeModel } from '../../support/handler';
import { startServe } from '../../support/serve';

describe('serve --batch-size', () => {
  it('merges the concurrent requests of each worker, and answers each with its own rows', async () => {
    const multi = multiIoModel();
    const s = await startServe(['--model', writeModel(multi.bytes), '--port', '0', '--workers', '2', '--batch-size', '8', '--batch-delay', '20', '--log-level', 'ERROR'], {
      env: { ...process.env, POWERTOOLS_METRICS_DISABLED: 'false' },
      timeoutMs: 60_000,
    });
    try {
      expect(s.output()).toMatch(/2 worker threads.*at most 16 requests in flight[\s\S]*dynamic batching: up to 8 rows per run, waiting up to 20 ms/);
      const request = (i: number) => {
        const rows = (i % 2) + 1;
        return {
          rows,
          ids: Array.from({ length: rows * 4 }, (_, k) => i * 10 + k),
          mask: Array.from({ length: rows * 4 }, (_, k) => (i * 3 + k) % 2 === 0),
          text: Array.from({ length: rows }, (_, k) => `${i}/${k}`),
          halves: Array.from({ length: rows * 2 }, (_, k) => (i + k) / 2),
        };
      };
      const requests = Array.from({ length: 24 }, (_, i) => request(i));
      const answers = await Promise.all(
        requests.map(async (r, i) => {
          const response = await fetch(`${s.url}/v2/models/model/infer`, {
            method: 'POST',
            headers: { 'Content-Type': 'application/json' },
            body: JSON.stringify({
              id: `r${i}`,
              inputs: [
                { name: 'ids', shape: [r.rows, 4], datatype: 'INT64', data: r.ids },
                { name: 'mask', shape: [r.rows, 4], datatype: 'BOOL', data: r.mask },
                { name: 'text', shape: [r.rows], datatype: 'BYTES', data: r.text },
                { name: 'halves', shape: [r.rows, 2], datatype: 'FP16', data: r.halves },
              ],
            }),
          });
          return { status: response.status, body: (await response.json()) as any };
        }),
      );
      for (const [i, a] of answers.entries()) {
        const r = requests[i];
        expect(a.status, JSON.stringify(a.body)).toBe(200);
        expect(a.body.id).toBe(`r${i}`);
        const out = (name: string) => a.body.outputs.find((o: any) => o.name === name);
        expect(out('ids_times_two').data).toEqual(r.ids.map((v) => v * multi.idsFactor));
        expect(out('mask_inverted').data).toEqual(r.mask.map((v) => !v));
        expect(out('text_echo').data).toEqual(r.text);
        expect(out('halves_plus_half').data).toEqual(r.halves.map((v) => v + multi.halvesAddend));
      }
      // Each worker's embedded metrics: at least one run answered several requests.
      const figures = s
        .output()
        .split('\n')
        .filter((l) => l.includes('"BatchRequests"'))
        .flatMap((l) => [JSON.parse(l).BatchRequests].flat() as number[]);
      expect(figures).toHaveLength(24);
      expect(Math.max(...figures)).toBeGreaterThan(1);
    } finally {
      s.child.kill('SIGTERM');
    }
  });

  it('reads the flags: off without a size or with 1, a batch’s worth of requests per worker by default, and refuses what is malformed', () => {
    expect(batchSettings({})).toBeUndefined();
    expect(batchSettings({ 'batch-size': '1' })).toBeUndefined();
    expect(batchSettings({ 'batch-size': '16' })).toEqual({ size: 16 });
    expect(batchSettings({ 'batch-size': '16', 'batch-delay': '0' })).toEqual({ size: 16, delayMs: 0 });
    expect(batchSettings({ 'batch-size': 'many' })).toMatch(/--batch-size must be a whole number of at least 1, got: many/);
    expect(batchSettings({ 'batch-size': '8', 'batch-delay': '1.5' })).toMatch(/--batch-delay must be a whole number of milliseconds, got: 1.5/);
    expect(batchSettings({ 'batch-delay': '5' })).toMatch(/--batch-delay needs --batch-size/);
    expect(workerSettings({ workers: '2' }, 16)).toEqual({ workers: 2, concurrency: 32, queue: 100 });
    expect(workerSettings({ workers: '2' }, 2)).toEqual({ workers: 2, concurrency: 2 * DEFAULT_CONCURRENCY_PER_WORKER, queue: 100 });
    expect(workerSettings({ workers: '2', concurrency: '6' }, 16)).toEqual({ workers: 2, concurrency: 6, queue: 100 });
  });
});
