import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ENV } from '../contract/environment';
import { ENV_PAGE, envTable, generatedEnvPage, readEnvDocs, TABLE_END, TABLE_START, withEnvTable } from '../scripts/docs-env-table';
import { ROOT } from './support/docs';

/** The backticked variable names of a markdown table's first column. */
function tableNames(markdown: string): string[] {
  return [...markdown.matchAll(/^\| (`[A-Z][A-Z0-9_]*`(?:, `[A-Z][A-Z0-9_]*`)*) \|/gm)].flatMap((m) => [...m[1].matchAll(/`([A-Z0-9_]+)`/g)].map((n) => n[1]));
}

describe('docs/environment.md', () => {
  const page = fs.readFileSync(ENV_PAGE, 'utf8');
  const generated = page.slice(page.indexOf(TABLE_START), page.indexOf(TABLE_END));

  it('is what scripts/docs-env-table.ts writes from contract/environment.ts (run `npm run docgen` after changing the contract)', () => {
    expect(page).toBe(generatedEnvPage());
  });

  it('documents every variable of the contract, once, and no other in its table', () => {
    expect(tableNames(generated)).toEqual(Object.values(ENV));
  });

  it('names, outside the table, only variables the code reads, none of the contract', () => {
    const rest = page.replace(generated, '');
    const names = tableNames(rest);
    expect(names.length).toBeGreaterThan(0);
    const contract: readonly string[] = Object.values(ENV);
    expect(names.filter((n) => contract.includes(n))).toEqual([]);
    const sources = ['handlers', 'lib'].flatMap((dir) =>
      fs
        .readdirSync(path.join(ROOT, dir), { recursive: true, withFileTypes: true })
        .filter((d) => d.isFile() && d.name.endsWith('.ts'))
        .map((d) => fs.readFileSync(path.join(d.parentPath, d.name), 'utf8')),
    );
    expect(names.filter((n) => !sources.some((s) => s.includes(n)))).toEqual([]);
  });
});

describe('scripts/docs-env-table.ts', () => {
  const source = [
    'export const ENV = {',
    '  /**',
    '   * Where the model is. Two lines',
    '   * of text.',
    '   * @default `/tmp/models`',
    '   */',
    "  MODEL_DIR: 'MODEL_DIR',",
    '  /** Threads.',
    '   * @default - one per vCPU, as | Lambda gives them',
    '   */',
    "  THREADS: 'ORT_THREADS',",
    '  /** No default. */',
    "  PLAIN: 'PLAIN',",
    '} as const;',
  ].join('\n');

  it("reads each entry's name (its value), doc comment and @default, in order", () => {
    expect(readEnvDocs(source)).toEqual([
      { name: 'MODEL_DIR', description: 'Where the model is. Two lines of text.', defaultValue: '`/tmp/models`' },
      { name: 'ORT_THREADS', description: 'Threads.', defaultValue: 'one per vCPU, as | Lambda gives them' },
      { name: 'PLAIN', description: 'No default.', defaultValue: undefined },
    ]);
  });

  it('writes one row per variable, its pipes escaped, between the markers only', () => {
    const table = envTable(readEnvDocs(source));
    expect(table.split('\n')).toEqual([
      '| variable | default | |',
      '|---|---|---|',
      '| `MODEL_DIR` | `/tmp/models` | Where the model is. Two lines of text. |',
      '| `ORT_THREADS` | one per vCPU, as \\| Lambda gives them | Threads. |',
      '| `PLAIN` |  | No default. |',
    ]);
    const page = `# Title\n\nText.\n\n${TABLE_START}\nan old table\n${TABLE_END}\n\nMore text.\n`;
    expect(withEnvTable(page, table)).toBe(`# Title\n\nText.\n\n${TABLE_START}\n${table}\n${TABLE_END}\n\nMore text.\n`);
    expect(() => withEnvTable('# No markers\n', table)).toThrow(/no table markers/);
  });

  it('refuses a variable without a doc comment, and one whose name is not a string', () => {
    expect(() => readEnvDocs("export const ENV = {\n  /** Documented. */\n  A: 'A',\n  B: 'B',\n} as const;\n")).toThrow(/ENV\.B has no doc comment/);
    expect(() => readEnvDocs("const X = 'X';\nexport const ENV = {\n  /** Not a literal. */\n  A: X,\n} as const;\n")).toThrow(/ENV\.A must be a string literal/);
    expect(() => readEnvDocs('export const OTHER = {};\n')).toThrow(/no `export const ENV/);
  });
});
