import { createHmac } from 'node:crypto';
import type { IceServer } from '@switchboard/contract';

export interface IceServerOptions {
  stunUrls: string[];
  turnUrls: string[];
  turnSecret: string | undefined;
  turnTtlSeconds: number;
}

/**
 * STUN as configured, plus TURN with coturn `use-auth-secret` credentials:
 * username `<expiry>:<userId>`, credential base64(HMAC-SHA1(secret, username)).
 */
export function iceServersFor(userId: string, options: IceServerOptions, nowMs = Date.now()): IceServer[] {
  const servers: IceServer[] = [];
  if (options.stunUrls.length > 0) servers.push({ urls: options.stunUrls });
  if (options.turnUrls.length > 0 && options.turnSecret) {
    const username = `${Math.floor(nowMs / 1000) + options.turnTtlSeconds}:${userId}`;
    const credential = createHmac('sha1', options.turnSecret).update(username).digest('base64');
    servers.push({ urls: options.turnUrls, username, credential });
  }
  return servers;
}
