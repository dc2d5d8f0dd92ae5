import { randomBytes } from 'node:crypto';
import type { JsonValue, RoomEvent } from '@switchboard/contract';
import type { Metrics } from '../observability/metrics.js';

export interface RoomEventTransport {
  /** Delivers to this replica's members of `room`; returns how many sockets got it. */
  deliverLocal(room: string, events: RoomEvent[]): void;
  /** Sends to every other replica (which then delivers locally). */
  broadcast(room: string, events: RoomEvent[]): void;
}

export interface RoomEventBus {
  publish(room: string, event: { type: string; data: JsonValue | null }, from: string): string;
  /** Delivers whatever is still queued; idempotent. */
  close(): void;
}

/**
 * Room events published within `coalesceMs` travel and reach each socket as one
 * batch: one adapter publish per replica per window, one frame per socket, with
 * the frame encoded once per replica (Socket.IO pre-encodes broadcasts).
 */
export function createRoomEventBus({
  transport,
  coalesceMs,
  metrics,
}: {
  transport: RoomEventTransport;
  coalesceMs: number;
  metrics: Metrics;
}): RoomEventBus {
  const idPrefix = randomBytes(6).toString('base64url');
  let sequence = 0;
  let queued = new Map<string, RoomEvent[]>();
  let timer: NodeJS.Timeout | undefined;

  const send = (room: string, events: RoomEvent[]): void => {
    transport.deliverLocal(room, events);
    transport.broadcast(room, events);
  };
  const flush = (): void => {
    timer = undefined;
    const batch = queued;
    queued = new Map();
    for (const [room, events] of batch) send(room, events);
  };

  return {
    publish(room, { type, data }, from) {
      const event: RoomEvent = { id: `${idPrefix}-${(sequence++).toString(36)}`, type, data, from, ts: Date.now() };
      metrics.eventsOut.inc({ event: 'room_event' });
      if (coalesceMs === 0) {
        send(room, [event]);
        return event.id;
      }
      const pending = queued.get(room);
      if (pending) pending.push(event);
      else queued.set(room, [event]);
      timer ??= setTimeout(flush, coalesceMs);
      return event.id;
    },
    close() {
      if (timer) clearTimeout(timer);
      flush();
    },
  };
}
