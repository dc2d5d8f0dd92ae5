/** How many sockets one user may hold at once, across every replica. */
export interface ConnectionCap {
  /** Counts a socket of `userId` here; false (and nothing counted) when the user is at the cap. */
  acquire(userId: string): Promise<boolean>;
  release(userId: string): void;
  /** A replica is gone: its sockets no longer count. */
  forgetReplica(replica: string, userIds: string[]): Promise<void>;
  close(): void;
}

/** Per-user socket counts on one replica: memory mode's cap, and the Redis driver's floor. */
export interface MemoryConnectionCap extends ConnectionCap {
  /** The user's sockets counted here. */
  count(userId: string): number;
}

/** The cap of one replica (memory mode): the count this process holds is the whole truth. */
export function createMemoryConnectionCap({ limit }: { limit: number }): MemoryConnectionCap {
  const local = new Map<string, number>();
  const bump = (userId: string, by: number): void => {
    const count = (local.get(userId) ?? 0) + by;
    if (count > 0) local.set(userId, count);
    else local.delete(userId);
  };
  return {
    acquire(userId) {
      if ((local.get(userId) ?? 0) >= limit) return Promise.resolve(false);
      bump(userId, 1);
      return Promise.resolve(true);
    },
    release: (userId) => bump(userId, -1),
    count: (userId) => local.get(userId) ?? 0,
    forgetReplica: () => Promise.resolve(),
    close: () => undefined,
  };
}
