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
  /** Called with each chunk the process writes to stdout or stderr, e.g. to stream its logs. */
  onOutput?: (text: string) => void;
}

/** Starts `backend/dist/main.js` as a real process on a free port (run `npm run build` first). */
export async function startGatewayProcess(options: GatewayProcessOptions = {}): Promise<GatewayProcess> {
  const port = options.port ?? (await freePort());
  const replica = options.replica ?? `replica-${port}`;
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    NODE_ENV: 'test',
    LOG_LEVEL: 'warn',
    PORT: String(port),
    REPLICA_ID: replica,
    ...TEST_SECRETS,
  };
  for (const [key, value] of Object.entries(options.env ?? {})) {
    if (value === undefined) Reflect.deleteProperty(env, key);
    else env[key] = value;
  }
  const child: ChildProcess = spawn(process.execPath, [MAIN], { env, stdio: ['ignore', 'pipe', 'pipe'] });
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
    const gone = exited.then((code) => {
      throw new Error(`gateway ${replica} exited (${code}) before it was ready:\n${output}`);
    });
    const ready = waitFor(`gateway ${replica} /readyz`, async () => {
      const response = await fetch(`${url}/readyz`);
      return response.ok || undefined;
    });
    await Promise.race([ready, gone]);
    gone.catch(() => undefined);
  }
  return handle;
}
