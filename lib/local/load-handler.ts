import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { builtAssetPath } from '../private/package-paths';
import type { LambdaHandler } from './inference-server';

/**
 * Loads the prebuilt inference handler (the very bundle the constructs deploy) the way Lambda does:
 * its configuration comes from `process.env`, so set the handler's variables first (`serve` does).
 * `entry` is a user's own bundled entry file with hooks; by default, the library's handler.
 */
export async function loadInferenceHandler(entry?: string): Promise<LambdaHandler> {
  const file = entry ? path.resolve(entry) : path.join(builtAssetPath('handlers', 'inference'), 'index.mjs');
  if (!fs.existsSync(file)) {
    throw new Error(`the handler file ${file} does not exist`);
  }
  const mod = (await import(pathToFileURL(file).href)) as { handler?: LambdaHandler };
  if (typeof mod.handler !== 'function') {
    throw new Error(`${file} does not export a function named 'handler'`);
  }
  return mod.handler;
}
