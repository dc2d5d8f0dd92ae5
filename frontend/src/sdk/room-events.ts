import type { RoomEvent } from '@switchboard/contract';

function isRoomEvent(value: unknown): value is RoomEvent {
  if (typeof value !== 'object' || value === null) return false;
  const event = value as Partial<Record<keyof RoomEvent, unknown>>;
  return (
    typeof event.id === 'string' &&
    typeof event.type === 'string' &&
    typeof event.from === 'string' &&
    typeof event.ts === 'number' &&
    (event.seq === undefined || typeof event.seq === 'number') &&
    'data' in event
  );
}

/**
 * The events of one `room:event` or `room:events` frame, oldest first. The gateway
 * coalesces bursts into batches; apps should only ever see single events in order.
 */
export function unpackRoomEvents(payload: unknown): RoomEvent[] {
  const items: unknown[] = Array.isArray(payload) ? payload : [payload];
  return items.filter(isRoomEvent);
}
