import { createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import type { AccessKey } from '../config/index.js';

/** The caller an access JWT identifies. */
export interface Principal {
  userId: string;
  name: string;
  /** Scopes of a service JWT (space-separated `scope` claim); empty for users. */
  scopes: string[];
  /** Epoch seconds. */
  expiresAt: number;
}

export class UnauthorizedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnauthorizedError';
  }
}

export interface AccessTokenVerifier {
  verify(token: string): Principal;
}

export interface AccessTokenOptions {
  key: AccessKey;
  issuer: string | undefined;
  audience: string | undefined;
}

/**
 * Keys are imported once. Given a string, jsonwebtoken 9 first tries it as a PEM
 * private and public key on every call, which costs ~0.5 ms under OpenSSL 3.
 */
function importKey(key: AccessKey): KeyObject {
  return key.kind === 'secret' ? createSecretKey(Buffer.from(key.key)) : createPublicKey(key.key);
}

export function createAccessTokenVerifier({ key, issuer, audience }: AccessTokenOptions): AccessTokenVerifier {
  const keyObject = importKey(key);
  const options: jwt.VerifyOptions = {
    // Pinned: never trust the token's own `alg`, so `none` and HS/RS confusion fail.
    algorithms: key.algorithms,
    ...(issuer ? { issuer } : {}),
    ...(audience ? { audience } : {}),
  };
  return {
    verify(token) {
      let payload: string | jwt.JwtPayload;
      try {
        payload = jwt.verify(token, keyObject, options);
      } catch (error) {
        throw new UnauthorizedError(
          error instanceof jwt.TokenExpiredError ? 'access token expired' : 'access token is not valid',
        );
      }
      if (typeof payload === 'string' || typeof payload.sub !== 'string' || payload.sub.length === 0) {
        throw new UnauthorizedError('access token has no subject');
      }
      if (typeof payload.exp !== 'number') throw new UnauthorizedError('access token must expire (exp)');
      const name = typeof payload.name === 'string' && payload.name.length > 0 ? payload.name : payload.sub;
      const scope: unknown = payload.scope;
      return {
        userId: payload.sub.slice(0, 128),
        name: name.slice(0, 64),
        scopes: typeof scope === 'string' ? scope.split(' ').filter(Boolean) : [],
        expiresAt: payload.exp,
      };
    },
  };
}

/** Signs access JWTs for `POST /api/dev/login`; only possible with an HS256 secret. */
export function createDevAccessTokenSigner({ key, issuer, audience }: AccessTokenOptions) {
  const expiresIn = 3600;
  const keyObject = importKey(key);
  return {
    expiresIn,
    sign(userId: string, name: string | undefined): string {
      if (key.kind !== 'secret') throw new Error('dev login needs JWT_SECRET');
      return jwt.sign({ sub: userId, ...(name ? { name } : {}) }, keyObject, {
        algorithm: 'HS256',
        expiresIn,
        ...(issuer ? { issuer } : {}),
        ...(audience ? { audience } : {}),
      });
    },
  };
}
