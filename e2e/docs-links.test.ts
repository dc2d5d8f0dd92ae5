import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { brokenLinks, markdownFiles } from '../support/doc-links.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/**
 * The README and docs/ are all a new user has; a link that leads out of the clone (to
 * a sibling folder on the author's machine) or to a file that is not there is a dead end.
 */
describe('documentation links', () => {
  it('lead only to files inside the repository that a clone has', () => {
    const files = markdownFiles(ROOT);
    expect(files).toEqual(expect.arrayContaining(['README.md', 'docs/protocol.md', 'docs/architecture.md']));
    expect(brokenLinks(ROOT, files)).toEqual([]);
  });

  it('are checked for every way out: parent folders, absolute paths, missing and ignored files', () => {
    const root = mkdtempSync(join(tmpdir(), 'doc-links-'));
    try {
      spawnSync('git', ['init', '-q'], { cwd: root });
      mkdirSync(join(root, 'docs'));
      mkdirSync(join(root, 'dist'));
      writeFileSync(join(root, '.gitignore'), 'dist/\n');
      writeFileSync(join(root, 'dist', 'bundle.js'), '');
      writeFileSync(join(root, 'docs', 'guide.md'), '# Guide\n\n[back](../README.md#top) ![chart](chart.svg)\n');
      writeFileSync(
        join(root, 'README.md'),
        [
          '# Project',
          'See [the design](../shared/DESIGN.md), [the guide](docs/guide.md#setup) and <https://example.com>.',
          '[ref]: /etc/passwd',
          '<a href="file:///home/me/notes.md">notes</a> and [web](https://example.com/x.md) and [top](#project)',
          '```sh',
          'cat [not a link](../nowhere.md)',
          '```',
          'Inline `[code](../code.md)` is not a link; [the bundle](dist/bundle.js) is ignored.',
        ].join('\n'),
      );
      const found = brokenLinks(root, ['README.md', 'docs/guide.md']).map(
        ({ file, line, target, problem }) => `${file}:${line} ${target} ${problem}`,
      );
      expect(found).toEqual([
        'README.md:2 ../shared/DESIGN.md points outside the repository',
        'README.md:3 /etc/passwd is an absolute path; link relative to the file instead',
        'README.md:4 file:///home/me/notes.md is an absolute path; link relative to the file instead',
        'README.md:8 dist/bundle.js is ignored by git, so a clone does not have it',
        'docs/guide.md:3 chart.svg does not exist',
      ]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
