import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';

export interface BrokenLink {
  /** The Markdown file, relative to the repository root. */
  file: string;
  line: number;
  target: string;
  problem: string;
}

/** Link targets in Markdown: inline links and images, reference definitions, HTML href/src. */
const LINK_PATTERNS = [
  /\]\(\s*<?([^)\s>]+)>?(?:\s+(?:"[^"]*"|'[^']*'))?\s*\)/g,
  /^ {0,3}\[[^\]]+\]:\s*<?([^\s>]+)>?/gm,
  /\b(?:href|src)\s*=\s*["']([^"']+)["']/g,
];

/** Code shows links without making them; blank it out, keeping line numbers. */
function withoutCode(text: string): string {
  const blank = (match: string) => match.replace(/[^\n]/g, ' ');
  return text.replace(/^ {0,3}(`{3,}|~{3,})[^]*?^ {0,3}\1[`~]*[ \t]*$/gm, blank).replace(/(`+)[^`\n][^]*?\1/g, blank);
}

export function linkTargets(markdown: string): Array<{ target: string; line: number }> {
  const text = withoutCode(markdown);
  const found: Array<{ target: string; line: number; index: number }> = [];
  for (const pattern of LINK_PATTERNS) {
    for (const match of text.matchAll(pattern)) {
      const target = match[1];
      if (target === undefined) continue;
      const index = match.index + match[0].indexOf(target);
      found.push({ target, index, line: text.slice(0, index).split('\n').length });
    }
  }
  return found.sort((a, b) => a.index - b.index).map(({ target, line }) => ({ target, line }));
}

/** Whether git would leave `paths` out of a clone; empty when `root` is not a git checkout. */
function gitIgnored(root: string, paths: string[]): Set<string> {
  if (paths.length === 0) return new Set();
  // Tracked files are never reported, ignored pattern or not: a clone has them.
  const result = spawnSync('git', ['check-ignore', '--stdin'], {
    cwd: root,
    input: paths.join('\n'),
    encoding: 'utf8',
  });
  return new Set(result.status === 0 ? result.stdout.split('\n').filter(Boolean) : []);
}

/**
 * Links in `files` (Markdown, relative to `root`) that a reader of a fresh clone could
 * not follow: a path out of the repository, an absolute path or file: URL, a file that
 * does not exist, or one git ignores. Web links and same-page anchors are not checked.
 */
export function brokenLinks(root: string, files: string[]): BrokenLink[] {
  const broken: BrokenLink[] = [];
  const local: Array<{ link: BrokenLink; path: string }> = [];
  for (const file of files) {
    for (const { target, line } of linkTargets(readFileSync(join(root, file), 'utf8'))) {
      const link = { file, line, target, problem: '' };
      if (/^file:/i.test(target) || target.startsWith('/')) {
        broken.push({ ...link, problem: 'is an absolute path; link relative to the file instead' });
        continue;
      }
      if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('#')) continue;
      let path: string;
      try {
        path = decodeURIComponent(target.replace(/[?#].*$/, ''));
      } catch {
        broken.push({ ...link, problem: 'is not a valid URL path' });
        continue;
      }
      const inRepo = relative(root, resolve(root, dirname(file), path));
      if (inRepo.startsWith('..') || isAbsolute(inRepo)) {
        broken.push({ ...link, problem: 'points outside the repository' });
      } else if (!existsSync(join(root, inRepo))) {
        broken.push({ ...link, problem: 'does not exist' });
      } else if (inRepo !== '') {
        local.push({ link, path: inRepo });
      }
    }
  }
  const ignored = gitIgnored(
    root,
    local.map(({ path }) => path),
  );
  for (const { link, path } of local) {
    if (ignored.has(path)) broken.push({ ...link, problem: 'is ignored by git, so a clone does not have it' });
  }
  return broken.sort((a, b) => files.indexOf(a.file) - files.indexOf(b.file) || a.line - b.line);
}

/** The repository's Markdown (README.md, docs/ and the rest): tracked, or new and not ignored. */
export function markdownFiles(root: string): string[] {
  const listed = spawnSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '--', '*.md'], {
    cwd: root,
    encoding: 'utf8',
  });
  if (listed.status !== 0) throw new Error(`git ls-files failed in ${root}: ${listed.stderr}`);
  return listed.stdout
    .split('\n')
    .filter(Boolean)
    .filter((file) => existsSync(join(root, file)));
}
