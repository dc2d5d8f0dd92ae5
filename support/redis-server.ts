import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createConnection } from 'node:net';
import { freePort, waitFor } from './ports.js';

export interface RedisServerHandle {
  readonly port: number;
  readonly url: string;
  /** The running process's pid (undefined while stopped). */
  readonly pid: number | undefined;
  /** SIGKILL: an outage with no goodbye. */
  kill(): Promise<void>;
  /** Start again on the same port (after `kill` or `stop`). */
  start(): Promise<void>;
  /** Graceful stop; idempotent. */
  stop(): Promise<void>;
}

export interface RedisServerOptions {
  port?: number;
  password?: string;
  /** Start later with `start()`, to test a gateway that boots while Redis is down. */
  deferStart?: boolean;
  /** More `redis-server` arguments (cluster mode, persistence, `--replicaof`). */
  args?: (port: number) => string[];
  /** Runs `redis-server <configFile> --sentinel` instead, with the file this writes for the port. */
  sentinelConfig?: (port: number) => Promise<string>;
}

/** The pid of the redis-server answering on `port`, if any answers. */
function serverPid(port: number, password: string | undefined): Promise<number | undefined> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    let reply = '';
    const done = (pid: number | undefined) => {
      socket.destroy();
      resolve(pid);
    };
    socket.setTimeout(500);
    socket.on('connect', () => {
      if (password) socket.write(`AUTH ${JSON.stringify(password)}\r\n`);
      socket.write('INFO server\r\n');
    });
    socket.on('data', (data) => {
      reply += data.toString();
      const match = /process_id:(\d+)/.exec(reply);
      if (match) done(Number(match[1]));
      else if (reply.includes('-NOAUTH') || reply.includes('-WRONGPASS')) done(undefined);
    });
    socket.on('error', () => done(undefined));
    socket.on('timeout', () => done(undefined));
  });
}

/**
 * A private `redis-server` on a free port: no persistence, never the shared 6379.
 * Readiness means that the server answering is this child (its pid), so a port lost
 * to a parallel test is noticed and, unless the port was chosen, another is tried.
 */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServerHandle> {
  for (let attempt = 1; ; attempt++) {
    const handle = createRedisServer({ ...options, port: options.port ?? (await freePort()) });
    try {
      if (!options.deferStart) await handle.start();
      return handle;
    } catch (error) {
      if (options.port !== undefined || attempt >= 5) throw error;
    }
  }
}

function createRedisServer(options: RedisServerOptions & { port: number }): RedisServerHandle {
  const port = options.port;
  let child: ChildProcess | undefined;

  async function start(): Promise<void> {
    if (child) return;
    const args = options.sentinelConfig
      ? [await options.sentinelConfig(port), '--sentinel', '--port', String(port), '--bind', '127.0.0.1']
      : ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
    if (options.password) args.push('--requirepass', options.password);
    args.push(...(options.args?.(port) ?? []));
    const proc = spawn('redis-server', args, { stdio: 'ignore' });
    child = proc;
    let gone = false;
    const exited = once(proc, 'exit').then(() => {
      gone = true;
      if (child === proc) child = undefined;
    });
    const ready = waitFor(
      `redis-server on port ${port}`,
      async () => gone || (await serverPid(port, options.password)) === proc.pid || undefined,
      { timeoutMs: 10_000 },
    );
    await Promise.race([ready, exited]);
    if (gone) throw new Error(`redis-server exited at start; port ${port} is probably taken`);
  }

  async function terminate(signal: NodeJS.Signals): Promise<void> {
    const proc = child;
    if (!proc || proc.exitCode !== null) return;
    const exited = once(proc, 'exit');
    proc.kill(signal);
    await exited;
  }

  const auth = options.password ? `:${encodeURIComponent(options.password)}@` : '';
  return {
    port,
    url: `redis://${auth}127.0.0.1:${port}`,
    get pid() {
      return child?.pid;
    },
    kill: () => terminate('SIGKILL'),
    start,
    stop: () => terminate('SIGTERM'),
  };
}
