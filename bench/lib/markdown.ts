/** bench/results/latest.md from the results that latest.json holds. */
import type { Machine, Results, Table } from './types';

export function renderMarkdown(results: Results): string {
  const records = Object.values(results.benchmarks);
  const lines: string[] = [
    '# Benchmark results',
    '',
    `Written by \`tsx bench/run.ts\` (see [bench/README.md](../README.md) for what each figure means and how to run it). ` +
      'Each benchmark names the date of its own run and whether it was a `--quick` one. Figures are from one machine, ' +
      'on which other work may have run: compare ratios within a run rather than absolute figures across machines. ' +
      'Nothing here is asserted; in min / **median** / max columns the median is bold.',
    '',
    '## Machine',
    '',
    ...table({ columns: ['', ''], rows: machineRows(results.machine, results.date) }),
    '',
  ];
  records.forEach((record, i) => {
    lines.push(
      `## ${i + 1}. ${record.title} (\`${record.name}\`)`,
      '',
      `_Run ${record.date.replace('T', ' ').slice(0, 19)} UTC, ${record.quick ? '`--quick`' : 'full'}, ${record.seconds} s._`,
      '',
      record.method,
      '',
    );
    for (const t of record.tables) {
      if (t.caption) lines.push(`**${t.caption}**`, '');
      lines.push(...table(t), '');
    }
    for (const file of record.files.filter((f) => f.endsWith('.svg'))) {
      lines.push(`![${record.title}](${file})`, '');
    }
    if (record.notes?.length) {
      lines.push(...record.notes.map((n) => `- ${n}`), '');
    }
  });
  return `${lines.join('\n').trimEnd()}\n`;
}

function machineRows(m: Machine, date: string): string[][] {
  return [
    ['CPU', m.cpu],
    ['cores', String(m.cores)],
    ['memory', `${m.memoryGiB} GiB`],
    ['OS', m.os],
    ['Node.js', m.node],
    ['onnxruntime-node', m.onnxruntime],
    ['aws-cdk-lib', m.awsCdkLib],
    ['load average (1 min) at start', String(m.loadAverage)],
    ['latest run started', `${date.replace('T', ' ').slice(0, 19)} UTC`],
  ];
}

function table(t: Table): string[] {
  const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  return [
    `| ${t.columns.map(cell).join(' | ')} |`,
    `|${t.columns.map((_, i) => (i > 0 && /^[\d×+\-.]/.test(t.rows[0]?.[i] ?? '') ? '---:' : '---')).join('|')}|`,
    ...t.rows.map((r) => `| ${r.map(cell).join(' | ')} |`),
  ];
}
