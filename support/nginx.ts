import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, waitFor } from './ports.js';

/** The load balancer config of docker-compose.yml; the local stack runs it too. */
export const NGINX_CONF = fileURLToPath(new URL('../deploy/nginx/nginx.conf', import.meta.url));

/** Where Debian and most distributions put nginx; /usr/sbin is often missing from a non-root PATH. */
const NGINX_CANDIDATES = ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/local/nginx/sbin/nginx'];

/** Absolute path of the nginx binary, or undefined when it is not installed. */
export function findNginx(): string | undefined {
  const fromPath = (process.env.PATH ?? '').split(delimiter).map((dir) => join(dir, 'nginx'));
  for (const candidate of [...fromPath, ...NGINX_CANDIDATES]) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here; try the next one
    }
  }
  return undefined;
}

export function requireNginx(): string {
  const nginx = findNginx();
  if (!nginx) {
    throw new Error(
      'nginx is not installed (looked in PATH and /usr/sbin). The local stack uses it as the load balancer; ' +
        'on Debian/Ubuntu: apt-get install nginx',
    );
  }
  return nginx;
}

export interface LoopbackNginxConfig {
  /** Port to listen on, on 127.0.0.1. */
  port: number;
  /** `host:port` of each gateway replica. */
  upstreams: string[];
  /** Directory nginx runs in (`-p`); temp files go below it. */
  prefix: string;
  /** Worker user when nginx starts as root; omitted otherwise (nginx ignores it then). */
  user?: string;
}

function replaceOnce(text: string, pattern: RegExp, replacement: string, what: string): string {
  if (!pattern.test(text)) throw new Error(`deploy/nginx/nginx.conf no longer has ${what}; update support/nginx.ts`);
  return text.replace(pattern, replacement);
}

/**
 * Turns deploy/nginx/nginx.conf into a config for loopback: the replicas' addresses
 * instead of the compose service names, a loopback listener, files under `prefix`.
 * Everything that decides routing (hashing, upgrade headers, timeouts, failover)
 * stays as written, so a test through this config tests the deployed one.
 */
export function renderLoopbackNginxConfig(template: string, config: LoopbackNginxConfig): string {
  if (config.upstreams.length === 0) throw new Error('the load balancer needs at least one upstream');
  let text = template;
  text = replaceOnce(text, /^\s*user\s+[^;]*;\s*$/m, config.user ? `user ${config.user};` : '', 'a user directive');
  text = replaceOnce(text, /^(\s*)worker_processes\s+[^;]*;/m, '$1worker_processes 1;', 'worker_processes');
  // Docker's embedded DNS does not exist here, and the addresses below are literal.
  text = text.replace(/^\s*resolver\s+[^;]*;\s*$/gm, '');
  text = text.replace(/^(\s*)access_log\s+[^;]*;/gm, '$1access_log off;');
  // Errors go to stderr through `-g error_log`, which the caller captures.
  text = text.replace(/^\s*error_log\s+[^;]*;\s*$/gm, '');
  text = replaceOnce(text, /^(\s*)listen\s+8080\s*;/m, `$1listen 127.0.0.1:${config.port};`, 'listen 8080');

  const serverLine = /^(\s*)server\s+[A-Za-z0-9_.-]+:\d+((?:\s+[^;\s]+)*)\s*;[^\S\n]*\n/gm;
  const servers = [...text.matchAll(serverLine)];
  const first = servers[0];
  if (!first) throw new Error('deploy/nginx/nginx.conf has no upstream server lines; update support/nginx.ts');
  const indent = first[1] ?? '';
  const params = (first[2] ?? '')
    .split(/\s+/)
    .filter((param) => param !== '' && param !== 'resolve')
    .join(' ');
  const generated = config.upstreams
    .map((upstream) => `${indent}server ${upstream}${params ? ` ${params}` : ''};\n`)
    .join('');
  let index = 0;
  text = text.replace(serverLine, () => (index++ === 0 ? generated : ''));

  const temp = (name: string) => join(config.prefix, 'temp', name);
  const tempPaths = [
    `client_body_temp_path ${temp('client_body')};`,
    `proxy_temp_path ${temp('proxy')};`,
    `fastcgi_temp_path ${temp('fastcgi')};`,
    `uwsgi_temp_path ${temp('uwsgi')};`,
    `scgi_temp_path ${temp('scgi')};`,
  ].join(' ');
  text = replaceOnce(text, /^(\s*)http\s*\{/m, `$1http {\n$1    ${tempPaths}`, 'an http block');
  return text;
}

function globalDirectives(prefix: string): string {
  return `daemon off; master_process on; pid ${join(prefix, 'nginx.pid')}; lock_file ${join(prefix, 'nginx.lock')}; error_log stderr warn;`;
}

/** Unprivileged group for workers: Debian calls it nogroup, others nobody. */
function workerUser(): string | undefined {
  if (process.getuid?.() !== 0) return undefined;
  let groups = '';
  try {
    groups = readFileSync('/etc/group', 'utf8');
  } catch {
    // no /etc/group: let nginx pick its compiled-in default
  }
  return /^nogroup:/m.test(groups) ? 'nobody nogroup' : 'nobody';
}

async function preparePrefix(): Promise<string> {
  const prefix = await mkdtemp(join(tmpdir(), 'switchboard-nginx-'));
  const workersMayWrite = process.getuid?.() === 0;
  // Workers run as nobody when nginx starts as root; they buffer large bodies here.
  if (workersMayWrite) await chmod(prefix, 0o755);
  for (const name of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) {
    const dir = join(prefix, 'temp', name);
    await mkdir(dir, { recursive: true });
    if (workersMayWrite) await chmod(dir, 0o777);
  }
  return prefix;
}

/** Runs `nginx -t` on a loopback rendering of `template`; returns nginx's verdict. */
export async function testNginxConfig(template: string): Promise<{ ok: boolean; output: string }> {
  const nginx = requireNginx();
  const prefix = await preparePrefix();
  try {
    const confPath = join(prefix, 'nginx.conf');
    const user = workerUser();
    const upstreams = ['127.0.0.1:1', '127.0.0.1:2'];
    await writeFile(
      confPath,
      renderLoopbackNginxConfig(template, { port: 1, upstreams, prefix, ...(user && { user }) }),
    );
    const result = spawnSync(nginx, ['-t', '-p', prefix, '-c', confPath, '-g', globalDirectives(prefix)], {
      encoding: 'utf8',
    });
    return { ok: result.status === 0, output: `${result.stdout}${result.stderr}` };
  } finally {
    await rm(prefix, { recursive: true, force: true });
  }
}

export interface NginxHandle {
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  /** Everything nginx wrote so far (its error log goes to stderr). */
  output(): string;
  /** Fast shutdown (open WebSockets are cut, as on a load balancer restart); idempotent. */
  stop(): Promise<void>;
}

export interface NginxOptions {
  upstreams: string[];
  port?: number;
  /** Defaults to deploy/nginx/nginx.conf. */
  template?: string;
  onOutput?: (text: string) => void;
}

/** Starts nginx on 127.0.0.1 with a loopback rendering of the deploy config. */
export async function startNginx(options: NginxOptions): Promise<NginxHandle> {
  const nginx = requireNginx();
  const port = options.port ?? (await freePort());
  const prefix = await preparePrefix();
  const confPath = join(prefix, 'nginx.conf');
  const user = workerUser();
  const template = options.template ?? readFileSync(NGINX_CONF, 'utf8');
  await writeFile(
    confPath,
    renderLoopbackNginxConfig(template, { port, upstreams: options.upstreams, prefix, ...(user && { user }) }),
  );

  const child = spawn(nginx, ['-p', prefix, '-c', confPath, '-g', globalDirectives(prefix)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const collect = (chunk: Buffer) => {
    const text = chunk.toString();
    output += text;
    options.onOutput?.(text);
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      resolve();
    });
  });
  const cleanup = async () => {
    await exited;
    await rm(prefix, { recursive: true, force: true });
  };

  let stopping: Promise<void> | undefined;
  const url = `http://127.0.0.1:${port}`;
  const handle: NginxHandle = {
    url,
    port,
    pid: child.pid ?? -1,
    output: () => output,
    stop() {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        await cleanup();
      })();
      return stopping;
    },
  };

  const gone = exited.then(() => {
    throw new Error(`nginx exited before it was listening on ${url}:\n${output}`);
  });
  gone.catch(() => undefined);
  try {
    await Promise.race([
      waitFor(`nginx on ${url}`, async () => {
        // Any answer will do: the upstreams may not be ready yet.
        await fetch(`${url}/healthz`);
        return true;
      }),
      gone,
    ]);
  } catch (error) {
    await handle.stop();
    throw error;
  }
  return handle;
}
