import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FileSystem, Stage } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import { validationError } from './errors';

/**
 * The context key that chooses the folder synth stages files in (model layers, bundled code,
 * generated image contexts): in `cdk.json`'s `"context"`, as `cdk synth -c
 * cdk-serverless-inference:stagingDirectory=/scratch/staging`, or with `app.node.setContext`. A
 * relative path is resolved from the working directory (the CDK CLI runs the app from the
 * project's folder).
 *
 * A context key, as aws-cdk-lib's own synth switches are (`aws:cdk:bundling-stacks`,
 * `aws:cdk:disable-asset-staging`): it belongs to the project, is recorded in `cdk.json`, can be
 * set for one command with `-c`, and differs between apps of one process. The environment already
 * has its say through the OS temp folder (`TMPDIR`), the last resort.
 */
export const STAGING_DIRECTORY_CONTEXT = 'cdk-serverless-inference:stagingDirectory';

/** The folder under an app's output that holds staged files: `.cache`, which integ-runner keeps out of snapshots. */
const OUTDIR_STAGING = path.join('.cache', 'cdk-serverless-inference');

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
 * reuses it, and CDK fingerprints its contents as for any asset (and copies them into the cloud
 * assembly, as it copies every asset). Where the folder is: see `stagingDir`.
 */
export function stageFiles(scope: IConstruct, kind: string, entries: readonly StagedEntry[]): string {
  const key = createHash('sha256');
  for (const e of entries) {
    key.update(`${e.destination}\0${describeTree(e.source)}\0`);
  }
  const dir = stagingDir(scope, kind, key.digest('hex').slice(0, 32));
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
 * The folder for staged files of one kind and key, under `stagingRoot(scope)`. Folders of the same
 * kind unused for a day are removed: each new model or library version makes a new one, and a
 * day is far longer than any synth that might still read one.
 */
export function stagingDir(scope: IConstruct, kind: string, key: string): string {
  const parent = path.join(stagingRoot(scope), kind);
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

/**
 * Where synth stages files, the first that applies:
 * 1. the folder the `cdk-serverless-inference:stagingDirectory` context key names;
 * 2. `.cache/cdk-serverless-inference` in the app's output folder (`cdk.out` under the CDK CLI, or
 *    the App's `outdir`): next to the assets CDK copies there anyway, removed with it, and on the
 *    project's file system, so models are hard-linked rather than copied;
 * 3. `cdk-serverless-inference` in the OS temp folder (`TMPDIR`), for an App with no outdir of its
 *    own: aws-cdk-lib then writes each App into a new temp folder, which no later synth reuses.
 */
export function stagingRoot(scope: IConstruct): string {
  const chosen = scope.node.tryGetContext(STAGING_DIRECTORY_CONTEXT);
  if (chosen !== undefined) {
    if (typeof chosen !== 'string' || chosen.trim() === '') {
      throw validationError(scope, `${STAGING_DIRECTORY_CONTEXT} must be the path of a folder, got: ${JSON.stringify(chosen)}`);
    }
    return path.resolve(chosen);
  }
  const outdir = appOutdir(scope);
  if (outdir !== undefined && !isThrowawayOutdir(outdir)) {
    return path.join(outdir, OUTDIR_STAGING);
  }
  return path.join(os.tmpdir(), 'cdk-serverless-inference');
}

/** The output folder of the outermost stage (the App), which nested stages write into. */
function appOutdir(scope: IConstruct): string | undefined {
  let stage = Stage.of(scope);
  while (stage?.parentStage) stage = stage.parentStage;
  return stage?.outdir;
}

/** An outdir aws-cdk-lib made itself for an App given none: `<OS temp folder>/cdk.outXXXXXX`. */
function isThrowawayOutdir(outdir: string): boolean {
  return path.dirname(outdir) === FileSystem.tmpdir && path.basename(outdir).startsWith('cdk.out');
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
