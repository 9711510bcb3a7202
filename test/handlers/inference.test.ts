/**
 * The prebuilt ONNX Runtime entry (assets/handlers/inference): what it loads at start, as Lambda
 * imports it.
 */
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadedText } from '../support/bundle-text';

const ENTRY = path.resolve(__dirname, '../../assets/handlers/inference/index.mjs');

describe('the inference entry', () => {
  it('loads the S3 SDK only when it fetches a model from S3, never for a local model', () => {
    // A command of the SDK's that the handler never uses: it is there only with the whole SDK.
    const sdkMarker = 'PutBucketLifecycleConfigurationCommand';
    // Checked with includes: a failing toContain would print the whole bundle.
    expect(loadedText(ENTRY, { dynamic: true }).includes(sdkMarker), 'the SDK is among what the entry can load').toBe(true);
    expect(loadedText(ENTRY, { dynamic: false }).includes(sdkMarker), 'the SDK is among what the entry loads at start').toBe(false);
  });
});
