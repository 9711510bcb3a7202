import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEMO_MODEL_FILE } from '../fixtures/demo-model';
import { readManifest } from '../lib/runtime/onnxruntime-manifest';
import { tempDir } from './support/handler';
import { docPages } from './support/docs';
import { FIXTURES, ROOT, checkExamples, extractExamples, formatFailures, generateFile } from './support/readme-examples';
import { startServe } from './support/serve';

describe('the TypeScript examples of the README and docs/', () => {
  const pages = docPages();
  const examplesOf = (page: string) => extractExamples(fs.readFileSync(path.join(ROOT, page), 'utf8'));

  it('are read from the README and from every page of docs/ that has some', () => {
    expect(pages).toEqual(expect.arrayContaining(['README.md', 'docs/endpoints.md', 'docs/operations.md', 'docs/hooks.md', 'docs/python.md']));
    expect(examplesOf('README.md').length).toBeGreaterThan(0);
    expect(pages.filter((p) => p.startsWith('docs/') && examplesOf(p).length > 0).length).toBeGreaterThanOrEqual(5);
  });

  it.each(pages)('%s: every ```ts block compiles against the library', (page) => {
    const markdown = fs.readFileSync(path.join(ROOT, page), 'utf8');
    const examples = extractExamples(markdown);
    // No block slips past the extractor (an indented fence, say) and most are checked.
    expect(examples.length).toBe(markdown.match(/^\s*```(ts|typescript)(\s.*)?$/gim)?.length ?? 0);
    if (examples.length > 0) expect(examples.filter((e) => e.kind !== 'skip').length).toBeGreaterThan(examples.length / 2);
    const failures = checkExamples(examples, tempDir('csi-readme-'), page);
    expect(failures.length, formatFailures(failures, page)).toBe(0);
  });
});

describe('the README and docs/ on onnxruntime-node', () => {
  it("name the ONNX Runtime layer's exact version wherever they install onnxruntime-node, and save it exact", () => {
    const layerVersion = readManifest().onnxruntimeVersion;
    const texts = docPages().map((page) => fs.readFileSync(path.join(ROOT, page), 'utf8'));
    const named = texts.flatMap((text) => [...text.matchAll(/onnxruntime-node@([^\s`'"]+)/g)].map((m) => m[1]));
    // The README installs it: an app's synth precompiles with it.
    expect([...fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8').matchAll(/onnxruntime-node@/g)].length).toBeGreaterThan(0);
    // Not a range: `^1.30` installs the registry's newest 1.x, which synth cannot precompile with.
    expect(named.filter((v) => v !== layerVersion)).toEqual([]);
    // Without --save-exact, npm writes `^x.y.z` into the app's package.json, and a fresh install moves on.
    const installs = texts.flatMap((text) => text.split('\n')).filter((line) => /\bnpm (install|i)\b.*onnxruntime-node@/.test(line));
    expect(installs.length).toBeGreaterThan(0);
    expect(installs.filter((line) => !/\bnpm (install|i)\b[^`]* (-E|--save-exact)\b/.test(line))).toEqual([]);
  });
});

describe("the README's request and answer", () => {
  it('are what the demo model answers when served, its version included', async () => {
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const example = /```sh\ncurl -s -X POST http:\/\/127\.0\.0\.1:8080\/v2\/models\/demo\/infer [^\n]* -d '([^']*)'\n```\n\n```json\n([^`]*)```/.exec(readme);
    if (!example) throw new Error("the README's curl request against the demo model, followed by its JSON answer, is gone");
    const request = JSON.parse(example[1]);
    const shown = JSON.parse(example[2]) as { outputs: Array<{ data: number[] }> };
    const served = await startServe(['--model', DEMO_MODEL_FILE, '--name', 'demo', '--port', '0']);
    try {
      const r = await fetch(`${served.url}/v2/models/demo/infer`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(request) });
      expect(r.status).toBe(200);
      const answer = (await r.json()) as typeof shown;
      // Everything but the values exactly (model name and version, id, output names, datatypes, shapes).
      const withoutData = (a: typeof shown) => ({ ...a, outputs: a.outputs.map(({ data: _, ...o }) => o) });
      expect(withoutData(answer)).toEqual(withoutData(shown));
      // The values to the five decimals shown.
      for (const [i, output] of shown.outputs.entries()) {
        expect(answer.outputs[i].data).toHaveLength(output.data.length);
        for (const [j, v] of output.data.entries()) expect(Math.abs(answer.outputs[i].data[j] - v)).toBeLessThanOrEqual(5e-6);
      }
    } finally {
      served.child.kill();
    }
  }, 60_000);
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
