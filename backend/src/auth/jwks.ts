import { createLocalJWKSet, createRemoteJWKSet, errors, type JWTVerifyGetKey } from 'jose';
import type { Logger } from '../observability/logger.js';
import { IdentityUnavailableError } from './errors.js';

export interface JwksKeysOptions {
  url: string;
  /** How long a fetched key set is used before it is fetched again. */
  cacheMaxAgeMs: number;
  /**
   * After a successful fetch, the least time before a token with an unknown `kid` may
   * trigger another; after a failed one, the time before the endpoint is asked again.
   */
  cooldownMs: number;
  /** A fetch that takes longer is abandoned. */
  timeoutMs: number;
  logger: Logger;
}

/**
 * Failures that say the token is the problem, not the key set: a `kid` the freshly
 * fetched set does not hold, an ambiguous or unsupported key choice.
 */
const TOKEN_PROBLEMS: ReadonlySet<string> = new Set([
  errors.JWKSNoMatchingKey.code,
  errors.JWKSMultipleMatchingKeys.code,
  errors.JOSENotSupported.code,
]);

function isTokenProblem(error: unknown): boolean {
  return error instanceof errors.JOSEError && TOKEN_PROBLEMS.has(error.code);
}

/** fetch() says only "fetch failed"; the reason (ECONNREFUSED, ENOTFOUND) is its cause. */
function reason(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  return error.cause instanceof Error ? `${error.message}: ${error.cause.message}` : error.message;
}

/**
 * Resolves the key of an access JWT by `kid` from an identity provider's JWKS, with
 * jose's cache, cooldown and timeout. On top of jose, two rules for an endpoint that
 * fails (unreachable, slow, not 200, not a key set):
 *
 * - keys fetched before keep working, so an outage of the identity provider does not
 *   sign everyone out, and only tokens signed by a key not seen yet are refused;
 * - the endpoint is not asked again until the cooldown has passed, so an outage costs
 *   one timeout per cooldown instead of one per request.
 *
 * Refusals for an unreachable key set are `IdentityUnavailableError`, never a hang.
 */
export function createJwksKeys(options: JwksKeysOptions): JWTVerifyGetKey {
  const remote = createRemoteJWKSet(new URL(options.url), {
    cacheMaxAge: options.cacheMaxAgeMs,
    cooldownDuration: options.cooldownMs,
    timeoutDuration: options.timeoutMs,
  });
  const endpoint = new URL(options.url);
  // Query strings sometimes carry a tenant key; the log names only where it went.
  const log = options.logger.child({ component: 'jwks', jwks: `${endpoint.origin}${endpoint.pathname}` });
  let failing = false;
  let retryAt = 0;
  let lastGood: JWTVerifyGetKey | undefined;

  const unavailable = (why: string) =>
    new IdentityUnavailableError(
      `the identity provider's keys cannot be fetched (${why}); try again later`,
      Math.max(1, Math.ceil((retryAt - Date.now()) / 1000)),
    );

  const fromLastGood: JWTVerifyGetKey = async (header, token) => {
    if (!lastGood) throw unavailable('no keys were fetched yet');
    try {
      return await lastGood(header, token);
    } catch (error) {
      // The token may be signed by a key published since the last fetch.
      if (error instanceof errors.JWKSNoMatchingKey) throw unavailable('its key is not among those fetched before');
      throw error;
    }
  };

  const failed = (error: unknown): void => {
    retryAt = Date.now() + options.cooldownMs;
    if (!failing) {
      failing = true;
      log.warn(
        { err: reason(error), retryInMs: options.cooldownMs },
        'identity provider keys cannot be fetched; using the keys fetched before',
      );
    }
    const known = remote.jwks();
    lastGood = known ? createLocalJWKSet(known) : undefined;
  };

  return async (header, token) => {
    if (failing) {
      if (Date.now() < retryAt) return fromLastGood(header, token);
      // One probe per cooldown (jose shares it between concurrent callers).
      try {
        await remote.reload();
      } catch (error) {
        failed(error);
        return fromLastGood(header, token);
      }
      if (failing) {
        failing = false;
        lastGood = undefined;
        log.info('identity provider keys fetched again');
      }
    }
    try {
      return await remote(header, token);
    } catch (error) {
      if (isTokenProblem(error)) throw error;
      failed(error);
      return fromLastGood(header, token);
    }
  };
}
