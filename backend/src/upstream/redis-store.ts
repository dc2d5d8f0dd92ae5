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

// Every Redis call of upstream sessions lives in this file. Each script touches the two
// keys of one owner, which share the hash tag `{<owner tag>}`, so they run on Cluster.

/** KEYS: slots. ARGV: now, max, id, holdUntil. Returns {1} or {0, earliest expiry}. */
const RESERVE = lua(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return {0, redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2]}
end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[3])
redis.call('PEXPIREAT', KEYS[1], redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')[2])
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
 * Keys (redis/keys.ts): the owner's sorted set of live ids scored by expiry, and one
 * record per secret (JSON) with a TTL equal to the secret's remaining lifetime.
 */
export function createRedisUpstreamStore(redis: RedisConnection, keyPrefix: string): RedisUpstreamStore {
  const redisKeysOf = redisKeys(keyPrefix);
  const keys = (id: string): { slots: string; record: string } => {
    const parsed = parseUpstreamId(id);
    if (!parsed) throw new Error('malformed upstream id');
    return { slots: redisKeysOf.upstreamSlots(parsed.tag), record: redisKeysOf.upstreamRecord(parsed.tag, parsed.key) };
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
    async reserve(id, holdUntil, max): Promise<ReserveOutcome> {
      const now = Date.now();
      const reply = await redis.run('upstream-reserve', (c) =>
        runScript(c, RESERVE, [keys(id).slots], [now, max, id, holdUntil]),
      );
      if (Array.isArray(reply) && reply[0] === 1) return { ok: true };
      const earliest = Array.isArray(reply) ? Number(reply[1]) : Number.NaN;
      return { ok: false, retryAfterMs: Number.isFinite(earliest) ? Math.max(1, earliest - now) : 1_000 };
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
