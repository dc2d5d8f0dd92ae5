import type { Logger } from '../observability/logger.js';
import type { RedisConnection } from '../redis/connection.js';
import { redisKeys } from '../redis/keys.js';
import { lua, runScript } from '../redis/lua.js';
import { createMemoryConnectionCap, type ConnectionCap } from './connection-cap.js';

/** Sums the user's sockets over every replica and counts one more here, if under ARGV[2]. */
const ACQUIRE = lua(`
local total = 0
for _, count in ipairs(redis.call('HVALS', KEYS[1])) do total = total + tonumber(count) end
if total >= tonumber(ARGV[2]) then return 0 end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1`);

const RELEASE = lua(`
if redis.call('HINCRBY', KEYS[1], ARGV[1], -1) <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
return 1`);

/** A safety net only: a count is normally released, or cleaned up when its replica is reaped. */
const FORGET_AFTER_MS = 24 * 3600 * 1000;

export interface RedisConnectionCapOptions {
  limit: number;
  replica: string;
  redis: RedisConnection;
  keyPrefix: string;
  logger: Logger;
}

/**
 * The cap across replicas (`connections:{tag}<user>`, a hash replica -> count), over this
 * replica's own counts. While Redis is unreachable the cap fails open to the per-replica
 * count, and the counts this replica holds are written again when Redis returns.
 */
export function createRedisConnectionCap({
  limit,
  replica,
  redis,
  keyPrefix,
  logger,
}: RedisConnectionCapOptions): ConnectionCap {
  const keys = redisKeys(keyPrefix);
  const local = createMemoryConnectionCap({ limit });
  /** Users whose count Redis may have wrong (a write failed during an outage). */
  const stale = new Set<string>();
  const log = logger.child({ component: 'connection-cap' });

  const resync = async (): Promise<void> => {
    if (stale.size === 0) return;
    const users = [...stale];
    stale.clear();
    try {
      await redis.run('connections-resync', (c) =>
        Promise.all(
          users.map((userId) => {
            const count = local.count(userId);
            const key = keys.connections(userId);
            return count > 0 ? c.hSet(key, replica, count) : c.hDel(key, replica);
          }),
        ),
      );
    } catch {
      for (const userId of users) stale.add(userId);
    }
  };
  const offReady = redis.onReady(() => void resync());

  return {
    async acquire(userId) {
      // Counted here first (the floor that holds while Redis is away), then across replicas.
      if (!(await local.acquire(userId))) return false;
      if (!redis.isReady()) {
        stale.add(userId);
        return true;
      }
      try {
        const admitted = await redis.run('connections-acquire', (c) =>
          runScript(c, ACQUIRE, [keys.connections(userId)], [replica, limit, FORGET_AFTER_MS]),
        );
        if (admitted === 1) return true;
        local.release(userId);
        return false;
      } catch {
        // Fail open: the per-replica count still bounds the user here.
        stale.add(userId);
        return true;
      }
    },
    release(userId) {
      local.release(userId);
      if (!redis.isReady()) {
        stale.add(userId);
        return;
      }
      redis
        .run('connections-release', (c) => runScript(c, RELEASE, [keys.connections(userId)], [replica]))
        .catch(() => {
          stale.add(userId);
        });
    },
    async forgetReplica(gone, userIds) {
      if (userIds.length === 0) return;
      await redis
        .run('connections-forget', (c) => Promise.all(userIds.map((userId) => c.hDel(keys.connections(userId), gone))))
        .catch((error: unknown) => {
          log.warn(
            { err: error instanceof Error ? error.message : String(error) },
            'could not clear counts of a gone replica',
          );
        });
      // This replica's own earlier run: its counts are the ones held now.
      if (gone === replica) for (const userId of userIds) if (local.count(userId) > 0) stale.add(userId);
      await resync();
    },
    close() {
      offReady();
    },
  };
}
