import { describe, expect, it } from 'vitest';
import { backoffCeiling, backoffDelay, resolveBackoff } from '../src/sdk/backoff.js';

const options = resolveBackoff({ baseMs: 500, maxMs: 15_000, factor: 2, jitter: 0.5 });

describe('reconnect backoff', () => {
  it('keeps every delay between half the ceiling and the ceiling', () => {
    for (let attempt = 0; attempt < 12; attempt++) {
      const ceiling = backoffCeiling(attempt, options);
      for (const random of [0, 0.25, 0.5, 0.999999]) {
        const delay = backoffDelay(attempt, options, () => random);
        expect(delay).toBeGreaterThanOrEqual(ceiling / 2);
        expect(delay).toBeLessThanOrEqual(ceiling);
      }
    }
  });

  it('doubles the ceiling per failed attempt', () => {
    expect([0, 1, 2, 3, 4].map((attempt) => backoffCeiling(attempt, options))).toEqual([500, 1000, 2000, 4000, 8000]);
  });

  it('caps the delay however many attempts failed', () => {
    expect(backoffCeiling(5, options)).toBe(15_000);
    expect(backoffCeiling(10_000, options)).toBe(15_000);
    expect(backoffDelay(10_000, options, () => 0)).toBe(15_000);
  });

  it('spreads clients that failed together', () => {
    const delays = new Set(Array.from({ length: 50 }, () => backoffDelay(3, options)));
    expect(delays.size).toBeGreaterThan(10);
  });

  it('is exact without jitter and refuses nonsense settings', () => {
    const exact = resolveBackoff({ baseMs: 100, maxMs: 1000, jitter: 0 });
    expect(backoffDelay(2, exact, () => 0.9)).toBe(400);
    expect(() => resolveBackoff({ jitter: 1.5 })).toThrow(RangeError);
    expect(() => resolveBackoff({ baseMs: 0 })).toThrow(RangeError);
    expect(() => resolveBackoff({ baseMs: 1000, maxMs: 10 })).toThrow(RangeError);
  });
});
