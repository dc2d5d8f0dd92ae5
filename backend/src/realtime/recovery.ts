import type { RecoveryFailureReason, RecoveryOutcome, RoomEvent, RoomPosition } from '@switchboard/contract';

/** What a recovery replays, decided in the tick the membership's `session` goes out. */
export interface Recovery {
  outcome: RecoveryOutcome;
  events: RoomEvent[];
}

export const refused = (reason: RecoveryFailureReason): Recovery => ({
  outcome: { recovered: false, replayed: 0, reason },
  events: [],
});

export interface RecoveryPlanInput {
  /** The client's last seen position (`recover`). */
  recover: RoomPosition;
  /** The room's position on this replica now: what the member's `session` will carry. */
  position: RoomPosition;
  /** The events after a seq that this replica's stream still holds, or undefined if not all. */
  recentAfter: (seq: number) => RoomEvent[] | undefined;
  /** Events read from the shared history after `recover.seq` (empty when none were needed). */
  fetched: RoomEvent[];
  /** `RECOVERY_MAX_EVENTS`. */
  maxEvents: number;
  /** `ROOM_HISTORY_TTL_SECONDS`, in milliseconds. */
  ttlMs: number;
  now: number;
  /** `ROOM_HISTORY_SIZE` is 0. */
  historyDisabled?: boolean;
}

/**
 * Decides what a member that last saw `recover` gets: every event after it up to
 * `position`, oldest first, or a refusal with its reason. Never `recovered: true` unless
 * the events are all there, consecutive, and none is older than the history keeps.
 * Pure: the caller gathers `fetched` and the stream's view first.
 */
export function planRecovery(input: RecoveryPlanInput): Recovery {
  const { recover, position, maxEvents } = input;
  if (input.historyDisabled) return refused('history_disabled');
  if (position.epoch !== recover.epoch || recover.seq > position.seq) return refused('epoch_changed');
  if (position.seq - recover.seq > maxEvents) return refused('too_many');
  let events = input.recentAfter(recover.seq);
  if (!events) {
    // What was read, up to where this replica's stream has delivered, then the rest from it.
    const head = input.fetched.filter((event) => event.seq > recover.seq && event.seq <= position.seq);
    const last = head[head.length - 1]?.seq ?? recover.seq;
    const tail = input.recentAfter(last);
    if (!tail) return refused('history_expired');
    events = [...head, ...tail];
  }
  if (events.length !== position.seq - recover.seq || events.some((event, i) => event.seq !== recover.seq + 1 + i)) {
    return refused('history_expired');
  }
  const oldest = events[0];
  if (oldest && oldest.ts < input.now - input.ttlMs) return refused('history_expired');
  return { outcome: { recovered: true, replayed: events.length }, events };
}

/**
 * Whether the shared history must be read before planning: the stream is in the right
 * epoch and not too far ahead, but no longer holds everything after `recover`.
 */
export function needsHistoryRead(input: Omit<RecoveryPlanInput, 'fetched' | 'now' | 'ttlMs'>): boolean {
  const { recover, position } = input;
  return (
    !input.historyDisabled &&
    position.epoch === recover.epoch &&
    recover.seq <= position.seq &&
    position.seq - recover.seq <= input.maxEvents &&
    !input.recentAfter(recover.seq)
  );
}
