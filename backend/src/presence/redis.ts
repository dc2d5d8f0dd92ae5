import { randomBytes } from 'node:crypto';
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
 * one. This is the one script of a join or leave on one server or Sentinel, kept as it
 * was: PEND below is what a Cluster needs instead. ARGV[1]: the room; ARGV[2]: the
 * outbox's MAXLEN.
 */
const EMIT = `
if KEYS[2] then
  for _, body in ipairs(out) do redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'r', ARGV[1], 'b', body) end
  out = {}
end
`;

/** How long a claim on a room's pending webhooks lasts unless renewed: a mover that died holds them up this long at most. */
const CLAIM_MS = 5_000;
/** Most pending webhooks one move takes; the rest follow in the next round, in order. */
const MOVE_BATCH = 500;

/**
 * EMIT on a Cluster, where the outbox stream is in another slot than the room's hash (a
 * script touches one slot): the webhooks go to the room's pending list KEYS[2] in the same
 * step as the change instead, so whatever dies afterwards, they are recorded. Then, unless
 * a move of the room is under way (the claim KEYS[3] is set), the caller is given the
 * claim (ARGV[1], its token) and the oldest pending entries, so that entries an earlier
 * mover left behind (it died, or its XADD failed) go first and the room's order holds;
 * the caller XADDs them and runs MOVE. The list is cut to the outbox's MAXLEN (ARGV[2]).
 */
const PEND = `
if #out > 0 then
  for _, body in ipairs(out) do redis.call('RPUSH', KEYS[2], body) end
  redis.call('LTRIM', KEYS[2], -tonumber(ARGV[2]), -1)
  out = {}
end
if redis.call('EXISTS', KEYS[3]) == 0 then
  out = redis.call('LRANGE', KEYS[2], 0, ${MOVE_BATCH - 1})
  if #out > 0 then redis.call('SET', KEYS[3], ARGV[1], 'PX', ${CLAIM_MS}) end
end
`;

/**
 * Adds a peer. ARGV[3]: peer id; ARGV[4]: its JSON; ARGV[5]: '1' to return the room's peers
 * (its first join on this replica); ARGV[6], ARGV[7]: the room.occupied and member.joined
 * webhooks ('' for none). Returns `{peers, webhooks}`: on a Cluster, the pending webhooks
 * the caller now has the claim to move.
 */
const joinScript = (emit: string) =>
  lua(`
local out = {}
if redis.call('HSET', KEYS[1], ARGV[3], ARGV[4]) == 1 then
  if ARGV[6] ~= '' and redis.call('HLEN', KEYS[1]) == 1 then out[#out + 1] = ARGV[6] end
  if ARGV[7] ~= '' then out[#out + 1] = ARGV[7] end
end
${emit}
return {ARGV[5] == '1' and redis.call('HGETALL', KEYS[1]) or {}, out}`);
const JOIN = joinScript(EMIT);
const JOIN_PENDING = joinScript(PEND);

/**
 * Removes peers. ARGV[3]: the room.vacated webhook, written if the room is left empty;
 * then pairs of a peer id and its member.left webhook. Returns the webhooks to move (Cluster).
 */
const leaveScript = (emit: string) =>
  lua(`
local out = {}
local removed = false
for i = 4, #ARGV, 2 do
  if redis.call('HDEL', KEYS[1], ARGV[i]) == 1 then
    removed = true
    if ARGV[i + 1] ~= '' then out[#out + 1] = ARGV[i + 1] end
  end
end
if removed and ARGV[3] ~= '' and redis.call('EXISTS', KEYS[1]) == 0 then out[#out + 1] = ARGV[3] end
${emit}
return out`);
const LEAVE = leaveScript(EMIT);
const LEAVE_PENDING = leaveScript(PEND);

/**
 * After a mover XADDed ARGV[2] entries of the pending list KEYS[1], the first being ARGV[3]:
 * takes them off its head, but only if that head is still ARGV[3] (a mover whose claim
 * lapsed may come late, after another moved the same entries; entries leave only from
 * the head, so an unchanged head means these are the ones moved). Then, unless another
 * holds the claim KEYS[2], gives it to ARGV[1] again (or drops it when nothing is left)
 * and returns the next entries. ARGV[2] = 0 only claims: a retry after a failed move or
 * a dead mover. Returns `{holder, entries}`: holder '' when the entries are the caller's
 * to move (none: the list is empty), else the claim of the one moving them.
 */
const MOVE = lua(`
local moved = tonumber(ARGV[2])
if moved > 0 and redis.call('LINDEX', KEYS[1], 0) == ARGV[3] then redis.call('LTRIM', KEYS[1], moved, -1) end
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[1] then return {holder, {}} end
local pending = redis.call('LRANGE', KEYS[1], 0, ${MOVE_BATCH - 1})
if #pending == 0 then
  if holder then redis.call('DEL', KEYS[2]) end
else
  redis.call('SET', KEYS[2], ARGV[1], 'PX', ${CLAIM_MS})
end
return {'', pending}`);

const strings = (reply: unknown): string[] =>
  Array.isArray(reply) ? reply.filter((item): item is string => typeof item === 'string') : [];

function parsePeer(json: string): PeerInfo | undefined {
  try {
    const peer = JSON.parse(json) as PeerInfo;
    return typeof peer.peerId === 'string' && typeof peer.replica === 'string' ? peer : undefined;
  } catch {
    return undefined;
  }
}

/** Pending webhooks of a room a script gave this replica the claim (`token`) to move. */
interface Claimed {
  room: string;
  token: string;
  entries: string[];
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
  const log = options.logger.child({ component: 'presence' });
  const view = new RoomView(options.listener, replica);
  /**
   * Where a join or leave script puts the room's webhooks: in the outbox (one server,
   * Sentinel), nowhere (webhooks off), or, on a Cluster, in the room's pending list, which
   * this replica then moves (`pending`).
   */
  const target = (room: string): { keys: string[]; pending: boolean } => {
    const outbox = lifecycle.outboxKey(room);
    if (outbox) return { keys: [keys.presence(room), outbox], pending: false };
    if (!lifecycle.enabled) return { keys: [keys.presence(room)], pending: false };
    return {
      keys: [keys.presence(room), keys.webhookPending(room), keys.webhookPendingClaim(room)],
      pending: true,
    };
  };
  const pends = (room: string): boolean => target(room).pending;
  // A claim token names this process, not only the replica id: a restart under the same id
  // must not take its previous life's claim for its own.
  const life = randomBytes(4).toString('hex');
  let claims = 0;
  const newToken = (): string => `${replica}#${life}.${++claims}`;
  /** Adds `peer` to the room's hash; resolves with the room's peers when `all`. */
  const add = async (c: RedisClient, room: string, peer: PeerInfo, all: boolean): Promise<unknown> => {
    const [occupied, joined] = lifecycle.enabled ? lifecycle.joined(room, peer) : ['', ''];
    const { keys: scriptKeys, pending } = target(room);
    const token = pending ? newToken() : room;
    const reply = await runScript(c, pending ? JOIN_PENDING : JOIN, scriptKeys, [
      token,
      lifecycle.maxLength,
      peer.peerId,
      JSON.stringify(peer),
      all ? 1 : 0,
      occupied,
      joined,
    ]);
    const [peers, bodies] = Array.isArray(reply) ? (reply as unknown[]) : [];
    const claimed = strings(bodies);
    // Not awaited: nothing waits on a join's webhooks; a failed move is retried (see `move`).
    if (claimed.length > 0) void move({ room, token, entries: claimed });
    return peers;
  };
  /**
   * Removes peers from the room's hash (`reason` says why, for the webhooks). On a Cluster,
   * resolves with the pending webhooks this replica got the claim to move, for the caller
   * to `move` once its command round is over.
   */
  const remove = async (
    c: RedisClient,
    room: string,
    peers: Array<Pick<PeerInfo, 'peerId' | 'userId'>>,
    reason: PeerLeftReason,
  ): Promise<Claimed | undefined> => {
    const on = lifecycle.enabled;
    const { keys: scriptKeys, pending } = target(room);
    const token = pending ? newToken() : room;
    const reply = await runScript(c, pending ? LEAVE_PENDING : LEAVE, scriptKeys, [
      token,
      lifecycle.maxLength,
      on ? lifecycle.vacated(room) : '',
      ...peers.flatMap((peer) => [peer.peerId, on ? lifecycle.left(room, peer, reason) : '']),
    ]);
    const claimed = strings(reply);
    return claimed.length > 0 ? { room, token, entries: claimed } : undefined;
  };

  // The Cluster's pending webhooks (see PEND and MOVE). Whatever a replica has to see moved
  // stays listed in its own room set (`presence:#replica:<id>`) until it is, so that if it
  // dies first, the reaper that forgets it moves them.
  /** Rooms whose pending webhooks this replica has to see moved: its move failed, a script's reply was lost, or it reaps them. Retried by the heartbeat. */
  const stuck = new Set<string>();
  /** Moves in flight here, per room. */
  const moving = new Map<string, number>();
  /** Leaves and moves in flight: a shutdown waits for them before this replica stops being listed. */
  const inFlight = new Set<Promise<void>>();
  /** Rooms that no local member holds any more, left in the room set until their webhooks are moved. */
  const unreleased = new Set<string>();
  let lastMoveWarning = 0;
  /** A script of the room's whose reply was lost may have handed this replica a claim: the heartbeat looks. */
  const unsure = (room: string): void => {
    if (pends(room)) stuck.add(room);
  };

  /**
   * XADDs claimed entries to the room's outbox stream in order, then takes them off the
   * pending list with MOVE, which hands over what arrived meanwhile; until none is left.
   * Never rejects: a failure leaves the room `stuck`, retried by the heartbeat once the
   * claim has lapsed (entries XADDed twice then are one webhook id twice: delivery is at
   * least once).
   */
  function move(claim: Claimed): Promise<void> {
    return track(moveAll(claim));
  }
  /** Keeps `work` (which never rejects) in `inFlight` until it settles: `close` waits for it. */
  function track(work: Promise<void>): Promise<void> {
    inFlight.add(work);
    void work.finally(() => inFlight.delete(work));
    return work;
  }
  async function moveAll({ room, token, entries }: Claimed): Promise<void> {
    moving.set(room, (moving.get(room) ?? 0) + 1);
    try {
      let batch = entries;
      while (batch.length > 0) {
        await lifecycle.write(room, batch);
        const first = batch[0] ?? '';
        const pending = keys.webhookPending(room);
        const reply = await redis.run(
          'webhook-move',
          (c) => runScript(c, MOVE, [pending, keys.webhookPendingClaim(room)], [token, batch.length, first]),
          { key: pending },
        );
        const [holder, next] = Array.isArray(reply) ? (reply as unknown[]) : [];
        batch = holder === '' ? strings(next) : [];
        if (holder === '' && batch.length === 0) stuck.delete(room);
      }
    } catch (error) {
      stuck.add(room);
      if (Date.now() - lastMoveWarning >= 5_000) {
        lastMoveWarning = Date.now();
        log.warn(
          { room, err: error instanceof Error ? error.message : String(error) },
          'webhooks not moved to the outbox yet; kept in the room and retried',
        );
      }
    } finally {
      const left = (moving.get(room) ?? 1) - 1;
      if (left > 0) moving.set(room, left);
      else moving.delete(room);
      release(room);
    }
  }

  /** Moves a stuck room's pending webhooks if no one else has the claim; leaves it stuck otherwise. */
  async function flush(room: string): Promise<void> {
    // A move of ours in flight sees them through (or leaves the room stuck).
    if (moving.has(room)) return;
    const token = newToken();
    const pending = keys.webhookPending(room);
    const reply = await redis.run(
      'webhook-move',
      (c) => runScript(c, MOVE, [pending, keys.webhookPendingClaim(room)], [token, 0, '']),
      { key: pending },
    );
    const [holder, entries] = Array.isArray(reply) ? (reply as unknown[]) : [];
    if (holder !== '') return;
    const claimed = strings(entries);
    if (claimed.length > 0) await move({ room, token, entries: claimed });
    else {
      stuck.delete(room);
      release(room);
    }
  }

  /** Flushes every stuck room; what fails stays stuck for the next heartbeat. */
  async function flushStuck(): Promise<void> {
    await Promise.all([...stuck].map((room) => flush(room).catch(() => undefined)));
  }

  /**
   * Takes a room off this replica's room set once nothing here needs it there: no local
   * member, no move in flight, nothing stuck. Best effort: a room left in the set only
   * makes a reaper look at it for nothing.
   */
  function release(room: string): void {
    if (!unreleased.has(room)) return;
    if (view.tracks(room)) {
      // Members again: the room belongs in the set, and their last leave releases it.
      unreleased.delete(room);
      return;
    }
    if (moving.has(room) || stuck.has(room)) return;
    unreleased.delete(room);
    redis.run('presence-leave', (c) => c.sRem(keys.replica(replica), room)).catch(() => undefined);
  }

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
    // On a Cluster its rooms may hold webhooks it never moved to the outbox (it died
    // between a presence change and the XADD): this replica takes them on, and lists the
    // rooms in its own set first, so that its own death does not lose them either.
    const adopted = rooms.filter(pends);
    for (const room of adopted) {
      stuck.add(room);
      if (!view.tracks(room)) unreleased.add(room);
    }
    if (adopted.length > 0 && id !== replica) {
      await redis.run('presence-reap', (c) => c.sAdd(keys.replica(replica), adopted));
    }
    const [claimed] = await redis.run('presence-reap', (c) =>
      Promise.all([
        Promise.all([...byRoom(gone)].map(([room, peers]) => remove(c, room, peers, 'replica_lost'))),
        // This replica's own list stays: it holds those rooms' current peers.
        ...(id === replica ? [] : [c.del(keys.replica(id))]),
      ]),
    );
    for (const { room, peer } of gone) {
      publish(room, { t: 'leave', room, peerId: peer.peerId, reason: 'replica_lost' });
      view.remove(room, peer.peerId, 'replica_lost');
    }
    if (adopted.length > 0) {
      await Promise.all(claimed.flatMap((claim) => (claim ? [move(claim)] : [])));
      // Rooms the reap changed nothing in, or whose claim the dead replica still holds
      // (then retried by the heartbeat once it lapses).
      await Promise.all(adopted.filter((room) => stuck.has(room)).map((room) => flush(room).catch(() => undefined)));
      for (const room of adopted) release(room);
    }
    await options.onReplicaGone(id, [...new Set(gone.map(({ peer }) => peer.userId))]);
    return gone.length;
  }

  async function resync(): Promise<void> {
    const locals = view.localPeers();
    const leaves = [...pendingLeaves];
    const [claimed] = await redis
      .run('presence-resync', (c) =>
        Promise.all([
          Promise.all(
            leaves.map(([, { room, peerId, userId, reason }]) => remove(c, room, [{ peerId, userId }], reason)),
          ),
          ...locals.map(({ room, peer }) => add(c, room, peer, false)),
          ...(locals.length > 0 ? [c.sAdd(keys.replica(replica), [...new Set(locals.map(({ room }) => room))])] : []),
        ]),
      )
      .catch((error: unknown) => {
        // A lost reply may have given this replica a claim it never heard of.
        for (const room of [...leaves.map(([, { room }]) => room), ...locals.map(({ room }) => room)]) unsure(room);
        throw error;
      });
    for (const claim of claimed) if (claim) void move(claim);
    for (const [key, { room }] of leaves) {
      pendingLeaves.delete(key);
      release(room);
    }
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
    if (stuck.size > 0) await flushStuck();
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
          unsure(room);
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
            unsure(room);
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
      const failed = (error: unknown): void => {
        unsure(room);
        pendingLeaves.set(memberKey(room, peerId), { room, peerId, userId: peer.userId, reason });
        warn('leave', error);
      };
      if (!pends(room)) {
        // One round trip: the webhooks are in the outbox once the script has run.
        redis
          .run('presence-leave', (c) =>
            Promise.all([remove(c, room, [peer], reason), ...(lastHere ? [c.sRem(keys.replica(replica), room)] : [])]),
          )
          .catch(failed);
        return;
      }
      // On a Cluster the room leaves this replica's set only once its webhooks are in the
      // outbox: a replica killed before that is found there by its reaper, which moves them.
      if (lastHere) unreleased.add(room);
      void track(
        redis
          .run('presence-leave', (c) => remove(c, room, [peer], reason))
          .then(async (claim) => {
            if (claim) await move(claim);
            release(room);
          }, failed),
      );
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
        const rooms = [...byRoom(locals)];
        if (!rooms.some(([room]) => pends(room)) && stuck.size === 0 && inFlight.size === 0) {
          await redis
            .run('presence-close', (c) =>
              Promise.all([
                ...rooms.map(([room, peers]) => remove(c, room, peers, reason)),
                c.del(keys.replica(replica)),
                c.zRem(keys.replicas, replica),
              ]),
            )
            .catch((error: unknown) => {
              log.warn({ err: (error as Error).message }, 'presence cleanup failed; peers expire with the replica');
            });
          return;
        }
        // A Cluster: the webhooks of the last leaves are moved before this replica stops
        // being listed; what cannot be is left to the replica that reaps this one.
        const removed = await redis
          .run('presence-close', (c) => Promise.all(rooms.map(([room, peers]) => remove(c, room, peers, reason))))
          .catch((error: unknown) => {
            for (const [room] of rooms) unsure(room);
            log.warn({ err: (error as Error).message }, 'presence cleanup failed; peers expire with the replica');
            return undefined;
          });
        for (const claim of removed ?? []) if (claim) void move(claim);
        // A leave in flight may start a move, and a move may go on with what arrived meanwhile.
        const settled = async () => {
          while (inFlight.size > 0) await Promise.all([...inFlight]);
        };
        await settled();
        if (stuck.size > 0) await flushStuck();
        await settled();
        if (!removed || stuck.size > 0) {
          if (stuck.size > 0) {
            log.warn(
              { rooms: stuck.size },
              'webhooks not moved to the outbox at shutdown; the replica that reaps this one moves them',
            );
            await redis.run('presence-close', (c) => c.sAdd(keys.replica(replica), [...stuck])).catch(() => undefined);
          }
          return;
        }
        await redis
          .run('presence-close', (c) => Promise.all([c.del(keys.replica(replica)), c.zRem(keys.replicas, replica)]))
          .catch((error: unknown) => {
            log.warn(
              { err: (error as Error).message },
              'presence cleanup failed; the replica that reaps this one ends it',
            );
          });
      })();
      return closed;
    },
  };
}
