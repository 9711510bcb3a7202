import * as fs from 'node:fs';
import * as path from 'node:path';
import type { IConstruct } from 'constructs';
import type { HandlerHooksConfig } from './handler-hooks';
import { stageFiles } from '../private/staging';

/**
 * The folder of a function's handler: the prebuilt `handlerDir` itself, or with hooks, a staged copy
 * (hard-linked) with the bundled hooks module beside its entry.
 */
export function handlerWithHooks(scope: IConstruct, handlerDir: string, hooks: HandlerHooksConfig | undefined): string {
  if (!hooks) return handlerDir;
  return stageFiles(scope, 'handler-with-hooks', [
    { source: handlerDir, destination: '.' },
    ...fs.readdirSync(hooks.directory).map((name) => ({ source: path.join(hooks.directory, name), destination: name })),
  ]);
}
