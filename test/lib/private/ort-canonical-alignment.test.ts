/**
 * The canonical file's size is a multiple of 64 for every model, not only for one whose size
 * happens to be: onnxruntime's builder aligns the model's data (up to 64 bytes) from the file's
 * end, so the head's size must keep the model area where its alignments still hold.
 */
import * as fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DEMO_MODEL_FILE } from '../../../fixtures/demo-model';
import { canonicalOrtModel, readOrtResolver } from '../../../lib/private/ort-canonical';
import { convModel, dynamicQuantMatMulModel, logisticRegressionModel, mlpModel, stringOpsModel } from '../../../tools/onnx';
import { writeModel } from '../../support/handler';
import { convertToOrt } from '../../support/ort-format';

const MODELS: Array<[string, () => Uint8Array]> = [
  ['the demo model', () => fs.readFileSync(DEMO_MODEL_FILE)],
  ['a dynamically quantized MatMul', () => dynamicQuantMatMulModel().bytes],
  ['string operators', () => stringOpsModel().bytes],
  ['a Conv', () => convModel().bytes],
  ['a logistic regression', () => logisticRegressionModel({ features: 7, seed: 3 }).bytes],
  ['an MLP', () => mlpModel({ seed: 5 }).bytes],
];

describe('the canonical file size', () => {
  it('is a multiple of 64 for every model, its model area unchanged', () => {
    const sizes: string[] = [];
    for (const [name, bytes] of MODELS) {
      const written = convertToOrt(writeModel(bytes()));
      const canonical = canonicalOrtModel(written);
      const model = written.subarray(readOrtResolver(written).modelArea);
      expect(canonical.subarray(canonical.length - model.length).equals(model), name).toBe(true);
      sizes.push(`${name}: ${canonical.length % 64}`);
    }
    expect(sizes).toEqual(MODELS.map(([name]) => `${name}: 0`));
  });
});
