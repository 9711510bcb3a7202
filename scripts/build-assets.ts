import * as path from 'node:path';
import { build } from 'esbuild';
import { buildHandlers } from './build-handlers';
import { buildOnnxRuntimeLayers } from './build-layers';

/** Everything the package ships prebuilt under `assets/`: handler bundles and ONNX Runtime layer zips. */
async function main(): Promise<void> {
  const assets = path.resolve(__dirname, '..', 'assets');
  const [handlers] = await Promise.all([buildHandlers(path.join(assets, 'handlers')), buildOnnxRuntimeLayers(path.join(assets, 'layers')), buildLocalRuntime(assets)]);
  console.log(`built assets: handlers (${handlers.join(', ')}), ONNX Runtime layers`);
}

/**
 * `serve`'s stand-in for Lambda's streaming runtime, as one ES module that its worker threads import
 * by URL (a worker runs plain JavaScript, from the compiled package and from the sources alike).
 */
async function buildLocalRuntime(assets: string): Promise<void> {
  await build({
    entryPoints: [path.resolve(__dirname, '..', 'lib', 'local', 'lambda-runtime.ts')],
    outfile: path.join(assets, 'local', 'lambda-runtime.mjs'),
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'warning',
  });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
