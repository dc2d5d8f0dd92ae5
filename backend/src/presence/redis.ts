import type { PeerInfo, PeerLeftReason } from '@switchboard/contract';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { RedisClient, RedisConnection } from '../redis/connection.js';
import { redisKeys } from '../redis/keys.js';
import { lua, runScript } from '../redis/lua.js';
import { NO_LIFECYCLE, type Lifecycle } from '../webhooks/lifecycle.js';
import { memberKey, RoomView } from './room-view.js';
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
  /** Lifecycle webhooks: each join and leave script decides which transitions happened. */
  lifecycle?: Lifecycle;
  logger: Logger;
  metrics: Metrics;
}

/**
 * Lifecycle webhooks of a presence change, decided in the same script as the change, so
 * that of two replicas racing for an empty room exactly one sees it empty (Redis runs one
 * script at a time). KEYS[2], when given, is the webhook outbox: the webhooks are written
 * in the same step, so no crash between the presence write and the outbox write can lose
 * one. Without it (a Cluster, where the outbox is in another slot) the script returns them
 * for the caller to write. ARGV[1]: the room; ARGV[2]: the outbox's MAXLEN.
 */
const EMIT = `
if KEYS[2] then
  for _, body in ipairs(out) do redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'r', ARGV[1], 'b', body) end
  out = {}
end
`;

/**
 * Adds a peer. ARGV[3]: peer id; ARGV[4]: its JSON; ARGV[5]: '1' to return the room's peers
 * (its first join on this replica); ARGV[6], ARGV[7]: the room.occupied and member.joined
 * webhooks ('' for none). Returns `{peers, webhooks}`.
 */
const JOIN = lua(`
local out = {}
if redis.call('HSET', KEYS[1], ARGV[3], ARGV[4]) == 1 then
  if ARGV[6] ~= '' and redis.call('HLEN', KEYS[1]) == 1 then out[#out + 1] = ARGV[6] end
  if ARGV[7] ~= '' then out[#out + 1] = ARGV[7] end
end
${EMIT}
return {ARGV[5] == '1' and redis.call('HGETALL', KEYS[1]) or {}, out}`);

/**
 * Removes peers. ARGV[3]: the room.vacated webhook, written if the room is left empty;
 * then pairs of a peer id and its member.left webhook. Returns the webhooks to write.
 */
const LEAVE = lua(`
local out = {}
local removed = false
for i = 4, #ARGV, 2 do
  if redis.call('HDEL', KEYS[1], ARGV[i]) == 1 then
    removed = true
    if ARGV[i + 1] ~= '' then out[#out + 1] = ARGV[i + 1] end
  end
end
if removed and ARGV[3] ~= '' and redis.call('EXISTS', KEYS[1]) == 0 then out[#out + 1] = ARGV[3] end
${EMIT}
return out`);

function parsePeer(json: string): PeerInfo | undefined {
  try {
    const peer = JSON.parse(json) as PeerInfo;
    return typeof peer.peerId === 'string' && typeof peer.replica === 'string' ? peer : undefined;
  } catch {
    return undefined;
  }
}

/** `{room, peer}` pairs grouped by room. */
function byRoom(pairs: Array<{ room: string; peer: PeerInfo }>): Map<string, PeerInfo[]> {
  const rooms = new Map<string, PeerInfo[]>();
  for (const { room, peer } of pairs) {
    const peers = rooms.get(room);
    if (peers) peers.push(peer);
    else rooms.set(room, [peer]);
  }
  return rooms;
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
  const lifecycle = options.lifecycle ?? NO_LIFECYCLE;
  const keys = redisKeys(options.keyPrefix);
  const scriptKeys = (room: string): string[] => {
    const outbox = lifecycle.outboxKey(room);
    return outbox ? [keys.presence(room), outbox] : [keys.presence(room)];
  };
  /** Writes what a script returned (only on a Cluster), or nothing. */
  const written = (room: string, bodies: unknown): void => {
    if (!Array.isArray(bodies) || bodies.length === 0) return;
    lifecycle.enqueue(
      room,
      bodies.filter((body): body is string => typeof body === 'string'),
    );
  };
  /** Adds `peer` to the room's hash; resolves with the room's peers when `all`. */
  const add = async (c: RedisClient, room: string, peer: PeerInfo, all: boolean): Promise<unknown> => {
    const [occupied, joined] = lifecycle.enabled ? lifecycle.joined(room, peer) : ['', ''];
    const reply = await runScript(c, JOIN, scriptKeys(room), [
      room,
      lifecycle.maxLength,
      peer.peerId,
      JSON.stringify(peer),
      all ? 1 : 0,
      occupied,
      joined,
    ]);
    const [peers, bodies] = Array.isArray(reply) ? (reply as unknown[]) : [];
    written(room, bodies);
    return peers;
  };
  /** Removes peers from the room's hash (`reason` says why, for the webhooks). */
  const remove = async (
    c: RedisClient,
    room: string,
    peers: Array<Pick<PeerInfo, 'peerId' | 'userId'>>,
    reason: PeerLeftReason,
  ): Promise<void> => {
    const on = lifecycle.enabled;
    const reply = await runScript(c, LEAVE, scriptKeys(room), [
      room,
      lifecycle.maxLength,
      on ? lifecycle.vacated(room) : '',
      ...peers.flatMap((peer) => [peer.peerId, on ? lifecycle.left(room, peer, reason) : '']),
    ]);
    written(room, reply);
  };
  const log = options.logger.child({ component: 'presence' });
  const view = new RoomView(options.listener, replica);

  /** Memberships (`room\npeerId`: a connection has one peer id in all its rooms) joined but not yet written to Redis: `announce` writes them. */
  const unwritten = new Set<string>();
  /** Rooms whose peers are being read from Redis (their first join here); later joins wait for it. */
  const loading = new Map<string, Promise<void>>();
  // Writes that failed while Redis was away; replayed by the next heartbeat.
  let dirty = false;
  const pendingLeaves = new Map<string, { room: string; peerId: string; userId: string; reason: PeerLeftReason }>();
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
        ...[...byRoom(gone)].map(([room, peers]) => remove(c, room, peers, 'replica_lost')),
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
        ...leaves.map(([, { room, peerId, userId, reason }]) => remove(c, room, [{ peerId, userId }], reason)),
        ...locals.map(({ room, peer }) => add(c, room, peer, false)),
        ...(locals.length > 0 ? [c.sAdd(keys.replica(replica), [...new Set(locals.map(({ room }) => room))])] : []),
      ]),
    );
    for (const [key] of leaves) pendingLeaves.delete(key);
    dirty = false;
    for (const [room, peers] of byRoom(locals)) publish(room, { t: 'sync', room, replica, peers });
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
      pendingLeaves.delete(memberKey(room, peer.peerId));
      if (!firstHere) {
        // The view holds the room's peers (once the first join here has read them); the
        // peer is written when it is announced, with the announcement (one write to Redis).
        unwritten.add(memberKey(room, peer.peerId));
        await loading.get(room);
        return;
      }
      const read = (async () => {
        try {
          const [all] = await redis.run('presence-join', (c) =>
            Promise.all([
              add(c, room, peer, true),
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
      if (unwritten.delete(memberKey(room, peer.peerId))) {
        redis
          .run('presence-join', (c) => add(c, room, peer, false))
          .catch((error: unknown) => {
            warn('join', error);
          });
      }
      publish(room, { t: 'join', room, peer });
    },
    leave(room, peerId, reason) {
      unwritten.delete(memberKey(room, peerId));
      const peer = view.peer(room, peerId);
      if (!peer) return;
      view.removeLocal(room, peerId, reason);
      publish(room, { t: 'leave', room, peerId, reason });
      const lastHere = !view.tracks(room);
      redis
        .run('presence-leave', (c) =>
          Promise.all([remove(c, room, [peer], reason), ...(lastHere ? [c.sRem(keys.replica(replica), room)] : [])]),
        )
        .catch((error: unknown) => {
          pendingLeaves.set(memberKey(room, peerId), { room, peerId, userId: peer.userId, reason });
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
              ...[...byRoom(locals)].map(([room, peers]) => remove(c, room, peers, reason)),
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
