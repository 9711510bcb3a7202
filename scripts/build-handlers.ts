import * as fs from 'node:fs';
import * as path from 'node:path';
import { build } from 'esbuild';

const ROOT = path.resolve(__dirname, '..');
const HANDLERS = path.join(ROOT, 'handlers');

/**
 * Bundles each Lambda entry (`handlers/<name>/index.ts`) into `assets/handlers/<name>/index.mjs`, so
 * that the constructs deploy prebuilt code and a user's synth never runs esbuild. `handlers/core` is
 * bundled too, as the `cdk-serverless-inference/handler` entry that users' hook files import.
 */
export async function buildHandlers(outDir: string): Promise<string[]> {
  const version = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version as string;
  const names = fs
    .readdirSync(HANDLERS, { withFileTypes: true })
    .filter((d) => d.isDirectory() && fs.existsSync(path.join(HANDLERS, d.name, 'index.ts')))
    .map((d) => d.name)
    .sort();
  await Promise.all(
    names.map(async (name) => {
      const dir = path.join(outDir, name);
      fs.rmSync(dir, { recursive: true, force: true });
      await build({
        entryPoints: [path.join(HANDLERS, name, 'index.ts')],
        outdir: dir,
        outExtension: { '.js': '.mjs' },
        bundle: true,
        // Code behind a dynamic import (the S3 client) goes to its own chunk, so a function whose
        // model is a local file never reads or parses it at cold start.
        splitting: true,
        chunkNames: 'chunks/[name]-[hash]',
        platform: 'node',
        format: 'esm',
        // The ES module builds of dependencies (the AWS SDK's): named exports survive a dynamic
        // import, and unused code can be dropped.
        mainFields: ['module', 'main'],
        // Lambda runs Node.js 22/24; tests and `serve` run on Node 20.
        target: 'node20',
        // A native addon: the ONNX Runtime layer provides it (a bundled .node file would not load).
        external: ['onnxruntime-node'],
        // ES modules have no `require`; this one also searches NODE_PATH, where Lambda puts layers.
        banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
        define: { __PACKAGE_VERSION__: JSON.stringify(version) },
        // The user-facing core stays readable; Lambda entries are minified for a faster cold start.
        minify: name !== 'core',
        keepNames: true,
        legalComments: 'linked',
        logLevel: 'warning',
      });
    }),
  );
  return names;
}

if (require.main === module) {
  buildHandlers(path.join(ROOT, 'assets', 'handlers')).then(
    (names) => console.log(`bundled handlers: ${names.join(', ')}`),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}
