/**
 * The hashes a precompiled model's assets are keyed by: whatever goes into the copy's bytes (the
 * model, onnxruntime's version, the level) or into the asset's layout (where each file lands) must
 * move the hash, or a deploy keeps an asset that no longer matches what the synth staged.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { GraphOptimizationLevel } from '../../../contract/defaults';
import { type PrecompiledModel, precompiledAssetHash, precompileModel } from '../../../lib/packaging/precompiled-model';
import { mlpModel } from '../../../tools/onnx';
import { tempDir, writeModel } from '../../support/handler';

function precompiled(file: string, level: GraphOptimizationLevel): PrecompiledModel {
  const stack = new Stack(new App(), 'S');
  const result = precompileModel(stack, file, level);
  if (!result) throw new Error(`not precompiled: ${JSON.stringify(Annotations.fromStack(stack).findInfo('*', Match.anyValue()))}`);
  return result;
}

describe("a precompiled model's input hash", () => {
  it('moves with the level the copy was optimised at, and so does its cache entry', () => {
    const file = writeModel(mlpModel({ seed: 41 }).bytes);
    const basic = precompiled(file, GraphOptimizationLevel.BASIC);
    const extended = precompiled(file, GraphOptimizationLevel.EXTENDED);
    expect(extended.inputHash).not.toBe(basic.inputHash);
    expect(extended.path).not.toBe(basic.path);
    expect(precompiled(file, GraphOptimizationLevel.BASIC).inputHash).toBe(basic.inputHash);
  });
});

describe('the asset hash of a folder with a precompiled copy', () => {
  const dir = tempDir();
  const model = path.join(dir, 'model.onnx');
  fs.writeFileSync(model, 'the model bytes');
  const copy = (inputHash: string): PrecompiledModel => ({
    path: path.join(dir, `${inputHash}.ort`),
    fileName: 'model.ort',
    sizeBytes: 1,
    level: GraphOptimizationLevel.BASIC,
    onnxruntimeVersion: '1.30.0',
    inputHash,
  });
  const entries = (p: PrecompiledModel, modelName = 'model.onnx') => [
    { source: model, destination: `model/${modelName}` },
    { source: p.path, destination: 'model/model.ort' },
  ];

  it("follows the copy's input hash, the model's content unchanged (another level or onnxruntime)", () => {
    const a = copy('a'.repeat(64));
    const b = copy('b'.repeat(64));
    expect(precompiledAssetHash(entries(a), a).assetHash).toMatch(/^[0-9a-f]{64}$/);
    expect(precompiledAssetHash(entries(b), b).assetHash).not.toBe(precompiledAssetHash(entries(a), a).assetHash);
    expect(precompiledAssetHash(entries(a), a).assetHash).toBe(precompiledAssetHash(entries(a), a).assetHash);
  });

  it('follows where each file lands, the files unchanged', () => {
    const a = copy('a'.repeat(64));
    expect(precompiledAssetHash(entries(a, 'renamed.onnx'), a).assetHash).not.toBe(precompiledAssetHash(entries(a), a).assetHash);
  });

  it('is left to the asset itself without a precompiled copy', () => {
    expect(precompiledAssetHash([{ source: model, destination: 'model/model.onnx' }], undefined)).toEqual({});
  });
});
