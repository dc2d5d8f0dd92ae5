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
