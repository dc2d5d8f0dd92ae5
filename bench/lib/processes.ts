import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { startGatewayProcess, TEST_SECRETS } from '../../support/gateway-process.js';
import { waitFor } from '../../support/ports.js';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BASELINE_MAIN = fileURLToPath(new URL('../baseline/server.ts', import.meta.url));
const FEATURE_EQUAL_MAIN = fileURLToPath(new URL('../baseline/feature-equal.ts', import.meta.url));

/** A server process under test. */
export interface ServerProcess {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly pid: number;
  /** The V8 inspector, when started with `inspect`. */
  inspector(): Promise<Inspector>;
  stop(): Promise<void>;
}

export interface StartOptions {
  redisUrl: string;
  keyPrefix: string;
  name: string;
  /** Open the V8 inspector on a free port, to force GC and read the heap from outside. */
  inspect?: boolean;
  /** Listen here instead of on a free port (a restarted replica comes back on its port). */
  port?: number;
  /** Switchboard settings on top of `switchboardEnv` (e.g. ROOM_HISTORY_SIZE). */
  env?: Record<string, string>;
}

/** Stops for everything still running, so an interrupted bench leaves nothing behind. */
const running = new Set<() => Promise<void>>();

/** Registers `stop` until it has run; returns a wrapper that runs it once and unregisters it. */
export function track(stop: () => Promise<void>): () => Promise<void> {
  let stopping: Promise<void> | undefined;
  const once = (): Promise<void> => {
    stopping ??= stop().finally(() => running.delete(once));
    return stopping;
  };
  running.add(once);
  return once;
}

/** Stops every tracked process (on SIGINT/SIGTERM). */
export async function stopEverything(): Promise<void> {
  await Promise.allSettled([...running].map((stop) => stop()));
}

const CLK_TCK = (() => {
  const result = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const ticks = Number(result.stdout.trim());
  return Number.isFinite(ticks) && ticks > 0 ? ticks : 100;
})();

/** User + system CPU time of a process (all threads) in microseconds, from /proc/<pid>/stat. */
export function cpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may contain spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return ((utime + stime) * 1e6) / CLK_TCK;
}

/** Bytes a process (all threads) read through read-like system calls, sockets included: `rchar` of /proc/<pid>/io. */
export function readBytes(pid: number): number {
  const match = /^rchar: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'));
  if (!match) throw new Error(`/proc/${pid}/io has no rchar`);
  return Number(match[1]);
}

/** CPU microseconds used by each process between two snapshots. */
export class CpuMeter {
  private readonly start: number[];
  constructor(private readonly pids: number[]) {
    this.start = pids.map(cpuMicros);
  }
  /** Microseconds per pid since construction. */
  read(): number[] {
    return this.pids.map((pid, i) => cpuMicros(pid) - (this.start[i] ?? 0));
  }
}

const INSPECTOR_LINE = /Debugger listening on (ws:\/\/\S+)/;

function inspectorFrom(output: () => string, name: string): () => Promise<Inspector> {
  let opened: Promise<Inspector> | undefined;
  return () => {
    opened ??= waitFor(`${name} inspector url`, () => INSPECTOR_LINE.exec(output())?.[1]).then((url) =>
      Inspector.open(url),
    );
    return opened;
  };
}

/** Secrets and raised limits for Switchboard replicas under load. */
export function switchboardEnv(redisUrl: string, keyPrefix: string): Record<string, string> {
  return {
    NODE_ENV: 'production',
    ...TEST_SECRETS,
    REDIS_URL: redisUrl,
    REDIS_KEY_PREFIX: keyPrefix,
    CORS_ORIGINS: 'http://bench.invalid',
    DEV_LOGIN: '0',
    LOG_LEVEL: 'warn',
    // Every socket, user and publisher of the bench stays far below these.
    MINT_RATE_PER_MINUTE: '100000',
    MAX_CONNECTIONS_PER_USER: '10000',
    SOCKET_EVENTS_PER_SECOND: '100000',
  };
}

/** With `BENCH_CPU_PROF=<dir>`, every server writes a V8 CPU profile there when it exits (open it in Chrome DevTools). */
function profileArgs(): string[] {
  const dir = process.env.BENCH_CPU_PROF;
  return dir ? ['--cpu-prof', `--cpu-prof-dir=${dir}`] : [];
}

export async function startSwitchboard(options: StartOptions): Promise<ServerProcess> {
  const env = { ...switchboardEnv(options.redisUrl, options.keyPrefix), ...options.env };
  if (options.inspect) env.NODE_OPTIONS = '--inspect=127.0.0.1:0';
  const gateway = await startGatewayProcess({
    env,
    replica: options.name,
    nodeArgs: profileArgs(),
    ...(options.port === undefined ? {} : { port: options.port }),
  });
  const inspector = inspectorFrom(() => gateway.output(), options.name);
  return {
    name: options.name,
    host: '127.0.0.1',
    port: gateway.port,
    pid: gateway.pid,
    inspector,
    stop: track(async () => {
      await closeInspector(inspector, options.inspect);
      await stopWithin(gateway.stop(), () => void gateway.stop('SIGKILL'));
    }),
  };
}

/** The seed-faithful baseline (bench/baseline/server.ts). */
export function startBaseline(options: StartOptions): Promise<ServerProcess> {
  return startScript(BASELINE_MAIN, options, {});
}

/** The feature-equal baseline (bench/baseline/feature-equal.ts), with Switchboard's test secrets. */
export function startFeatureEqual(options: StartOptions): Promise<ServerProcess> {
  return startScript(FEATURE_EQUAL_MAIN, options, {
    JWT_SECRET: TEST_SECRETS.JWT_SECRET,
    TOKEN_SECRET: TEST_SECRETS.RTC_TOKEN_SECRET,
    REPLICA_ID: options.name,
  });
}

async function startScript(
  main: string,
  options: StartOptions,
  extraEnv: Record<string, string>,
): Promise<ServerProcess> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    NODE_ENV: 'production',
    PORT: String(options.port ?? 0),
    REDIS_URL: options.redisUrl,
    KEY_PREFIX: options.keyPrefix,
    ...extraEnv,
    ...options.env,
  };
  if (options.inspect) env.NODE_OPTIONS = '--inspect=127.0.0.1:0';
  const child = spawn(process.execPath, [...profileArgs(), '--import', 'tsx', main], {
    cwd: REPO_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const collect = (chunk: Buffer): void => {
    output += chunk.toString();
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      resolve();
    });
  });
  const kill = (signal: NodeJS.Signals): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  };
  let port: number;
  try {
    port = await Promise.race([
      waitFor(`${options.name} to listen`, () => {
        const match = /listening (\d+)/.exec(output);
        return match ? Number(match[1]) : undefined;
      }),
      exited.then(() => {
        throw new Error(`${options.name} exited before listening:\n${output}`);
      }),
    ]);
  } catch (error) {
    kill('SIGKILL');
    await exited;
    throw error;
  }
  const inspector = inspectorFrom(() => output, options.name);
  return {
    name: options.name,
    host: '127.0.0.1',
    port,
    pid: child.pid ?? -1,
    inspector,
    stop: track(async () => {
      await closeInspector(inspector, options.inspect);
      kill('SIGTERM');
      await stopWithin(exited, () => {
        kill('SIGKILL');
      });
    }),
  };
}

async function closeInspector(inspector: () => Promise<Inspector>, inspected: boolean | undefined): Promise<void> {
  // A process with an attached debugger waits for it to detach before exiting.
  if (inspected)
    await inspector().then(
      (session) => session.close(),
      () => undefined,
    );
}

/** Waits for `exit`; after 10 s calls `force` and waits for it again. */
async function stopWithin(exit: Promise<unknown>, force: () => void): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => {
      resolve('timeout');
    }, 10_000);
  });
  const outcome = await Promise.race([exit.then(() => 'exited' as const), timeout]);
  clearTimeout(timer);
  if (outcome === 'timeout') {
    force();
    await exit;
  }
}

interface CdpReply {
  id?: number;
  result?: { result?: { value?: unknown } };
  error?: { message: string };
}

/** A minimal Chrome DevTools Protocol session, to force GC and read the heap of a server. */
export class Inspector {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (reply: CdpReply) => void; reject: (e: Error) => void }>();

  private constructor(private readonly socket: WebSocket) {
    socket.on('message', (data: Buffer) => {
      const reply = JSON.parse(data.toString()) as CdpReply;
      if (reply.id === undefined) return;
      const waiter = this.waiting.get(reply.id);
      this.waiting.delete(reply.id);
      if (reply.error) waiter?.reject(new Error(reply.error.message));
      else waiter?.resolve(reply);
    });
    socket.on('close', () => {
      for (const waiter of this.waiting.values()) waiter.reject(new Error('inspector closed'));
      this.waiting.clear();
    });
  }

  static async open(url: string): Promise<Inspector> {
    const socket = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('error', reject);
    });
    return new Inspector(socket);
  }

  call(method: string, params: Record<string, unknown> = {}): Promise<CdpReply> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.socket.send(JSON.stringify({ id, method, params }));
    });
  }

  /** Heap used after two full garbage collections, in bytes. */
  async heapUsedAfterGc(): Promise<number> {
    await this.call('HeapProfiler.collectGarbage');
    await new Promise((resolve) => setTimeout(resolve, 200));
    await this.call('HeapProfiler.collectGarbage');
    const reply = await this.call('Runtime.evaluate', {
      expression: 'process.memoryUsage().heapUsed',
      returnByValue: true,
    });
    const value = reply.result?.result?.value;
    if (typeof value !== 'number') throw new Error('inspector did not return heapUsed');
    return value;
  }

  async close(): Promise<void> {
    if (this.socket.readyState === WebSocket.CLOSED) return;
    const closed = new Promise((resolve) => this.socket.once('close', resolve));
    this.socket.close();
    await closed;
  }
}
