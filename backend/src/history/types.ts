import type { ErrorCode, HistoryResponse, JsonValue, RoomEvent, RoomPosition } from '@switchboard/contract';

/**
 * A history read that cannot be answered: Redis is unreachable and this replica does not
 * hold the events asked for. Its `code` is what the socket ack and the HTTP answer carry.
 */
export class HistoryUnavailableError extends Error {
  readonly code = 'unavailable' satisfies ErrorCode;
  constructor() {
    super('room history is unreachable right now');
    this.name = 'HistoryUnavailableError';
  }
}

/** An event before the history numbers it. */
export type UnsequencedEvent = Omit<RoomEvent, 'seq'> & { data: JsonValue };

/** `{epoch, top, events}`: events oldest first, `top` the room's last seq. */
export type HistoryPage = HistoryResponse;

export interface HistoryQuery {
  /** Events after this seq; undefined for the latest `limit`. */
  after: number | undefined;
  limit: number;
}

/**
 * A room's numbered event log: one epoch and a `seq` that grows by exactly 1 per event,
 * assigned once however many replicas publish. The Redis driver hands each appended
 * event to every replica that follows the room (on the room's channel, in seq order);
 * the memory driver to this process's sink.
 */
export interface RoomHistory {
  readonly kind: 'redis' | 'memory';
  /**
   * Numbers and keeps `event`, and delivers it to the room's followers. `delivered`: the
   * position this replica already delivered; a history behind it went backwards, and the
   * numbering goes on in a new epoch. Rejects (LateWriteError) rather than apply late.
   */
  append(room: string, event: UnsequencedEvent, delivered?: RoomPosition): Promise<{ epoch: string; seq: number }>;
  /** Reads the log, starting an epoch for a room that has none (so positions are stable). */
  read(room: string, query: HistoryQuery): Promise<HistoryPage>;
  /**
   * The room's history went backwards in epoch `known` (seen on a read or on the channel):
   * starts a new epoch unless one was started already; resolves with the current epoch.
   */
  restart(room: string, known: string): Promise<string>;
}

/** Where the memory driver sends what it appends (the Redis driver publishes instead). */
export type HistorySink = (room: string, epoch: string, event: RoomEvent) => void;

export interface HistorySettings {
  /** Events kept per room; 0 keeps none (seq is still assigned). */
  size: number;
  /** Most bytes of events kept per room (the newest event is always kept). */
  maxBytes: number;
  ttlSeconds: number;
}

/** An event's size as the history stores it: its JSON. */
export const eventBytes = (event: RoomEvent): number => JSON.stringify(event).length;

/**
 * The longest head of `page.events` under `maxBytes` (never empty when there are events,
 * so a reader always makes progress), with `more` when the rest was cut.
 */
export function capPage(page: HistoryPage, maxBytes: number): HistoryPage {
  let bytes = 0;
  for (let i = 0; i < page.events.length; i++) {
    bytes += eventBytes(page.events[i] as RoomEvent);
    if (bytes > maxBytes && i > 0) return { ...page, events: page.events.slice(0, i), more: true };
  }
  return page;
}
