import * as fs from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';

/**
 * The TypeScript examples of the README (and of docs/ pages), type-checked against the library's
 * sources.
 *
 * Conventions, for whoever writes a ```ts block:
 * - By default a block is code inside a stack's constructor, wrapped in jsii-rosetta's default
 *   fixture, `rosetta/default.ts-fixture`, as the build's translation into Python, Java, C# and Go
 *   wraps it: `this` is a `Stack`, the block's `import` lines go above the fixture's class, and it
 *   may use the names the fixture declares (`backendRole`, `vpc`, ...). A fence may name another
 *   fixture as rosetta reads it: ```` ```ts fixture=NAME ```` wraps it in `rosetta/NAME.ts-fixture`.
 * - ```` ```ts nofixture ```` or `<!-- example: module -->` on the line before the fence: the block
 *   is a whole file (an app entry, a test), checked as it is.
 * - `<!-- example: skip (why) -->`: not checked; the reason is required.
 * - Only a fence written ```` ```ts ```` or ```` ```typescript ```` is translated by jsii-rosetta.
 *   Code that stays TypeScript in every language's docs (a hooks file runs inside the Lambda
 *   function, which is Node.js; code rosetta cannot translate) is fenced ```` ```TS ````: the same
 *   highlighting, checked here the same way, left alone by rosetta.
 * `cdk-serverless-inference` resolves to `lib/index.ts` and `cdk-serverless-inference/handler` to
 * `handlers/core/index.ts`, so an example is checked against the code it documents, unbuilt.
 */

export const ROOT = path.resolve(__dirname, '../..');

/** The folder of jsii-rosetta's fixtures (`<name>.ts-fixture`, with a `/// here` line). */
export const FIXTURES = path.join(ROOT, 'rosetta');

export type ExampleKind = 'stack' | 'module' | 'skip';

export interface Example {
  /** README line (1-based) of the block's first code line. */
  readonly line: number;
  readonly kind: ExampleKind;
  /** Why a skipped block is not checked. */
  readonly reason?: string;
  /** A stack block's rosetta fixture (`default` unless its fence names one). */
  readonly fixture?: string;
  /** jsii-rosetta translates it into the other languages (its fence is `ts` or `typescript`). */
  readonly translated: boolean;
  readonly code: string;
}

export interface ExampleFailure {
  readonly line: number;
  /** One `<source>:<line>: TS<code>: <message>` per diagnostic. */
  readonly diagnostics: string[];
}

const MARKER = /^<!--\s*example:\s*(\S+)(?:\s+\((.*)\))?\s*-->\s*$/;
/** A TypeScript fence, in any case, with jsii-rosetta's parameters after the language. */
const TS_FENCE = /^```(ts|typescript)((?:\s+[\w$=.-]+)*)\s*$/i;
/** What jsii-rosetta translates: it compares the fence's first word, case and all. */
const ROSETTA_FENCE = /^```(ts|typescript)(\s|$)/;

/** Every ```ts block of a markdown text, with the kind its marker or its fence gives it. */
export function extractExamples(markdown: string): Example[] {
  const lines = markdown.split('\n');
  const examples: Example[] = [];
  let pending: { kind: ExampleKind; reason?: string; line: number } | undefined;
  for (let i = 0; i < lines.length; i++) {
    const text = lines[i];
    const marker = MARKER.exec(text.trim());
    if (marker) {
      const kind = marker[1];
      if (kind !== 'stack' && kind !== 'module' && kind !== 'skip') {
        throw new Error(`line ${i + 1}: unknown example kind '${kind}', expected stack, module or skip`);
      }
      if (kind === 'skip' && !marker[2]?.trim()) {
        throw new Error(`line ${i + 1}: a skipped example needs a reason: <!-- example: skip (why) -->`);
      }
      pending = { kind, reason: marker[2]?.trim(), line: i + 1 };
      continue;
    }
    if (text.trim() === '') continue;
    if (!text.startsWith('```')) {
      if (pending) throw new Error(`line ${pending.line}: an example marker must come right before a \`\`\`ts fence`);
      continue;
    }
    const fence = TS_FENCE.exec(text);
    if (pending && !fence) throw new Error(`line ${pending.line}: an example marker must come right before a \`\`\`ts fence`);
    const start = i + 1;
    let end = start;
    while (end < lines.length && !/^```\s*$/.test(lines[end])) end++;
    if (end === lines.length) throw new Error(`line ${i + 1}: the code block is not closed`);
    if (fence) {
      const params = new Map(
        fence[2]
          .trim()
          .split(/\s+/)
          .filter(Boolean)
          .map((p) => [p.split('=')[0], p.split('=')[1]] as const),
      );
      const translated = ROSETTA_FENCE.test(text);
      const kind = pending?.kind ?? (params.has('nofixture') ? 'module' : 'stack');
      if (translated && kind === 'module' && !params.has('nofixture')) {
        throw new Error(`line ${i + 1}: a whole-file example that rosetta translates needs \`\`\`ts nofixture (rosetta reads the fence, not the marker)`);
      }
      const fixture = kind === 'stack' ? (params.get('fixture') ?? 'default') : undefined;
      examples.push({ line: start + 1, kind, reason: pending?.reason, fixture, translated, code: lines.slice(start, end).join('\n') });
    }
    pending = undefined;
    i = end;
  }
  if (pending) throw new Error(`line ${pending.line}: an example marker must come right before a \`\`\`ts fence`);
  return examples;
}

interface GeneratedFile {
  readonly example: Example;
  readonly text: string;
  /** README line of each generated line; `undefined` for the wrapper's own lines. */
  readonly lineMap: Array<number | undefined>;
}

/**
 * A block as a file of its own: a stack block inside its rosetta fixture (at the `/// here` line),
 * its imports above the fixture's, as jsii-rosetta assembles it.
 */
export function generateFile(example: Example): GeneratedFile {
  const codeLines = example.code.split('\n');
  const readmeLine = (i: number) => example.line + i;
  if (example.kind !== 'stack') {
    return { example, text: example.code, lineMap: codeLines.map((_, i) => readmeLine(i)) };
  }
  const fixtureFile = path.join(FIXTURES, `${example.fixture ?? 'default'}.ts-fixture`);
  if (!fs.existsSync(fixtureFile)) throw new Error(`the block at line ${example.line} names a fixture that does not exist: ${fixtureFile}`);
  const fixtureLines = fs.readFileSync(fixtureFile, 'utf8').split('\n');
  const here = fixtureLines.findIndex((l) => l.trim() === '/// here');
  if (here < 0) throw new Error(`${fixtureFile} has no '/// here' line`);
  const source = ts.createSourceFile('example.ts', example.code, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const importLines = new Set<number>();
  for (const statement of source.statements) {
    if (!ts.isImportDeclaration(statement) && !ts.isImportEqualsDeclaration(statement)) continue;
    const first = source.getLineAndCharacterOfPosition(statement.getStart(source)).line;
    const last = source.getLineAndCharacterOfPosition(statement.getEnd()).line;
    for (let l = first; l <= last; l++) importLines.add(l);
  }
  const out: Array<[string, number | undefined]> = [];
  for (const [i, text] of codeLines.entries()) if (importLines.has(i)) out.push([text, readmeLine(i)]);
  for (const text of fixtureLines.slice(0, here)) out.push([text, undefined]);
  for (const [i, text] of codeLines.entries()) if (!importLines.has(i)) out.push([text, readmeLine(i)]);
  for (const text of fixtureLines.slice(here + 1)) out.push([text, undefined]);
  return { example, text: out.map(([t]) => t).join('\n'), lineMap: out.map(([, l]) => l) };
}

/** The project's compiler options (tsconfig.dev.json), with the package name mapped to its sources. */
export function exampleCompilerOptions(): ts.CompilerOptions {
  const configFile = path.join(ROOT, 'tsconfig.dev.json');
  const read = ts.readConfigFile(configFile, ts.sys.readFile);
  if (read.error) throw new Error(ts.flattenDiagnosticMessageText(read.error.messageText, '\n'));
  const parsed = ts.parseJsonConfigFileContent(read.config, ts.sys, ROOT, undefined, configFile);
  return {
    ...parsed.options,
    noEmit: true,
    // The generated files live in a temp folder, outside the project's rootDir.
    rootDir: undefined,
    // A snippet names a value to show it, or imports what the surrounding prose talks about.
    noUnusedLocals: false,
    noUnusedParameters: false,
    paths: {
      'cdk-serverless-inference': [path.join(ROOT, 'lib/index.ts')],
      'cdk-serverless-inference/handler': [path.join(ROOT, 'handlers/core/index.ts')],
    },
  };
}

/**
 * Type-checks every example that is not skipped, all in one program, from files written to `dir`.
 * Returns the blocks that do not compile, with line numbers in `source` (the markdown file's name).
 */
export function checkExamples(examples: readonly Example[], dir: string, source = 'README.md'): ExampleFailure[] {
  // Generated files live outside the repo; a link lets them resolve aws-cdk-lib, constructs and cdk-nag.
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  const files = new Map<string, GeneratedFile>();
  for (const example of examples) {
    if (example.kind === 'skip') continue;
    const file = path.join(dir, `example-line-${example.line}.ts`);
    const generated = generateFile(example);
    fs.writeFileSync(file, generated.text);
    files.set(file, generated);
  }
  const options = exampleCompilerOptions();
  const program = ts.createProgram({ rootNames: [...files.keys()], options, host: cachingHost(options) });

  const failures: ExampleFailure[] = [];
  const global = [...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics()];
  if (global.length > 0) {
    failures.push({ line: 0, diagnostics: global.map((d) => `TS${d.code}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`) });
  }
  for (const [file, generated] of files) {
    const sourceFile = program.getSourceFile(file)!;
    const diagnostics = [...program.getSyntacticDiagnostics(sourceFile), ...program.getSemanticDiagnostics(sourceFile)];
    if (diagnostics.length === 0) continue;
    failures.push({
      line: generated.example.line,
      diagnostics: diagnostics.map((d) => {
        const generatedLine = d.start === undefined ? undefined : sourceFile.getLineAndCharacterOfPosition(d.start).line;
        const line = (generatedLine === undefined ? undefined : generated.lineMap[generatedLine]) ?? generated.example.line;
        return `${source}:${line}: TS${d.code}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
      }),
    });
  }
  return failures;
}

// The library's sources and aws-cdk-lib's declarations, parsed once per test file for every program.
const parsed = new Map<string, ts.SourceFile | undefined>();

function cachingHost(options: ts.CompilerOptions): ts.CompilerHost {
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile;
  host.getSourceFile = (fileName, languageVersion, onError, shouldCreate) => {
    const key = `${fileName}:${JSON.stringify(languageVersion)}`;
    if (!parsed.has(key)) parsed.set(key, getSourceFile.call(host, fileName, languageVersion, onError, shouldCreate));
    return parsed.get(key);
  };
  return host;
}

/** Failures as one readable assertion message. */
export function formatFailures(failures: readonly ExampleFailure[], source = 'README.md'): string {
  return failures.map((f) => (f.line === 0 ? 'the examples program:\n' : `the block at ${source}:${f.line}:\n`) + f.diagnostics.map((d) => `  ${d}`).join('\n')).join('\n');
}
