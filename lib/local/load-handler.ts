import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { builtAssetPath } from '../private/package-paths';
import type { LambdaHandler } from './inference-server';

/**
 * The handler's entry file: `entry` (a user's own bundled entry file with hooks) or, by default, the
 * library's prebuilt inference handler (the very bundle the constructs deploy). Throws if it is missing.
 */
export function inferenceHandlerFile(entry?: string): string {
  const file = entry ? path.resolve(entry) : path.join(builtAssetPath('handlers', 'inference'), 'index.mjs');
  if (!fs.existsSync(file)) {
    throw new Error(`the handler file ${file} does not exist`);
  }
  return file;
}

/** URL of `serve`'s stand-in for Lambda's streaming runtime (see lambda-runtime.ts), which worker threads import too. */
export function lambdaRuntimeUrl(): string {
  return pathToFileURL(builtAssetPath('local', 'lambda-runtime.mjs')).href;
}

interface LambdaRuntimeModule {
  installLambdaRuntime(): void;
  bufferedHandler(handler: unknown): LambdaHandler;
}

/**
 * Loads the inference handler (see inferenceHandlerFile) in this thread, the way Lambda does: its
 * configuration comes from `process.env`, so set the handler's variables first (`serve` does). A
 * streaming handler (RESPONSE_STREAMING) is served buffered, answered as soon as its stream ends.
 */
export async function loadInferenceHandler(entry?: string): Promise<LambdaHandler> {
  const file = inferenceHandlerFile(entry);
  const runtime = (await import(lambdaRuntimeUrl())) as LambdaRuntimeModule;
  runtime.installLambdaRuntime();
  const mod = (await import(pathToFileURL(file).href)) as { handler?: LambdaHandler };
  if (typeof mod.handler !== 'function') {
    throw new Error(`${file} does not export a function named 'handler'`);
  }
  return runtime.bufferedHandler(mod.handler);
}
