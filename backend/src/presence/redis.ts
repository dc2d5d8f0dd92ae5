import type { PeerInfo } from '@switchboard/contract';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { RedisConnection } from '../redis/connection.js';
import { redisKeys } from '../redis/keys.js';
import { lua, runScript } from '../redis/lua.js';
import { RoomView } from './room-view.js';
import type { Presence, PresenceListener, PresenceMessage } from './types.js';

export interface RedisPresenceOptions {
  redis: RedisConnection;
  /** Publishes on the room's channel, which only replicas with members there receive. */
  publish: (room: string, message: PresenceMessage) => void;
  listener: PresenceListener;
  replica: string;
  keyPrefix: string;
  /** A replica silent for this long is presumed dead and its peers announced as left. */
  ttlSeconds: number;
  /** A replica is gone (dead, or this one's previous life): forget what its users held. */
  onReplicaGone: (replica: string, userIds: string[]) => Promise<void>;
  logger: Logger;
  metrics: Metrics;
}

/** Adds the peer; returns the room's peers when ARGV[3] is 1 (the room is new here). */
const JOIN = lua(`
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if ARGV[3] == '1' then return redis.call('HGETALL', KEYS[1]) end
return false`);

function parsePeer(json: string): PeerInfo | undefined {
  try {
    const peer = JSON.parse(json) as PeerInfo;
    return typeof peer.peerId === 'string' && typeof peer.replica === 'string' ? peer : undefined;
  } catch {
    return undefined;
  }
}

/** Peers of an HGETALL reply: an object, or flat `[field, value, …]` pairs from a script. */
function peersOf(reply: unknown): PeerInfo[] {
  if (typeof reply !== 'object' || reply === null) return [];
  const values = Array.isArray(reply) ? reply.filter((_, i) => i % 2 === 1) : Object.values(reply);
  return values.flatMap((json) => (typeof json === 'string' ? (parsePeer(json) ?? []) : []));
}

/** `<room> <peerId> <userId>`: what a replica holds, so whoever outlives it can clean up. */
function parseMember(entry: string): { room: string; peerId: string; userId: string } | undefined {
  const [room, peerId, userId] = entry.split(' ');
  return room && peerId && userId ? { room, peerId, userId } : undefined;
}

/**
 * Presence shared through Redis (`presence:{room}`, `presence:#replicas`,
 * `presence:#replica:<id>`; see redis/keys.ts). Lookups come from an in-process view of
 * the rooms this replica has members in, kept current by messages on those rooms'
 * channels, so signaling never waits on Redis; Redis is read when a room is first
 * joined here, and again after the channel may have lost messages.
 */
export function createRedisPresence(options: RedisPresenceOptions): Presence & { view: RoomView } {
  const { redis, publish, replica, ttlSeconds, metrics } = options;
  const keys = redisKeys(options.keyPrefix);
  const log = options.logger.child({ component: 'presence' });
  const view = new RoomView(options.listener, replica);
  const member = (room: string, peer: { peerId: string; userId: string }) => `${room} ${peer.peerId} ${peer.userId}`;

  // Writes that failed while Redis was away; replayed by the next heartbeat.
  let dirty = false;
  const pendingLeaves = new Map<string, { room: string; peerId: string; userId: string }>();
  let closed: Promise<void> | undefined;
  let lastWarning = 0;
  const warn = (what: string, error: unknown): void => {
    dirty = true;
    if (Date.now() - lastWarning < 5_000) return;
    lastWarning = Date.now();
    log.warn({ err: error instanceof Error ? error.message : String(error) }, `presence ${what} failed; will resync`);
  };

  /**
   * Removes a gone replica's peers from Redis and from every room's view. For this
   * replica's own id (a previous run), peers it holds now are kept.
   */
  async function forget(id: string): Promise<number> {
    const entries = await redis.run('presence-members', (c) => c.sMembers(keys.replica(id)));
    const gone = entries.flatMap((entry) => {
      const parsed = parseMember(entry);
      return parsed && !(id === replica && view.has(parsed.room, parsed.peerId)) ? [{ entry, ...parsed }] : [];
    });
    if (id === replica && gone.length === 0) return 0;
    await redis.run('presence-reap', (c) =>
      Promise.all([
        ...gone.map(({ room, peerId }) => c.hDel(keys.presence(room), peerId)),
        id === replica
          ? c.sRem(
              keys.replica(id),
              gone.map(({ entry }) => entry),
            )
          : c.del(keys.replica(id)),
      ]),
    );
    for (const { room, peerId } of gone) {
      publish(room, { t: 'leave', room, peerId, reason: 'replica_lost' });
      view.remove(room, peerId, 'replica_lost');
    }
    await options.onReplicaGone(id, [...new Set(gone.map((entry) => entry.userId))]);
    return gone.length;
  }

  async function resync(): Promise<void> {
    const locals = view.localPeers();
    const leaves = [...pendingLeaves.values()];
    await redis.run('presence-resync', (c) =>
      Promise.all([
        ...leaves.flatMap((left) => [
          c.hDel(keys.presence(left.room), left.peerId),
          c.sRem(keys.replica(replica), member(left.room, left)),
        ]),
        ...locals.flatMap(({ room, peer }) => [
          c.hSet(keys.presence(room), peer.peerId, JSON.stringify(peer)),
          c.sAdd(keys.replica(replica), member(room, peer)),
        ]),
      ]),
    );
    for (const left of leaves) pendingLeaves.delete(left.peerId);
    dirty = false;
    const byRoom = new Map<string, PeerInfo[]>();
    for (const { room, peer } of locals) byRoom.set(room, [...(byRoom.get(room) ?? []), peer]);
    for (const [room, peers] of byRoom) publish(room, { t: 'sync', room, replica, peers });
  }

  async function reap(): Promise<void> {
    const cutoff = Date.now() - ttlSeconds * 1000;
    const dead = await redis.run('presence-scan', (c) => c.zRangeByScore(keys.replicas, '-inf', cutoff));
    for (const id of dead) {
      if (id === replica) continue;
      // ZREM is the claim: exactly one surviving replica announces each dead one.
      const claimed = await redis.run('presence-claim', (c) => c.zRem(keys.replicas, id));
      if (claimed !== 1) continue;
      const peers = await forget(id);
      metrics.presenceReaped.inc(peers);
      log.warn({ deadReplica: id, peers }, 'replica stopped heartbeating; its peers have left');
    }
  }

  // A replica that restarts under the same id (a StatefulSet pod, a compose service)
  // finds its previous run's peers still listed: they are gone.
  let startedUp = false;
  async function heartbeat(): Promise<void> {
    if (!redis.isReady()) return;
    try {
      if (!startedUp) {
        const peers = await forget(replica);
        if (peers > 0) log.warn({ peers }, 'a previous run of this replica left peers behind; they have left');
        startedUp = true;
      }
      const added = await redis.run('presence-heartbeat', (c) =>
        c.zAdd(keys.replicas, { score: Date.now(), value: replica }),
      );
      // Re-added means another replica reaped us (we were cut off): tell everyone we are back.
      if (dirty || (added === 1 && view.localPeers().length > 0)) await resync();
      await reap();
    } catch (error) {
      warn('heartbeat', error);
    }
  }
  const interval = Math.max(500, Math.floor((ttlSeconds * 1000) / 3));
  const timer = setInterval(() => void heartbeat(), interval);
  timer.unref();
  void heartbeat();
  const offReady = redis.onReady(() => void heartbeat());

  return {
    view,
    async join(room, peer) {
      const firstHere = !view.tracks(room);
      view.addLocal(room, peer, false);
      pendingLeaves.delete(peer.peerId);
      try {
        const [all] = await redis.run('presence-join', (c) =>
          Promise.all([
            runScript(c, JOIN, [keys.presence(room)], [peer.peerId, JSON.stringify(peer), firstHere ? 1 : 0]),
            c.sAdd(keys.replica(replica), member(room, peer)),
            // A heartbeat too: a replica that holds peers is always known to the reapers, even
            // one that dies right after Redis lost its heartbeats (a restart, a flush).
            c.zAdd(keys.replicas, { score: Date.now(), value: replica }),
          ]),
        );
        if (firstHere) view.merge(room, peersOf(all));
      } catch (error) {
        warn('join', error);
      }
      return view.peers(room).filter((other) => other.peerId !== peer.peerId);
    },
    announce(room, peer) {
      // Announced only when the caller has sent `session` in the same tick: no peer can
      // signal this one before it knows who it is. Skipped if it already left.
      if (!view.has(room, peer.peerId)) return;
      view.announce(room, peer);
      publish(room, { t: 'join', room, peer });
    },
    leave(room, peerId, reason) {
      const peer = view.peers(room).find((p) => p.peerId === peerId);
      if (!peer || !view.has(room, peerId)) return;
      view.removeLocal(room, peerId, reason);
      publish(room, { t: 'leave', room, peerId, reason });
      redis
        .run('presence-leave', (c) =>
          Promise.all([c.hDel(keys.presence(room), peerId), c.sRem(keys.replica(replica), member(room, peer))]),
        )
        .catch((error: unknown) => {
          pendingLeaves.set(peerId, { room, peerId, userId: peer.userId });
          warn('leave', error);
        });
    },
    has: (room, peerId) => view.has(room, peerId),
    async list(room) {
      if (view.tracks(room)) return view.peers(room);
      try {
        return peersOf(await redis.run('presence-list', (c) => c.hGetAll(keys.presence(room))));
      } catch {
        return [];
      }
    },
    receive(message) {
      if (message.t === 'join') view.add(message.room, message.peer);
      else if (message.t === 'leave') view.remove(message.room, message.peerId, message.reason);
      else view.reconcile(message.room, message.peers, message.replica);
    },
    async refresh(room) {
      if (!view.tracks(room)) return;
      const all = peersOf(await redis.run('presence-list', (c) => c.hGetAll(keys.presence(room))));
      view.reconcile(room, all);
    },
    close(reason) {
      closed ??= (async () => {
        clearInterval(timer);
        offReady();
        const locals = view.localPeers();
        for (const { room, peer } of locals) {
          view.removeLocal(room, peer.peerId, reason);
          publish(room, { t: 'leave', room, peerId: peer.peerId, reason });
        }
        await redis
          .run('presence-close', (c) =>
            Promise.all([
              ...locals.map(({ room, peer }) => c.hDel(keys.presence(room), peer.peerId)),
              c.del(keys.replica(replica)),
              c.zRem(keys.replicas, replica),
            ]),
          )
          .catch((error: unknown) => {
            log.warn({ err: (error as Error).message }, 'presence cleanup failed; peers expire with the replica');
          });
      })();
      return closed;
    },
  };
}
