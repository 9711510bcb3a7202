import * as fs from 'node:fs';
import * as path from 'node:path';

/** The repository's root. */
export const ROOT = path.resolve(__dirname, '../..');

/** Pages that a tool writes whole (jsii-docgen); the hand-written ones link into them. */
export const GENERATED_PAGES: readonly string[] = ['API.md', 'docs/API.python.md'];

/** The user docs written by hand, relative to the root: the README, then each page of docs/. */
export function docPages(): string[] {
  const docs = fs
    .readdirSync(path.join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => `docs/${f}`)
    .filter((f) => !GENERATED_PAGES.includes(f));
  return ['README.md', ...docs];
}
