import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(__dirname, '..');

/**
 * The floors of each part, lowest first: a folder may import its own files and the floors below it,
 * never a floor above. A new folder must be given a floor here, so that where it stands is decided
 * once. `.` is the part's own top-level files (entry points and the index).
 */
const FLOORS: Record<string, readonly string[]> = {
  lib: [
    'private',
    'testing',
    'runtime',
    'model',
    'sagemaker',
    'hooks',
    'packaging',
    'variants',
    'compute',
    'capture',
    'function',
    'api',
    'operations',
    'batch',
    'local',
    'endpoints',
    'async',
    '.',
  ],
  'handlers/core': ['protocol', 'config', 'http', 'model', 'batching', 'hooks', 'backends', 'variants', 'capture', 'shadow', 'repository', 'async', 'batch', '.'],
};

/** What every folder may import besides its own part: the contract below both sides. */
const BELOW_EVERYTHING = ['contract'];

interface Import {
  readonly from: string;
  readonly to: string;
}

function sourceFiles(root: string, dir: string): string[] {
  const abs = path.join(root, dir);
  if (!fs.existsSync(abs)) return [];
  return fs
    .readdirSync(abs, { withFileTypes: true, recursive: true })
    .filter((d) => d.isFile() && /\.(ts|mts)$/.test(d.name) && !d.name.endsWith('.d.ts'))
    .map((d) => path.relative(root, path.join(d.parentPath, d.name)).split(path.sep).join('/'));
}

/** Relative imports, `import type` and `export … from` included, and literal `import()`/`require()`. */
function importsOf(root: string, file: string): Import[] {
  const text = fs.readFileSync(path.join(root, file), 'utf8');
  const specs = [...text.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|\brequire\s*\(\s*|^import\s+)['"](\.{1,2}\/[^'"]+)['"]/gm)].map((m) => m[1]);
  return specs.flatMap((spec) => {
    const base = path.posix.normalize(path.posix.join(path.posix.dirname(file), spec)).replace(/\.js$/, '');
    const target = ['.ts', '.mts', '/index.ts', ''].map((ext) => base + ext).find((f) => fs.existsSync(path.join(root, f)) && fs.statSync(path.join(root, f)).isFile());
    return target ? [{ from: file, to: target }] : [];
  });
}

/** The part and floor a file stands on, or undefined outside the parts with floors. */
function placeOf(file: string): { part: string; floor: string } | undefined {
  for (const part of Object.keys(FLOORS)) {
    if (file.startsWith(`${part}/`)) {
      const rest = file.slice(part.length + 1);
      return { part, floor: rest.includes('/') ? rest.split('/')[0] : '.' };
    }
  }
  return undefined;
}

/** Imports that run up a floor, leave the part, or start from a floor nobody placed. */
function upwardImports(imports: readonly Import[]): string[] {
  const found: string[] = [];
  for (const { from, to } of imports) {
    const a = placeOf(from);
    if (!a) continue;
    const floors = FLOORS[a.part];
    const fromFloor = floors.indexOf(a.floor);
    if (fromFloor < 0) {
      found.push(`${from}: ${a.part}/${a.floor} has no floor in FLOORS`);
      continue;
    }
    const b = placeOf(to);
    if (b && b.part === a.part) {
      if (floors.indexOf(b.floor) > fromFloor) found.push(`${from} imports ${to}: ${a.floor} stands below ${b.floor}`);
    } else if (!BELOW_EVERYTHING.some((d) => to.startsWith(`${d}/`)) && !(b === undefined && to.startsWith(`${a.part}/`))) {
      // handlers/<entry>/ may import handlers/core/, which has floors of its own; lib/ only itself.
      if (!(a.part === 'handlers/core' && to.startsWith('handlers/'))) found.push(`${from} imports ${to}, outside ${a.part}/ and the contract`);
    }
  }
  return found;
}

/** Every set of files that import each other, directly or around a circle (Tarjan's components). */
function circles(imports: readonly Import[]): string[][] {
  const edges = new Map<string, string[]>();
  for (const { from, to } of imports) edges.set(from, [...(edges.get(from) ?? []), to]);
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  let next = 0;
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (edges.get(v) ?? []).includes(v)) found.push(component.sort());
    }
  };
  for (const v of edges.keys()) if (!index.has(v)) visit(v);
  return found;
}

function repoImports(root: string): Import[] {
  return ['lib', 'handlers', 'contract'].flatMap((dir) => sourceFiles(root, dir)).flatMap((f) => importsOf(root, f));
}

describe('the layout', () => {
  const imports = repoImports(ROOT);

  it('reads the imports of every part', () => {
    expect(imports.length).toBeGreaterThan(200);
  });

  it('has no import that runs up a floor, or out of lib/ or handlers/', () => {
    expect(upwardImports(imports)).toEqual([]);
  });

  it('has no circle of imports, even of types', () => {
    expect(circles(imports)).toEqual([]);
  });

  it('keeps lib/private/ to leaf helpers: they import nothing but each other and the contract', () => {
    const out = imports.filter((i) => i.from.startsWith('lib/private/') && !i.to.startsWith('lib/private/') && !i.to.startsWith('contract/'));
    expect(out).toEqual([]);
  });

  it('gives every folder of lib/ and handlers/core/ a floor', () => {
    for (const [part, floors] of Object.entries(FLOORS)) {
      const folders = fs
        .readdirSync(path.join(ROOT, part), { withFileTypes: true })
        .filter((d) => d.isDirectory())
        .map((d) => d.name);
      expect(folders.filter((f) => !floors.includes(f))).toEqual([]);
    }
  });
});

describe('the layout checks', () => {
  /** A small tree of its own, so that each check is seen to fail. */
  function tree(files: Record<string, string>): string {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'csi-layout-'));
    for (const [file, text] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
      fs.writeFileSync(path.join(root, file), text);
    }
    return root;
  }

  it('find an import that runs up a floor, and one that leaves the part', () => {
    const root = tree({
      'lib/private/errors.ts': "import type { X } from '../endpoints/model-endpoint';\n",
      'lib/endpoints/model-endpoint.ts': "export type X = 1;\nimport { y } from '../../handlers/core/handler';\n",
      'handlers/core/handler.ts': 'export const y = 1;\n',
    });
    expect(upwardImports(repoImports(root)).sort()).toEqual([
      'lib/endpoints/model-endpoint.ts imports handlers/core/handler.ts, outside lib/ and the contract',
      'lib/private/errors.ts imports lib/endpoints/model-endpoint.ts: private stands below endpoints',
    ]);
  });

  it('find a circle of three files, type imports included', () => {
    const root = tree({
      'handlers/core/protocol/a.ts': "import type { B } from './b';\n",
      'handlers/core/protocol/b.ts': "export { c } from './c';\n",
      'handlers/core/protocol/c.ts': "const a = require('./a');\n",
    });
    expect(circles(repoImports(root))).toEqual([['handlers/core/protocol/a.ts', 'handlers/core/protocol/b.ts', 'handlers/core/protocol/c.ts']]);
  });
});
