import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** A file or a directory tree to place in a staged folder. */
export interface StagedEntry {
  /** Source file or directory. */
  readonly source: string;
  /** Relative path inside the staged folder. */
  readonly destination: string;
}

/**
 * Puts files together in a folder that a code or layer asset is built from. Models are hard-linked
 * where the file system allows (they can be GBs; a synth should not copy them), else copied.
 * The folder is keyed by what goes in (paths, sizes, modification times), so a repeated synth
 * reuses it, and CDK fingerprints its contents as for any asset.
 */
export function stageFiles(kind: string, entries: readonly StagedEntry[]): string {
  const key = createHash('sha256');
  for (const e of entries) {
    key.update(`${e.destination}\0${describeTree(e.source)}\0`);
  }
  const dir = stagingDir(kind, key.digest('hex').slice(0, 32));
  if (fs.existsSync(path.join(dir, COMPLETE))) {
    return dir;
  }
  // Built beside and renamed, so a synth that stops halfway never leaves a folder that looks complete.
  const building = `${dir}.${process.pid}.partial`;
  fs.rmSync(building, { recursive: true, force: true });
  for (const e of entries) {
    placeTree(e.source, path.join(building, e.destination));
  }
  fs.writeFileSync(path.join(building, COMPLETE), '');
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  fs.renameSync(building, dir);
  return dir;
}

/**
 * The folder for staged files of one kind and key, under the OS temp folder. Folders of the same
 * kind unused for a day are removed: each new model or library version makes a new one, and a
 * day is far longer than any synth that might still read one.
 */
export function stagingDir(kind: string, key: string): string {
  const parent = path.join(os.tmpdir(), 'cdk-serverless-inference', kind);
  const dir = path.join(parent, key);
  const staleBefore = Date.now() - 24 * 60 * 60 * 1000;
  for (const name of safeReaddir(parent)) {
    const other = path.join(parent, name);
    try {
      if (other !== dir && fs.statSync(other).mtimeMs < staleBefore) {
        fs.rmSync(other, { recursive: true, force: true });
      }
    } catch {
      // Removed meanwhile by another synth.
    }
  }
  if (fs.existsSync(dir)) {
    // Marks it used, so it is not pruned while in use.
    const now = new Date();
    fs.utimesSync(dir, now, now);
  }
  return dir;
}

function safeReaddir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

/** Marks a staged folder as complete; excluded from the asset by `STAGING_EXCLUDE`. */
const COMPLETE = '.staged';

/** Pass as the asset's `exclude`, so the marker file is not deployed. */
export const STAGING_EXCLUDE = [COMPLETE];

/** What a file or tree is, by path, size and modification time: a cheap key for staged folders. */
export function describeTree(source: string): string {
  const stat = fs.statSync(source);
  if (!stat.isDirectory()) {
    return `${path.resolve(source)}:${stat.size}:${stat.mtimeMs}`;
  }
  return fs
    .readdirSync(source)
    .sort()
    .map((name) => `${name}/${describeTree(path.join(source, name))}`)
    .join('|');
}

function placeTree(source: string, destination: string): void {
  if (fs.statSync(source).isDirectory()) {
    fs.mkdirSync(destination, { recursive: true });
    for (const name of fs.readdirSync(source)) {
      placeTree(path.join(source, name), path.join(destination, name));
    }
    return;
  }
  fs.mkdirSync(path.dirname(destination), { recursive: true });
  try {
    fs.linkSync(source, destination);
  } catch {
    fs.copyFileSync(source, destination);
  }
}

/** Total bytes of the files under a directory (or of one file). */
export function treeSize(p: string): number {
  const stat = fs.statSync(p);
  if (!stat.isDirectory()) return stat.size;
  return fs.readdirSync(p).reduce((total, name) => total + treeSize(path.join(p, name)), 0);
}
