import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from './support/handler';
import { checkExamples, extractExamples, formatFailures } from './support/readme-examples';

/*
 * docs/python.md's app, checked as far as a machine without PyPI allows: no aws-cdk-lib for Python
 * can be installed, so the app cannot run. Its Python is byte-compiled; the names it takes from
 * cdk_serverless_inference are checked against the module that `npm run build` generates (classes,
 * keyword arguments, static and instance members, inherited ones from a generated `constructs`
 * included); and where mypy is installed (Debian's python3-mypy), mypy type-checks the app against
 * that module, with type stubs of the jsii runtime (test/support/python/stubs) and aws_cdk as Any.
 */

const ROOT = path.resolve(__dirname, '..');
const DOC = 'docs/python.md';
const MODULE_DIR = path.join(ROOT, 'dist-langs', 'python', 'src', 'cdk_serverless_inference');
const SUPPORT = path.join(ROOT, 'test', 'support', 'python');

function pythonBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/^```python\n([\s\S]*?)^```\s*$/gm)].map((m) => m[1]);
}

/** A python3 that has mypy (Debian's python3-mypy installs it for /usr/bin/python3), if any. */
function pythonWithMypy(): string | undefined {
  return ['python3', '/usr/bin/python3'].find((python) => spawnSync(python, ['-m', 'mypy', '--version'], { stdio: 'ignore' }).status === 0);
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): { status: number | null; output: string } {
  const result = spawnSync(command, args, { encoding: 'utf8', env });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

const markdown = fs.readFileSync(path.join(ROOT, DOC), 'utf8');
const blocks = pythonBlocks(markdown);
const app = blocks.find((b) => b.includes('cdk.App()'));
const MYPY_PYTHON = pythonWithMypy();

describe(DOC, () => {
  let dir: string;
  /** The generated module and the generated `constructs` its constructs extend, as a search path. */
  let searchPath: string;

  beforeAll(() => {
    if (!fs.existsSync(path.join(MODULE_DIR, '__init__.py'))) throw new Error('dist-langs/python is missing: run `npm run build` first');
    dir = tempDir('csi-python-docs-');
    const generated = path.join(dir, 'generated');
    execFileSync(
      path.join(ROOT, 'node_modules', '.bin', 'jsii-pacmak'),
      ['--code-only', '--no-npmignore', '--targets', 'python', '--outdir', generated, path.join(ROOT, 'node_modules', 'constructs')],
      {
        stdio: 'ignore',
      },
    );
    searchPath = path.join(dir, 'path');
    fs.mkdirSync(searchPath);
    fs.symlinkSync(MODULE_DIR, path.join(searchPath, 'cdk_serverless_inference'));
    fs.symlinkSync(path.join(generated, 'python', 'src', 'constructs'), path.join(searchPath, 'constructs'));
    fs.writeFileSync(path.join(dir, 'app.py'), app ?? '');
    for (const [i, block] of blocks.entries()) fs.writeFileSync(path.join(dir, `block_${i}.py`), block);
  }, 60_000);

  const checkNames = (...files: string[]) =>
    run('python3', [
      path.join(SUPPORT, 'check_names.py'),
      [path.join(searchPath, 'cdk_serverless_inference', '__init__.py'), path.join(searchPath, 'constructs', '__init__.py')].join(','),
      ...files,
    ]);
  const mypy = (file: string) =>
    run(MYPY_PYTHON!, ['-m', 'mypy', '--config-file', path.join(SUPPORT, 'mypy.ini'), '--cache-dir', path.join(dir, 'mypy-cache'), file], {
      ...process.env,
      MYPYPATH: [path.join(SUPPORT, 'stubs'), searchPath].join(path.delimiter),
    });

  it('has the app and a client, and its Python byte-compiles', () => {
    expect(app).toMatch(/S3ModelEndpoint\(/);
    expect(app).toMatch(/HandlerHooks\.from_entry\("hooks\/hooks\.ts"\)/);
    expect(blocks.length).toBeGreaterThanOrEqual(2);
    for (const i of blocks.keys()) {
      const compiled = run('python3', ['-m', 'py_compile', path.join(dir, `block_${i}.py`)]);
      expect(compiled.status, compiled.output).toBe(0);
    }
  });

  it('every name the app takes from cdk_serverless_inference exists in the generated module', () => {
    const checked = checkNames(path.join(dir, 'app.py'));
    expect(checked.status, checked.output).toBe(0);
  });

  it.skipIf(!MYPY_PYTHON)(
    'mypy type-checks the app against the generated module',
    () => {
      const checked = mypy(path.join(dir, 'app.py'));
      expect(checked.status, checked.output).toBe(0);
      expect(checked.output).toMatch(/^Success: no issues found in 1 source file/m);
    },
    60_000,
  );

  it('the checks catch a TypeScript name or a wrong prop', () => {
    const wrong = (app ?? '')
      .replace('model_name="iris"', 'modelName="iris"')
      .replace('endpoint.grant_invoke(', 'endpoint.grantInvoke(')
      .replace('ModelSource.from_asset(', 'ModelSource.fromAsset(')
      .replace('endpoint.infer_url', 'endpoint.inferUrl');
    const file = path.join(dir, 'wrong.py');
    fs.writeFileSync(file, wrong);
    const names = checkNames(file);
    expect(names.status).toBe(1);
    for (const problem of ['takes no keyword argument modelName', 'has no member grantInvoke', 'ModelSource has no member fromAsset', 'has no member inferUrl']) {
      expect(names.output).toContain(problem);
    }
    if (MYPY_PYTHON) {
      const typed = mypy(file);
      expect(typed.status).toBe(1);
      expect(typed.output).toMatch(/Found 4 errors in 1 file/);
      // A wrong type, which only mypy sees.
      fs.writeFileSync(file, (app ?? '').replace('memory_size=1769', 'memory_size="1769"'));
      expect(mypy(file).output).toMatch(/Argument "memory_size" to "S3ModelEndpoint" has incompatible type "str"/);
    }
  }, 60_000);

  it('the hooks file compiles against the handler', () => {
    const examples = extractExamples(markdown);
    expect(examples.map((e) => e.kind)).toEqual(['module']);
    const failures = checkExamples(examples, tempDir('csi-python-docs-ts-'), DOC);
    expect(failures.length, formatFailures(failures, DOC)).toBe(0);
  });
});
