import { ENV } from '../../contract/environment';
import { type InferenceEntry, type InferenceHandler, type StreamingInferenceHandler, misconfiguredEntry } from './handler';
import type { InferenceHooks } from './hooks/hooks';
import { loadHooksModule } from './hooks/hooks-module';
import { streamingRuntime } from './http/streaming';

/**
 * The handler a prebuilt entry exports: with the users' hooks module (HOOKS_MODULE, beside the
 * entry at `entryUrl`) if there is one, buffered or, with RESPONSE_STREAMING=1, wrapped by the
 * runtime's `awslambda.streamifyResponse`. A hooks module that cannot be loaded makes every
 * request a 500 whose cause is in the log, as any misconfiguration does.
 */
export async function lambdaHandler(
  create: (hooks: InferenceHooks) => Promise<InferenceEntry>,
  entryUrl: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<InferenceHandler | StreamingInferenceHandler> {
  const hooksFile = env[ENV.HOOKS_MODULE];
  let entry: InferenceEntry;
  try {
    entry = await create(hooksFile ? await loadHooksModule(new URL(hooksFile, entryUrl)) : {});
  } catch (e) {
    entry = misconfiguredEntry(e as Error);
  }
  return env[ENV.RESPONSE_STREAMING] === '1' ? streamingRuntime().streamifyResponse(entry.handleStream) : entry.handle;
}
