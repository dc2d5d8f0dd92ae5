import type { ServiceScope } from '@switchboard/contract';
import type { Principal } from '../auth/access-token.js';

/** The scope a service JWT needs for the dashboard and every `/api/admin` route. */
export const ADMIN_SCOPE: ServiceScope = 'admin';

export function isAdmin(principal: Principal): boolean {
  return principal.scopes.has(ADMIN_SCOPE);
}
