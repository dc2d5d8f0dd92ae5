import type { RedisConnection } from './connection.js';

/**
 * Late commands. A Redis link can drop packets without closing: a command the gateway
 * gave up on (and answered as failed, or served from memory) reaches Redis when the link
 * comes back, seconds later. Guarded scripts take the gateway's deadline, in Redis's own
 * clock, and refuse to apply after it; docs/architecture.md ("Late commands") says what
 * each write does when it arrives late.
 */

/** The error reply of a guarded script that arrived after its deadline. */
const LATE_REPLY = 'SWITCHBOARD_LATE';

/**
 * Lua prelude of a guarded script, before it touches anything. The script's LAST argument
 * is `<deadline> [<more words>]`; the words are left in `guard` for the script's own checks.
 */
export const GUARD_LATE = `
local guard = {}
for word in string.gmatch(ARGV[#ARGV], '%S+') do guard[#guard + 1] = word end
local deadline = tonumber(guard[1]) or 0
if deadline > 0 then
  local now = redis.call('TIME')
  if tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) > deadline then
    return redis.error_reply('${LATE_REPLY} arrived after its deadline')
  end
end
`;

/** A write that reached Redis after the gateway's deadline, and so was not applied. */
export class LateWriteError extends Error {
  constructor(operation: string) {
    super(`redis ${operation} refused: it arrived after its deadline`);
    this.name = 'LateWriteError';
  }
}

/** The last argument of a guarded script sent now: the deadline, then the script's own words. */
export function guardArgument(redis: RedisConnection, ...words: Array<string | number>): string {
  return [redis.applyDeadline(), ...words].join(' ');
}

/** Turns a guarded script's refusal into a LateWriteError. */
export function lateAware<T>(operation: string, pending: Promise<T>): Promise<T> {
  return pending.catch((error: unknown) => {
    if (error instanceof Error && error.message.startsWith(LATE_REPLY)) throw new LateWriteError(operation);
    throw error;
  });
}
