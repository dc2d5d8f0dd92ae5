import { randomBytes } from 'node:crypto';
import type { RoomEvent } from '@switchboard/contract';
import {
  eventBytes,
  type Appended,
  type HistoryPage,
  type HistoryQuery,
  type HistorySettings,
  type HistorySink,
  type RoomHistory,
} from './types.js';

interface Log {
  epoch: string;
  top: number;
  /** The last `size` events (and at most `maxBytes` of them), oldest first. */
  events: RoomEvent[];
  /** Bytes of `events`, and of each. */
  bytes: number;
  sizes: number[];
  expiresAt: number;
}

export interface MemoryHistoryOptions extends HistorySettings {
  sink: HistorySink;
  /** Most rooms held at once; past it the least recently used is dropped. */
  maxRooms?: number;
  /** Most idempotency keys remembered at once; past it the oldest is forgotten early. */
  maxAnswers?: number;
  now?: () => number;
  sweepIntervalMs?: number;
}

export interface MemoryHistory extends RoomHistory {
  readonly rooms: number;
  close(): void;
}

/**
 * The history of memory mode (one replica, no Redis): the same contract from a bounded
 * in-process log per room, forgotten `ttlSeconds` after the room's last event or read.
 */
export function createMemoryHistory({
  size,
  maxBytes,
  ttlSeconds,
  idempotencyWindowSeconds = 300,
  sink,
  maxRooms = 100_000,
  maxAnswers = 100_000,
  now = Date.now,
  sweepIntervalMs = 10_000,
}: MemoryHistoryOptions): MemoryHistory {
  // Map order is recency order: every touch moves a room to the end.
  const logs = new Map<string, Log>();
  const ttlMs = ttlSeconds * 1000;

  const touch = (room: string): Log => {
    const t = now();
    let log = logs.get(room);
    if (log && log.expiresAt <= t) log = undefined;
    logs.delete(room);
    log ??= { epoch: randomBytes(6).toString('base64url'), top: 0, events: [], bytes: 0, sizes: [], expiresAt: 0 };
    log.expiresAt = t + ttlMs;
    logs.set(room, log);
    if (logs.size > maxRooms) {
      const oldest = logs.keys().next();
      if (!oldest.done) logs.delete(oldest.value);
    }
    return log;
  };
  // Idempotency keys' first answers, oldest first (all share one window), bounded.
  const answers = new Map<string, { appended: Appended; expiresAt: number }>();
  const windowMs = idempotencyWindowSeconds * 1000;
  const remember = (key: string, appended: Appended): void => {
    answers.delete(key);
    answers.set(key, { appended, expiresAt: now() + windowMs });
    if (answers.size > maxAnswers) {
      const oldest = answers.keys().next();
      if (!oldest.done) answers.delete(oldest.value);
    }
  };
  const sweep = (): void => {
    const t = now();
    for (const [key, answer] of answers) {
      if (answer.expiresAt > t) break;
      answers.delete(key);
    }
    for (const [room, log] of logs) {
      if (log.expiresAt > t) break;
      logs.delete(room);
    }
  };
  const timer = setInterval(sweep, sweepIntervalMs);
  timer.unref();

  return {
    kind: 'memory',
    get rooms() {
      return logs.size;
    },
    append(room, event, _delivered, idempotencyKey) {
      const key = idempotencyKey === undefined ? undefined : `${room}\u0000${idempotencyKey}`;
      const first = key === undefined ? undefined : answers.get(key);
      if (first && first.expiresAt > now()) return Promise.resolve({ ...first.appended, repeated: true as const });
      const log = touch(room);
      const stored: RoomEvent = { seq: ++log.top, ...event };
      if (size > 0) {
        const bytes = eventBytes(stored);
        log.events.push(stored);
        log.sizes.push(bytes);
        log.bytes += bytes;
        while (log.events.length > 1 && (log.events.length > size || log.bytes > maxBytes)) {
          log.events.shift();
          log.bytes -= log.sizes.shift() ?? 0;
        }
      }
      sink(room, log.epoch, stored);
      const appended = { epoch: log.epoch, seq: stored.seq, id: event.id };
      if (key !== undefined) remember(key, appended);
      return Promise.resolve(appended);
    },
    read(room, query: HistoryQuery): Promise<HistoryPage> {
      const log = touch(room);
      return Promise.resolve({ epoch: log.epoch, top: log.top, events: pageOf(log.events, query) });
    },
    // One process's log never goes backwards: nothing to restart.
    restart: (room) => Promise.resolve(touch(room).epoch),
    close() {
      clearInterval(timer);
      logs.clear();
      answers.clear();
    },
  };
}

/** The events of a contiguous, seq-ordered run that `query` asks for. */
export function pageOf(events: readonly RoomEvent[], { after, limit }: HistoryQuery): RoomEvent[] {
  if (after === undefined) return events.slice(Math.max(0, events.length - limit));
  const first = events[0]?.seq ?? after + 1;
  const from = Math.max(0, after + 1 - first);
  return events.slice(from, from + limit);
}
