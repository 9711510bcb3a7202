import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { demoModel } from '../../../fixtures/demo-model';
import { csvFields, progressLine, readBatchItems } from '../../../lib/local/batch-command';
import { tempDir, writeModel } from '../../support/handler';
import { runCli } from '../../support/serve';

const model = demoModel();

describe('batch, the local command', () => {
  it('scores a JSON Lines file as deployed: one line per input line, in order, failures apart, a manifest', async () => {
    const dir = tempDir();
    const rows = Array.from({ length: 1234 }, (_, k) => [k / 100, -k / 200, Math.sin(k), Math.cos(k)]);
    const lines = rows.map((r) => JSON.stringify(r));
    lines[7] = '{not json';
    lines[500] = JSON.stringify([1, 2, 3]);
    lines[900] = JSON.stringify({ id: 'req-900', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: rows[900] }] });
    fs.writeFileSync(path.join(dir, 'rows.jsonl'), `${lines.join('\n')}\n`);
    const out = path.join(dir, 'out');
    const { code, output } = await runCli(['batch', '--model', writeModel(model.bytes), '--input', path.join(dir, 'rows.jsonl'), '--output', out, '--items-per-batch', '100']);
    expect(output).toMatch(/1,234\/1,234 rows/);
    expect(output).toMatch(/1234 rows in .* s \(\d+ rows\/s\): 1232 scored, 2 failed/);
    expect(code).toBe(2);
    const results = fs
      .readFileSync(path.join(out, 'results.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(results.map((r) => r.index)).toEqual(rows.map((_, k) => k));
    const labels = model.predictLabels(rows);
    for (const [k, r] of results.entries()) {
      if (k === 7 || k === 500) continue;
      expect(r.outputs.find((o: { name: string }) => o.name === 'label').data, `line ${k}`).toEqual([labels[k]]);
    }
    expect(results[900].id).toBe('req-900');
    const failures = fs
      .readFileSync(path.join(out, 'failures.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(failures).toEqual([
      { index: 7, status: 400, error: expect.stringMatching(/not JSON/) },
      { index: 500, status: 400, error: expect.stringMatching(/4/) },
    ]);
    expect(JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8'))).toMatchObject({ items: 1234, succeeded: 1232, failed: 2 });
  }, 60_000);

  it('scores a CSV file, its id column kept, each line joined with its input', async () => {
    const dir = tempDir();
    const rows = [
      [0.5, -1.2, 3.3, 0.7],
      [1.0, 0.2, -0.4, 2.5],
    ];
    fs.writeFileSync(path.join(dir, 'rows.csv'), `id,a,b,c,d\n${rows.map((r, k) => `"c,${k}",${r.join(',')}`).join('\n')}\n`);
    const out = path.join(dir, 'out');
    const { code } = await runCli(['batch', '--model', writeModel(model.bytes), '--input', path.join(dir, 'rows.csv'), '--output', out, '--join-input']);
    expect(code).toBe(0);
    const results = fs
      .readFileSync(path.join(out, 'results.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(results.map((r) => r.id)).toEqual(['c,0', 'c,1']);
    expect(results[1].input).toEqual({ id: 'c,1', a: '1', b: '0.2', c: '-0.4', d: '2.5' });
    expect(results.map((r) => r.outputs.find((o: { name: string }) => o.name === 'label').data[0])).toEqual(model.predictLabels(rows));
  }, 60_000);

  it('refuses missing options and files, naming them', async () => {
    expect(await runCli(['batch', '--model', 'nope.onnx', '--input', 'x', '--output', 'y'])).toMatchObject({
      code: 1,
      output: expect.stringMatching(/--model: .*nope.onnx does not exist/),
    });
    expect(await runCli(['batch', '--input', 'x'])).toMatchObject({ code: 1, output: expect.stringMatching(/give --model, --input and --output/) });
  });

  it('reads CSV fields with quotes, and draws its progress with rows per second and time left', () => {
    expect(csvFields('a,"b,c","say ""hi""",')).toEqual(['a', 'b,c', 'say "hi"', '']);
    expect(readBatchItems('x,y\n1,2\n', 'csv')).toEqual([{ value: { x: '1', y: '2' } }]);
    expect(progressLine(250, 1000, 2)).toBe('[########......................] 250/1,000 rows  125 rows/s  6 s left');
  });
});
