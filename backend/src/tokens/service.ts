import type { Capability } from '@switchboard/contract';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { RedisConnection } from '../redis/connection.js';
import { createRedisFallback } from '../redis/fallback.js';
import { createMemoryTokenStore, markUsed } from './memory-store.js';
import { createRedisTokenStore } from './redis-store.js';
import { RtcTokenError, type RtcClaims, type RtcTokenCodec } from './rtc-token.js';

export class MintRateLimitedError extends Error {
  constructor(readonly retryAfterSeconds: number) {
    super('rate_limited');
    this.name = 'MintRateLimitedError';
  }
}

/** A refused redemption, with the code the client sees. */
export class RedeemError extends Error {
  constructor(readonly code: 'token_invalid' | 'token_expired' | 'token_used') {
    super(code);
    this.name = 'RedeemError';
  }
}

export interface MintRequest {
  userId: string;
  name: string;
  room: string;
  caps: Capability[];
  /** Epoch seconds at which the caller's own credentials expire. */
  sessionExpiresAt: number;
}

export interface MintedToken {
  token: string;
  jti: string;
  /** Epoch milliseconds. */
  expiresAt: number;
  store: 'redis' | 'memory';
}

export interface TokenService {
  /** Which store new tokens go to right now. */
  currentStore(): 'redis' | 'memory';
  readonly ttlSeconds: number;
  mint(request: MintRequest): Promise<MintedToken>;
  /** Verifies, then consumes: the first redemption anywhere wins. */
  redeem(token: string): Promise<RtcClaims>;
  /** Revokes a live token if `requester` owns it (or is a service); false when there is none. */
  revoke(jti: string, requester: { userId: string; service: boolean }): Promise<boolean>;
  close(): void;
}

export interface TokenServiceOptions {
  codec: RtcTokenCodec;
  redis: RedisConnection | undefined;
  keyPrefix: string;
  mintPerMinute: number;
  memoryCap: number;
  logger: Logger;
  metrics: Metrics;
}

export function createTokenService({
  codec,
  redis,
  keyPrefix,
  mintPerMinute,
  memoryCap,
  logger,
  metrics,
}: TokenServiceOptions): TokenService {
  const log = logger.child({ component: 'tokens' });
  const memory = createMemoryTokenStore({ cap: memoryCap, onExpired: (n) => metrics.tokensExpired.inc(n) });
  const redisStore = redis ? createRedisTokenStore(redis, keyPrefix) : undefined;
  const refreshGauge = () => metrics.fallbackEntries.set(memory.size);
  const { attempt: withFallback, close: stopReplay } = createRedisFallback({
    redis,
    primary: redisStore,
    memory,
    name: 'tokens',
    logger: log,
    onReplayed: (written) => {
      metrics.tokensSynced.inc(written);
      refreshGauge();
    },
  });

  return {
    ttlSeconds: codec.ttlSeconds,
    currentStore: () => (redis?.isReady() ? 'redis' : 'memory'),
    async mint(request) {
      const jti = codec.newJti();
      const expiresAt = (Math.floor(Date.now() / 1000) + codec.ttlSeconds) * 1000;
      const limit = { key: `mint:${request.userId}`, max: mintPerMinute, windowMs: 60_000 };
      const { value: outcome, store } = await withFallback((s) =>
        s.mint({ jti, sub: request.userId, expiresAt }, limit),
      );
      refreshGauge();
      if (!outcome.ok) throw new MintRateLimitedError(Math.max(1, Math.ceil(outcome.retryAfterMs / 1000)));
      const { token, exp } = codec.sign({
        sub: request.userId,
        name: request.name,
        room: request.room,
        caps: request.caps,
        jti,
        sexp: request.sessionExpiresAt,
      });
      metrics.tokensMinted.inc({ store: store.kind });
      return { token, jti, expiresAt: exp * 1000, store: store.kind };
    },
    async redeem(token) {
      let claims: RtcClaims;
      try {
        claims = codec.verify(token);
      } catch (error) {
        const code = error instanceof RtcTokenError ? error.code : 'token_invalid';
        if (code === 'token_expired') metrics.tokensExpired.inc();
        throw new RedeemError(code);
      }
      const { value: outcome, store } = await withFallback((s) => s.redeem(claims.jti));
      let accepted = outcome === 'redeemed';
      if (outcome === 'unknown' && store.kind === 'redis') {
        // Minted while Redis was away and not replayed yet.
        accepted = (await memory.redeem(claims.jti)) === 'redeemed';
      } else if (outcome === 'unknown') {
        // Memory mode or an outage: the signature is proof enough, and single use
        // is enforced on this replica from now on (DESIGN.md, degraded mode).
        markUsed(memory, { jti: claims.jti, sub: claims.sub, expiresAt: claims.exp * 1000 });
        accepted = true;
      }
      refreshGauge();
      if (!accepted) throw new RedeemError('token_used');
      metrics.tokensRedeemed.inc({ store: store.kind });
      return claims;
    },
    async revoke(jti, requester) {
      const { value: owner } = await withFallback((s) => s.owner(jti));
      const local = owner === undefined ? await memory.owner(jti) : undefined;
      const found = owner ?? local;
      if (found === undefined || (!requester.service && found !== requester.userId)) return false;
      const { value: revoked } = await withFallback((s) => s.revoke(jti));
      const revokedLocally = await memory.revoke(jti);
      refreshGauge();
      if (revoked || revokedLocally) metrics.tokensRevoked.inc();
      return revoked || revokedLocally;
    },
    close() {
      stopReplay();
      memory.close();
    },
  };
}
