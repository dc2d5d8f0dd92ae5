export interface BackoffOptions {
  /**
   * Ceiling of the first delay.
   * @default 500
   */
  baseMs?: number;
  /**
   * Largest delay, however many attempts failed.
   * @default 15000
   */
  maxMs?: number;
  /**
   * Growth of the ceiling per failed attempt.
   * @default 2
   */
  factor?: number;
  /**
   * Share of the ceiling that is randomised away, in [0, 1]: each delay falls in
   * `[ceiling * (1 - jitter), ceiling]`, so clients dropped together do not return together.
   * @default 0.5
   */
  jitter?: number;
}

export type ResolvedBackoff = Required<BackoffOptions>;

export const DEFAULT_BACKOFF: ResolvedBackoff = { baseMs: 500, maxMs: 15_000, factor: 2, jitter: 0.5 };

export function resolveBackoff(options: BackoffOptions = {}): ResolvedBackoff {
  const resolved = { ...DEFAULT_BACKOFF, ...options };
  if (!(resolved.baseMs > 0)) throw new RangeError('backoff.baseMs must be > 0');
  if (!(resolved.maxMs >= resolved.baseMs)) throw new RangeError('backoff.maxMs must be >= baseMs');
  if (!(resolved.factor >= 1)) throw new RangeError('backoff.factor must be >= 1');
  if (!(resolved.jitter >= 0 && resolved.jitter <= 1)) throw new RangeError('backoff.jitter must be in [0, 1]');
  return resolved;
}

/** The ceiling for `attempt` (0 = first retry): exponential growth, capped. */
export function backoffCeiling(attempt: number, options: ResolvedBackoff = DEFAULT_BACKOFF): number {
  return Math.min(options.maxMs, options.baseMs * options.factor ** Math.max(0, attempt));
}

/** A jittered delay for `attempt`; `random` returns [0, 1) like Math.random. */
export function backoffDelay(
  attempt: number,
  options: ResolvedBackoff = DEFAULT_BACKOFF,
  random: () => number = Math.random,
): number {
  const ceiling = backoffCeiling(attempt, options);
  return Math.round(ceiling * (1 - options.jitter * random()));
}
