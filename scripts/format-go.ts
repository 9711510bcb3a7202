/**
 * Leaves the Go sources that jsii-pacmak generates (`dist-langs/go`) as Go's own tools want them.
 * jsii-pacmak 1.140 writes every file with a blank line at its end, and aligns neither import
 * aliases nor map literals; it only formats them in a full build (`go build`), which needs the Go
 * module proxy. With `gofmt` on the PATH (Debian: `apt-get install golang-go`) this runs
 * `gofmt -w`; without it, it drops the trailing blank lines, the one change that needs no parser.
 *
 * Run directly: `npx tsx scripts/format-go.ts [dir]` (default `<repo>/dist-langs/go`).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** What `formatGoSources` did: `gofmt`, or the trim alone when there is no `gofmt`. */
export interface GoFormatResult {
  readonly tool: 'gofmt' | 'trim';
  /** The files it changed. */
  readonly changed: string[];
}

/** Every `.go` file under `dir`, sorted. */
export function goFiles(dir: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.go'))
    .map((e) => path.join(e.parentPath, e.name))
    .sort();
}

/** Whether `gofmt` runs here. */
export function hasGofmt(): boolean {
  return spawnSync('gofmt', ['-h'], { stdio: 'ignore' }).error === undefined;
}

/** A Go source with its trailing blank lines removed: it ends with exactly one newline. */
export function trimTrailingBlankLines(source: string): string {
  return `${source.replace(/\s+$/, '')}\n`;
}

export function formatGoSources(dir: string, useGofmt = hasGofmt()): GoFormatResult {
  if (useGofmt) {
    const run = spawnSync('gofmt', ['-l', '-w', dir], { encoding: 'utf8' });
    if (run.status !== 0) throw new Error(`gofmt -w ${dir} failed (${run.status}): ${run.stderr}`);
    return { tool: 'gofmt', changed: run.stdout.split('\n').filter(Boolean).sort() };
  }
  const changed: string[] = [];
  for (const file of goFiles(dir)) {
    const source = fs.readFileSync(file, 'utf8');
    const trimmed = trimTrailingBlankLines(source);
    if (trimmed !== source) {
      fs.writeFileSync(file, trimmed);
      changed.push(file);
    }
  }
  return { tool: 'trim', changed };
}

if (require.main === module) {
  const dir = path.resolve(process.argv[2] ?? path.join(__dirname, '..', 'dist-langs', 'go'));
  const { tool, changed } = formatGoSources(dir);
  console.log(
    tool === 'gofmt'
      ? `gofmt: formatted ${changed.length} Go files in ${path.relative(process.cwd(), dir) || '.'}`
      : `no gofmt on the PATH: trimmed the trailing blank line of ${changed.length} Go files (install Go for a full gofmt)`,
  );
}
