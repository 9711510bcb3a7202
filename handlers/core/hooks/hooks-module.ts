import { HOOK_NAMES } from '../../../contract/hooks';
import type { InferenceHooks } from './hooks';

/**
 * The hooks of a users' hooks module: its named exports `preprocess`, `postprocess` and
 * `afterResponse`. Throws, naming the module and the export, when one is not a function or an
 * export is a hook's name in the wrong case (a hook that would silently never run).
 */
export async function loadHooksModule(url: URL): Promise<InferenceHooks> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(url.href)) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`the hooks module ${url.pathname} cannot be loaded: ${(e as Error)?.message ?? String(e)}`);
  }
  return readHooks(mod, url.pathname);
}

/** The hooks among a module's exports; see loadHooksModule. */
export function readHooks(mod: Record<string, unknown>, where: string): InferenceHooks {
  const hooks: Record<string, unknown> = {};
  for (const name of Object.keys(mod)) {
    const hook = HOOK_NAMES.find((h) => h.toLowerCase() === name.toLowerCase());
    if (hook === undefined) continue;
    if (hook !== name) {
      throw new Error(`the hooks module ${where} exports '${name}': the hook is named '${hook}'`);
    }
    if (typeof mod[name] !== 'function') {
      throw new Error(`the hooks module ${where} exports '${name}' as ${typeof mod[name]}: a hook must be a function`);
    }
    hooks[name] = mod[name];
  }
  return hooks as InferenceHooks;
}
