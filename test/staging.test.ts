import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stageFiles, stagingDir, STAGING_EXCLUDE } from '../lib/private/staging';
import { tempDir } from './support/handler';

const kind = `test-staging-${process.pid}`;
afterAll(() => fs.rmSync(path.dirname(stagingDir(kind, 'x')), { recursive: true, force: true }));

describe('stageFiles', () => {
  it('places files and trees, hard-linking files, marked complete', () => {
    const src = tempDir();
    fs.writeFileSync(path.join(src, 'model.onnx'), 'model bytes');
    fs.mkdirSync(path.join(src, 'code', 'chunks'), { recursive: true });
    fs.writeFileSync(path.join(src, 'code', 'index.mjs'), 'export {}');
    fs.writeFileSync(path.join(src, 'code', 'chunks', 'a.mjs'), 'a');
    const dir = stageFiles(kind, [
      { source: path.join(src, 'code'), destination: '.' },
      { source: path.join(src, 'model.onnx'), destination: 'model/model.onnx' },
    ]);
    expect(fs.readFileSync(path.join(dir, 'model', 'model.onnx'), 'utf8')).toBe('model bytes');
    expect(fs.statSync(path.join(dir, 'model', 'model.onnx')).ino).toBe(fs.statSync(path.join(src, 'model.onnx')).ino);
    expect(fs.readFileSync(path.join(dir, 'chunks', 'a.mjs'), 'utf8')).toBe('a');
    expect(fs.readdirSync(dir).sort()).toEqual([...STAGING_EXCLUDE, 'chunks', 'index.mjs', 'model'].sort());
    // Same inputs: the same folder, reused.
    expect(
      stageFiles(kind, [
        { source: path.join(src, 'code'), destination: '.' },
        { source: path.join(src, 'model.onnx'), destination: 'model/model.onnx' },
      ]),
    ).toBe(dir);
    // A changed input: a new folder.
    fs.writeFileSync(path.join(src, 'model.onnx'), 'other model bytes');
    expect(stageFiles(kind, [{ source: path.join(src, 'model.onnx'), destination: 'model/model.onnx' }])).not.toBe(dir);
  });
});

describe('stagingDir', () => {
  it('removes folders of its kind unused for a day, keeps the others', () => {
    const old = stagingDir(kind, 'old');
    const recent = stagingDir(kind, 'recent');
    fs.mkdirSync(old, { recursive: true });
    fs.mkdirSync(recent, { recursive: true });
    const twoDaysAgo = new Date(Date.now() - 2 * 24 * 60 * 60 * 1000);
    fs.utimesSync(old, twoDaysAgo, twoDaysAgo);
    stagingDir(kind, 'current');
    expect(fs.existsSync(old)).toBe(false);
    expect(fs.existsSync(recent)).toBe(true);
  });

  it('marks a folder in use so that it is not pruned', () => {
    const dir = stagingDir(kind, 'in-use');
    fs.mkdirSync(dir, { recursive: true });
    const twoDaysAgo = new Date(Date.now() - 2 * 24 * 60 * 60 * 1000);
    fs.utimesSync(dir, twoDaysAgo, twoDaysAgo);
    stagingDir(kind, 'in-use');
    expect(fs.statSync(dir).mtimeMs).toBeGreaterThan(Date.now() - 60_000);
  });
});
