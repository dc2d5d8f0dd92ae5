import type { Logger } from '../observability/logger.js';
import type { RedisConnection } from './connection.js';

/** A memory driver that can hand over what it took while Redis was away. */
export interface DrainableStore<Entry> {
  readonly size: number;
  drain(): Entry[];
  restore(entries: Entry[]): void;
}

export interface RedisFallbackOptions<Primary, Memory> {
  redis: RedisConnection | undefined;
  /** The Redis driver; undefined in memory mode. */
  primary: Primary | undefined;
  memory: Memory;
  /** Names the store in log lines, e.g. `tokens`. */
  name: string;
  logger: Logger;
  /** After each replay attempt, with how many entries were written (0 when it failed). */
  onReplayed?: (written: number) => void;
}

/** Redis is up, yet the operation failed (a timeout, say): memory cannot stand in for it. */
export class StoreUnavailableError extends Error {
  constructor(name: string, cause: unknown) {
    super(`${name}: redis is up but did not complete the operation`, { cause });
    this.name = 'StoreUnavailableError';
  }
}

export interface RedisFallback<Store> {
  /**
   * Runs `op` on Redis while it is up, else on this replica's memory. When Redis is up but
   * the op fails, it runs on memory too, unless `strict`: then it rejects with
   * StoreUnavailableError, for operations whose guarantee memory cannot keep while other
   * replicas still use Redis (single use, revocation).
   */
  attempt: <T>(op: (store: Store) => Promise<T>, mode?: { strict: boolean }) => Promise<{ value: T; store: Store }>;
  /** Stops replaying on reconnects; idempotent. */
  close: () => void;
}

/**
 * The degraded-mode rule every Redis-backed store follows: serve from memory
 * while Redis is down, and when it returns, write what memory took meanwhile into Redis,
 * putting it back if that fails so the next reconnect tries again.
 */
export function createRedisFallback<
  Memory extends DrainableStore<unknown>,
  Primary extends { replay(entries: ReturnType<Memory['drain']>): Promise<number> },
>({
  redis,
  primary,
  memory,
  name,
  logger,
  onReplayed,
}: RedisFallbackOptions<Primary, Memory>): RedisFallback<Primary | Memory> {
  let syncing = false;
  let failures = 0;
  let retry: NodeJS.Timeout | undefined;
  async function replay(): Promise<void> {
    clearTimeout(retry);
    retry = undefined;
    if (!primary || syncing || memory.size === 0) return;
    syncing = true;
    const entries = memory.drain() as ReturnType<Memory['drain']>;
    let written = 0;
    try {
      written = await primary.replay(entries);
      failures = 0;
      logger.info({ written, total: entries.length }, `fallback ${name} replayed into redis`);
    } catch (error) {
      memory.restore(entries);
      // A Redis that just came back may still refuse writes for a moment (a Cluster
      // taking a node back answers CLUSTERDOWN): try again soon, not only on the next reconnect.
      const delay = Math.min(2_000, 250 * 2 ** failures++);
      logger.warn({ err: (error as Error).message, retryInMs: delay }, `fallback ${name} replay failed; will retry`);
      if (!closed) {
        retry = setTimeout(() => void replay(), delay);
        retry.unref();
      }
    } finally {
      syncing = false;
      onReplayed?.(written);
    }
  }
  let closed = false;
  const unsubscribe = redis?.onReady(() => void replay());

  return {
    attempt: async (op, mode) => {
      if (primary && redis?.isReady()) {
        try {
          return { value: await op(primary), store: primary };
        } catch (error) {
          // Judged down since the op started (an outage, not a slow command): memory may serve.
          if (mode?.strict && redis.isReady()) throw new StoreUnavailableError(name, error);
          logger.warn({ err: (error as Error).message }, `${name} store falling back to memory`);
        }
      }
      return { value: await op(memory), store: memory };
    },
    close: () => {
      closed = true;
      clearTimeout(retry);
      unsubscribe?.();
    },
  };
}
