import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * The relative links of markdown pages and the anchors they point at, as GitHub resolves them:
 * `[text](page.md#anchor)`, `[text](#anchor)`, `[text](folder/)`. Links in code (fenced blocks,
 * inline code) are not links; links with a scheme (`https:`, `mailto:`) are left to the web.
 */

/** A link that does not resolve, with where it is. */
export interface BrokenLink {
  /** The page, relative to the root given to `brokenLinks`. */
  readonly page: string;
  readonly line: number;
  readonly target: string;
  readonly reason: string;
}

/** The lines of a page with its fenced code blocks blanked (so that line numbers stay). */
function proseLines(markdown: string): string[] {
  let fence: string | undefined;
  return markdown.split('\n').map((line) => {
    const opener = /^\s{0,3}(`{3,}|~{3,})/.exec(line);
    if (fence === undefined) {
      if (opener) {
        fence = opener[1];
        return '';
      }
      return line;
    }
    if (opener && opener[1][0] === fence[0] && opener[1].length >= fence.length && line.trim() === opener[1]) fence = undefined;
    return '';
  });
}

/** A line without its inline code spans. */
function withoutCode(line: string): string {
  return line.replace(/(`+)[\s\S]*?\1/g, (m) => ' '.repeat(m.length));
}

/**
 * GitHub's anchor for a heading (as github-slugger makes it): the heading's text in lower case,
 * without punctuation but `-` and `_`, its spaces turned into `-`.
 */
export function headingSlug(heading: string): string {
  const text = heading
    .replace(/<[^>]*>/g, '') // HTML tags
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // links and images: their text
    .replace(/`/g, '');
  return text
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
}

/** Every anchor a page defines: its headings' slugs (`-1`, `-2` after a repeated one) and `id`/`name` attributes. */
export function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const counts = new Map<string, number>();
  for (const line of proseLines(markdown)) {
    const heading = /^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (heading) {
      const slug = headingSlug(heading[1]);
      const n = counts.get(slug) ?? 0;
      counts.set(slug, n + 1);
      anchors.add(n === 0 ? slug : `${slug}-${n}`);
    }
    for (const tag of line.matchAll(/<a\s[^>]*>/gi)) for (const m of tag[0].matchAll(/\b(?:id|name)="([^"]+)"/gi)) anchors.add(m[1]);
  }
  return anchors;
}

/** The links of a page: target and 1-based line. */
export function linksOf(markdown: string): Array<{ target: string; line: number }> {
  const links: Array<{ target: string; line: number }> = [];
  for (const [i, line] of proseLines(markdown).entries()) {
    for (const m of withoutCode(line).matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) links.push({ target: m[1], line: i + 1 });
    // Reference definitions: `[name]: target`.
    const definition = /^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(\s|$)/.exec(line);
    if (definition) links.push({ target: definition[1], line: i + 1 });
  }
  return links;
}

/** The links of `pages` (paths relative to `root`) that do not resolve: a missing file, or an anchor its page lacks. */
export function brokenLinks(root: string, pages: readonly string[]): BrokenLink[] {
  const anchorCache = new Map<string, Set<string>>();
  const anchors = (file: string) => {
    if (!anchorCache.has(file)) anchorCache.set(file, anchorsOf(fs.readFileSync(file, 'utf8')));
    return anchorCache.get(file)!;
  };
  const broken: BrokenLink[] = [];
  for (const page of pages) {
    const file = path.join(root, page);
    for (const { target, line } of linksOf(fs.readFileSync(file, 'utf8'))) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:, ...
      const hash = target.indexOf('#');
      const pathPart = decodeURIComponent(hash < 0 ? target : target.slice(0, hash));
      const anchor = hash < 0 ? undefined : decodeURIComponent(target.slice(hash + 1));
      const resolved = pathPart === '' ? file : path.resolve(path.dirname(file), pathPart);
      const report = (reason: string) => broken.push({ page, line, target, reason });
      if (path.relative(root, resolved).split(path.sep)[0] === '..') {
        report('points outside the repository');
        continue;
      }
      if (!fs.existsSync(resolved)) {
        report(`${path.relative(root, resolved)} does not exist`);
        continue;
      }
      if (anchor === undefined || anchor === '') continue;
      if (!resolved.endsWith('.md') || fs.statSync(resolved).isDirectory()) {
        report(`#${anchor} is an anchor into ${path.relative(root, resolved)}, which is not a markdown page`);
        continue;
      }
      if (!anchors(resolved).has(anchor)) report(`${path.relative(root, resolved)} has no heading or anchor #${anchor}`);
    }
  }
  return broken;
}

/** Broken links as one readable assertion message. */
export function formatBrokenLinks(broken: readonly BrokenLink[]): string {
  return broken.map((b) => `${b.page}:${b.line}: ${b.target}: ${b.reason}`).join('\n');
}
