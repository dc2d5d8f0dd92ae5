import { backoffDelay, type ResolvedBackoff } from './backoff.js';
import type { ClientErrorCode } from './errors.js';

/** Why a connection attempt or a live connection ended. */
export type ConnectionFailure =
  /** Refused at the handshake (`connect_error`), failed to mint, or the transport never opened. */
  | { kind: 'error'; code: ClientErrorCode; retryAfterMs?: number }
  /** A live socket went away; `reason` is Socket.IO's disconnect reason. */
  | { kind: 'disconnect'; reason: string }
  /** The replica announced `server:shutdown` before disconnecting us. */
  | { kind: 'shutdown'; reconnectAfterMs: number };

export type RetryPlan =
  | {
      action: 'retry';
      delayMs: number;
      /** Try the next gateway URL: this one is gone, draining or unreachable. */
      rotate: boolean;
      code: ClientErrorCode | undefined;
    }
  | { action: 'fail'; code: ClientErrorCode };

/** Codes no retry can fix: the user or the deployment must act first. */
export const FATAL_CODES: ReadonlySet<ClientErrorCode> = new Set<ClientErrorCode>([
  'origin_forbidden',
  'unauthorized',
  'forbidden',
  'invalid_request',
  'not_found',
  'closed',
  // The app removed this user: coming back is the app's decision, with a new join.
  'kicked',
]);

/** Codes that say "this gateway, not you": another URL may well work. */
const ROTATE_CODES: ReadonlySet<ClientErrorCode> = new Set<ClientErrorCode>([
  'unreachable',
  'server_draining',
  'timeout',
  'internal',
]);

/** Disconnect reasons where the replica itself was lost, rather than it ending our session. */
const TRANSPORT_LOSS = new Set(['transport close', 'transport error', 'ping timeout', 'parse error']);

export function isFatal(code: ClientErrorCode): boolean {
  return FATAL_CODES.has(code);
}

/**
 * What to do after a failure. `attempt` counts failures since the last good session,
 * so the first retry after a long healthy connection is quick.
 */
export function planRetry(
  failure: ConnectionFailure,
  attempt: number,
  backoff: ResolvedBackoff,
  random: () => number = Math.random,
): RetryPlan {
  const delay = backoffDelay(attempt, backoff, random);
  switch (failure.kind) {
    case 'shutdown':
      // The replica picked the delay to spread its clients out; it is leaving, so go elsewhere.
      return { action: 'retry', delayMs: Math.max(0, failure.reconnectAfterMs), rotate: true, code: 'server_draining' };
    case 'disconnect':
      return { action: 'retry', delayMs: delay, rotate: TRANSPORT_LOSS.has(failure.reason), code: undefined };
    case 'error': {
      if (isFatal(failure.code)) return { action: 'fail', code: failure.code };
      const delayMs = Math.max(delay, failure.retryAfterMs ?? 0);
      return { action: 'retry', delayMs, rotate: ROTATE_CODES.has(failure.code), code: failure.code };
    }
  }
}
