import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(__dirname, '..');
const INSTALL_SCRIPTS = ['preinstall', 'install', 'postinstall'];

/** The environment without what `npm test` passes down to its scripts (npm_config_*, npm_package_*). */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_')));
}

/** Every installed package (nested ones included) whose package.json declares an install script. */
function packagesWithInstallScripts(dir: string): string[] {
  const found: string[] = [];
  const visit = (modules: string): void => {
    if (!fs.existsSync(modules)) return;
    for (const entry of fs.readdirSync(modules)) {
      if (entry.startsWith('.')) continue;
      const pkgDirs = entry.startsWith('@') ? fs.readdirSync(path.join(modules, entry)).map((e) => path.join(modules, entry, e)) : [path.join(modules, entry)];
      for (const pkgDir of pkgDirs) {
        const manifest = path.join(pkgDir, 'package.json');
        if (!fs.existsSync(manifest)) continue;
        const pkg = JSON.parse(fs.readFileSync(manifest, 'utf8')) as { name: string; scripts?: Record<string, string> };
        if (INSTALL_SCRIPTS.some((s) => pkg.scripts?.[s])) found.push(pkg.name);
        visit(path.join(pkgDir, 'node_modules'));
      }
    }
  };
  visit(path.join(dir, 'node_modules'));
  return [...new Set(found)].sort();
}

describe("the project's npm setup", () => {
  it('gives npm no config it does not know: an npm command in the project prints no warning', () => {
    const r = spawnSync('npm', ['pkg', 'get', 'name'], { cwd: ROOT, env: cleanEnv(), encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/npm warn/i);
    expect(fs.existsSync(path.join(ROOT, '.npmrc'))).toBe(false);
  });

  it("decides every installed package's install script in allowScripts, and denies onnxruntime-node's", () => {
    const { allowScripts = {} } = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { allowScripts?: Record<string, boolean> };
    const withScripts = packagesWithInstallScripts(ROOT);
    expect(withScripts).toContain('onnxruntime-node');
    // Name-only entries: a pinned one (name@version) would stop covering the package at its next upgrade.
    expect(withScripts.filter((name) => typeof allowScripts[name] !== 'boolean')).toEqual([]);
    // Its script downloads CUDA binaries from the internet; the CPU build the library needs ships in the package.
    expect(allowScripts['onnxruntime-node']).toBe(false);
  });
});
