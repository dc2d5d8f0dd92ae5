import type { Capability } from '@switchboard/contract';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { RedisConnection } from '../redis/connection.js';
import { createRedisFallback, StoreUnavailableError } from '../redis/fallback.js';
import { createMemoryTokenStore } from './memory-store.js';
import { createRedisTokenStore } from './redis-store.js';
import { RtcTokenError, type RtcClaims, type RtcTokenCodec } from './rtc-token.js';
import type { RedeemOutcome, Requester } from './store.js';

export class MintRateLimitedError extends Error {
  constructor(readonly retryAfterSeconds: number) {
    super('rate_limited');
    this.name = 'MintRateLimitedError';
  }
}

/** Tokens cannot be recorded right now: memory mode is full, or Redis is up but did not answer. */
export class TokenStoreUnavailableError extends Error {
  constructor(readonly retryAfterSeconds: number) {
    super('tokens cannot be recorded right now; try again shortly');
    this.name = 'TokenStoreUnavailableError';
  }
}

/**
 * A refused redemption, with the code the client sees. `unavailable`: Redis is up but did not
 * confirm single use in time; the token may or may not be spent, so the client mints a new one.
 */
export class RedeemError extends Error {
  constructor(readonly code: 'token_invalid' | 'token_expired' | 'token_used' | 'token_revoked' | 'unavailable') {
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
  /** Checks signature, audience, expiry and claims; throws a RedeemError. */
  verify(token: string): RtcClaims;
  /** Consumes a verified token: the first redemption anywhere wins; throws a RedeemError. */
  consume(claims: RtcClaims): Promise<void>;
  /** `verify`, then `consume`. */
  redeem(token: string): Promise<RtcClaims>;
  /** Revokes a live token if `requester` owns it (or is a service); false when there is none. */
  revoke(jti: string, requester: Requester): Promise<boolean>;
  /** Refuses, from now on, every token issued so far for `userId` in `room` (`token_revoked`). */
  kick(userId: string, room: string): Promise<void>;
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
      const jti = codec.newJti(request.userId);
      const expiresAt = (Math.floor(Date.now() / 1000) + codec.ttlSeconds) * 1000;
      const limit = { max: mintPerMinute, windowMs: 60_000 };
      const { value: outcome, store } = await withFallback((s) =>
        s.mint({ jti, sub: request.userId, expiresAt }, limit),
      );
      refreshGauge();
      if (!outcome.ok && 'full' in outcome) {
        log.warn({ cap: memoryCap }, 'token map is full: refusing mints until tokens expire (MEMORY_TOKEN_CAP)');
        throw new TokenStoreUnavailableError(Math.min(codec.ttlSeconds, 5));
      }
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
    verify(token) {
      try {
        return codec.verify(token);
      } catch (error) {
        const code = error instanceof RtcTokenError ? error.code : 'token_invalid';
        if (code === 'token_expired') metrics.tokensExpired.inc();
        throw new RedeemError(code);
      }
    },
    async consume(claims) {
      const record = {
        jti: claims.jti,
        sub: claims.sub,
        expiresAt: claims.exp * 1000,
        room: claims.room,
        issuedAt: claims.iat,
      };
      // A kick this replica heard of while Redis was away is not in Redis.
      if (memory.kicked(record.sub, record.room, record.issuedAt)) throw new RedeemError('token_revoked');
      let redeemed: { value: RedeemOutcome; store: { kind: 'redis' | 'memory' } };
      try {
        redeemed = await withFallback((s) => s.redeem(record), { strict: true });
      } catch (error) {
        if (!(error instanceof StoreUnavailableError)) throw error;
        log.warn({ err: error.message }, 'token redemption did not complete while redis is up; refused');
        throw new RedeemError('unavailable');
      }
      const { value: outcome, store } = redeemed;
      let result: RedeemOutcome = outcome;
      if (outcome === 'unknown' && store.kind === 'redis') {
        // Minted while Redis was away and not replayed yet.
        result = await memory.redeem(record);
      } else if (outcome === 'unknown') {
        // Memory mode or an outage: the signature is proof enough, and single use is
        // enforced on this replica from now on (docs/protocol.md, "Guarantees while Redis is unreachable").
        // A full map cannot promise that, so the token is refused rather than trusted.
        if (!memory.markUsed(record)) throw new RedeemError('unavailable');
        result = 'redeemed';
      }
      refreshGauge();
      if (result === 'revoked') throw new RedeemError('token_revoked');
      if (result !== 'redeemed') throw new RedeemError('token_used');
      metrics.tokensRedeemed.inc({ store: store.kind });
    },
    async redeem(token) {
      const claims = this.verify(token);
      await this.consume(claims);
      return claims;
    },
    async revoke(jti, requester) {
      let attempt: { value: boolean; store: { kind: 'redis' | 'memory' } };
      try {
        attempt = await withFallback((s) => s.revoke(jti, requester), { strict: true });
      } catch (error) {
        if (error instanceof StoreUnavailableError) throw new TokenStoreUnavailableError(1);
        throw error;
      }
      const { value: revoked, store } = attempt;
      // A token minted during an outage may still be in the fallback map only.
      const done = revoked || (store.kind === 'redis' && (await memory.revoke(jti, requester)));
      refreshGauge();
      if (done) metrics.tokensRevoked.inc();
      return done;
    },
    async kick(userId, room) {
      const kick = { userId, room, at: Date.now(), expiresAt: Date.now() + codec.ttlSeconds * 1000 + 1_000 };
      await memory.kick(kick);
      try {
        await withFallback((s) => s.kick(kick), { strict: true });
      } catch (error) {
        if (error instanceof StoreUnavailableError) throw new TokenStoreUnavailableError(1);
        throw error;
      }
    },
    close() {
      stopReplay();
      memory.close();
    },
  };
}
