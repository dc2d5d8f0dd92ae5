import jwt from 'jsonwebtoken';
import type { DevLoginResponse } from '@switchboard/contract';
import type { Config } from '../config/index.js';
import { ADMIN_SCOPE } from './scope.js';

/**
 * The dashboard's sign-in in development: an access JWT with scope `admin`, signed like
 * the dev login's (HS256 with JWT_SECRET). Undefined wherever the dev login is off, so
 * production needs a real service token from the identity provider.
 */
export function createDevAdminToken(config: Config): (() => DevLoginResponse) | undefined {
  const { key, issuer, audience, scopeClaim, scopePrefix } = config.accessJwt;
  if (!config.devLogin || key.kind !== 'secret') return undefined;
  const expiresIn = 3600;
  return () => ({
    accessToken: jwt.sign(
      { sub: 'dev-admin', name: 'Dev admin', [scopeClaim]: `${scopePrefix}${ADMIN_SCOPE}` },
      key.key,
      {
        algorithm: 'HS256',
        expiresIn,
        ...(issuer ? { issuer } : {}),
        ...(audience ? { audience } : {}),
      },
    ),
    expiresIn,
  });
}
