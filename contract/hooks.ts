/**
 * The users' hooks module, as the constructs bundle it and the handler loads it: one ES module
 * beside the handler's entry whose named exports are the hooks.
 */

/** File name of the bundled hooks module, beside the handler's `index.mjs`. */
export const HOOKS_MODULE_FILE = 'hooks.mjs';

/** The named exports a hooks module may have; each, when present, is a function. */
export const HOOK_NAMES = ['preprocess', 'postprocess', 'afterResponse'] as const;

export type HookName = (typeof HOOK_NAMES)[number];

/** The hook that runs after the response, which only a streamed response lets the function outlive. */
export const AFTER_RESPONSE_HOOK: HookName = 'afterResponse';
