import { GUARD_LATE, guardArgument, lateAware } from '../redis/late.js';
import { lua, runScript } from '../redis/lua.js';
import type { RedisConnection } from '../redis/connection.js';
import type { TokenSnapshot } from './memory-store.js';
import { redisKeys } from '../redis/keys.js';
import type { KickRecord, MintLimit, MintOutcome, RedeemOutcome, TokenStore } from './store.js';

export interface RedisTokenStore extends TokenStore {
  /** Replays fallback-map entries with their remaining TTL: live ones, and used or revoked marks. */
  replay(entries: TokenSnapshot[]): Promise<number>;
}

const REVOKED = '!revoked';
const USED = '!used';

/**
 * Counts the mint in the user's window and stores the token, or answers the window's
 * remaining ms. Guarded (redis/late.ts): a mint that timed out was served from memory,
 * and replayed from there when Redis answers again, so a late copy must not land (it
 * would overwrite a used mark replayed by another replica).
 */
const MINT = lua(`${GUARD_LATE}
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if count > tonumber(ARGV[1]) then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl < 0 then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    ttl = tonumber(ARGV[2])
  end
  return ttl
end
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
return 0`);

/**
 * Consumes a live token (returning its owner); a revocation mark stays until it expires.
 * KEYS[2]: the kick mark of the token's user and room (same slot): a token issued (ARGV[1],
 * epoch seconds) up to the kick's time (ms) is refused as revoked.
 * Guarded: a redemption that timed out did not admit anyone through Redis, so a late
 * copy must not consume the token (a retry with it would be refused as used).
 */
const REDEEM = lua(`${GUARD_LATE}
local kicked = redis.call('GET', KEYS[2])
if kicked and tonumber(ARGV[1]) * 1000 <= tonumber(kicked) then return '${REVOKED}' end
local value = redis.call('GET', KEYS[1])
if value and value ~= '${REVOKED}' then redis.call('DEL', KEYS[1]) end
return value`);

/** Keeps the latest kick time (ARGV[1], ms) for ARGV[2] ms. */
const KICK = lua(`
local known = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > known then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
else redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1`);

/** Marks a live token revoked if the requester owns it (ARGV[1]) or is a service (ARGV[2] = 1). */
const REVOKE = lua(`
local owner = redis.call('GET', KEYS[1])
if not owner or string.sub(owner, 1, 1) == '!' then return 0 end
if ARGV[2] ~= '1' and owner ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], '${REVOKED}', 'KEEPTTL')
return 1`);

/**
 * Every jti starts with its owner's slot tag, so a mint's two keys (the user's window and
 * the token) share a Cluster slot, and a token's key can be found from its jti alone.
 */
export function createRedisTokenStore(redis: RedisConnection, keyPrefix: string): RedisTokenStore {
  const keys = redisKeys(keyPrefix);
  const tokenKey = keys.token;

  return {
    kind: 'redis',
    async mint(record, limit: MintLimit): Promise<MintOutcome> {
      const ttlMs = Math.max(1, record.expiresAt - Date.now());
      const retryAfterMs = await redis.run('mint', (c) =>
        lateAware(
          'mint',
          runScript(
            c,
            MINT,
            [keys.mintWindow(record.sub), tokenKey(record.jti)],
            [limit.max, limit.windowMs, record.sub, ttlMs, guardArgument(redis)],
          ),
        ),
      );
      return typeof retryAfterMs === 'number' && retryAfterMs > 0 ? { ok: false, retryAfterMs } : { ok: true };
    },
    async redeem(record): Promise<RedeemOutcome> {
      const value = await redis.run('redeem', (c) =>
        lateAware(
          'redeem',
          runScript(
            c,
            REDEEM,
            [tokenKey(record.jti), keys.kick(record.sub, record.room)],
            // Last, whatever is added before it: see GUARD_LATE.
            [record.issuedAt, guardArgument(redis)],
          ),
        ),
      );
      if (typeof value !== 'string') return 'unknown';
      if (value === REVOKED) return 'revoked';
      return value === USED ? 'used' : 'redeemed';
    },
    async revoke(jti, requester) {
      const revoked = await redis.run('revoke', (c) =>
        runScript(c, REVOKE, [tokenKey(jti)], [requester.userId, requester.service ? 1 : 0]),
      );
      return revoked === 1;
    },
    async kick({ userId, room, at, expiresAt }: KickRecord) {
      const ttlMs = Math.max(1, expiresAt - Date.now());
      await redis.run('kick', (c) => runScript(c, KICK, [keys.kick(userId, room)], [at, ttlMs]));
    },
    async replay(entries) {
      const now = Date.now();
      const live = entries.filter((e) => e.expiresAt > now);
      if (live.length === 0) return 0;
      // One command per entry, sent together: entries hash to many slots, so no MULTI.
      await redis.run('replay', (c) =>
        Promise.all(
          live.map((e) => {
            const value = e.state === 'minted' ? e.sub : e.state === 'used' ? USED : REVOKED;
            // A mark overwrites; a live token is only written where Redis has no word on it yet.
            return c.set(tokenKey(e.jti), value, {
              PX: e.expiresAt - now,
              ...(e.state === 'minted' ? { NX: true } : {}),
            });
          }),
        ),
      );
      return live.filter((e) => e.state === 'minted').length;
    },
  };
}
