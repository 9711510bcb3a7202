import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import * as library from '../../lib';

const ROOT = path.resolve(__dirname, '../..');

/** The jsii assembly that `npm run build` writes: the public API as every language sees it. */
function assembly(): { types: Record<string, JsiiType> } {
  return JSON.parse(fs.readFileSync(path.join(ROOT, '.jsii'), 'utf8'));
}

interface JsiiDocs {
  readonly summary?: string;
  readonly default?: string;
}
interface JsiiType {
  readonly kind: 'class' | 'interface' | 'enum';
  readonly datatype?: boolean;
  readonly docs?: JsiiDocs;
  readonly properties?: Array<{ name: string; optional?: boolean; docs?: JsiiDocs }>;
  readonly methods?: Array<{ name: string; docs?: JsiiDocs }>;
  readonly members?: Array<{ name: string; docs?: JsiiDocs }>;
}

/** What a reader of API.md (or of the Python docstrings) would find missing. */
function undocumented(types: Record<string, JsiiType>): string[] {
  return Object.entries(types).flatMap(([fqn, t]) => {
    const name = fqn.split('.').pop();
    return [
      ...(t.docs?.summary ? [] : [`${name} has no description`]),
      ...(t.properties ?? []).flatMap((p) => [
        ...(p.docs?.summary ? [] : [`${name}.${p.name} has no description`]),
        ...(t.datatype && p.optional && p.docs?.default === undefined ? [`${name}.${p.name} is optional without @default`] : []),
      ]),
      ...(t.methods ?? []).filter((m) => !m.docs?.summary).map((m) => `${name}.${m.name}() has no description`),
      ...(t.members ?? []).filter((m) => !m.docs?.summary).map((m) => `${name}.${m.name} has no description`),
    ];
  });
}

describe('the public API', () => {
  it('documents every type, prop and method, with @default on every optional prop', () => {
    const { types } = assembly();
    expect(Object.keys(types).length).toBeGreaterThan(50);
    expect(undocumented(types)).toEqual([]);
  });

  it('reports what is missing, so the check above can fail', () => {
    expect(
      undocumented({
        'x.Props': { kind: 'interface', datatype: true, docs: { summary: 'Props.' }, properties: [{ name: 'size', optional: true, docs: { summary: 'The size.' } }] },
        'x.Level': { kind: 'enum', members: [{ name: 'LOW' }] },
      }),
    ).toEqual(['Props.size is optional without @default', 'Level has no description', 'Level.LOW has no description']);
  });

  it('exports nothing that other languages would not see (a free function or constant)', () => {
    const names = new Set(Object.keys(assembly().types).map((fqn) => fqn.split('.').pop()));
    expect(Object.keys(library).filter((name) => !names.has(name))).toEqual([]);
  });

  it('exports no internals', () => {
    for (const name of ['INFERENCE_HANDLER_DIR', 'PackagedCode', 'PackagedNetwork', 'ModelEndpointBase', 'readManifest', 'maskAssetHashes', 'readOnnxModelInfo']) {
      expect(Object.keys(library)).not.toContain(name);
    }
  });
});
