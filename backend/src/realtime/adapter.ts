import { createAdapter, createShardedAdapter } from '@socket.io/redis-adapter';
import type { Namespace } from 'socket.io';
import type { Adapter } from 'socket.io-adapter';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { RedisClient, RedisConnection, StandaloneClient } from '../redis/connection.js';

export type AdapterFactory = (nsp: Namespace) => Adapter;

type Listener = (message: Buffer, channel: Buffer) => void;

/**
 * Exactly the client surface `@socket.io/redis-adapter` 8.3 calls (it types its clients
 * as `any`), as a view over one of our clients rather than a patched client.
 */
interface AdapterClient {
  publish(channel: string, message: string | Buffer): Promise<number>;
  sPublish(channel: string, message: string | Buffer): Promise<number>;
  sendCommand(args: string[]): Promise<unknown>;
  subscribe(channels: string | string[], listener: Listener, bufferMode: true): Promise<void>;
  pSubscribe(patterns: string | string[], listener: Listener, bufferMode: true): Promise<void>;
  sSubscribe(channels: string | string[], listener: Listener, bufferMode: true): Promise<void>;
  unsubscribe(channels?: string | string[], listener?: Listener, bufferMode?: true): Promise<void>;
  pUnsubscribe(patterns?: string | string[], listener?: Listener, bufferMode?: true): Promise<void>;
  sUnsubscribe(channels: string | string[], listener?: Listener, bufferMode?: true): Promise<void>;
  on(event: string, listener: (error: Error) => void): unknown;
  off(event: string, listener: (error: Error) => void): unknown;
  /** Present on a Cluster: the adapter counts subscribers with PUBSUB on every master. */
  readonly masters?: unknown;
}

function adapterClient(
  { client, connected }: { client: RedisClient; connected: Promise<void> },
  topology: RedisConnection['topology'],
  onPublishFailure: (error: unknown) => void,
): AdapterClient {
  // Every topology has the same pub/sub methods, but the union's generic overloads do not unify.
  const pubsub = client as StandaloneClient;
  // The adapter subscribes in its constructor, and on a Cluster or Sentinel node-redis 5
  // throws when that comes before the first connect: the Cluster client knows no slots yet
  // (redis/node-redis#2904), the Sentinel client no master for its pub/sub proxy. So the
  // first subscriptions wait for it; later reconnects resubscribe inside node-redis.
  const once = <T>(call: () => Promise<T>): Promise<T> => connected.then(call);
  const view: AdapterClient = {
    // The classic adapter drops the promise of every PUBLISH (`this.pubClient.publish(channel, msg)`
    // in RedisAdapter.broadcast, lib/index.ts:636 of 8.3.0; socketio/socket.io-redis-adapter#513),
    // so one made while Redis is down would become an unhandled rejection. The sharded
    // adapter returns its SPUBLISH promise to ClusterAdapter, which catches it.
    publish: (channel, message) =>
      client.publish(channel, message).catch((error: unknown) => {
        onPublishFailure(error);
        return 0;
      }),
    sPublish: (channel, message) => client.sPublish(channel, message),
    // node-redis's Sentinel client takes `sendCommand(isReadonly, args)`; the adapter calls
    // `sendCommand(args)` for PUBSUB NUMSUB, which would crash the process there.
    sendCommand: (args) =>
      topology === 'sentinel'
        ? (client as Extract<RedisClient, { getMasterNode: unknown }>).sendCommand(undefined, args)
        : (client as Exclude<RedisClient, { getMasterNode: unknown } | { masters: unknown }>).sendCommand(args),
    subscribe: (channels, listener, bufferMode) => once(() => pubsub.subscribe(channels, listener, bufferMode)),
    pSubscribe: (patterns, listener, bufferMode) => once(() => pubsub.pSubscribe(patterns, listener, bufferMode)),
    sSubscribe: (channels, listener, bufferMode) => once(() => pubsub.sSubscribe(channels, listener, bufferMode)),
    unsubscribe: (channels, listener, bufferMode) => once(() => pubsub.unsubscribe(channels, listener, bufferMode)),
    pUnsubscribe: (patterns, listener, bufferMode) => once(() => pubsub.pUnsubscribe(patterns, listener, bufferMode)),
    sUnsubscribe: (channels, listener, bufferMode) => once(() => pubsub.sUnsubscribe(channels, listener, bufferMode)),
    on: (event, listener) => client.on(event, listener),
    off: (event, listener) => client.off(event, listener),
  };
  if (topology === 'cluster') {
    Object.defineProperty(view, 'masters', { get: () => (client as { masters: unknown }).masters });
  }
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
  const pub = adapterClient(redis.open('adapter-pub'), redis.topology, onPublishFailure);
  const sub = adapterClient(redis.open('adapter-sub', { subscriber: true }), redis.topology, onPublishFailure);
  const channelPrefix = `${keyPrefix}socket.io`;
  return kind === 'redis-sharded'
    ? // Static: rooms do not travel through the adapter, so a channel per room would be waste.
      createShardedAdapter(pub, sub, { channelPrefix, subscriptionMode: 'static' })
    : createAdapter(pub, sub, { key: channelPrefix, requestsTimeout: 2_000 });
}
