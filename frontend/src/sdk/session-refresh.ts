/** Largest delay setTimeout honours; longer ones fire at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * How long to wait before refreshing a session that expires at `expiresAt`: at
 * `fraction` of the time that remains, so a slow refresh still lands before expiry.
 */
export function refreshDelayMs(expiresAt: number, now: number, fraction = 0.8): number {
  if (!(fraction > 0 && fraction < 1)) throw new RangeError('refresh fraction must be in (0, 1)');
  const remaining = expiresAt - now;
  if (!(remaining > 0)) return 0;
  return Math.min(MAX_TIMER_MS, Math.floor(remaining * fraction));
}
