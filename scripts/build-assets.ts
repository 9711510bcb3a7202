import * as path from 'node:path';
import { buildHandlers } from './build-handlers';
import { buildOnnxRuntimeLayers } from './build-layers';

/** Everything the package ships prebuilt under `assets/`: handler bundles and ONNX Runtime layer zips. */
async function main(): Promise<void> {
  const assets = path.resolve(__dirname, '..', 'assets');
  const [handlers] = await Promise.all([buildHandlers(path.join(assets, 'handlers')), buildOnnxRuntimeLayers(path.join(assets, 'layers'))]);
  console.log(`built assets: handlers (${handlers.join(', ')}), ONNX Runtime layers`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
