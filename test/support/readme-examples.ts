import * as fs from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';

/**
 * The README's TypeScript examples, type-checked against the library's sources.
 *
 * Conventions, for whoever writes a ```ts block in the README:
 * - By default a block is code inside a stack's constructor: `this` is a `Stack`, and its `import`
 *   lines are moved above the class. It may use the free names in `FREE_NAMES` without declaring
 *   them (`backendRole`, ...), as a reader would have them in their own app.
 * - `<!-- example: module -->` on the line before the fence: the block is a whole file (an app
 *   entry, a test), checked as it is, with the same free names.
 * - `<!-- example: skip (why) -->`: not checked; the reason is required.
 * `cdk-serverless-inference` resolves to `lib/index.ts` and `cdk-serverless-inference/handler` to
 * `handlers/core/index.ts`, so an example is checked against the code it documents, unbuilt.
 */

export const ROOT = path.resolve(__dirname, '../..');

/** What examples may use without declaring it, as ambient declarations. */
export const FREE_NAMES = `
/** A role of the reader's own backend that calls an endpoint. */
declare const backendRole: import('aws-cdk-lib/aws-iam').IRole;
/** The reader's app and one of its stacks. */
declare const app: import('aws-cdk-lib').App;
declare const stack: import('aws-cdk-lib').Stack;
/** A VPC of the reader's, with subnets that reach S3. */
declare const vpc: import('aws-cdk-lib/aws-ec2').IVpc;
/** The serving image of a SageMaker endpoint, which differs per region. */
declare const tritonImageUri: string;
/** The test framework's assertion (Jest and vitest share this much). */
declare function expect(value: unknown): { toMatchSnapshot(): void };
`;

export type ExampleKind = 'stack' | 'module' | 'skip';

export interface Example {
  /** README line (1-based) of the block's first code line. */
  readonly line: number;
  readonly kind: ExampleKind;
  /** Why a skipped block is not checked. */
  readonly reason?: string;
  readonly code: string;
}

export interface ExampleFailure {
  readonly line: number;
  /** One `README.md:<line>: TS<code>: <message>` per diagnostic. */
  readonly diagnostics: string[];
}

const MARKER = /^<!--\s*example:\s*(\S+)(?:\s+\((.*)\))?\s*-->\s*$/;
const TS_FENCE = /^```(ts|typescript)\s*$/;

/** Every ```ts block of a markdown text, with the kind its marker gives it. */
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
    const isTs = TS_FENCE.test(text);
    if (pending && !isTs) throw new Error(`line ${pending.line}: an example marker must come right before a \`\`\`ts fence`);
    const start = i + 1;
    let end = start;
    while (end < lines.length && !/^```\s*$/.test(lines[end])) end++;
    if (end === lines.length) throw new Error(`line ${i + 1}: the code block is not closed`);
    if (isTs) {
      examples.push({ line: start + 1, kind: pending?.kind ?? 'stack', reason: pending?.reason, code: lines.slice(start, end).join('\n') });
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

/** A block as a file of its own: a stack block inside a constructor, its imports above the class. */
export function generateFile(example: Example): GeneratedFile {
  const codeLines = example.code.split('\n');
  const readmeLine = (i: number) => example.line + i;
  if (example.kind !== 'stack') {
    return { example, text: example.code, lineMap: codeLines.map((_, i) => readmeLine(i)) };
  }
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
  // Aliased, so that a block may import `Stack` or `Construct` itself.
  out.push(["import { Stack as ExampleStack$ } from 'aws-cdk-lib';", undefined]);
  out.push(["import { Construct as ExampleScope$ } from 'constructs';", undefined]);
  out.push(['export class Example$ extends ExampleStack$ {', undefined]);
  out.push(['constructor(scope: ExampleScope$, id: string) {', undefined]);
  out.push(['super(scope, id);', undefined]);
  for (const [i, text] of codeLines.entries()) if (!importLines.has(i)) out.push([text, readmeLine(i)]);
  out.push(['}', undefined], ['}', undefined]);
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
 * Returns the blocks that do not compile, with README line numbers.
 */
export function checkExamples(examples: readonly Example[], dir: string): ExampleFailure[] {
  // Generated files live outside the repo; a link lets them resolve aws-cdk-lib, constructs and cdk-nag.
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  const freeNames = path.join(dir, 'free-names.d.ts');
  fs.writeFileSync(freeNames, FREE_NAMES);
  const files = new Map<string, GeneratedFile>();
  for (const example of examples) {
    if (example.kind === 'skip') continue;
    const file = path.join(dir, `readme-line-${example.line}.ts`);
    const generated = generateFile(example);
    fs.writeFileSync(file, generated.text);
    files.set(file, generated);
  }
  const options = exampleCompilerOptions();
  const program = ts.createProgram({ rootNames: [freeNames, ...files.keys()], options, host: cachingHost(options) });

  const failures: ExampleFailure[] = [];
  const global = [...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics(), ...program.getSemanticDiagnostics(program.getSourceFile(freeNames))];
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
        return `README.md:${line}: TS${d.code}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
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
export function formatFailures(failures: readonly ExampleFailure[]): string {
  return failures.map((f) => (f.line === 0 ? 'the examples program:\n' : `the block at README.md:${f.line}:\n`) + f.diagnostics.map((d) => `  ${d}`).join('\n')).join('\n');
}
