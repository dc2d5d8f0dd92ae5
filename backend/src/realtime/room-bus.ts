import type { RoomEvent, SignalMessage } from '@switchboard/contract';
import type { HistorySink } from '../history/types.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { PresenceMessage } from '../presence/types.js';
import type { RedisConnection } from '../redis/connection.js';
import { redisKeys } from '../redis/keys.js';
import { PubSub } from '../redis/pubsub.js';

/** A signal as it crosses replicas: the channel it travels on names its room. */
export type RelayedSignal = Omit<SignalMessage, 'room'>;

/** What replicas send each other on a room's channel, besides events (which the history's APPEND script publishes). */
export type BusMessage =
  | { kind: 'signal'; to: string; signal: RelayedSignal }
  | { kind: 'presence'; message: PresenceMessage }
  | { kind: 'kick'; userId: string };

export interface BusHandlers {
  /** A numbered event of a followed room, in the order the history published it. */
  event(room: string, epoch: string, event: RoomEvent): void;
  /** A signal for a peer this replica holds (`holds`). */
  signal(room: string, to: string, signal: RelayedSignal): void;
  presence(message: PresenceMessage): void;
  /** The app removed `userId` from `room`. */
  kick(room: string, userId: string): void;
  /** The subscriber reconnected: messages sent meanwhile were lost. */
  resubscribed(): void;
  /** Whether a peer is on this replica: signals for others are dropped unparsed. */
  holds(peerId: string): boolean;
}

/**
 * The rooms' wire between replicas, and the one place that dispatches what arrives on it
 * to typed handlers. In Redis mode one channel per room (`room:{<room>}`), subscribed
 * while this replica has members there; in memory mode there are no other replicas, and
 * the memory history hands its events to `sink`.
 */
export interface RoomBus {
  /** Subscribes to the room's channel; resolves once Redis confirmed (or the client will on reconnect). */
  follow(room: string): Promise<void>;
  unfollow(room: string): void;
  /** Sends to the other replicas that follow the room (nothing in memory mode). */
  send(room: string, message: BusMessage): void;
  /** Where the memory history delivers what it numbers. */
  readonly sink: HistorySink;
  /** Sets the handler of each kind (one each: the composition root wires them once). */
  handle(handlers: Partial<BusHandlers>): void;
  onEvent(handler: BusHandlers['event']): () => void;
  onResubscribed(handler: () => void): () => void;
  close(): void;
}

export interface RoomBusOptions {
  /** Undefined in memory mode. */
  redis: RedisConnection | undefined;
  keyPrefix: string;
  /** SSUBSCRIBE/SPUBLISH (Redis 7 sharded pub/sub) instead of SUBSCRIBE/PUBLISH. */
  sharded: boolean;
  /** This replica's id: its own presence messages are not handed back to it. */
  replica: string;
  logger: Logger;
  metrics: Metrics;
}

/** `<len>:<id>`: an id of any characters, readable without parsing what follows it. */
const tagged = (id: string) => `${id.length}:${id}`;

function readTag(raw: string, from: number): { id: string; end: number } | undefined {
  const colon = raw.indexOf(':', from);
  const length = Number(raw.slice(from, colon));
  if (colon < 0 || !Number.isInteger(length)) return undefined;
  return { id: raw.slice(colon + 1, colon + 1 + length), end: colon + 1 + length };
}

/**
 * Messages are framed by their first character: `e<epoch> <event JSON>` (written by the
 * history's append script), `s<len>:<to><signal JSON>`, `p<len>:<replica><presence JSON>` and
 * `k<len>:<userId>` (the app removed that user from the room). The tags let a replica drop,
 * unparsed, a signal for a peer it does not hold and its own presence messages coming back.
 */
function frame(message: BusMessage, self: string): string {
  switch (message.kind) {
    case 'signal':
      return `s${tagged(message.to)}${JSON.stringify(message.signal)}`;
    case 'presence':
      return `p${tagged(self)}${JSON.stringify(message.message)}`;
    case 'kick':
      return `k${tagged(message.userId)}`;
  }
}

const IGNORE: BusHandlers = {
  event: () => undefined,
  signal: () => undefined,
  presence: () => undefined,
  kick: () => undefined,
  resubscribed: () => undefined,
  holds: () => false,
};

export function createRoomBus(options: RoomBusOptions): RoomBus {
  const { redis, sharded, metrics } = options;
  const keys = redisKeys(options.keyPrefix);
  const log = options.logger.child({ component: 'room-bus' });
  const handlers: BusHandlers = { ...IGNORE };
  const eventHandlers = new Set<BusHandlers['event']>();
  const resubscribedHandlers = new Set<() => void>();
  handlers.event = (room, epoch, event) => {
    for (const handler of eventHandlers) handler(room, epoch, event);
  };
  handlers.resubscribed = () => {
    for (const handler of resubscribedHandlers) handler();
  };

  const dispatch = (raw: string, room: string): void => {
    try {
      switch (raw[0]) {
        case 'e': {
          const space = raw.indexOf(' ');
          handlers.event(room, raw.slice(1, space), JSON.parse(raw.slice(space + 1)) as RoomEvent);
          return;
        }
        case 's': {
          const to = readTag(raw, 1);
          if (!to || !handlers.holds(to.id)) return;
          handlers.signal(room, to.id, JSON.parse(raw.slice(to.end)) as RelayedSignal);
          return;
        }
        case 'p': {
          const origin = readTag(raw, 1);
          if (!origin || origin.id === options.replica) return;
          handlers.presence(JSON.parse(raw.slice(origin.end)) as PresenceMessage);
          return;
        }
        case 'k': {
          const user = readTag(raw, 1);
          if (user) handlers.kick(room, user.id);
          return;
        }
      }
    } catch {
      // Not JSON: nothing this gateway sent; dropped.
    }
  };

  const common = {
    sink: (room: string, epoch: string, event: RoomEvent) => handlers.event(room, epoch, event),
    handle(partial: Partial<BusHandlers>) {
      const { event, resubscribed, ...rest } = partial;
      Object.assign(handlers, rest);
      if (event) eventHandlers.add(event);
      if (resubscribed) resubscribedHandlers.add(resubscribed);
    },
    onEvent(handler: BusHandlers['event']) {
      eventHandlers.add(handler);
      return () => void eventHandlers.delete(handler);
    },
    onResubscribed(handler: () => void) {
      resubscribedHandlers.add(handler);
      return () => void resubscribedHandlers.delete(handler);
    },
  };

  if (!redis) {
    return {
      ...common,
      follow: () => Promise.resolve(),
      unfollow: () => undefined,
      send: () => undefined,
      close: () => {
        eventHandlers.clear();
        resubscribedHandlers.clear();
      },
    };
  }

  // Every topology has the same pub/sub methods, but the union's generic overloads do not unify.
  const sub = new PubSub(redis.open('rooms-sub', { subscriber: true }));
  const kind = sharded ? 'shard' : 'channel';
  const followed = new Set<string>();
  // One listener for every room (not a closure per room): the channel names the room.
  const channelPrefix = keys.roomChannel('').slice(0, -1);
  const listener = (raw: string, channel: string): void => {
    metrics.roomChannelBytes.inc(raw.length);
    dispatch(raw, channel.slice(channelPrefix.length, -1));
  };
  let lastWarning = 0;
  const warn = (what: string, error: unknown): void => {
    if (Date.now() - lastWarning < 5_000) return;
    lastWarning = Date.now();
    log.warn({ err: error instanceof Error ? error.message : String(error) }, `room channel ${what} failed`);
  };

  let pending: NodeJS.Timeout | undefined;
  const offResubscribed = sub.onResubscribed(() => {
    // Coalesces a burst of node events into one catch-up, once resubscriptions are through.
    if (pending) return;
    pending = setTimeout(() => {
      pending = undefined;
      handlers.resubscribed();
    }, 250);
    pending.unref();
  });

  return {
    ...common,
    async follow(room) {
      if (followed.has(room)) return;
      followed.add(room);
      try {
        await sub.subscribe(kind, keys.roomChannel(room), listener);
      } catch (error) {
        // node-redis keeps the listener and subscribes again when it reconnects.
        warn('subscribe', error);
      }
    },
    unfollow(room) {
      if (!followed.delete(room)) return;
      sub.unsubscribe(kind, keys.roomChannel(room), listener).catch((error: unknown) => {
        warn('unsubscribe', error);
      });
    },
    send(room, message) {
      const channel = keys.roomChannel(room);
      const payload = frame(message, options.replica);
      redis
        .run('room-publish', (c) => (sharded ? c.sPublish(channel, payload) : c.publish(channel, payload)))
        .catch((error: unknown) => {
          warn('publish', error);
        });
    },
    close() {
      clearTimeout(pending);
      offResubscribed();
      followed.clear();
      eventHandlers.clear();
      resubscribedHandlers.clear();
      // The client itself is closed with the connection.
    },
  };
}
