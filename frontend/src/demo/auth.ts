import { SwitchboardError, devLogin, type AccessTokenContext } from '../sdk/index.js';

/** Tokens this close to expiry are replaced before use. */
const EXPIRY_MARGIN_MS = 60_000;

/**
 * Rooms whose name starts with this are not granted by the demo's stand-in login, so a
 * gateway with `ROOM_ACCESS=grants` shows what a refused room looks like.
 */
export const PRIVATE_ROOM_PREFIX = 'private-';

/** Shown as is: the demo cannot sign anyone in, and the person needs to know why. */
export const DEV_LOGIN_OFF =
  'This server has the demo sign-in turned off (DEV_LOGIN=false), so the demo cannot sign you in. ' +
  'To try the demo, run `npm run stack` or docker-compose.dev.yml; a real app signs people in with its own login.';

/**
 * Access tokens for the demo from `POST /api/dev/login`, standing in for a real app's
 * login. Tries each gateway in turn, so signing in survives the loss of one replica.
 * Like an app's login with `ROOM_ACCESS=grants`, the token grants the rooms being joined
 * (except private ones); gateways in `open` mode ignore the grant.
 */
export function createDevAuth(gateways: readonly string[], userId: string, name: string, joined: readonly string[]) {
  const rooms = Object.fromEntries(
    joined.filter((room) => !room.startsWith(PRIVATE_ROOM_PREFIX)).map((room) => [room, ['publish' as const]]),
  );
  let cached: { token: string; expiresAt: number } | undefined;
  return async ({ forceRefresh }: AccessTokenContext): Promise<string> => {
    if (!forceRefresh && cached && cached.expiresAt - Date.now() > EXPIRY_MARGIN_MS) return cached.token;
    let lastError: unknown = new SwitchboardError('unreachable');
    for (const gateway of gateways) {
      try {
        const login = await devLogin(gateway, userId, name, { rooms });
        cached = { token: login.accessToken, expiresAt: Date.now() + login.expiresIn * 1000 };
        return login.accessToken;
      } catch (error) {
        lastError = error;
        if (!(error instanceof SwitchboardError)) continue;
        if (error.code === 'not_found') {
          throw new SwitchboardError('unauthorized', DEV_LOGIN_OFF);
        }
        if (error.code !== 'unreachable' && error.code !== 'timeout') throw error;
      }
    }
    throw lastError;
  };
}

/** A user id for a display name: readable, valid for the gateway, and unique per tab. */
export function userIdFor(name: string): string {
  const slug = name
    .toLowerCase()
    .normalize('NFKD')
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40);
  const suffix = Math.random().toString(36).slice(2, 8);
  return `${slug || 'guest'}-${suffix}`;
}
