import type { WebhookConfig } from '../config/index.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { RedisConnection } from '../redis/connection.js';
import type { RedisKeys } from '../redis/keys.js';
import { createDispatcher, type Dispatcher, type OutboxEntry } from './dispatcher.js';
import { createLifecycle, type Lifecycle } from './lifecycle.js';
import { createRedisOutbox, partitionOf } from './redis-outbox.js';

/** Outbox partitions (Redis Streams); fixed, since a room's partition must not move. */
export const OUTBOX_PARTITIONS = 8;
/** Most entries one outbox stream keeps (XADD MAXLEN ~): a receiver gone for days cannot fill Redis. */
export const OUTBOX_MAX_LENGTH = 100_000;
/** Most webhooks memory mode holds; past it new ones are given up (counted and logged). */
export const MEMORY_QUEUE_MAX = 10_000;

export interface Webhooks {
  readonly lifecycle: Lifecycle;
  close(): Promise<void>;
}

export interface WebhooksOptions {
  config: WebhookConfig;
  /** Undefined in memory mode: an in-process queue, lost with the process. */
  redis: RedisConnection | undefined;
  keys: RedisKeys;
  replica: string;
  /** The presence TTL: a deliverer silent this long loses its partitions to another replica. */
  leaseMs: number;
  logger: Logger;
  metrics: Metrics;
}

/**
 * Lifecycle webhooks (docs/protocol.md, "Lifecycle webhooks"): the bodies presence writes
 * to the outbox, and the deliverer that sends them, signed, at least once.
 */
export function createWebhooks(options: WebhooksOptions): Webhooks {
  const { config, redis, keys, replica, logger, metrics } = options;
  const log = logger.child({ component: 'webhooks' });
  let done: (entry: OutboxEntry) => Promise<void> = () => Promise.resolve();
  const dispatcher: Dispatcher = createDispatcher({
    urls: config.urls,
    secret: config.secret,
    retryMs: config.retrySeconds * 1000,
    done: (entry) => done(entry),
    metrics,
    logger,
  });

  if (redis) {
    const outbox = createRedisOutbox({
      redis,
      keys,
      partitions: OUTBOX_PARTITIONS,
      replica,
      leaseMs: options.leaseMs,
      dispatcher,
      logger,
      metrics,
    });
    done = (entry) => outbox.done(entry);
    // On a Cluster the outbox is in another slot than the presence hash: the presence
    // scripts keep the bodies in the room's slot, and presence moves them with `write`.
    const sameStep = redis.topology !== 'cluster';
    const lifecycle = createLifecycle({
      replica,
      events: config.events,
      maxLength: OUTBOX_MAX_LENGTH,
      outboxKey: (room) => (sameStep ? keys.webhookOutbox(partitionOf(room, OUTBOX_PARTITIONS)) : undefined),
      enqueue(room, bodies) {
        outbox.enqueue(room, bodies, OUTBOX_MAX_LENGTH).catch((error: unknown) => {
          metrics.webhooksGivenUp.inc({ reason: 'unwritten' }, bodies.length);
          log.error(
            { room, lost: bodies.length, err: error instanceof Error ? error.message : String(error) },
            'webhooks could not be written to the outbox',
          );
        });
      },
      write: (room, bodies) => outbox.enqueue(room, bodies, OUTBOX_MAX_LENGTH),
    });
    return { lifecycle, close: () => outbox.close() };
  }

  // Memory mode: one replica, one process; the queue is this dispatcher's own.
  let sequence = 0;
  const lifecycle = createLifecycle({
    replica,
    events: config.events,
    maxLength: MEMORY_QUEUE_MAX,
    outboxKey: () => undefined,
    enqueue(room, bodies) {
      const overflow = dispatcher.held() + bodies.length - MEMORY_QUEUE_MAX;
      if (overflow > 0) {
        metrics.webhooksGivenUp.inc({ reason: 'overflow' }, overflow);
        log.error({ room, lost: overflow }, 'webhook queue full (memory mode): newest webhooks dropped');
      }
      const kept = overflow > 0 ? bodies.slice(0, Math.max(0, bodies.length - overflow)) : bodies;
      dispatcher.add(
        kept.map((body) => ({
          id: String(++sequence),
          partition: 'memory',
          room,
          body,
          ts: (JSON.parse(body) as { ts: number }).ts,
        })),
      );
    },
  });
  const timer = setInterval(() => {
    dispatcher.pump();
    const oldest = dispatcher.oldest();
    metrics.webhookOutboxOldestSeconds.set(oldest === undefined ? 0 : Math.max(0, Date.now() - oldest) / 1000);
    metrics.webhookOutboxLength.set(dispatcher.held());
  }, 250);
  timer.unref();
  return {
    lifecycle,
    async close() {
      clearInterval(timer);
      await dispatcher.close();
    },
  };
}
