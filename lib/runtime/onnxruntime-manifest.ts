import * as fs from 'node:fs';
import { builtAssetPath } from '../private/package-paths';

/**
 * One built layer zip, as recorded in `assets/layers/onnxruntime-layers.json`. Shared with the build
 * script.
 */
export interface OnnxRuntimeLayerFile {
  /** File name of the zip, beside the manifest. */
  readonly file: string;
  readonly zippedBytes: number;
  /** Sum of the extracted files' sizes: what counts toward Lambda's 250 MB unzipped limit. */
  readonly unzippedBytes: number;
  readonly sha256: string;
}

/**
 * What `scripts/build-layers.ts` writes beside the layer zips at library build time, and what
 * `OnnxRuntimeLayer` reads at synth time. Shared with the build script.
 */
export interface OnnxRuntimeLayerManifest {
  readonly onnxruntimeVersion: string;
  /** Fingerprint of everything the zips were built from; lets the build skip unchanged work. */
  readonly inputsSha256: string;
  /** Keyed by Lambda architecture name (`x86_64`, `arm64`). */
  readonly layers: { readonly [architectureName: string]: OnnxRuntimeLayerFile };
}

const MANIFEST_FILE = 'onnxruntime-layers.json';

/** The manifest of the built layer zips (versions, sizes). */
export function readManifest(): OnnxRuntimeLayerManifest {
  const manifestPath = builtAssetPath('layers', MANIFEST_FILE);
  const manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8')) as Partial<OnnxRuntimeLayerManifest>;
  if (typeof manifest.onnxruntimeVersion !== 'string' || !manifest.layers) {
    throw new Error(`OnnxRuntimeLayer: ${manifestPath} lacks "onnxruntimeVersion" or "layers". Rebuild the package (\`npm run build\`).`);
  }
  return manifest as OnnxRuntimeLayerManifest;
}

export function builtLayerZip(layer: OnnxRuntimeLayerFile | undefined, archName: string): string {
  if (!layer || typeof layer.file !== 'string' || typeof layer.unzippedBytes !== 'number') {
    throw new Error(`OnnxRuntimeLayer: assets/layers/${MANIFEST_FILE} has no complete entry for ${archName}. Rebuild the package (\`npm run build\`).`);
  }
  const zipPath = builtAssetPath('layers', layer.file);
  const actualBytes = fs.statSync(zipPath).size;
  if (actualBytes !== layer.zippedBytes) {
    throw new Error(
      `OnnxRuntimeLayer: ${zipPath} is ${actualBytes} bytes but assets/layers/${MANIFEST_FILE} records ` +
        `${layer.zippedBytes}: the build was interrupted or the file was replaced. Rebuild the package (\`npm run build\`).`,
    );
  }
  return zipPath;
}
