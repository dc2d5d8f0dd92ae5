import { createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';
import { errors, jwtVerify } from 'jose';
import jwt from 'jsonwebtoken';
import { SERVICE_SCOPES, type ServiceScope } from '@switchboard/contract';
import type { AccessKey } from '../config/index.js';
import type { Logger } from '../observability/logger.js';
import { UnauthorizedError } from './errors.js';
import { createJwksKeys } from './jwks.js';

export { IdentityUnavailableError, UnauthorizedError } from './errors.js';

/** The caller an access JWT identifies. */
export interface Principal {
  userId: string;
  name: string;
  /** The named scopes a service JWT carries (empty for users): others in the claim grant nothing. */
  scopes: ReadonlySet<ServiceScope>;
  /** Epoch seconds. */
  expiresAt: number;
  /** Every claim of the verified token, for room grants and the room authorizer. */
  claims: Readonly<Record<string, unknown>>;
}

export interface AccessTokenVerifier {
  /** Rejects with `UnauthorizedError`, or `IdentityUnavailableError` when the keys cannot be fetched. */
  verify(token: string): Promise<Principal>;
}

export interface AccessTokenOptions {
  key: AccessKey;
  issuer: string | undefined;
  audience: string | undefined;
  /** Claim holding the scopes: a space-separated string (`scope`) or an array (Okta's `scp`). */
  scopeClaim: string;
  /** Namespace of the gateway's scopes at the identity provider, e.g. `switchboard:`. */
  scopePrefix: string;
}

const NO_SCOPES: ReadonlySet<ServiceScope> = new Set();
const isServiceScope = (name: string): name is ServiceScope => (SERVICE_SCOPES as readonly string[]).includes(name);

/** The gateway's named scopes in a scope claim; `openid profile` and the like grant nothing. */
export function scopesOf(claim: unknown, prefix: string): ReadonlySet<ServiceScope> {
  const names = typeof claim === 'string' ? claim.split(/\s+/) : Array.isArray(claim) ? claim : [];
  let scopes: Set<ServiceScope> | undefined;
  for (const name of names) {
    if (typeof name !== 'string' || !name.startsWith(prefix)) continue;
    const scope = name.slice(prefix.length);
    if (isServiceScope(scope)) (scopes ??= new Set()).add(scope);
  }
  return scopes ?? NO_SCOPES;
}

/** The checks every access JWT passes after its signature, whoever signed it. */
function principalOf(payload: Record<string, unknown>, scopeClaim: string, scopePrefix: string): Principal {
  const { sub, exp, name } = payload;
  if (typeof sub !== 'string' || sub.length === 0) throw new UnauthorizedError('access token has no subject');
  if (typeof exp !== 'number') throw new UnauthorizedError('access token must expire (exp)');
  const shown = typeof name === 'string' && name.length > 0 ? name : sub;
  return {
    userId: sub.slice(0, 128),
    name: shown.slice(0, 64),
    scopes: scopesOf(payload[scopeClaim], scopePrefix),
    expiresAt: exp,
    claims: payload,
  };
}

/**
 * Keys are imported once. Given a string, jsonwebtoken 9 first tries it as a PEM
 * private and public key on every call, which costs ~0.5 ms under OpenSSL 3.
 */
function importKey(key: Exclude<AccessKey, { kind: 'jwks' }>): KeyObject {
  return key.kind === 'secret' ? createSecretKey(Buffer.from(key.key)) : createPublicKey(key.key);
}

export function createAccessTokenVerifier(options: AccessTokenOptions & { logger: Logger }): AccessTokenVerifier {
  const { key, issuer, audience, scopeClaim, scopePrefix } = options;
  if (key.kind === 'jwks') {
    const keys = createJwksKeys({ ...key, logger: options.logger });
    // Pinned: never trust the token's own `alg`, so `none` and HS/RS confusion fail.
    const verifyOptions = { algorithms: key.algorithms, issuer, audience };
    return {
      async verify(token) {
        let payload: Record<string, unknown>;
        try {
          ({ payload } = await jwtVerify(token, keys, verifyOptions));
        } catch (error) {
          if (error instanceof UnauthorizedError || !(error instanceof errors.JOSEError)) throw error;
          throw new UnauthorizedError(
            error instanceof errors.JWTExpired
              ? 'access token expired'
              : error instanceof errors.JWKSNoMatchingKey
                ? 'access token is signed by a key the identity provider does not publish'
                : 'access token is not valid',
          );
        }
        return principalOf(payload, scopeClaim, scopePrefix);
      },
    };
  }

  const keyObject = importKey(key);
  const verifyOptions: jwt.VerifyOptions = {
    // Pinned, as above.
    algorithms: key.algorithms,
    ...(issuer ? { issuer } : {}),
    ...(audience ? { audience } : {}),
  };
  const check = (token: string): Principal => {
    let payload: string | jwt.JwtPayload;
    try {
      payload = jwt.verify(token, keyObject, verifyOptions);
    } catch (error) {
      throw new UnauthorizedError(
        error instanceof jwt.TokenExpiredError ? 'access token expired' : 'access token is not valid',
      );
    }
    if (typeof payload === 'string') throw new UnauthorizedError('access token has no subject');
    return principalOf(payload, scopeClaim, scopePrefix);
  };
  // A promise like the JWKS verifier's, so callers handle one shape.
  return { verify: (token) => Promise.resolve(token).then(check) };
}

/** Signs access JWTs for `POST /api/dev/login`; only possible with an HS256 secret. */
export function createDevAccessTokenSigner({ key, issuer, audience }: AccessTokenOptions) {
  if (key.kind !== 'secret') throw new Error('dev login needs JWT_SECRET');
  const expiresIn = 3600;
  const keyObject = importKey(key);
  return {
    expiresIn,
    /** `rooms` becomes the room-grants claim, so the demo and tests can try every access mode. */
    sign(userId: string, name: string | undefined, rooms?: Record<string, string[]>, roomsClaim = 'rooms'): string {
      const claims = { sub: userId, ...(name ? { name } : {}), ...(rooms ? { [roomsClaim]: rooms } : {}) };
      return jwt.sign(claims, keyObject, {
        algorithm: 'HS256',
        expiresIn,
        ...(issuer ? { issuer } : {}),
        ...(audience ? { audience } : {}),
      });
    },
  };
}
