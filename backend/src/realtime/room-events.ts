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
  /** Events another replica published into `room`: delivered here, coalesced like local ones. */
  receive(room: string, events: RoomEvent[]): void;
  /** Delivers whatever is still queued; idempotent. */
  close(): void;
}

/**
 * Room events published within `coalesceMs` travel and reach each socket as one
 * batch: one adapter publish per replica per window, one frame per socket, with
 * the frame encoded once per replica (Socket.IO pre-encodes broadcasts). Batches
 * from other replicas join the same window, so a socket gets one frame per window
 * however many replicas publish into its room.
 *
 * The window opens on the leading edge: the first event of a room that sent nothing
 * in the current window goes out at once, and only what follows it within the window
 * waits. A quiet room therefore pays no coalescing delay; a busy one gets at most
 * one frame per socket per window (plus that first one). Each replica's events stay
 * in the order it published them.
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
  /** Events waiting for the end of the window, per room: for local members, and for the other replicas. */
  let toMembers = new Map<string, RoomEvent[]>();
  let toReplicas = new Map<string, RoomEvent[]>();
  /** Rooms that sent in the current window: their next events wait for its end. */
  let recent = new Set<string>();
  let timer: NodeJS.Timeout | undefined;

  const append = (queue: Map<string, RoomEvent[]>, room: string, events: RoomEvent[]): void => {
    const pending = queue.get(room);
    if (!pending) queue.set(room, events.slice());
    else for (const event of events) pending.push(event);
  };
  const sendQueued = (): void => {
    const members = toMembers;
    const replicas = toReplicas;
    toMembers = new Map();
    toReplicas = new Map();
    recent = new Set(members.keys());
    for (const [room, events] of members) transport.deliverLocal(room, events);
    for (const [room, events] of replicas) transport.broadcast(room, events);
  };
  const flush = (): void => {
    timer = undefined;
    sendQueued();
    // Keep the window going while rooms are busy; an idle bus holds no timer.
    if (recent.size > 0) timer = setTimeout(flush, coalesceMs);
  };
  const enqueue = (room: string, events: RoomEvent[], local: boolean): void => {
    if (coalesceMs > 0 && recent.has(room)) {
      append(toMembers, room, events);
      if (local) append(toReplicas, room, events);
      return;
    }
    if (coalesceMs > 0) {
      recent.add(room);
      timer ??= setTimeout(flush, coalesceMs);
    }
    transport.deliverLocal(room, events);
    if (local) transport.broadcast(room, events);
  };

  return {
    publish(room, { type, data }, from) {
      const event: RoomEvent = { id: `${idPrefix}-${(sequence++).toString(36)}`, type, data, from, ts: Date.now() };
      metrics.eventsOut.inc({ event: 'room_event' });
      enqueue(room, [event], true);
      return event.id;
    },
    receive(room, events) {
      if (events.length > 0) enqueue(room, events, false);
    },
    close() {
      if (timer) clearTimeout(timer);
      timer = undefined;
      sendQueued();
      recent = new Set();
    },
  };
}
