import type { RedisHandle, StandaloneClient } from './connection.js';

export type SubscriptionKind = 'channel' | 'pattern' | 'shard';
/** A message listener: strings, or Buffers in buffer mode. */
export type Listener = (message: never, channel: never) => unknown;
type NodeRedisListener = Parameters<StandaloneClient['subscribe']>[1];

interface Subscription {
  kind: SubscriptionKind;
  channels: string[];
  listener: Listener;
  bufferMode: boolean;
}

/**
 * Pub/sub on a handle of its own, for any topology. Subscriptions wait for the first
 * connect: on a Cluster or Sentinel node-redis 5 throws when they come before it (the
 * Cluster client knows no slots yet, redis/node-redis#2904). node-redis subscribes again
 * by itself after a reconnect; after a Sentinel failover the client is a new one, so
 * what is subscribed is kept here and subscribed again on it.
 */
const noop: Listener = () => undefined;

export class PubSub {
  readonly #handle: RedisHandle;
  readonly #subscriptions = new Set<Subscription>();
  readonly #resubscribed = new Set<() => void>();

  constructor(handle: RedisHandle) {
    this.#handle = handle;
    handle.on('replaced', () => {
      const client = this.#client;
      Promise.all([...this.#subscriptions].map((s) => this.#call(client, 'subscribe', s))).then(
        () => this.#notify(),
        () => this.#notify(),
      );
    });
    handle.on('reconnected', () => this.#notify());
  }

  get connected(): Promise<void> {
    return this.#handle.connected;
  }

  /** The client now; a Cluster's exposes `masters`, which the Socket.IO adapter counts subscribers on. */
  get client(): RedisHandle['client'] {
    return this.#handle.client;
  }

  /** After a reconnect or failover: messages sent meanwhile were lost. */
  onResubscribed(listener: () => void): () => void {
    this.#resubscribed.add(listener);
    return () => this.#resubscribed.delete(listener);
  }

  async subscribe(kind: SubscriptionKind, channels: string | string[], listener: Listener, bufferMode = false) {
    const subscription: Subscription = { kind, channels: [channels].flat(), listener, bufferMode };
    this.#subscriptions.add(subscription);
    await this.#handle.connected;
    if (this.#subscriptions.has(subscription)) await this.#call(this.#client, 'subscribe', subscription);
  }

  async unsubscribe(kind: SubscriptionKind, channels: string | string[] = [], listener?: Listener, bufferMode = false) {
    const names = [channels].flat();
    for (const s of this.#subscriptions) {
      if (s.kind === kind && (!listener || s.listener === listener) && s.channels.some((c) => names.includes(c))) {
        this.#subscriptions.delete(s);
      }
    }
    await this.#handle.connected;
    await this.#call(this.#client, 'unsubscribe', { kind, channels: names, listener: listener ?? noop, bufferMode });
  }

  publish(kind: 'channel' | 'shard', channel: string, message: string | Buffer): Promise<number> {
    return kind === 'shard' ? this.#client.sPublish(channel, message) : this.#client.publish(channel, message);
  }

  // Every topology has the same pub/sub methods, but the union's generic overloads do not unify.
  get #client(): StandaloneClient {
    return this.#handle.client as StandaloneClient;
  }

  #call(client: StandaloneClient, action: 'subscribe' | 'unsubscribe', s: Subscription): Promise<void> {
    const { channels, bufferMode } = s;
    const listener = s.listener as NodeRedisListener;
    if (action === 'subscribe') {
      if (s.kind === 'pattern') return client.pSubscribe(channels, listener, bufferMode);
      return s.kind === 'shard'
        ? client.sSubscribe(channels, listener, bufferMode)
        : client.subscribe(channels, listener, bufferMode);
    }
    if (s.kind === 'pattern') return client.pUnsubscribe(channels, listener, bufferMode);
    return s.kind === 'shard'
      ? client.sUnsubscribe(channels, listener, bufferMode)
      : client.unsubscribe(channels, listener, bufferMode);
  }

  #notify(): void {
    for (const listener of this.#resubscribed) listener();
  }
}
