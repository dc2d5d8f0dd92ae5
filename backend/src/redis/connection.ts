import { EventEmitter } from 'node:events';
import { createClient } from 'redis';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';

export type RedisClient = ReturnType<typeof createClient>;

export type RedisState = 'connecting' | 'ready' | 'disconnected' | 'closed';

/** A Redis command that did not answer in time; names the operation. */
export class RedisTimeoutError extends Error {
  constructor(operation: string, timeoutMs: number) {
    super(`redis ${operation} timed out after ${timeoutMs} ms`);
    this.name = 'RedisTimeoutError';
  }
}

/** Raised without touching the network when the connection is known to be down. */
export class RedisUnavailableError extends Error {
  constructor(operation: string) {
    super(`redis ${operation} skipped: not connected`);
    this.name = 'RedisUnavailableError';
  }
}

export interface RedisConnectionOptions {
  url: string;
  logger: Logger;
  metrics: Metrics;
  /** Upper bound on any one command, so Redis trouble can never stall a request. */
  commandTimeoutMs?: number;
  /** Cap of the reconnect backoff. */
  maxBackoffMs?: number;
}

export interface RedisConnection {
  /** The command client: offline queue disabled, so it fails fast while down. */
  readonly client: RedisClient;
  readonly state: RedisState;
  isReady(): boolean;
  /** Runs `operation` against the command client with a deadline; rejects fast when down. */
  run<T>(operation: string, command: (client: RedisClient) => Promise<T>): Promise<T>;
  /** Fires on every transition to ready (first connect and each reconnect). */
  onReady(listener: () => void): () => void;
  /** A dedicated client that fails fast while down (for pub/sub), closed with this connection. */
  duplicate(name: string, options?: { subscriber: boolean }): RedisClient;
  close(): Promise<void>;
}

/** Exponential backoff with jitter, capped so a returning Redis is noticed within seconds. */
export function reconnectDelay(retries: number, maxBackoffMs: number): number {
  const base = Math.min(maxBackoffMs, 50 * 2 ** Math.min(retries, 10));
  return Math.round(base / 2 + Math.random() * (base / 2));
}

export function createRedisConnection({
  url,
  logger,
  metrics,
  commandTimeoutMs = 500,
  maxBackoffMs = 2_000,
}: RedisConnectionOptions): RedisConnection {
  const log = logger.child({ component: 'redis' });
  const events = new EventEmitter();
  const clients: RedisClient[] = [];
  let state: RedisState = 'connecting';
  let closing: Promise<void> | undefined;

  const clientOptions = (name: string, subscriber: boolean) => ({
    url,
    name: `switchboard-${name}`,
    disableOfflineQueue: true,
    // Detects half-open connections; a subscriber's PING reply is a pub/sub frame, so not there.
    ...(subscriber ? {} : { pingInterval: 5_000 }),
    socket: {
      connectTimeout: 2_000,
      reconnectStrategy: (retries: number) => reconnectDelay(retries, maxBackoffMs),
    },
  });

  const open = (name: string, subscriber: boolean): RedisClient => {
    const client = createClient(clientOptions(name, subscriber));
    // Listeners go on before connect(): node-redis emits 'error' on every failed
    // attempt and an EventEmitter without one would crash the process.
    let lastError = '';
    client.on('error', (error: Error) => {
      if (error.message !== lastError) log.warn({ client: name, err: error.message }, 'redis client error');
      lastError = error.message;
    });
    client.on('ready', () => {
      lastError = '';
    });
    clients.push(client);
    client.connect().catch((error: unknown) => {
      if (!closing) log.warn({ client: name, err: String(error) }, 'redis connect abandoned');
    });
    return client;
  };

  const client = open('commands', false);
  const setState = (next: RedisState): void => {
    if (state === next || state === 'closed') return;
    state = next;
    metrics.redisUp.set(next === 'ready' ? 1 : 0);
    log.info({ state: next }, 'redis state');
    if (next === 'ready') events.emit('ready');
  };
  metrics.redisUp.set(0);
  client.on('ready', () => setState('ready'));
  client.on('reconnecting', () => setState('disconnected'));
  client.on('end', () => setState('disconnected'));
  client.on('error', () => {
    if (!client.isReady) setState('disconnected');
  });

  return {
    client,
    get state() {
      return state;
    },
    isReady: () => state === 'ready' && client.isReady,
    async run<T>(operation: string, command: (c: RedisClient) => Promise<T>): Promise<T> {
      if (state !== 'ready' || !client.isReady) {
        metrics.redisCommandFailures.inc({ operation });
        throw new RedisUnavailableError(operation);
      }
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new RedisTimeoutError(operation, commandTimeoutMs)), commandTimeoutMs);
      });
      const pending = command(client);
      try {
        return await Promise.race([pending, deadline]);
      } catch (error) {
        metrics.redisCommandFailures.inc({ operation });
        // The command may still settle after the deadline; nobody awaits it then.
        pending.catch(() => undefined);
        throw error;
      } finally {
        clearTimeout(timer);
      }
    },
    onReady(listener) {
      events.on('ready', listener);
      return () => events.off('ready', listener);
    },
    duplicate: (name, options = { subscriber: false }) => open(name, options.subscriber),
    close() {
      closing ??= (async () => {
        state = 'closed';
        metrics.redisUp.set(0);
        events.removeAllListeners();
        await Promise.all(
          clients.map(async (c) => {
            try {
              if (c.isReady) await c.quit();
              else if (c.isOpen) await c.disconnect();
            } catch {
              // Already gone; closing must not fail.
            }
          }),
        );
      })();
      return closing;
    },
  };
}
