import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort, waitFor } from './ports.js';

const MAIN = fileURLToPath(new URL('../backend/dist/main.js', import.meta.url));

/** Secrets shared by every replica a test starts, so tokens minted on one verify on another. */
export const TEST_SECRETS = {
  JWT_SECRET: 'test-access-secret-0123456789abcdef0123456789',
  RTC_TOKEN_SECRET: 'test-rtc-secret-0123456789abcdef0123456789abcd',
} as const;

export interface GatewayProcess {
  readonly port: number;
  readonly url: string;
  readonly replica: string;
  readonly pid: number;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** Resolves with the exit code (or signal name) once the process is gone. */
  readonly exited: Promise<number | string>;
  /** Sends a signal and waits for the exit; harmless when already gone. */
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

export interface GatewayProcessOptions {
  env?: Record<string, string | undefined>;
  replica?: string;
  port?: number;
  /** Wait until `/readyz` answers (default true). */
  waitReady?: boolean;
  /** A file descriptor to hand the process as its stdout instead of a pipe this helper reads. */
  stdout?: number;
  /** Called with each chunk the process writes to stdout or stderr, e.g. to stream its logs. */
  onOutput?: (text: string) => void;
  /** Node options that NODE_OPTIONS does not take (`--cpu-prof`). */
  nodeArgs?: string[];
}

class PortTakenError extends Error {}

/**
 * Starts `backend/dist/main.js` as a real process on a free port (run `npm run build`
 * first). A free port can be taken by a parallel test before the gateway binds it, so
 * readiness requires the answer to come from this replica, and a lost race is retried.
 */
export async function startGatewayProcess(options: GatewayProcessOptions = {}): Promise<GatewayProcess> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await spawnGateway(options, options.port ?? (await freePort()));
    } catch (error) {
      if (!(error instanceof PortTakenError) || options.port !== undefined || attempt >= 5) throw error;
    }
  }
}

async function spawnGateway(options: GatewayProcessOptions, port: number): Promise<GatewayProcess> {
  const replica = options.replica ?? `replica-${port}`;
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    NODE_ENV: 'test',
    // As in production: test tokens carry room grants (support/client.ts).
    ROOM_ACCESS: 'grants',
    LOG_LEVEL: 'warn',
    PORT: String(port),
    REPLICA_ID: replica,
    ...TEST_SECRETS,
  };
  for (const [key, value] of Object.entries(options.env ?? {})) {
    if (value === undefined) Reflect.deleteProperty(env, key);
    else env[key] = value;
  }
  const child: ChildProcess = spawn(process.execPath, [...(options.nodeArgs ?? []), MAIN], {
    env,
    stdio: ['ignore', options.stdout ?? 'pipe', 'pipe'],
  });
  let output = '';
  const collect = (chunk: Buffer) => {
    const text = chunk.toString();
    output += text;
    options.onOutput?.(text);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
  });
  const url = `http://127.0.0.1:${port}`;
  const handle: GatewayProcess = {
    port,
    url,
    replica,
    pid: child.pid ?? -1,
    output: () => output,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
  if (options.waitReady ?? true) {
    let gone = false;
    const failed = exited.then((code) => {
      gone = true;
      if (output.includes('EADDRINUSE')) throw new PortTakenError(`port ${port} was taken`);
      throw new Error(`gateway ${replica} exited (${code}) before it was ready:\n${output}`);
    });
    // Generous: on a shared 2-core machine, loading the gateway's modules alone can take
    // seconds, and several replicas start at once.
    const ready = waitFor(
      `gateway ${replica} /readyz`,
      async () => {
        if (gone) return true;
        const response = await fetch(`${url}/readyz`);
        // Another test's gateway may answer on this port; only ours counts.
        return (response.ok && ((await response.json()) as { replica?: string }).replica === replica) || undefined;
      },
      { timeoutMs: 25_000 },
    );
    failed.catch(() => undefined);
    try {
      await Promise.race([ready, failed]);
    } catch (error) {
      // One that is not ready in time (a loaded machine) would otherwise outlive its caller.
      await handle.stop('SIGKILL');
      throw error;
    }
  }
  return handle;
}

/** Waits until each gateway's `/readyz` says it is on Redis (it answers 200 while still connecting). */
export async function untilOnRedis(...gateways: GatewayProcess[]): Promise<void> {
  await Promise.all(
    gateways.map((gateway) =>
      waitFor(`${gateway.replica} on Redis`, async () => {
        const ready = (await (await fetch(`${gateway.url}/readyz`)).json()) as { redis?: unknown };
        return ready.redis === 'connected' || undefined;
      }),
    ),
  );
}

/**
 * Several replicas with the same `env`, started together and, when `env` names a Redis,
 * on it. If one fails to start, the others are stopped before the error is thrown.
 */
export async function startReplicas<const Names extends readonly string[]>(
  env: Record<string, string | undefined>,
  names: Names,
): Promise<{ -readonly [K in keyof Names]: GatewayProcess }> {
  const started = await Promise.allSettled(names.map((replica) => startGatewayProcess({ env, replica })));
  const replicas = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  const failed = started.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  try {
    if (failed) throw failed.reason;
    if (env.REDIS_URL || env.REDIS_CLUSTER_URLS || env.REDIS_SENTINEL_URLS) await untilOnRedis(...replicas);
    // One per name, in order: every start succeeded.
    return replicas as { -readonly [K in keyof Names]: GatewayProcess };
  } catch (error) {
    await Promise.all(replicas.map((replica) => replica.stop()));
    throw error;
  }
}
