import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatGoSources, goFiles, hasGofmt, trimTrailingBlankLines } from '../scripts/format-go';
import { tempDir } from './support/handler';

/*
 * What `npm run build` generates for the other languages (jsii-pacmak, with jsii-rosetta's
 * translations of the examples), checked with those languages' own tools where this machine has
 * them: python3 always, gofmt when Go is installed.
 */

const ROOT = path.resolve(__dirname, '..');
const LANGS = path.join(ROOT, 'dist-langs');
const PYTHON_README = path.join(LANGS, 'python', 'README.md');
const PYTHON_MODULE = path.join(LANGS, 'python', 'src', 'cdk_serverless_inference', '__init__.py');
const GO_DIR = path.join(LANGS, 'go');
const GO_README = path.join(GO_DIR, 'cdkserverlessinference', 'README.md');

function built(file: string): string {
  if (!fs.existsSync(file)) throw new Error(`${path.relative(ROOT, file)} is missing: run \`npm run build\` first`);
  return file;
}

/** The fenced blocks of a markdown text, with their info string. */
function fencedBlocks(markdown: string): Array<{ info: string; code: string }> {
  const blocks: Array<{ info: string; code: string }> = [];
  for (const m of markdown.matchAll(/^```(.*)\n([\s\S]*?)^```\s*$/gm)) blocks.push({ info: m[1].trim(), code: m[2] });
  return blocks;
}

/** A TypeScript import or declaration line, which a translated example no longer has. */
const TYPESCRIPT_LINE = /^\s*(import \{.*\} from '|import \* as \w+ from '|const \w+ = new |new \w+\(this, )/m;

describe('the Python package', () => {
  it('README: every ```python block is Python (python3 compiles it), the TypeScript ones are fenced as such', () => {
    const blocks = fencedBlocks(fs.readFileSync(built(PYTHON_README), 'utf8'));
    const python = blocks.filter((b) => b.info === 'python');
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    // Each translated TypeScript block, and the README's own Python (the protocol's Python clients).
    expect(python.length).toBe((readme.match(/^```ts\s*$/gm)?.length ?? 0) + (readme.match(/^```python\s*$/gm)?.length ?? 0));
    const dir = tempDir('csi-python-readme-');
    for (const [i, b] of python.entries()) fs.writeFileSync(path.join(dir, `block_${i}.py`), b.code);
    // compileall exits non-zero, naming the file and line, on the first block that is not Python.
    execFileSync('python3', ['-m', 'compileall', '-q', dir], { encoding: 'utf8' });
    for (const b of python) expect(b.code).not.toMatch(TYPESCRIPT_LINE);
    // The code that stays TypeScript (a hooks file) keeps its own label.
    expect(blocks.filter((b) => b.info === 'TS').length).toBe(readme.match(/^```TS\s*$/gm)?.length ?? 0);
  });

  it("README and docstrings: every name an example takes from the module exists in it (rosetta's Python names)", () => {
    const readmeBlocks = fencedBlocks(fs.readFileSync(built(PYTHON_README), 'utf8')).filter((b) => b.info === 'python');
    const docstringExamples = [...fs.readFileSync(built(PYTHON_MODULE), 'utf8').matchAll(/^( *)Example::\n\n([\s\S]*?)^\s*'''/gm)].map((m) =>
      m[2].replace(new RegExp(`^${m[1]}    `, 'gm'), ''),
    );
    const dir = tempDir('csi-python-names-');
    const files = [...readmeBlocks.map((b) => b.code), ...docstringExamples].map((code, i) => {
      const file = path.join(dir, `example_${i}.py`);
      fs.writeFileSync(file, code);
      return file;
    });
    const checked = spawnSync('python3', [path.join(ROOT, 'test', 'support', 'python', 'check_names.py'), PYTHON_MODULE, ...files], { encoding: 'utf8' });
    expect(checked.status, `${checked.stdout}${checked.stderr}`).toBe(0);
  });

  it('docstrings: the examples are translated (snake_case, no TypeScript)', () => {
    const source = fs.readFileSync(built(PYTHON_MODULE), 'utf8');
    const examples = [...source.matchAll(/^(\s*)Example::\n\n([\s\S]*?)^\s*'''/gm)].map((m) => m[2]);
    expect(examples.length).toBeGreaterThanOrEqual(2);
    for (const example of examples) expect(example).not.toMatch(TYPESCRIPT_LINE);
    expect(source).toContain('endpoint.grant_invoke(backend_role)');
  });
});

describe('the npm tarball that every language package embeds', () => {
  const PKG = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string };
  const TARBALL = path.join(LANGS, 'js', `${PKG.name}@${PKG.version}.jsii.tgz`);
  /** Where a budget is passed, say what grew: `npm pack --dry-run` lists the files and their sizes. */
  const BUDGET_BYTES = 36 * 1024 * 1024;

  it('holds what the constructs load at synth, and no compiled handler module', () => {
    const files = execFileSync('tar', ['tzf', built(TARBALL)], { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 })
      .split('\n')
      .filter(Boolean)
      .map((f) => f.replace(/^package\//, ''));
    for (const handler of ['inference', 'warmer', 'model-loader', 'pre-traffic-check', 'sagemaker-proxy', 'hooks-api', 'core']) {
      expect(files).toContain(`assets/handlers/${handler}/index.mjs`);
    }
    for (const file of [
      'assets/layers/onnxruntime-layers.json',
      'assets/layers/onnxruntime-node-x86_64.zip',
      'assets/layers/onnxruntime-node-arm64.zip',
      'assets/local/lambda-runtime.mjs',
      'node_modules/esbuild-wasm/esbuild.wasm',
      '.jsii',
      'dist/lib/index.js',
      'dist/handlers/core/index.d.ts',
      'bin/cdk-serverless-inference.js',
    ]) {
      expect(files).toContain(file);
    }
    // The ./handler export resolves to the bundle in assets/; the compiled modules are never loaded.
    expect(files.filter((f) => f.startsWith('dist/handlers/') && f.endsWith('.js'))).toEqual([]);
    expect(files.filter((f) => f.endsWith('.map') || /(^|\/)test\//.test(f) || f.endsWith('.tsbuildinfo'))).toEqual([]);
    // The layers are zips only: not also as folders.
    expect(files.filter((f) => f.startsWith('assets/layers/') && f.split('/').length > 3)).toEqual([]);
  });

  it(`stays under ${BUDGET_BYTES / 1024 / 1024} MiB (a Python user downloads it inside the wheel)`, () => {
    expect(fs.statSync(built(TARBALL)).size).toBeLessThan(BUDGET_BYTES);
  });
});

describe('the Go package', () => {
  it('README: the examples are Go', () => {
    const blocks = fencedBlocks(fs.readFileSync(built(GO_README), 'utf8'));
    const go = blocks.filter((b) => b.info === 'go');
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    expect(go.length).toBe(readme.match(/^```ts\s*$/gm)?.length);
    expect(go.length).toBeGreaterThan(0);
    for (const b of go) {
      expect(b.code).not.toMatch(TYPESCRIPT_LINE);
      expect(b.code).toMatch(/cdkserverlessinference\./);
    }
  });

  it('every source ends with one newline, no blank line after it', () => {
    const files = goFiles(built(GO_DIR));
    expect(files.length).toBeGreaterThan(50);
    const untidy = files.filter((f) => fs.readFileSync(f, 'utf8') !== trimTrailingBlankLines(fs.readFileSync(f, 'utf8')));
    expect(untidy.map((f) => path.relative(GO_DIR, f))).toEqual([]);
  });

  it.skipIf(!hasGofmt())('gofmt -l lists no file', () => {
    expect(execFileSync('gofmt', ['-l', built(GO_DIR)], { encoding: 'utf8' })).toBe('');
  });
});

describe('scripts/format-go.ts', () => {
  // As jsii-pacmak writes a file: a blank line at the end, map keys not aligned.
  const pacmakStyle = 'package x\n\nvar m = map[string]int{\n\t"A": 1,\n\t"BBB": 2,\n}\n\n';

  it('without gofmt, drops the trailing blank line and nothing else', () => {
    const dir = tempDir('csi-format-go-');
    fs.mkdirSync(path.join(dir, 'pkg'));
    fs.writeFileSync(path.join(dir, 'pkg', 'a.go'), pacmakStyle);
    fs.writeFileSync(path.join(dir, 'pkg', 'b.go'), 'package x\n');
    fs.writeFileSync(path.join(dir, 'pkg', 'go.mod'), 'module x\n\n');
    const result = formatGoSources(dir, false);
    expect(result).toEqual({ tool: 'trim', changed: [path.join(dir, 'pkg', 'a.go')] });
    expect(fs.readFileSync(path.join(dir, 'pkg', 'a.go'), 'utf8')).toBe(pacmakStyle.slice(0, -1));
    expect(fs.readFileSync(path.join(dir, 'pkg', 'go.mod'), 'utf8')).toBe('module x\n\n');
  });

  it.skipIf(!hasGofmt())('with gofmt, formats the whole file', () => {
    const dir = tempDir('csi-format-go-');
    fs.writeFileSync(path.join(dir, 'a.go'), pacmakStyle);
    expect(formatGoSources(dir, true)).toEqual({ tool: 'gofmt', changed: [path.join(dir, 'a.go')] });
    expect(fs.readFileSync(path.join(dir, 'a.go'), 'utf8')).toBe('package x\n\nvar m = map[string]int{\n\t"A":   1,\n\t"BBB": 2,\n}\n');
    expect(execFileSync('gofmt', ['-l', dir], { encoding: 'utf8' })).toBe('');
  });
});
