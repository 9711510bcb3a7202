import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * The package's root folder, found from this file whether it runs from source (`lib/`) or from the
 * compiled output (`dist/lib/`).
 */
function findPackageRoot(start: string): string {
  let dir = start;
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) {
      throw new Error(`cdk-serverless-inference: cannot find package.json above ${start}`);
    }
    dir = parent;
  }
  return dir;
}

export const PACKAGE_ROOT = findPackageRoot(__dirname);

/**
 * Where `npm run build` writes what the constructs deploy: prebuilt handler bundles and layer zips.
 * A user's synth only points at these files; it never bundles or downloads anything.
 */
export const ASSETS_DIR = path.join(PACKAGE_ROOT, 'assets');

/** Absolute path of a built asset, with a clear error when the package was not built. */
export function builtAssetPath(...segments: string[]): string {
  const p = path.join(ASSETS_DIR, ...segments);
  if (!fs.existsSync(p)) {
    throw new Error(
      `cdk-serverless-inference: the built asset ${path.relative(PACKAGE_ROOT, p)} is missing. Run \`npm run build\` in the package (a published package ships it prebuilt).`,
    );
  }
  return p;
}

/** The prebuilt inference handler bundle, the code of every zip-packaged inference function. */
export function inferenceHandlerDir(): string {
  return builtAssetPath('handlers', 'inference');
}
