import type { PeerInfo } from '@switchboard/contract';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { RedisConnection } from '../redis/connection.js';
import { RoomView } from './room-view.js';
import type { Presence, PresenceBus, PresenceListener, PresenceMessage } from './types.js';

export interface RedisPresenceOptions {
  redis: RedisConnection;
  bus: PresenceBus;
  listener: PresenceListener;
  replica: string;
  keyPrefix: string;
  /** A replica silent for this long is presumed dead and its peers announced as left. */
  ttlSeconds: number;
  logger: Logger;
  metrics: Metrics;
}

function parsePeer(json: string): PeerInfo | undefined {
  try {
    const peer = JSON.parse(json) as PeerInfo;
    return typeof peer.peerId === 'string' && typeof peer.replica === 'string' ? peer : undefined;
  } catch {
    return undefined;
  }
}

/** Peers of an HGETALL reply (an object, or flat pairs when it came through a pipeline). */
function peersOf(reply: unknown): PeerInfo[] {
  if (typeof reply !== 'object' || reply === null) return [];
  const values = Array.isArray(reply) ? reply.filter((_, i) => i % 2 === 1) : Object.values(reply);
  return values.flatMap((json) => (typeof json === 'string' ? (parsePeer(json) ?? []) : []));
}

/**
 * Presence shared through Redis. Keys: `presence:<room>` (hash peerId -> PeerInfo),
 * `presence:#replicas` (zset replica -> last heartbeat) and `presence:#replica:<id>`
 * (set of "<room> <peerId>" a replica holds). `#` cannot occur in a room name, so
 * the bookkeeping keys never collide with a room's.
 *
 * Lookups come from an in-process view kept current by messages between replicas,
 * so signaling never waits on Redis; Redis is read when a room is first joined here.
 */
export function createRedisPresence(options: RedisPresenceOptions): Presence & { view: RoomView } {
  const { redis, bus, replica, keyPrefix, ttlSeconds, metrics } = options;
  const log = options.logger.child({ component: 'presence' });
  const view = new RoomView(options.listener, replica);
  const roomKey = (room: string) => `${keyPrefix}presence:${room}`;
  const replicasKey = `${keyPrefix}presence:#replicas`;
  const replicaKey = (id: string) => `${keyPrefix}presence:#replica:${id}`;
  const member = (room: string, peerId: string) => `${room} ${peerId}`;

  // Writes that failed while Redis was away; replayed by the next heartbeat.
  let dirty = false;
  const pendingLeaves = new Map<string, string>();
  let closed: Promise<void> | undefined;
  let lastWarning = 0;
  const warn = (what: string, error: unknown): void => {
    dirty = true;
    if (Date.now() - lastWarning < 5_000) return;
    lastWarning = Date.now();
    log.warn({ err: (error as Error).message }, `presence ${what} failed; will resync`);
  };

  bus.subscribe((message: PresenceMessage) => {
    if (message.t === 'join') view.add(message.room, message.peer);
    else if (message.t === 'leave') view.remove(message.room, message.peerId, message.reason);
    else view.resync(message.replica, message.peers);
  });

  async function resync(): Promise<void> {
    const locals = view.localPeers();
    const leaves = [...pendingLeaves];
    await redis.run('presence-resync', (c) => {
      const pipeline = c.multi();
      for (const [peerId, room] of leaves) {
        pipeline.hDel(roomKey(room), peerId);
        pipeline.sRem(replicaKey(replica), member(room, peerId));
      }
      for (const { room, peer } of locals) {
        pipeline.hSet(roomKey(room), peer.peerId, JSON.stringify(peer));
        pipeline.sAdd(replicaKey(replica), member(room, peer.peerId));
      }
      return pipeline.execAsPipeline();
    });
    for (const [peerId] of leaves) pendingLeaves.delete(peerId);
    dirty = false;
    bus.publish({ t: 'sync', replica, peers: locals });
  }

  async function reap(): Promise<void> {
    const cutoff = Date.now() - ttlSeconds * 1000;
    const dead = await redis.run('presence-scan', (c) => c.zRangeByScore(replicasKey, '-inf', cutoff));
    for (const id of dead) {
      if (id === replica) continue;
      // ZREM is the claim: exactly one surviving replica announces each dead one.
      const claimed = await redis.run('presence-claim', (c) => c.zRem(replicasKey, id));
      if (claimed !== 1) continue;
      const members = await redis.run('presence-members', (c) => c.sMembers(replicaKey(id)));
      const gone = members.flatMap((entry) => {
        const [room, peerId] = entry.split(' ');
        return room && peerId ? [{ room, peerId }] : [];
      });
      await redis.run('presence-reap', (c) => {
        const pipeline = c.multi();
        for (const { room, peerId } of gone) pipeline.hDel(roomKey(room), peerId);
        pipeline.del(replicaKey(id));
        return pipeline.execAsPipeline();
      });
      for (const { room, peerId } of gone) {
        bus.publish({ t: 'leave', room, peerId, reason: 'replica_lost' });
        view.remove(room, peerId, 'replica_lost');
      }
      metrics.presenceReaped.inc(gone.length);
      log.warn({ deadReplica: id, peers: gone.length }, 'replica stopped heartbeating; its peers have left');
    }
  }

  async function heartbeat(): Promise<void> {
    if (!redis.isReady()) return;
    try {
      const added = await redis.run('presence-heartbeat', (c) =>
        c.zAdd(replicasKey, { score: Date.now(), value: replica }),
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
        const [, , all] = await redis.run('presence-join', (c) =>
          c
            .multi()
            .hSet(roomKey(room), peer.peerId, JSON.stringify(peer))
            .sAdd(replicaKey(replica), member(room, peer.peerId))
            .hGetAll(roomKey(room))
            .execAsPipeline(),
        );
        if (firstHere) view.merge(room, peersOf(all));
      } catch (error) {
        warn('join', error);
      }
      // Announced only now, when the caller can send `session` in the same tick: no
      // peer can signal this one before it knows who it is. Skipped if it already left.
      if (view.has(room, peer.peerId)) {
        view.announce(room, peer);
        bus.publish({ t: 'join', room, peer });
      }
      return view.peers(room).filter((other) => other.peerId !== peer.peerId);
    },
    leave(room, peerId, reason) {
      if (!view.has(room, peerId)) return;
      view.removeLocal(room, peerId, reason);
      bus.publish({ t: 'leave', room, peerId, reason });
      redis
        .run('presence-leave', (c) =>
          c.multi().hDel(roomKey(room), peerId).sRem(replicaKey(replica), member(room, peerId)).execAsPipeline(),
        )
        .catch((error: unknown) => {
          pendingLeaves.set(peerId, room);
          warn('leave', error);
        });
    },
    has: (room, peerId) => view.has(room, peerId),
    async list(room) {
      if (view.tracks(room)) return view.peers(room);
      try {
        const all = await redis.run('presence-list', (c) => c.hGetAll(roomKey(room)));
        return peersOf(all);
      } catch {
        return [];
      }
    },
    close(reason) {
      closed ??= (async () => {
        clearInterval(timer);
        offReady();
        const locals = view.localPeers();
        for (const { room, peer } of locals) {
          view.removeLocal(room, peer.peerId, reason);
          bus.publish({ t: 'leave', room, peerId: peer.peerId, reason });
        }
        await redis
          .run('presence-close', (c) => {
            const pipeline = c.multi();
            for (const { room, peer } of locals) pipeline.hDel(roomKey(room), peer.peerId);
            pipeline.del(replicaKey(replica));
            pipeline.zRem(replicasKey, replica);
            return pipeline.execAsPipeline();
          })
          .catch((error: unknown) => {
            log.warn({ err: (error as Error).message }, 'presence cleanup failed; peers expire with the replica');
          });
      })();
      return closed;
    },
  };
}
