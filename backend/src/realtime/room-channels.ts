import type { RoomEvent, SignalMessage } from '@switchboard/contract';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { PresenceMessage } from '../presence/types.js';
import type { RedisConnection } from '../redis/connection.js';
import { redisKeys } from '../redis/keys.js';
import { PubSub } from '../redis/pubsub.js';

/** What travels on a room's channel between replicas. */
export type ChannelMessage =
  | { kind: 'event'; epoch: string; event: RoomEvent }
  | { kind: 'signal'; to: string; signal: SignalMessage }
  | { kind: 'presence'; message: PresenceMessage }
  | { kind: 'kick'; userId: string };

export interface RoomChannels {
  /** Subscribes to the room's channel; resolves once Redis confirmed (or the client will on reconnect). */
  follow(room: string): Promise<void>;
  unfollow(room: string): void;
  /** Publishes a signal, presence change or kick to the replicas that follow the room. */
  send(room: string, message: Exclude<ChannelMessage, { kind: 'event' }>): void;
  close(): void;
}

export interface RoomChannelsOptions {
  redis: RedisConnection;
  keyPrefix: string;
  /** SSUBSCRIBE/SPUBLISH (Redis 7 sharded pub/sub) instead of SUBSCRIBE/PUBLISH. */
  sharded: boolean;
  onMessage: (room: string, message: ChannelMessage) => void;
  /** This replica's id: its own presence messages are not handed back to it. */
  replica: string;
  /** Whether a peer is on this replica: signals for others are dropped unread. */
  holds: (peerId: string) => boolean;
  /** The subscriber reconnected: messages sent meanwhile were lost. */
  onResubscribed: () => void;
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
 * `k<len>:<userId>` (the app removed that user from the room).
 * The tags let a replica drop, unparsed, a signal for a peer it does not hold and its own
 * presence messages coming back.
 */
function parse(raw: string, self: string, holds: (peerId: string) => boolean): ChannelMessage | undefined {
  try {
    switch (raw[0]) {
      case 'e': {
        const space = raw.indexOf(' ');
        return { kind: 'event', epoch: raw.slice(1, space), event: JSON.parse(raw.slice(space + 1)) as RoomEvent };
      }
      case 's': {
        const to = readTag(raw, 1);
        if (!to || !holds(to.id)) return undefined;
        return { kind: 'signal', to: to.id, signal: JSON.parse(raw.slice(to.end)) as SignalMessage };
      }
      case 'p': {
        const origin = readTag(raw, 1);
        if (!origin || origin.id === self) return undefined;
        return { kind: 'presence', message: JSON.parse(raw.slice(origin.end)) as PresenceMessage };
      }
      case 'k': {
        const user = readTag(raw, 1);
        return user ? { kind: 'kick', userId: user.id } : undefined;
      }
      default:
        return undefined;
    }
  } catch {
    return undefined;
  }
}

function frame(message: Exclude<ChannelMessage, { kind: 'event' }>, self: string): string {
  switch (message.kind) {
    case 'signal':
      return `s${tagged(message.to)}${JSON.stringify(message.signal)}`;
    case 'presence':
      return `p${tagged(self)}${JSON.stringify(message.message)}`;
    case 'kick':
      return `k${tagged(message.userId)}`;
  }
}

/**
 * One channel per room (`room:{<room>}`), subscribed by a replica only while it has
 * members there: a replica reads nothing of the rooms it does not serve, so adding
 * replicas or rooms does not multiply what each one reads. On one dedicated client.
 */
export function createRoomChannels(options: RoomChannelsOptions): RoomChannels {
  const { redis, sharded, metrics } = options;
  const keys = redisKeys(options.keyPrefix);
  const log = options.logger.child({ component: 'room-channels' });
  // Every topology has the same pub/sub methods, but the union's generic overloads do not unify.
  const sub = new PubSub(redis.open('rooms-sub', { subscriber: true }));
  const kind = sharded ? 'shard' : 'channel';
  const followed = new Set<string>();
  // One listener for every room (not a closure per room): the channel names the room.
  const channelPrefix = keys.roomChannel('').slice(0, -1);
  const listener = (raw: string, channel: string): void => {
    metrics.roomChannelBytes.inc(raw.length);
    const room = channel.slice(channelPrefix.length, -1);
    const message = parse(raw, options.replica, options.holds);
    if (message) options.onMessage(room, message);
  };
  let lastWarning = 0;
  const warn = (what: string, error: unknown): void => {
    if (Date.now() - lastWarning < 5_000) return;
    lastWarning = Date.now();
    log.warn({ err: error instanceof Error ? error.message : String(error) }, `room channel ${what} failed`);
  };

  let pending: NodeJS.Timeout | undefined;
  const resubscribed = (): void => {
    // Coalesces a burst of node events into one catch-up, once resubscriptions are through.
    if (pending) return;
    pending = setTimeout(() => {
      pending = undefined;
      options.onResubscribed();
    }, 250);
    pending.unref();
  };
  const offResubscribed = sub.onResubscribed(resubscribed);

  return {
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
      // The client itself is closed with the connection.
    },
  };
}
