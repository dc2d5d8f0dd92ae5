import type { Logger } from '../observability/logger.js';
import type { RedisConnection } from '../redis/connection.js';
import { redisKeys } from '../redis/keys.js';
import { lua, runScript } from '../redis/lua.js';

/** How many sockets one user may hold at once, across every replica. */
export interface ConnectionCap {
  /** Counts a socket of `userId` here; false (and nothing counted) when the user is at the cap. */
  acquire(userId: string): Promise<boolean>;
  release(userId: string): void;
  /** A replica is gone: its sockets no longer count. */
  forgetReplica(replica: string, userIds: string[]): Promise<void>;
  close(): void;
}

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

export interface ConnectionCapOptions {
  limit: number;
  replica: string;
  redis: RedisConnection | undefined;
  keyPrefix: string;
  logger: Logger;
}

/**
 * Per-user socket counts: always on this replica, and in Redis (`connections:{tag}<user>`,
 * a hash replica -> count) when it is configured, so the cap holds cluster-wide. While
 * Redis is unreachable the cap fails open to the per-replica count, and the counts this
 * replica holds are written again when Redis returns.
 */
export function createConnectionCap({ limit, replica, redis, keyPrefix, logger }: ConnectionCapOptions): ConnectionCap {
  const keys = redisKeys(keyPrefix);
  const local = new Map<string, number>();
  /** Users whose count Redis may have wrong (a write failed during an outage). */
  const stale = new Set<string>();
  const log = logger.child({ component: 'connection-cap' });

  const bump = (userId: string, by: number): void => {
    const count = (local.get(userId) ?? 0) + by;
    if (count > 0) local.set(userId, count);
    else local.delete(userId);
  };

  const resync = async (): Promise<void> => {
    if (!redis || stale.size === 0) return;
    const users = [...stale];
    stale.clear();
    try {
      await redis.run('connections-resync', (c) =>
        Promise.all(
          users.map((userId) => {
            const count = local.get(userId) ?? 0;
            const key = keys.connections(userId);
            return count > 0 ? c.hSet(key, replica, count) : c.hDel(key, replica);
          }),
        ),
      );
    } catch {
      for (const userId of users) stale.add(userId);
    }
  };
  const offReady = redis?.onReady(() => void resync());

  return {
    async acquire(userId) {
      if ((local.get(userId) ?? 0) >= limit) return false;
      if (redis?.isReady()) {
        try {
          const admitted = await redis.run('connections-acquire', (c) =>
            runScript(c, ACQUIRE, [keys.connections(userId)], [replica, limit, FORGET_AFTER_MS]),
          );
          if (admitted !== 1) return false;
        } catch {
          // Fail open: the per-replica count still bounds the user here.
          stale.add(userId);
        }
      } else if (redis) stale.add(userId);
      bump(userId, 1);
      return true;
    },
    release(userId) {
      bump(userId, -1);
      if (!redis) return;
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
      if (!redis || userIds.length === 0) return;
      await redis
        .run('connections-forget', (c) => Promise.all(userIds.map((userId) => c.hDel(keys.connections(userId), gone))))
        .catch((error: unknown) => {
          log.warn(
            { err: error instanceof Error ? error.message : String(error) },
            'could not clear counts of a gone replica',
          );
        });
      // This replica's own earlier run: its counts are the ones held now.
      if (gone === replica) for (const userId of userIds) if (local.has(userId)) stale.add(userId);
      await resync();
    },
    close() {
      offReady?.();
    },
  };
}
