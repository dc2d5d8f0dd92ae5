import { pino, type DestinationStream, type Logger } from 'pino';

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
    destination,
  );
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
