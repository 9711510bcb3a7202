/**
 * The prebuilt ONNX Runtime entry (assets/handlers/inference): what it loads at start, as Lambda
 * imports it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const ENTRY = path.resolve(__dirname, '../../assets/handlers/inference/index.mjs');

/** The text of a bundle file and of every file it imports: statically only, or dynamically too. */
function loadedText(entry: string, { dynamic }: { dynamic: boolean }): string {
  const imports = dynamic ? /(?:\bfrom|\bimport)\s*\(?\s*["'](\.{1,2}\/[^"']+)["']/g : /(?:\bfrom|\bimport)\s*["'](\.{1,2}\/[^"']+)["']/g;
  const seen = new Set<string>();
  const texts: string[] = [];
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = fs.readFileSync(file, 'utf8');
    texts.push(text);
    for (const m of text.matchAll(imports)) visit(path.resolve(path.dirname(file), m[1]));
  };
  visit(entry);
  return texts.join('\n');
}

describe('the inference entry', () => {
  it('loads the S3 SDK only when it fetches a model from S3, never for a local model', () => {
    // A command of the SDK's that the handler never uses: it is there only with the whole SDK.
    const sdkMarker = 'ListObjectsV2Command';
    // Checked with includes: a failing toContain would print the whole bundle.
    expect(loadedText(ENTRY, { dynamic: true }).includes(sdkMarker), 'the SDK is among what the entry can load').toBe(true);
    expect(loadedText(ENTRY, { dynamic: false }).includes(sdkMarker), 'the SDK is among what the entry loads at start').toBe(false);
  });
});
