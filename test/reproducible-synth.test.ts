import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { canonicalOrtModel } from '../lib/private/ort-canonical';
import { dynamicQuantMatMulModel } from '../tools/onnx';
import { tempDir } from './support/handler';

const ROOT = path.resolve(__dirname, '..');
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');

/**
 * The library's staging folder in the output (`.cache/cdk-serverless-inference`): staged folders
 * named by the paths and modification times of what went in, which the CLI never reads (assets are
 * copied to `asset.<hash>`), and integ-runner leaves out of snapshots too.
 */
const NOT_DEPLOYED = new Set(['.cache']);

/** Every file and link under `dir`, by relative path: a hash of its bytes, or where it points. */
function tree(dir: string, rel = ''): Map<string, string> {
  const entries = new Map<string, string>();
  for (const entry of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const name = path.posix.join(rel, entry.name);
    if (rel === '' && NOT_DEPLOYED.has(entry.name)) continue;
    const full = path.join(dir, name);
    if (entry.isDirectory()) {
      for (const [k, v] of tree(dir, name)) entries.set(k, v);
    } else if (entry.isSymbolicLink()) {
      entries.set(name, `link to ${fs.readlinkSync(full)}`);
    } else {
      entries.set(name, createHash('sha256').update(fs.readFileSync(full)).digest('hex'));
    }
  }
  return entries;
}

/** Synthesizes `app` in a new process with its own empty temp folder and output folder. */
function synth(app: string, env: Record<string, string>): Promise<string> {
  const outdir = tempDir();
  const tmp = tempDir();
  return new Promise((resolve, reject) => {
    const child = spawn(TSX, [app], {
      cwd: ROOT,
      env: { ...process.env, ...env, TMPDIR: tmp, CDK_OUTDIR: outdir, CDK_VALIDATION: 'false' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(outdir) : reject(new Error(`${app} exited ${code}: ${stderr.slice(-2000)}`))));
  });
}

/** The entries of two cloud assemblies' top folder (files, or asset folders) that differ or that one of them lacks. */
function differences(a: string, b: string): string[] {
  const left = tree(a);
  const right = tree(b);
  const differing = [...new Set([...left.keys(), ...right.keys()])].filter((k) => left.get(k) !== right.get(k));
  return [...new Set(differing.map((k) => k.replace(/\/.*$/, '/')))].sort();
}

describe('the same synth on every machine', () => {
  // Two processes, two empty temp folders: nothing of one (onnxruntime's per-process hash order, a
  // cached precompiled model) can reach the other; the assemblies must still be the same bytes.
  it.each([
    ['the demo app (every packaging of the demo model)', 'demo/app.ts', {}],
    ['an app of every packaging, arm64, hooks and a shared model layer', 'test/support/every-packaging-app.ts', { model: dynamicQuantMatMulModel().bytes }],
  ] as Array<[string, string, { model?: Uint8Array }]>)(
    '%s: templates, asset manifests and every asset file are the same bytes',
    async (_what, app, { model }) => {
      const env: Record<string, string> = {};
      if (model) {
        env.CSI_MODEL = path.join(tempDir(), 'model.onnx');
        fs.writeFileSync(env.CSI_MODEL, model);
      }
      const [first, second] = await Promise.all([synth(app, env), synth(app, env)]);
      const files = [...tree(first).keys()];
      // What the comparison covers: it must not pass by comparing nothing.
      expect(files.filter((f) => f.endsWith('.template.json')).length).toBeGreaterThanOrEqual(7);
      const precompiled = files.filter((f) => f.endsWith('.ort'));
      expect(precompiled.length).toBeGreaterThanOrEqual(4);
      expect(differences(first, second)).toEqual([]);
      // Two processes may happen to write the same bytes; a precompiled copy in any other layout than
      // the canonical one would not be the same on every machine.
      for (const f of precompiled) {
        const bytes = fs.readFileSync(path.join(first, f));
        expect(canonicalOrtModel(bytes).equals(bytes), f).toBe(true);
      }
    },
    240_000,
  );
});
