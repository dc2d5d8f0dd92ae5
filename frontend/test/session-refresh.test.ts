import { describe, expect, it } from 'vitest';
import { MAX_TIMER_MS, refreshDelayMs } from '../src/sdk/session-refresh.js';

describe('session refresh timing', () => {
  const now = 1_700_000_000_000;

  it('refreshes when 80% of the remaining time has passed', () => {
    expect(refreshDelayMs(now + 3_600_000, now)).toBe(2_880_000);
    expect(refreshDelayMs(now + 10_000, now)).toBe(8_000);
  });

  it('refreshes at once when the session is already over', () => {
    expect(refreshDelayMs(now, now)).toBe(0);
    expect(refreshDelayMs(now - 5_000, now)).toBe(0);
  });

  it('never asks for a timer longer than setTimeout can keep', () => {
    expect(refreshDelayMs(now + 90 * 86_400_000, now)).toBe(MAX_TIMER_MS);
  });

  it('accepts another fraction, within (0, 1)', () => {
    expect(refreshDelayMs(now + 10_000, now, 0.5)).toBe(5_000);
    expect(() => refreshDelayMs(now + 10_000, now, 1)).toThrow(RangeError);
  });
});
