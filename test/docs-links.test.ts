import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { docPages, ROOT } from './support/docs';
import { anchorsOf, brokenLinks, formatBrokenLinks, headingSlug, linksOf } from './support/markdown-links';
import { tempDir } from './support/handler';

describe('the links of the README, the changelog and docs/', () => {
  const pages = [...docPages(), 'CHANGELOG.md'];

  it('reads every page, and the pages link to each other', () => {
    expect(pages).toEqual(expect.arrayContaining(['README.md', 'docs/endpoints.md', 'docs/python.md', 'CHANGELOG.md']));
    const links = pages.flatMap((p) => linksOf(fs.readFileSync(path.join(ROOT, p), 'utf8')));
    expect(links.filter((l) => l.target.includes('.md#')).length).toBeGreaterThan(20);
  });

  it('every relative link and #anchor resolves', () => {
    const broken = brokenLinks(ROOT, pages);
    expect(broken, formatBrokenLinks(broken)).toEqual([]);
  });

  it('the README links every page of docs/', () => {
    const readme = linksOf(fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8')).map((l) => l.target.split('#')[0]);
    const unlinked = docPages()
      .filter((p) => p !== 'README.md')
      .filter((p) => !readme.includes(p));
    expect(unlinked).toEqual([]);
  });
});

describe('the link checker', () => {
  it("makes GitHub's anchors: lower case, no punctuation but - and _, spaces to -", () => {
    expect(headingSlug('Hooks: pre- and post-processing')).toBe('hooks-pre--and-post-processing');
    expect(headingSlug('arm64 (Graviton)')).toBe('arm64-graviton');
    expect(headingSlug('`MAX_BODY_BYTES` and [the API](api.md)')).toBe('max_body_bytes-and-the-api');
    expect(headingSlug('Default settings, and what each protects against')).toBe('default-settings-and-what-each-protects-against');
  });

  it('finds a missing page, a missing anchor, a link out of the repository, and nothing in code', () => {
    const root = tempDir('csi-links-');
    fs.mkdirSync(path.join(root, 'docs'));
    fs.writeFileSync(
      path.join(root, 'README.md'),
      [
        '# Title',
        '## Usage',
        '## Usage',
        'See [usage](#usage), [again](#usage-1), [the page](docs/page.md#a-section), [folder](docs/) and [web](https://example.com/#x).', // line 4
        'Broken: [gone](docs/gone.md), [no anchor](docs/page.md#nowhere), [here](#nothing), [out](../elsewhere.md).', // line 5
        '```md',
        '[in a fence](missing.md)',
        '```',
        'And `[inline code](missing.md)` is not a link.',
      ].join('\n'),
    );
    fs.writeFileSync(
      path.join(root, 'docs', 'page.md'),
      '# Page\n\n## A section\n\n<a name="explicit" id="other"></a>\n\n[back](../README.md#title) [id](#other) [name](#explicit)\n',
    );
    expect(anchorsOf(fs.readFileSync(path.join(root, 'README.md'), 'utf8'))).toEqual(new Set(['title', 'usage', 'usage-1']));
    const broken = brokenLinks(root, ['README.md', 'docs/page.md']);
    expect(broken.map((b) => `${b.page}:${b.line} ${b.target}`)).toEqual([
      'README.md:5 docs/gone.md',
      'README.md:5 docs/page.md#nowhere',
      'README.md:5 #nothing',
      'README.md:5 ../elsewhere.md',
    ]);
    expect(formatBrokenLinks(broken)).toContain('README.md:5: docs/page.md#nowhere: docs/page.md has no heading or anchor #nowhere');
  });
});
