/**
 * Writes the table of the handlers' environment variables in docs/environment.md from
 * contract/environment.ts, where each variable is defined: one row per entry of `ENV`, in its order,
 * with its doc comment and its `@default`. The page's own text is written by hand; the table sits
 * between two marker lines, and only what is between them is replaced. `npm run docgen` runs it;
 * `test/docs-environment.test.ts` fails when the committed page is not what it writes.
 *
 * Run directly: `npx tsx scripts/docs-env-table.ts`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';

const ROOT = path.resolve(__dirname, '..');
export const CONTRACT_FILE = path.join(ROOT, 'contract', 'environment.ts');
export const ENV_PAGE = path.join(ROOT, 'docs', 'environment.md');

export const TABLE_START = '<!-- env-table:start: written by scripts/docs-env-table.ts from contract/environment.ts; do not edit by hand -->';
export const TABLE_END = '<!-- env-table:end -->';

/** One variable as the contract documents it. */
export interface EnvVariableDoc {
  /** The variable's name, as the handler reads it (the entry's value). */
  readonly name: string;
  /** The doc comment's text, on one line. */
  readonly description: string;
  /** The `@default` tag's text (without the leading `- ` of a described default), if any. */
  readonly defaultValue?: string;
}

/** The entries of `export const ENV = { ... }` in a source text, with their doc comments. */
export function readEnvDocs(source: string, fileName = 'environment.ts'): EnvVariableDoc[] {
  const file = ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const declaration = file.statements
    .filter(ts.isVariableStatement)
    .flatMap((s) => [...s.declarationList.declarations])
    .find((d) => ts.isIdentifier(d.name) && d.name.text === 'ENV');
  let init = declaration?.initializer;
  while (init && (ts.isAsExpression(init) || ts.isSatisfiesExpression(init) || ts.isParenthesizedExpression(init))) init = init.expression;
  if (!init || !ts.isObjectLiteralExpression(init)) throw new Error(`${fileName}: no \`export const ENV = { ... }\` object`);

  return init.properties.map((property) => {
    const key = property.name && (ts.isIdentifier(property.name) || ts.isStringLiteral(property.name)) ? property.name.text : property.getText(file);
    if (!ts.isPropertyAssignment(property) || !ts.isStringLiteral(property.initializer)) {
      throw new Error(`${fileName}: ENV.${key} must be a string literal, the variable's name`);
    }
    const docs = ts.getJSDocCommentsAndTags(property).filter(ts.isJSDoc);
    const description = oneLine(docs.map((d) => ts.getTextOfJSDocComment(d.comment) ?? '').join(' '));
    if (description === '') throw new Error(`${fileName}: ENV.${key} has no doc comment; say what ${property.initializer.text} does`);
    const tag = docs.flatMap((d) => [...(d.tags ?? [])]).find((t) => t.tagName.text === 'default');
    const tagText = tag ? oneLine(ts.getTextOfJSDocComment(tag.comment) ?? '') : undefined;
    return { name: property.initializer.text, description, defaultValue: tagText?.replace(/^-\s+/, '') };
  });
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

/** A markdown table cell: one line, its pipes escaped. */
function cell(text: string): string {
  return text.replace(/\|/g, '\\|');
}

/** The table, one row per variable. */
export function envTable(variables: readonly EnvVariableDoc[]): string {
  const rows = variables.map((v) => `| \`${v.name}\` | ${cell(v.defaultValue ?? '')} | ${cell(v.description)} |`);
  return ['| variable | default | |', '|---|---|---|', ...rows].join('\n');
}

/** The page with the text between its markers replaced by `table`. */
export function withEnvTable(page: string, table: string): string {
  const start = page.indexOf(TABLE_START);
  const end = page.indexOf(TABLE_END);
  if (start < 0 || end < start) throw new Error(`the page has no table markers: put the lines\n${TABLE_START}\n${TABLE_END}\nwhere the table goes`);
  return `${page.slice(0, start + TABLE_START.length)}\n${table}\n${page.slice(end)}`;
}

/** docs/environment.md as it should be, from the contract as it is. */
export function generatedEnvPage(): string {
  return withEnvTable(fs.readFileSync(ENV_PAGE, 'utf8'), envTable(readEnvDocs(fs.readFileSync(CONTRACT_FILE, 'utf8'), CONTRACT_FILE)));
}

if (require.main === module) {
  const page = generatedEnvPage();
  if (page !== fs.readFileSync(ENV_PAGE, 'utf8')) {
    fs.writeFileSync(ENV_PAGE, page);
    console.log(`${path.relative(ROOT, ENV_PAGE)}: the table written from ${path.relative(ROOT, CONTRACT_FILE)}`);
  }
}
