import * as fs from 'node:fs';
import * as path from 'node:path';
import { build } from 'esbuild';
import { tempDir } from './handler';

const ROOT = path.resolve(__dirname, '..', '..');

/**
 * Bundles a user's entry file (hooks around the shared handler) as a user or a construct would:
 * esbuild resolves `cdk-serverless-inference/handler` through the package's exports to the
 * prebuilt core. Returns the bundled `handler.mjs`. With `outDir` inside the repo,
 * `require('onnxruntime-node')` finds the installed package, as the ONNX Runtime layer provides it.
 */
export async function bundleUserEntry(source: string, outDir = tempDir('csi-user-entry-out-')): Promise<string> {
  const src = tempDir('csi-user-entry-src-');
  fs.mkdirSync(path.join(src, 'node_modules'));
  fs.symlinkSync(ROOT, path.join(src, 'node_modules', 'cdk-serverless-inference'), 'dir');
  fs.writeFileSync(path.join(src, 'handler.mjs'), source);
  await build({
    entryPoints: [path.join(src, 'handler.mjs')],
    outdir: outDir,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    splitting: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external: ['onnxruntime-node'],
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
    logLevel: 'error',
  });
  return path.join(outDir, 'handler.mjs');
}
