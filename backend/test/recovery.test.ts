import { describe, expect, it } from 'vitest';
import type { RoomEvent } from '@switchboard/contract';
import { needsHistoryRead, planRecovery, type RecoveryPlanInput } from '../src/realtime/recovery.js';

const NOW = 1_000_000;
const event = (seq: number, ts = NOW - 1_000): RoomEvent => ({
  id: `e${seq}`,
  type: 't',
  data: seq,
  from: 'p',
  ts,
  seq,
});
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => event(from + i));

/** A stream at `top` in epoch `a` that holds the events from `held` on. */
function input(overrides: Partial<RecoveryPlanInput> & { top?: number; held?: number } = {}): RecoveryPlanInput {
  const top = overrides.top ?? 10;
  const held = overrides.held ?? 1;
  const recent = range(held, top);
  return {
    recover: { epoch: 'a', seq: 5 },
    position: { epoch: 'a', seq: top },
    recentAfter: (seq) => (seq >= top ? [] : seq + 1 < held ? undefined : recent.slice(seq + 1 - held)),
    fetched: [],
    maxEvents: 100,
    ttlMs: 60_000,
    now: NOW,
    ...overrides,
  };
}

describe('recovery planning', () => {
  it('replays every event after the position, oldest first, from what the stream holds', () => {
    const plan = planRecovery(input());
    expect(plan.outcome).toEqual({ recovered: true, replayed: 5 });
    expect(plan.events.map((e) => e.seq)).toEqual([6, 7, 8, 9, 10]);
  });

  it('replays nothing, and recovers, for a client already at the top', () => {
    expect(planRecovery(input({ recover: { epoch: 'a', seq: 10 } }))).toEqual({
      outcome: { recovered: true, replayed: 0 },
      events: [],
    });
  });

  it('joins what was read from the history to what the stream holds', () => {
    const base = input({ held: 8 });
    expect(needsHistoryRead(base)).toBe(true);
    const plan = planRecovery({ ...base, fetched: range(6, 9) });
    expect(plan.events.map((e) => e.seq)).toEqual([6, 7, 8, 9, 10]);
  });

  it('history_disabled: ROOM_HISTORY_SIZE is 0', () => {
    expect(planRecovery(input({ historyDisabled: true })).outcome).toEqual({
      recovered: false,
      replayed: 0,
      reason: 'history_disabled',
    });
  });

  it('epoch_changed: another epoch, or a position ahead of the room', () => {
    expect(planRecovery(input({ recover: { epoch: 'b', seq: 5 } })).outcome).toMatchObject({ reason: 'epoch_changed' });
    expect(planRecovery(input({ recover: { epoch: 'a', seq: 11 } })).outcome).toMatchObject({
      reason: 'epoch_changed',
    });
  });

  it('too_many: further behind than RECOVERY_MAX_EVENTS', () => {
    expect(planRecovery(input({ maxEvents: 4 })).outcome).toMatchObject({ reason: 'too_many' });
    expect(planRecovery(input({ maxEvents: 5 })).outcome).toMatchObject({ recovered: true });
  });

  it('history_expired: events missing, not consecutive, or older than the history keeps', () => {
    // Neither the stream nor the read has 6-7.
    expect(planRecovery({ ...input({ held: 8 }), fetched: [] }).outcome).toMatchObject({ reason: 'history_expired' });
    // A hole in what was read.
    expect(planRecovery({ ...input({ held: 9 }), fetched: [event(6), event(8)] }).outcome).toMatchObject({
      reason: 'history_expired',
    });
    // The oldest event to replay is past the history's TTL.
    const stale = input();
    const old = range(1, 10).map((e) => (e.seq === 6 ? { ...e, ts: NOW - 120_000 } : e));
    expect(planRecovery({ ...stale, recentAfter: (seq) => old.slice(seq) }).outcome).toMatchObject({
      reason: 'history_expired',
    });
  });

  it('reads the history only when it could help', () => {
    expect(needsHistoryRead(input())).toBe(false);
    expect(needsHistoryRead(input({ held: 8, historyDisabled: true }))).toBe(false);
    expect(needsHistoryRead(input({ held: 8, recover: { epoch: 'b', seq: 5 } }))).toBe(false);
    expect(needsHistoryRead(input({ held: 8, maxEvents: 2 }))).toBe(false);
  });
});
