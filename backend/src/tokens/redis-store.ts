import type { RedisConnection } from '../redis/connection.js';
import type { MintLimit, MintOutcome, RedeemOutcome, TokenRecord, TokenStore } from './store.js';

export interface RedisTokenStore extends TokenStore {
  /** Replays fallback-map entries: live tokens with their remaining TTL, used ones deleted. */
  replay(entries: Array<{ jti: string; sub: string; expiresAt: number; used: boolean }>): Promise<number>;
}

/** Keys: `<prefix>rtc:token:<jti>` holds the owner; `<prefix>ratelimit:mint:<user>` counts mints. */
export function createRedisTokenStore(redis: RedisConnection, keyPrefix: string): RedisTokenStore {
  const tokenKey = (jti: string) => `${keyPrefix}rtc:token:${jti}`;
  const limitKey = (key: string) => `${keyPrefix}ratelimit:${key}`;

  return {
    kind: 'redis',
    async mint(record: TokenRecord, limit: MintLimit): Promise<MintOutcome> {
      const ttlMs = Math.max(1, record.expiresAt - Date.now());
      const bucket = limitKey(limit.key);
      // One round trip: count the mint, start the window, and store the token.
      const [count, , , windowTtl] = await redis.run('mint', (c) =>
        c
          .multi()
          .incr(bucket)
          .pExpire(bucket, limit.windowMs, 'NX')
          .set(tokenKey(record.jti), record.sub, { PX: ttlMs })
          .pTTL(bucket)
          .execAsPipeline(),
      );
      if (typeof count === 'number' && count > limit.max) {
        // Rare path: the token was stored before the count was known; it is never handed out.
        await redis.run('mint-rollback', (c) => c.del(tokenKey(record.jti))).catch(() => undefined);
        return { ok: false, retryAfterMs: typeof windowTtl === 'number' && windowTtl > 0 ? windowTtl : limit.windowMs };
      }
      return { ok: true };
    },
    async redeem(jti: string): Promise<RedeemOutcome> {
      const owner = await redis.run('redeem', (c) => c.getDel(tokenKey(jti)));
      return owner === null ? 'unknown' : 'redeemed';
    },
    async owner(jti: string) {
      return (await redis.run('owner', (c) => c.get(tokenKey(jti)))) ?? undefined;
    },
    async revoke(jti: string) {
      return (await redis.run('revoke', (c) => c.del(tokenKey(jti)))) > 0;
    },
    async replay(entries) {
      if (entries.length === 0) return 0;
      const now = Date.now();
      const replayed = await redis.run('replay', (c) => {
        const pipeline = c.multi();
        let live = 0;
        for (const e of entries) {
          const remaining = e.expiresAt - now;
          if (remaining <= 0) continue;
          if (e.used) pipeline.del(tokenKey(e.jti));
          else {
            pipeline.set(tokenKey(e.jti), e.sub, { PX: remaining, NX: true });
            live++;
          }
        }
        return pipeline.execAsPipeline().then(() => live);
      });
      return replayed;
    },
  };
}
