export interface Coalescer<T> {
  /** Queues items (in order) for the room's members on this replica. */
  push(room: string, items: T[]): void;
  /** Sends what is queued for `room` now: before a socket joins it, or before an epoch notice. */
  flush(room: string): void;
  /** Sends whatever is still queued, and from then on sends at once; idempotent. */
  close(): void;
}

/**
 * Room events (or peer announcements) that reach a replica within `coalesceMs` reach each
 * member as one frame: one frame per socket per window, encoded once per replica
 * (Socket.IO pre-encodes broadcasts), however many replicas publish into the room.
 *
 * The window opens on the leading edge: the first items of a room that sent nothing
 * in the current window go out at once, and only what follows within the window waits.
 * A quiet room therefore pays no coalescing delay; a busy one gets at most one frame
 * per socket per window (plus that first one). Order is kept: a room's queue only grows
 * at its end and leaves whole.
 */
export function createCoalescer<T>({
  deliver,
  coalesceMs,
}: {
  /** Writes items to the room's local members. */
  deliver: (room: string, items: T[]) => void;
  coalesceMs: number;
}): Coalescer<T> {
  let queued = new Map<string, T[]>();
  /** Rooms that sent in the current window: their next items wait for its end. */
  let recent = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  const sendQueued = (): void => {
    const due = queued;
    queued = new Map();
    recent = new Set(due.keys());
    for (const [room, items] of due) deliver(room, items);
  };
  const tick = (): void => {
    timer = undefined;
    sendQueued();
    // Keep the window going while rooms are busy; an idle replica holds no timer.
    if (recent.size > 0) timer = setTimeout(tick, coalesceMs);
  };

  return {
    push(room, items) {
      if (items.length === 0) return;
      // Closed: nothing may start a timer any more, so whatever still comes goes out at once.
      if (coalesceMs === 0 || closed) {
        deliver(room, items);
        return;
      }
      const pending = queued.get(room);
      if (pending) {
        for (const item of items) pending.push(item);
        return;
      }
      if (recent.has(room)) {
        queued.set(room, items.slice());
        return;
      }
      recent.add(room);
      timer ??= setTimeout(tick, coalesceMs);
      deliver(room, items);
    },
    flush(room) {
      const pending = queued.get(room);
      if (!pending) return;
      queued.delete(room);
      deliver(room, pending);
    },
    close() {
      closed = true;
      clearTimeout(timer);
      timer = undefined;
      sendQueued();
      recent = new Set();
    },
  };
}
