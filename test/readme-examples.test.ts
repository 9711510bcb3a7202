import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from './support/handler';
import { FIXTURES, ROOT, checkExamples, extractExamples, formatFailures, generateFile } from './support/readme-examples';

describe('README examples', () => {
  it('every ```ts block compiles against the library', () => {
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const examples = extractExamples(readme);
    // No block slips past the extractor (an indented fence, say) and most are checked.
    expect(examples.length).toBe(readme.match(/^\s*```(ts|typescript)(\s.*)?$/gim)?.length);
    expect(examples.filter((e) => e.kind !== 'skip').length).toBeGreaterThan(examples.length / 2);
    const failures = checkExamples(examples, tempDir('csi-readme-'));
    expect(failures.length, formatFailures(failures)).toBe(0);
  });
});

describe('the README example checker', () => {
  const fixture = [
    '# Fixture', // line 1
    '',
    '```ts',
    "import * as s3 from 'aws-cdk-lib/aws-s3';",
    "import { S3ModelEndpoint } from 'cdk-serverless-inference';",
    '',
    "const bucket = new s3.Bucket(this, 'Models');", // line 7
    'bucket.grantRead(backendRole);',
    'const endpoint: typeof S3ModelEndpoint = S3ModelEndpoint;',
    '```',
    '',
    '```ts',
    "import { Duration } from 'aws-cdk-lib';",
    '',
    'const timeout: string = Duration.seconds(1);', // line 15
    '```',
    '',
    '<!-- example: skip (pseudo-code) -->',
    '```ts',
    'this is not TypeScript',
    '```',
    '',
    '<!-- example: module -->',
    '```TS',
    "import { App, Stack } from 'aws-cdk-lib';",
    "new Stack(new App(), 'Two');",
    "const missing: number = 'one';", // line 27
    '```',
    '',
    '```sh',
    'npm test',
    '```',
  ].join('\n');

  it('reads each block with its kind and the README line of its first code line', () => {
    expect(extractExamples(fixture).map(({ line, kind, reason, translated }) => ({ line, kind, reason, translated }))).toEqual([
      { line: 4, kind: 'stack', reason: undefined, translated: true },
      { line: 13, kind: 'stack', reason: undefined, translated: true },
      { line: 20, kind: 'skip', reason: 'pseudo-code', translated: true },
      { line: 25, kind: 'module', reason: undefined, translated: false },
    ]);
  });

  it("reads rosetta's fence parameters: nofixture is a whole file, fixture=NAME another fixture", () => {
    const blocks = extractExamples(['```ts nofixture', 'a', '```', '```typescript fixture=other', 'b', '```', '```TS', 'c', '```'].join('\n'));
    expect(blocks.map(({ kind, fixture, translated }) => ({ kind, fixture, translated }))).toEqual([
      { kind: 'module', fixture: undefined, translated: true },
      { kind: 'stack', fixture: 'other', translated: true },
      { kind: 'stack', fixture: 'default', translated: false },
    ]);
    expect(() => checkExamples([blocks[1]], tempDir('csi-readme-fixture-'))).toThrow(/names a fixture that does not exist: .*other\.ts-fixture/);
  });

  it('wraps a stack block in the rosetta fixture at its `/// here` line, its imports first', () => {
    const [block] = extractExamples(['```ts', "import { Size } from 'aws-cdk-lib';", 'Size.mebibytes(1);', '```'].join('\n'));
    const fixture = fs.readFileSync(path.join(FIXTURES, 'default.ts-fixture'), 'utf8');
    const { text, lineMap } = generateFile(block);
    expect(text).toBe(`import { Size } from 'aws-cdk-lib';\n${fixture.replace(/^.*\/\/\/ here$/m, 'Size.mebibytes(1);')}`);
    expect(lineMap.filter((l) => l !== undefined)).toEqual([2, 3]);
  });

  it('fails a block that does not compile, naming its README line and the diagnostic', () => {
    const failures = checkExamples(extractExamples(fixture), tempDir('csi-readme-fixture-'));
    // The first block compiles: `this` is a stack, its imports are hoisted, the package name
    // resolves to lib/ and the fixture declares `backendRole`. The skipped one is not checked at all.
    expect(failures).toEqual([
      { line: 13, diagnostics: [expect.stringMatching(/^README\.md:15: TS2322: Type 'Duration' is not assignable to type 'string'/)] },
      { line: 25, diagnostics: [expect.stringMatching(/^README\.md:27: TS2322: Type 'string' is not assignable to type 'number'/)] },
    ]);
    expect(formatFailures(failures)).toContain('the block at README.md:13:\n  README.md:15: TS2322');
  });

  it('refuses markers it cannot honour', () => {
    expect(() => extractExamples('<!-- example: skip -->\n```ts\nx\n```')).toThrow(/line 1: a skipped example needs a reason/);
    expect(() => extractExamples('<!-- example: handler -->\n```ts\nx\n```')).toThrow(/line 1: unknown example kind 'handler'/);
    expect(() => extractExamples('<!-- example: module -->\nSome prose.\n```ts\nx\n```')).toThrow(/line 1: an example marker must come right before/);
    expect(() => extractExamples('<!-- example: module -->\n```js\nx\n```')).toThrow(/line 1: an example marker must come right before/);
    expect(() => extractExamples('```ts\nx\n')).toThrow(/line 1: the code block is not closed/);
    expect(() => extractExamples('<!-- example: module -->\n```ts\nx\n```')).toThrow(/line 2: a whole-file example that rosetta translates needs ```ts nofixture/);
  });
});
