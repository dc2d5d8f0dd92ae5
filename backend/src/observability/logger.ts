import { pino, type DestinationStream, type Logger } from 'pino';
import sonicBoom from 'sonic-boom';

export type { Logger };

/** Paths pino blanks out wherever they appear, so a token or secret never reaches the log. */
const REDACT_PATHS = [
  'token',
  '*.token',
  'accessToken',
  '*.accessToken',
  'password',
  '*.password',
  'secret',
  '*.secret',
  'authorization',
  '*.authorization',
  'headers.authorization',
  'req.headers.authorization',
  'req.headers.cookie',
  'auth',
  '*.auth',
  'redisUrl',
  '*.redisUrl',
  'apiKey',
  '*.apiKey',
];

export interface LoggerOptions {
  level: string;
  replica: string;
  /** Defaults to stdout; tests pass a stream to read what was logged. */
  destination?: DestinationStream;
}

export function createLogger({ level, replica, destination }: LoggerOptions): Logger {
  return pino(
    {
      level,
      base: { replica },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? stdoutDestination(),
  );
}

/** Log lines held while stdout does not take them; beyond this they are dropped, not queued. */
const STDOUT_BUFFER_BYTES = 16 * 1024 * 1024;
/** How long the exit may wait for stdout to take the last lines. */
export const EXIT_FLUSH_MS = 250;

export interface StdoutDestination extends DestinationStream {
  /** Resolves once the buffered lines are written, or after a quarter second; never rejects. */
  flushBeforeExit(): Promise<void>;
}

/**
 * stdout for JSON lines that can never hold the process. pino's own destination flushes
 * synchronously in an `exit` handler and retries EAGAIN forever, so with stdout a pipe
 * nobody reads (a paused `| less`, a stalled log collector, a pipe already full) the
 * process closed its port on SIGTERM and then hung inside `process.exit()` until the
 * reader woke up. Here nothing writes synchronously: the exit waits a bounded time for
 * the last lines, and a line that cannot be written is dropped. Logging is best effort;
 * exiting is not.
 */
export function stdoutDestination(fd = 1): StdoutDestination {
  const stream = new sonicBoom.SonicBoom({ fd, sync: false, maxLength: STDOUT_BUFFER_BYTES });
  // EPIPE (the reader is gone) and friends: drop the lines, keep serving.
  stream.on('error', () => undefined);
  // Bytes handed to the stream and not yet written: sonic-boom's flush() answers at once
  // without a minimum length, so the exit counts for itself.
  let pending = 0;
  const write = stream.write.bind(stream);
  const settled = new Set<() => void>();
  const settle = (bytes: number) => {
    pending = Math.max(0, pending - bytes);
    if (pending === 0) for (const resolve of settled) resolve();
  };
  stream.on('write', settle);
  stream.on('drop', (data: string) => settle(Buffer.byteLength(data)));
  return Object.assign(stream, {
    write(data: string) {
      pending += Buffer.byteLength(data);
      return write(data);
    },
    flushBeforeExit() {
      if (pending === 0) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          settled.delete(done);
          resolve();
        };
        const timer = setTimeout(done, EXIT_FLUSH_MS);
        settled.add(done);
      });
    },
  });
}

/**
 * A colourful, human-readable stream for a developer's terminal, or undefined where
 * pino-pretty is not installed: it is a dev dependency, so the production image has
 * no copy, and JSON lines are what log collectors want anyway.
 */
export async function prettyDestination(): Promise<DestinationStream | undefined> {
  try {
    const { default: pretty } = await import('pino-pretty');
    // Synchronous, so the last lines before process.exit() are not lost.
    return pretty({ colorize: true, sync: true, translateTime: 'SYS:HH:MM:ss.l' });
  } catch {
    return undefined;
  }
}
