import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

/** The handler as tests call it: the very bundle `npm run build` writes, not the TypeScript source. */
export type Handler = (event: unknown, context?: { awsRequestId?: string }) => Promise<any>;

const CORE_BUNDLE = path.resolve(__dirname, '../../assets/handlers/core/index.mjs');

// Per-request logs and metrics would drown the test output; a test that reads them turns them on.
process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';

export async function importCoreBundle(): Promise<any> {
  if (!fs.existsSync(CORE_BUNDLE)) {
    throw new Error(`${CORE_BUNDLE} is missing: run \`npm run build\` first (npm test does)`);
  }
  return import(pathToFileURL(CORE_BUNDLE).href);
}

/** A temp dir, inside the test run's folder that the global setup removes when the run ends. */
export function tempDir(prefix = 'csi-test-'): string {
  return fs.mkdtempSync(path.join(process.env.CSI_TEST_TMP ?? os.tmpdir(), prefix));
}

/** Writes model bytes to a temp file and returns its path. */
export function writeModel(bytes: Uint8Array, name = 'model.onnx'): string {
  const file = path.join(tempDir(), name);
  fs.writeFileSync(file, bytes);
  return file;
}

/** The bundled handler, configured by `env` the way the constructs configure it. */
export async function createHandler(env: Record<string, string>, hooks?: unknown): Promise<Handler> {
  const { createInferenceHandler } = await importCoreBundle();
  return createInferenceHandler({ env: { ...env }, hooks });
}

/** The bundled handler serving one local model file. */
export async function handlerForModel(bytes: Uint8Array, env: Record<string, string> = {}): Promise<Handler> {
  return createHandler({ MODEL_PATH: writeModel(bytes), ...env });
}
