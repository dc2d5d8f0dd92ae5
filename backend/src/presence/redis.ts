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
  /** Where changes go; also settable later with `listen`. */
  listener?: PresenceListener;
  replica: string;
  keyPrefix: string;
  /** A replica silent for this long is presumed dead and its peers announced as left. */
  ttlSeconds: number;
  /** A replica is gone (dead, or this one's previous life): forget what its users held. */
  onReplicaGone: (replica: string, userIds: string[]) => Promise<void>;
  logger: Logger;
  metrics: Metrics;
}

/** Adds the peer and returns the room's peers (the room is new on this replica). */
const JOIN = lua(`
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return redis.call('HGETALL', KEYS[1])`);

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

/**
 * Presence shared through Redis (`presence:{room}`, `presence:#replicas`,
 * `presence:#replica:<id>`; see redis/keys.ts). Lookups come from an in-process view of
 * the rooms this replica has members in, kept current by messages on those rooms'
 * channels, so signaling never waits on Redis. Redis is read when a room is first
 * joined here (and again after the channel may have lost messages); later joins of the
 * room are written with their announcement, without waiting, since the view already
 * holds the room's peers.
 *
 * A replica lists the rooms it has members in, not each peer, so a join costs one
 * write; whoever outlives a replica finds its peers in those rooms' hashes.
 */
export function createRedisPresence(options: RedisPresenceOptions): Presence & { view: RoomView } {
  const { redis, publish, replica, ttlSeconds, metrics } = options;
  const keys = redisKeys(options.keyPrefix);
  const log = options.logger.child({ component: 'presence' });
  const view = new RoomView(options.listener, replica);

  /** Memberships (`room\npeerId`: a connection has one peer id in all its rooms) joined but not yet written to Redis: `announce` writes them. */
  const unwritten = new Set<string>();
  const member = (room: string, peerId: string): string => `${room}\n${peerId}`;
  /** Rooms whose peers are being read from Redis (their first join here); later joins wait for it. */
  const loading = new Map<string, Promise<void>>();
  // Writes that failed while Redis was away; replayed by the next heartbeat.
  let dirty = false;
  const pendingLeaves = new Map<string, { room: string; peerId: string }>();
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
    const rooms = await redis.run('presence-rooms', (c) => c.sMembers(keys.replica(id)));
    if (rooms.length === 0) return 0;
    const hashes = await redis.run('presence-scan-rooms', (c) =>
      Promise.all(rooms.map((room) => c.hGetAll(keys.presence(room)))),
    );
    const gone = rooms.flatMap((room, i) =>
      peersOf(hashes[i])
        .filter((peer) => peer.replica === id && !(id === replica && view.has(room, peer.peerId)))
        .map((peer) => ({ room, peer })),
    );
    await redis.run('presence-reap', (c) =>
      Promise.all([
        ...gone.map(({ room, peer }) => c.hDel(keys.presence(room), peer.peerId)),
        // This replica's own list stays: it holds those rooms' current peers.
        ...(id === replica ? [] : [c.del(keys.replica(id))]),
      ]),
    );
    for (const { room, peer } of gone) {
      publish(room, { t: 'leave', room, peerId: peer.peerId, reason: 'replica_lost' });
      view.remove(room, peer.peerId, 'replica_lost');
    }
    await options.onReplicaGone(id, [...new Set(gone.map(({ peer }) => peer.userId))]);
    return gone.length;
  }

  async function resync(): Promise<void> {
    const locals = view.localPeers();
    const leaves = [...pendingLeaves];
    await redis.run('presence-resync', (c) =>
      Promise.all([
        ...leaves.map(([, { room, peerId }]) => c.hDel(keys.presence(room), peerId)),
        ...locals.map(({ room, peer }) => c.hSet(keys.presence(room), peer.peerId, JSON.stringify(peer))),
        ...(locals.length > 0 ? [c.sAdd(keys.replica(replica), [...new Set(locals.map(({ room }) => room))])] : []),
      ]),
    );
    for (const [key] of leaves) pendingLeaves.delete(key);
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
      // Re-added means another replica reaped us (we were cut off), or Redis lost its
      // data: tell everyone we are back.
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
      pendingLeaves.delete(member(room, peer.peerId));
      if (!firstHere) {
        // The view holds the room's peers (once the first join here has read them); the
        // peer is written when it is announced, with the announcement (one write to Redis).
        unwritten.add(member(room, peer.peerId));
        await loading.get(room);
        return;
      }
      const json = JSON.stringify(peer);
      const read = (async () => {
        try {
          const [all] = await redis.run('presence-join', (c) =>
            Promise.all([
              runScript(c, JOIN, [keys.presence(room)], [peer.peerId, json]),
              c.sAdd(keys.replica(replica), room),
              // A heartbeat too: a replica that holds peers is known to the reapers even if it
              // dies right after Redis lost its heartbeats (a restart, a flush).
              c.zAdd(keys.replicas, { score: Date.now(), value: replica }),
            ]),
          );
          view.merge(room, peersOf(all));
        } catch (error) {
          warn('join', error);
        }
      })();
      loading.set(room, read);
      await read;
      if (loading.get(room) === read) loading.delete(room);
    },
    snapshot: (room, peerId, max) => view.snapshot(room, peerId, max),
    count: (room) => view.count(room),
    page: (room, cursor, limit) => view.page(room, cursor, limit),
    announce(room, peer) {
      // Announced only when the caller has sent `session` in the same tick: no peer can
      // signal this one before it knows who it is. Skipped if it already left.
      if (!view.has(room, peer.peerId)) return;
      view.announce(room, peer);
      if (unwritten.delete(member(room, peer.peerId))) {
        redis
          .run('presence-join', (c) => c.hSet(keys.presence(room), peer.peerId, JSON.stringify(peer)))
          .catch((error: unknown) => {
            warn('join', error);
          });
      }
      publish(room, { t: 'join', room, peer });
    },
    leave(room, peerId, reason) {
      unwritten.delete(member(room, peerId));
      if (!view.has(room, peerId)) return;
      view.removeLocal(room, peerId, reason);
      publish(room, { t: 'leave', room, peerId, reason });
      const lastHere = !view.tracks(room);
      redis
        .run('presence-leave', (c) =>
          Promise.all([
            c.hDel(keys.presence(room), peerId),
            ...(lastHere ? [c.sRem(keys.replica(replica), room)] : []),
          ]),
        )
        .catch((error: unknown) => {
          pendingLeaves.set(member(room, peerId), { room, peerId });
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
    listen: (next) => view.listen(next),
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
