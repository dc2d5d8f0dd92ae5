import { createAdapter, createShardedAdapter } from '@socket.io/redis-adapter';
import type { Namespace } from 'socket.io';
import type { Adapter } from 'socket.io-adapter';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { RedisConnection, StandaloneClient } from '../redis/connection.js';
import { PubSub, type Listener } from '../redis/pubsub.js';

export type AdapterFactory = (nsp: Namespace) => Adapter;

/**
 * Exactly the client surface `@socket.io/redis-adapter` 8.3 calls (it types its clients
 * as `any`), as a view over our pub/sub rather than a patched client.
 */
interface AdapterClient {
  publish(channel: string, message: string | Buffer): Promise<number>;
  sPublish(channel: string, message: string | Buffer): Promise<number>;
  sendCommand(args: string[]): Promise<unknown>;
  subscribe(channels: string | string[], listener: Listener, bufferMode: boolean): Promise<void>;
  pSubscribe(patterns: string | string[], listener: Listener, bufferMode: boolean): Promise<void>;
  sSubscribe(channels: string | string[], listener: Listener, bufferMode: boolean): Promise<void>;
  unsubscribe(channels?: string | string[], listener?: Listener, bufferMode?: boolean): Promise<void>;
  pUnsubscribe(patterns?: string | string[], listener?: Listener, bufferMode?: boolean): Promise<void>;
  sUnsubscribe(channels: string | string[], listener?: Listener, bufferMode?: boolean): Promise<void>;
  on(event: string, listener: (error: Error) => void): void;
  off(event: string, listener: (error: Error) => void): void;
  /** Present on a Cluster: the adapter counts subscribers with PUBSUB on every master. */
  readonly masters?: unknown;
}

function adapterClient(pubsub: PubSub, cluster: boolean, onPublishFailure: (error: unknown) => void): AdapterClient {
  const view: AdapterClient = {
    // The classic adapter drops the promise of every PUBLISH (`this.pubClient.publish(channel, msg)`
    // in RedisAdapter.broadcast, lib/index.ts:636 of 8.3.0; socketio/socket.io-redis-adapter#513),
    // so one made while Redis is down would become an unhandled rejection. The sharded
    // adapter returns its SPUBLISH promise to ClusterAdapter, which catches it.
    publish: (channel, message) =>
      pubsub.publish('channel', channel, message).catch((error: unknown) => {
        onPublishFailure(error);
        return 0;
      }),
    sPublish: (channel, message) => pubsub.publish('shard', channel, message),
    sendCommand: (args) => (pubsub.client as StandaloneClient).sendCommand(args),
    subscribe: (channels, listener, bufferMode) => pubsub.subscribe('channel', channels, listener, bufferMode),
    pSubscribe: (patterns, listener, bufferMode) => pubsub.subscribe('pattern', patterns, listener, bufferMode),
    sSubscribe: (channels, listener, bufferMode) => pubsub.subscribe('shard', channels, listener, bufferMode),
    unsubscribe: (channels, listener, bufferMode) => pubsub.unsubscribe('channel', channels, listener, bufferMode),
    pUnsubscribe: (patterns, listener, bufferMode) => pubsub.unsubscribe('pattern', patterns, listener, bufferMode),
    sUnsubscribe: (channels, listener, bufferMode) => pubsub.unsubscribe('shard', channels, listener, bufferMode),
    // Client errors are logged by the connection; the adapter's "friendly" handler would log them again.
    on: () => undefined,
    off: () => undefined,
  };
  if (cluster) Object.defineProperty(view, 'masters', { get: () => (pubsub.client as { masters: unknown }).masters });
  return view;
}

export interface AdapterOptions {
  redis: RedisConnection;
  kind: 'redis' | 'redis-sharded';
  keyPrefix: string;
  logger: Logger;
  metrics: Metrics;
}

/**
 * The Socket.IO Redis adapter on pub and sub clients of its own (closed with `redis`).
 * Switchboard's room traffic does not travel through it (see realtime/room-channels.ts);
 * it is installed so that Socket.IO tooling that relies on it keeps working across
 * replicas: `@socket.io/redis-emitter`, `fetchSockets()`, `serverSideEmit()`.
 */
export function createRedisAdapter({ redis, kind, keyPrefix, logger, metrics }: AdapterOptions): AdapterFactory {
  let lastWarning = 0;
  const onPublishFailure = (error: unknown): void => {
    metrics.adapterPublishFailures.inc();
    if (Date.now() - lastWarning > 5_000) {
      lastWarning = Date.now();
      logger.warn({ component: 'adapter', err: String(error) }, 'adapter publish failed; delivery stays local');
    }
  };
  const cluster = redis.topology === 'cluster';
  const pub = adapterClient(new PubSub(redis.open('adapter-pub')), cluster, onPublishFailure);
  const sub = adapterClient(new PubSub(redis.open('adapter-sub', { subscriber: true })), cluster, onPublishFailure);
  const channelPrefix = `${keyPrefix}socket.io`;
  return kind === 'redis-sharded'
    ? // Static: rooms do not travel through the adapter, so a channel per room would be waste.
      createShardedAdapter(pub, sub, { channelPrefix, subscriptionMode: 'static' })
    : createAdapter(pub, sub, { key: channelPrefix, requestsTimeout: 2_000 });
}
