import type { RedisConnection } from '../redis/connection.js';
import { redisKeys } from '../redis/keys.js';
import { lua, runScript } from '../redis/lua.js';
import { parseUpstreamId } from './ids.js';
import {
  isStoredRecord,
  type ReserveOutcome,
  type StoredRecord,
  type UpstreamRecord,
  type UpstreamStore,
} from './store.js';

// Every Redis call of upstream sessions lives in this file. Each script touches the keys
// of one owner, which share the hash tag `{<owner tag>}`, so they run on Cluster.

/**
 * KEYS: slots, mints. ARGV: now, live max, id, holdUntil, per-window max, window ms.
 * Returns {1}, or {0, ms until both limits leave room, the limit that waits longest}.
 * Both limits in one round trip, so concurrent mints on several replicas cannot
 * overshoot either of them.
 */
const RESERVE = lua(`
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[6])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
local wait, limit = 0, ''
local live, liveMax = redis.call('ZCARD', KEYS[1]), tonumber(ARGV[2])
if live >= liveMax then
  wait = tonumber(redis.call('ZRANGE', KEYS[1], live - liveMax, live - liveMax, 'WITHSCORES')[2]) - now
  limit = 'live'
end
local minted, mintMax = redis.call('ZCARD', KEYS[2]), tonumber(ARGV[5])
if minted >= mintMax then
  local leaves = tonumber(redis.call('ZRANGE', KEYS[2], minted - mintMax, minted - mintMax, 'WITHSCORES')[2]) + window - now
  if leaves > wait then wait, limit = leaves, 'rate' end
end
if limit ~= '' then return {0, math.max(1, wait), limit} end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[3])
redis.call('PEXPIREAT', KEYS[1], redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')[2])
redis.call('ZADD', KEYS[2], now, ARGV[3])
redis.call('PEXPIRE', KEYS[2], window)
return {1}`);

/** KEYS: slots, record. ARGV: id, expiresAt, record JSON, ttlMs. */
const COMMIT = lua(`
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
redis.call('PEXPIREAT', KEYS[1], redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')[2])
return 1`);

/** KEYS: slots, record. ARGV: id. Returns how many records were deleted. */
const REMOVE = lua(`
redis.call('ZREM', KEYS[1], ARGV[1])
return redis.call('DEL', KEYS[2])`);

export interface RedisUpstreamStore extends UpstreamStore {
  /** Writes records minted while Redis was away, with their remaining lifetime; returns how many. */
  replay(records: UpstreamRecord[]): Promise<number>;
}

/**
 * Keys (redis/keys.ts): the owner's sorted set of live ids scored by expiry, the owner's
 * sorted set of reservations in the rate window scored by when they were made, and one
 * record per secret (JSON) with a TTL equal to the secret's remaining lifetime. Every
 * key expires on its own: nothing of an idle owner stays behind.
 */
export function createRedisUpstreamStore(redis: RedisConnection, keyPrefix: string): RedisUpstreamStore {
  const redisKeysOf = redisKeys(keyPrefix);
  const keys = (id: string): { slots: string; mints: string; record: string } => {
    const parsed = parseUpstreamId(id);
    if (!parsed) throw new Error('malformed upstream id');
    return {
      slots: redisKeysOf.upstreamSlots(parsed.tag),
      mints: redisKeysOf.upstreamMints(parsed.tag),
      record: redisKeysOf.upstreamRecord(parsed.tag, parsed.key),
    };
  };

  const commit = async (record: UpstreamRecord, operation: string): Promise<boolean> => {
    const ttlMs = Math.ceil(record.expiresAt - Date.now());
    if (ttlMs <= 0) return false;
    const { id, ...stored } = record;
    const { slots, record: recordKey } = keys(id);
    await redis.run(operation, (c) =>
      runScript(
        c,
        COMMIT,
        [slots, recordKey],
        [id, record.expiresAt, JSON.stringify(stored satisfies StoredRecord), ttlMs],
      ),
    );
    return true;
  };

  return {
    kind: 'redis',
    async reserve(id, holdUntil, limits): Promise<ReserveOutcome> {
      const { slots, mints } = keys(id);
      const reply = await redis.run('upstream-reserve', (c) =>
        runScript(
          c,
          RESERVE,
          [slots, mints],
          [Date.now(), limits.live, id, holdUntil, limits.perWindow, limits.windowMs],
        ),
      );
      if (!Array.isArray(reply)) throw new Error('unexpected reply to the upstream reservation');
      if (reply[0] === 1) return { ok: true };
      const wait = Number(reply[1]);
      return {
        ok: false,
        limit: reply[2] === 'rate' ? 'rate' : 'live',
        retryAfterMs: Number.isFinite(wait) ? Math.max(1, wait) : 1_000,
      };
    },
    async commit(record) {
      await commit(record, 'upstream-commit');
    },
    async release(id) {
      await redis.run('upstream-release', (c) => c.zRem(keys(id).slots, id));
    },
    async get(id) {
      const text = await redis.run('upstream-get', (c) => c.get(keys(id).record));
      if (text === null) return undefined;
      let stored: unknown;
      try {
        stored = JSON.parse(text);
      } catch {
        return undefined;
      }
      return isStoredRecord(stored) ? { id, ...stored } : undefined;
    },
    async remove(id) {
      const { slots, record } = keys(id);
      const deleted = await redis.run('upstream-remove', (c) => runScript(c, REMOVE, [slots, record], [id]));
      return deleted === 1;
    },
    async replay(records) {
      let written = 0;
      for (const record of records) if (await commit(record, 'upstream-replay')) written++;
      return written;
    },
  };
}
