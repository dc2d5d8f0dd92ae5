import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createConnection } from 'node:net';
import { freePort, waitFor } from './ports.js';

export interface RedisServerHandle {
  readonly port: number;
  readonly url: string;
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
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    socket.setTimeout(500);
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (data) => {
      socket.destroy();
      resolve(data.toString().startsWith('+PONG') || data.toString().includes('NOAUTH'));
    });
    socket.on('error', () => resolve(false));
    socket.on('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

/** A private `redis-server` on a free port: no persistence, never the shared 6379. */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServerHandle> {
  const port = options.port ?? (await freePort());
  let child: ChildProcess | undefined;

  async function start(): Promise<void> {
    if (child) return;
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
    if (options.password) args.push('--requirepass', options.password);
    const proc = spawn('redis-server', args, { stdio: 'ignore' });
    child = proc;
    proc.once('exit', () => {
      if (child === proc) child = undefined;
    });
    await waitFor(`redis-server on port ${port}`, async () => (await ping(port)) || undefined, { timeoutMs: 10_000 });
  }

  async function terminate(signal: NodeJS.Signals): Promise<void> {
    const proc = child;
    if (!proc || proc.exitCode !== null) return;
    const exited = once(proc, 'exit');
    proc.kill(signal);
    await exited;
  }

  if (!options.deferStart) await start();
  const auth = options.password ? `:${encodeURIComponent(options.password)}@` : '';
  return {
    port,
    url: `redis://${auth}127.0.0.1:${port}`,
    kill: () => terminate('SIGKILL'),
    start,
    stop: () => terminate('SIGTERM'),
  };
}
