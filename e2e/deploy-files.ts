/**
 * Readers for the deploy files that e2e/deploy.test.ts checks: YAML documents, a
 * Dockerfile, .env files and Compose variable interpolation. Small on purpose: each
 * follows the documented format only as far as the files in this repository use it.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));

export function readText(relativePath: string): string {
  return readFileSync(new URL(`../${relativePath}`, import.meta.url), 'utf8');
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Every document of a YAML stream, as plain data. Merge keys (`<<: *anchor`) are on,
 * as in Docker Compose; a syntax error throws with the file name.
 */
export function parseYamlDocuments(text: string, name: string): unknown[] {
  return parseAllDocuments(text, { merge: true, prettyErrors: true })
    .map((document) => {
      if (document.errors.length > 0) {
        throw new Error(`${name}: ${document.errors.map((error) => error.message).join('\n')}`);
      }
      return document.toJS({ maxAliasCount: 100 }) as unknown;
    })
    .filter((value) => value !== null && value !== undefined);
}

// ---------------------------------------------------------------------------
// Dockerfile
// ---------------------------------------------------------------------------

export interface DockerInstruction {
  keyword: string;
  args: string;
  line: number;
}

export interface DockerStage {
  image: string;
  name: string | undefined;
  instructions: DockerInstruction[];
}

/**
 * Splits a Dockerfile into instructions: joins `\` continuations, drops comments
 * (also those inside a continuation, as BuildKit does) and parser directives.
 */
export function parseDockerfile(text: string): DockerInstruction[] {
  const instructions: DockerInstruction[] = [];
  let pending: { parts: string[]; line: number } | undefined;
  text.split(/\r?\n/).forEach((raw, index) => {
    const trimmed = raw.trim();
    if (trimmed.startsWith('#')) return;
    if (!pending && trimmed === '') return;
    const continued = /\\\s*$/.test(raw);
    const content = continued ? raw.replace(/\\\s*$/, '') : raw;
    pending ??= { parts: [], line: index + 1 };
    pending.parts.push(content.trim());
    if (continued) return;
    const joined = pending.parts.filter(Boolean).join(' ');
    const match = /^(\S+)\s*(.*)$/s.exec(joined);
    if (match?.[1]) instructions.push({ keyword: match[1].toUpperCase(), args: match[2] ?? '', line: pending.line });
    pending = undefined;
  });
  if (pending) throw new Error(`Dockerfile ends inside a line continuation (from line ${pending.line})`);
  return instructions;
}

/** Groups instructions by FROM, resolving `${ARG}` in image names from ARGs declared before the first FROM. */
export function dockerStages(instructions: DockerInstruction[]): DockerStage[] {
  const globalArgs = new Map<string, string>();
  const stages: DockerStage[] = [];
  for (const instruction of instructions) {
    const stage = stages.at(-1);
    if (instruction.keyword === 'FROM') {
      const match = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?\s*$/i.exec(instruction.args);
      if (!match?.[1]) throw new Error(`line ${instruction.line}: cannot read FROM ${instruction.args}`);
      const image = match[1].replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (_, name: string) => {
        const value = globalArgs.get(name);
        if (value === undefined) throw new Error(`line ${instruction.line}: FROM uses undeclared ARG ${name}`);
        return value;
      });
      stages.push({ image, name: match[2], instructions: [] });
    } else if (stage) {
      stage.instructions.push(instruction);
    } else if (instruction.keyword === 'ARG') {
      const [name, value = ''] = instruction.args.split('=', 2);
      if (name) globalArgs.set(name.trim(), value.trim());
    } else {
      throw new Error(`line ${instruction.line}: ${instruction.keyword} before the first FROM`);
    }
  }
  return stages;
}

/** Arguments of an exec-form (`["a", "b"]`) instruction, or undefined for the shell form. */
export function execForm(args: string): string[] | undefined {
  if (!args.trimStart().startsWith('[')) return undefined;
  const parsed: unknown = JSON.parse(args);
  if (!Array.isArray(parsed) || !parsed.every((item) => typeof item === 'string')) {
    throw new Error(`not a JSON array of strings: ${args}`);
  }
  return parsed;
}

// ---------------------------------------------------------------------------
// .env files and Compose interpolation
// ---------------------------------------------------------------------------

/** KEY=VALUE lines; `#` comments and blank lines are skipped, surrounding quotes removed. */
export function parseDotenv(text: string): Record<string, string> {
  const values: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const match = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(trimmed);
    if (!match?.[1]) throw new Error(`not a KEY=VALUE line: ${line}`);
    values[match[1]] = (match[2] ?? '').replace(/^(['"])(.*)\1$/, '$2');
  }
  return values;
}

export class InterpolationError extends Error {
  constructor(readonly missing: Map<string, string>) {
    super(
      `required variables are not set:\n${[...missing].map(([name, message]) => `  ${name}: ${message}`).join('\n')}`,
    );
    this.name = 'InterpolationError';
  }
}

const VARIABLE = /\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))/g;

/**
 * Resolves `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?message}`,
 * `${VAR?message}`, `${VAR:+alt}`, `${VAR+alt}` and `$$` in every string value, as
 * `docker compose` does before validating a file. Throws `InterpolationError` naming
 * every required variable that is missing.
 */
export function interpolateCompose(value: unknown, env: Record<string, string | undefined>): unknown {
  const missing = new Map<string, string>();
  const resolveString = (text: string): string =>
    text.replace(
      VARIABLE,
      (
        _match: string,
        dollar: string | undefined,
        braced: string | undefined,
        operator: string | undefined,
        operand: string | undefined,
        bare: string | undefined,
      ) => {
        if (dollar) return '$';
        const name = braced ?? bare ?? '';
        const current = env[name];
        const set = current !== undefined;
        const nonEmpty = set && current !== '';
        switch (operator) {
          case ':-':
            return nonEmpty ? current : (operand ?? '');
          case '-':
            return set ? current : (operand ?? '');
          case ':?':
          case '?':
            if (operator === ':?' ? !nonEmpty : !set) {
              missing.set(name, operand ?? '');
              return '';
            }
            return current ?? '';
          case ':+':
            return nonEmpty ? (operand ?? '') : '';
          case '+':
            return set ? (operand ?? '') : '';
          default:
            return current ?? '';
        }
      },
    );
  const walk = (node: unknown): unknown => {
    if (typeof node === 'string') return resolveString(node);
    if (Array.isArray(node)) return node.map(walk);
    if (isRecord(node)) return Object.fromEntries(Object.entries(node).map(([key, child]) => [key, walk(child)]));
    return node;
  };
  const result = walk(value);
  if (missing.size > 0) throw new InterpolationError(missing);
  return result;
}

/** Compose durations: `1m30s`, `500ms`, `15s`, `2h`. */
export function composeDurationMs(text: string): number {
  const units: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(us|ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((part) => part[0]).join('') !== text) {
    throw new Error(`not a compose duration: ${text}`);
  }
  return parts.reduce((total, [, amount, unit]) => total + Number(amount) * (units[unit ?? ''] ?? Number.NaN), 0);
}

/** A service's `environment`, list or mapping form, as a plain record. */
export function composeEnvironment(service: Record<string, unknown>): Record<string, string> {
  const environment = service.environment;
  if (environment === undefined) return {};
  if (Array.isArray(environment)) {
    return Object.fromEntries(
      environment.map((entry) => {
        const [key = '', ...rest] = String(entry).split('=');
        return [key, rest.join('=')];
      }),
    );
  }
  if (!isRecord(environment)) throw new Error('environment must be a list or a mapping');
  return Object.fromEntries(
    Object.entries(environment).map(([key, value]) => {
      if (value === null) return [key, ''];
      if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
        return [key, String(value)];
      }
      throw new Error(`environment.${key} must be a scalar`);
    }),
  );
}

/** Service attributes whose value the later file replaces instead of extending. */
const COMPOSE_REPLACED = new Set(['command', 'entrypoint', 'test']);

/** The key under which Compose merges two entries of a service's `volumes` or `ports`. */
function composeUniqueKey(attribute: string, entry: unknown): string {
  if (typeof entry !== 'string') throw new Error(`${attribute}: only the short syntax is supported here`);
  if (attribute === 'volumes') return entry.split(':')[1] ?? entry;
  return entry;
}

/**
 * Merges Compose files as `docker compose -f base -f override` does: mappings merge
 * key by key, the override winning; sequences are appended, except `command`,
 * `entrypoint` and `healthcheck.test`, which the override replaces, and `volumes` and
 * `ports`, where an override entry replaces the one with the same target. A value
 * written as a list in one file and a mapping in the other (environment, depends_on)
 * is not supported: the files here use mappings.
 */
export function mergeCompose(base: unknown, override: unknown, key = ''): unknown {
  if (override === undefined) return base;
  if (base === undefined || COMPOSE_REPLACED.has(key)) return override;
  if (isRecord(base) && isRecord(override)) {
    const merged: Record<string, unknown> = { ...base };
    for (const [name, value] of Object.entries(override)) merged[name] = mergeCompose(base[name], value, name);
    return merged;
  }
  if (Array.isArray(base) && Array.isArray(override)) {
    const before: unknown[] = base;
    const after: unknown[] = override;
    if (key === 'volumes' || key === 'ports') {
      const entries = new Map(before.map((entry) => [composeUniqueKey(key, entry), entry]));
      for (const entry of after) entries.set(composeUniqueKey(key, entry), entry);
      return [...entries.values()];
    }
    return [...before, ...after.filter((entry) => !before.includes(entry))];
  }
  if (Array.isArray(base) || Array.isArray(override) || isRecord(base) || isRecord(override)) {
    throw new Error(`${key}: cannot merge a list with a mapping or a scalar`);
  }
  return override;
}

const REDIS_UNITS: Record<string, number> = { '': 1, k: 1e3, kb: 1024, m: 1e6, mb: 1024 ** 2, g: 1e9, gb: 1024 ** 3 };

/** redis-server's memory notation (`256mb`, `1gb`, `100000`) in bytes, as redis.conf reads it. */
export function redisMemoryBytes(text: string): number {
  const match = /^(\d+)([kmg]b?)?$/i.exec(text.trim());
  const unit = REDIS_UNITS[(match?.[2] ?? '').toLowerCase()];
  if (!match || unit === undefined) throw new Error(`not a redis memory size: ${text}`);
  return Number(match[1]) * unit;
}

const K8S_UNITS: Record<string, number> = {
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  Ki: 1024,
  Mi: 1024 ** 2,
  Gi: 1024 ** 3,
};

/** A Kubernetes memory quantity (`256Mi`, `1G`) in bytes. */
export function k8sMemoryBytes(text: string): number {
  const match = /^(\d+)([kMG]i?|Ki)?$/.exec(text.trim());
  const unit = K8S_UNITS[match?.[2] ?? ''];
  if (!match || unit === undefined) throw new Error(`not a Kubernetes memory quantity: ${text}`);
  return Number(match[1]) * unit;
}

/** What follows `flag` in an argument list (`--maxmemory 256mb`), or undefined. */
export function argumentAfter(args: readonly string[], flag: string): string | undefined {
  const index = args.indexOf(flag);
  return index >= 0 ? args[index + 1] : undefined;
}
