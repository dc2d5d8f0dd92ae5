import { createAdapter, createShardedAdapter } from '@socket.io/redis-adapter';
import type { Namespace } from 'socket.io';
import type { Adapter } from 'socket.io-adapter';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { RedisClient, RedisConnection } from '../redis/connection.js';

export type AdapterFactory = (nsp: Namespace) => Adapter;

const PUBLISH_METHODS = ['publish', 'sPublish'] as const;
const SUBSCRIBE_METHODS = [
  'subscribe',
  'pSubscribe',
  'sSubscribe',
  'unsubscribe',
  'pUnsubscribe',
  'sUnsubscribe',
] as const;

/**
 * The adapter discards the promises of its Redis calls, so a publish made while
 * Redis is down becomes an unhandled rejection that kills the process
 * (socketio/socket.io-redis-adapter#513, socketio/socket.io-redis-emitter#139).
 * Catching them on the dedicated clients keeps delivery local during an outage.
 */
function guard(client: RedisClient, methods: readonly string[], onFailure: (method: string, error: unknown) => void) {
  const target = client as unknown as Record<string, unknown>;
  for (const method of methods) {
    const original = target[method];
    if (typeof original !== 'function') continue;
    target[method] = (...args: unknown[]): Promise<unknown> =>
      (Reflect.apply(original, client, args) as Promise<unknown>).catch((error: unknown) => {
        onFailure(method, error);
        return undefined;
      });
  }
}

/**
 * node-redis 4 sends a (P|S)SUBSCRIBE issued before the first connect twice (queued,
 * then again by its resubscribe on connect) and the extra reply crashes the process
 * (redis/node-redis#2626, #2597). The adapter subscribes in its constructor, so hold
 * subscription changes until the client is ready; node-redis itself resubscribes
 * existing listeners after later reconnects.
 */
function deferUntilReady(client: RedisClient, methods: readonly string[]) {
  const target = client as unknown as Record<string, unknown>;
  const pending: Array<() => void> = [];
  client.on('ready', () => {
    for (const call of pending.splice(0)) call();
  });
  for (const method of methods) {
    const original = target[method];
    if (typeof original !== 'function') continue;
    target[method] = (...args: unknown[]): Promise<unknown> => {
      if (client.isReady) return Reflect.apply(original, client, args) as Promise<unknown>;
      return new Promise((resolve, reject) => {
        pending.push(() => {
          (Reflect.apply(original, client, args) as Promise<unknown>).then(resolve, reject);
        });
      });
    };
  }
}

export interface AdapterOptions {
  redis: RedisConnection;
  kind: 'redis' | 'redis-sharded';
  keyPrefix: string;
  logger: Logger;
  metrics: Metrics;
}

/** The Socket.IO Redis adapter on its own pub and sub clients (closed with `redis`). */
export function createRedisAdapter({ redis, kind, keyPrefix, logger, metrics }: AdapterOptions): AdapterFactory {
  const log = logger.child({ component: 'adapter' });
  const pub = redis.duplicate('adapter-pub');
  const sub = redis.duplicate('adapter-sub', { subscriber: true });
  let lastWarning = 0;
  guard(pub, PUBLISH_METHODS, (method, error) => {
    metrics.adapterPublishFailures.inc();
    if (Date.now() - lastWarning > 5_000) {
      lastWarning = Date.now();
      log.warn({ method, err: String(error) }, 'adapter publish failed; delivery stays local');
    }
  });
  deferUntilReady(sub, SUBSCRIBE_METHODS);
  guard(sub, SUBSCRIBE_METHODS, (method, error) => {
    log.warn({ method, err: String(error) }, 'adapter subscription change failed');
  });
  const channelPrefix = `${keyPrefix}socket.io`;
  return kind === 'redis-sharded'
    ? createShardedAdapter(pub, sub, { channelPrefix })
    : createAdapter(pub, sub, { key: channelPrefix, requestsTimeout: 2_000 });
}
