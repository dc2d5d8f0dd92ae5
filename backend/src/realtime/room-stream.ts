import { randomBytes } from 'node:crypto';
import type { RecoveryFailureReason, RoomEpochPayload, RoomEvent, RoomPosition } from '@switchboard/contract';
import { eventBytes, type HistoryPage, type HistoryQuery, type UnsequencedEvent } from '../history/types.js';

/** Where a stream's ordered output goes: this replica's members of the room. */
export interface StreamOutput {
  /** Events in seq order, each once. */
  deliver(room: string, events: RoomEvent[]): void;
  /** The numbering moved to another epoch (or skipped, with a reason); sent in order with events. */
  moved(room: string, payload: RoomEpochPayload): void;
}

/** What every room's stream on a replica shares (one object, not one per room). */
export interface RoomStreamOptions {
  /** Reads the shared history (Redis, or memory mode's log). */
  read: (room: string, query: HistoryQuery) => Promise<HistoryPage>;
  /** Events the shared history keeps per room (0: holes cannot be filled). */
  historySize: number;
  /** Recent events kept here, for recoveries and history reads without a round trip. */
  keep: number;
  /** ... and at most this many bytes of them (the newest is always kept). */
  keepBytes: number;
  output: StreamOutput;
  /** How long an event that arrived ahead of its predecessor waits before the hole is filled. */
  holdMs: number;
  /** Counts filled holes and reports fills that failed (they are retried). */
  onFilled: (events: number) => void;
  onFillError: (error: unknown) => void;
}

const FILL_PAGE = 100;

/**
 * One room's event stream on this replica: it turns what arrives (from the room's
 * channel, in whatever order and with whatever losses) into every event exactly once,
 * in seq order. An event ahead of its predecessor is held back; if the predecessor does
 * not follow within `holdMs`, the hole is filled from the shared history. Nothing is
 * skipped, unless the history no longer holds it, and then the members are told.
 *
 * While Redis is unreachable the stream numbers the room's events itself, in a local
 * epoch forked from where it was (`local` mode), and moves back to the shared history
 * when Redis returns (`rejoin`).
 */
export class RoomStream {
  readonly room: string;
  #epoch: string;
  #seq: number;
  /** Where the local epoch forked from, and the ids numbered locally (see `rejoin`). */
  #fork: { epoch: string | undefined; seq: number; ids: Set<string> } | undefined;
  /** The last `keep` delivered events, a contiguous run ending at #seq, in the current epoch. */
  #recent: RoomEvent[] = [];
  /** Bytes of #recent, bounded by `keepBytes`. */
  #recentBytes = 0;
  /** Events ahead of a hole; created on the first one (most rooms never have a hole). */
  #held: Map<number, RoomEvent> | undefined;
  /** Epochs this stream has left: late messages of theirs are ignored, never switched back to. */
  #retired: Set<string> | undefined;
  #holdTimer: NodeJS.Timeout | undefined;
  #filling: Promise<void> | undefined;
  #closed = false;
  readonly #options: RoomStreamOptions;

  constructor(room: string, options: RoomStreamOptions, start: { epoch: string; top: number; events: RoomEvent[] }) {
    this.#options = options;
    this.room = room;
    this.#epoch = start.epoch;
    this.#seq = start.top;
    this.#setRecent(contiguousTail(start.events, start.top, options.keep));
  }

  /** A stream that starts while Redis is unreachable: local from the first event. */
  static local(room: string, options: RoomStreamOptions): RoomStream {
    const stream = new RoomStream(room, options, { epoch: localEpoch(), top: 0, events: [] });
    stream.#fork = { epoch: undefined, seq: 0, ids: new Set() };
    return stream;
  }

  get position(): RoomPosition {
    return { epoch: this.#epoch, seq: this.#seq };
  }

  get isLocal(): boolean {
    return this.#fork !== undefined;
  }

  /** Delivered events after `seq`, if this stream still holds all of them. */
  recentAfter(seq: number): RoomEvent[] | undefined {
    if (seq >= this.#seq) return [];
    const first = this.#recent[0]?.seq;
    if (first === undefined || first > seq + 1) return undefined;
    return this.#recent.slice(seq + 1 - first);
  }

  /** An event from the shared history's channel (or memory mode's log). */
  receive(epoch: string, event: RoomEvent): void {
    if (this.#closed) return;
    // Local mode ignores the channel; `rejoin` reads what it missed.
    if (this.#fork || this.#retired?.has(epoch)) return;
    if (epoch !== this.#epoch) {
      // The history this stream counted in is gone (flushed, restarted, expired):
      // continue in the new one from its start, and say so.
      this.#moveTo(epoch, 0, 'epoch_changed');
    }
    if (event.seq <= this.#seq) return;
    if (event.seq === this.#seq + 1) {
      this.#deliver([event]);
      this.#drainHeld();
      return;
    }
    (this.#held ??= new Map()).set(event.seq, event);
    this.#holdTimer ??= setTimeout(() => {
      this.#holdTimer = undefined;
      void this.catchUp();
    }, this.#options.holdMs);
  }

  /**
   * Reads the shared history after the current position and delivers what is missing:
   * after a hole, after the channel was down, or to check a quiet room. One at a time;
   * never rejects (failed reads are retried, and reported through `onFillError`).
   */
  catchUp(): Promise<void> {
    if (this.#closed || this.#fork) return Promise.resolve();
    this.#filling ??= this.#fill()
      .catch((error: unknown) => this.#options.onFillError(error))
      .finally(() => {
        this.#filling = undefined;
        if (this.#held && !this.#closed) void this.catchUp();
      });
    return this.#filling;
  }

  async #fill(): Promise<void> {
    for (let attempt = 0; !this.#closed && !this.#fork;) {
      const after = this.#seq;
      let page: HistoryPage;
      try {
        page = await this.#options.read(this.room, { after, limit: FILL_PAGE });
      } catch (error) {
        this.#options.onFillError(error);
        // Held events wait: nothing is skipped because a read failed.
        await sleep(Math.min(2_000, 100 * 2 ** attempt++));
        continue;
      }
      attempt = 0;
      if (this.#closed || this.#fork) return;
      if (page.epoch !== this.#epoch) {
        this.#moveTo(page.epoch, 0, 'epoch_changed');
        continue;
      }
      // Another delivery may have advanced the stream while the read was in flight.
      const fresh = page.events.filter((event) => event.seq > this.#seq);
      const first = fresh[0];
      if (first && first.seq > this.#seq + 1) {
        // Trimmed from the history before this replica read it: say what was lost.
        this.#skipTo(first.seq - 1);
      } else if (!first && page.top > this.#seq && after === this.#seq) {
        this.#skipTo(page.top);
      }
      if (fresh.length > 0) {
        this.#deliver(fresh);
        this.#options.onFilled(fresh.length);
      }
      this.#drainHeld();
      if (!this.#held && this.#seq >= page.top) return;
    }
  }

  /**
   * Numbers `event` here because the shared history is unreachable: the first time,
   * the stream forks a local epoch from its position (members are told, and lose nothing).
   */
  appendLocal(event: UnsequencedEvent): RoomPosition {
    if (!this.#fork) {
      this.#fork = { epoch: this.#epoch, seq: this.#seq, ids: new Set() };
      this.#dropHeld();
      // Not retired: the stream returns to it when Redis does.
      this.#epoch = localEpoch();
      this.#options.output.moved(this.room, { epoch: this.#epoch, seq: this.#seq });
    }
    this.#fork.ids.add(event.id);
    const stored: RoomEvent = { seq: this.#seq + 1, ...event };
    this.#deliver([stored]);
    return { epoch: this.#epoch, seq: stored.seq };
  }

  /**
   * Back on the shared history after local mode: continue from the fork point in the
   * shared epoch and deliver what other replicas published meanwhile, skipping events
   * that were already delivered here (an append that timed out but landed).
   */
  async rejoin(): Promise<void> {
    const fork = this.#fork;
    if (!fork || this.#closed) return;
    const page = await this.#options.read(this.room, { after: fork.seq, limit: FILL_PAGE });
    if (this.#closed || this.#fork !== fork) return;
    this.#fork = undefined;
    const kept = page.epoch === fork.epoch;
    this.#moveTo(page.epoch, kept ? fork.seq : 0, kept ? undefined : 'epoch_changed');
    let fresh = page.events.filter((event) => event.seq > this.#seq);
    const seen = fresh.filter((event) => fork.ids.has(event.id));
    if (seen.length > 0) {
      // Delivered here already, under the local epoch: advance past them silently.
      const last = seen[seen.length - 1] as RoomEvent;
      this.#seq = last.seq;
      this.#setRecent([]);
      fresh = fresh.filter((event) => event.seq > last.seq);
    }
    if (fresh[0] && fresh[0].seq > this.#seq + 1) this.#skipTo(fresh[0].seq - 1);
    if (fresh.length > 0) this.#deliver(fresh);
    if (page.top > this.#seq) await this.catchUp();
  }

  close(): void {
    this.#closed = true;
    this.#dropHeld();
  }

  #deliver(events: RoomEvent[]): void {
    const last = events[events.length - 1];
    if (!last) return;
    this.#seq = last.seq;
    const { keep, keepBytes } = this.#options;
    for (const event of events) {
      this.#recent.push(event);
      this.#recentBytes += eventBytes(event);
    }
    while (this.#recent.length > 1 && (this.#recent.length > keep || this.#recentBytes > keepBytes)) {
      this.#recentBytes -= eventBytes(this.#recent.shift() as RoomEvent);
    }
    this.#options.output.deliver(this.room, events);
  }

  #drainHeld(): void {
    const held = this.#held;
    if (!held) return;
    // Held events at or below the position came back through a fill.
    for (const seq of held.keys()) if (seq <= this.#seq) held.delete(seq);
    const ready: RoomEvent[] = [];
    for (let next = held.get(this.#seq + 1); next; next = held.get(next.seq + 1)) {
      ready.push(next);
      held.delete(next.seq);
    }
    if (ready.length > 0) this.#deliver(ready);
    if (held.size === 0) this.#dropHeld();
  }

  #dropHeld(): void {
    this.#held = undefined;
    clearTimeout(this.#holdTimer);
    this.#holdTimer = undefined;
  }

  #moveTo(epoch: string, seq: number, reason: RecoveryFailureReason | undefined): void {
    // Events of the shared epoch up to the fork point stay valid when returning to it.
    this.#setRecent(reason === undefined ? this.#recent.filter((event) => event.seq <= seq) : []);
    this.#dropHeld();
    if (epoch !== this.#epoch) this.#retire(this.#epoch);
    this.#epoch = epoch;
    this.#seq = seq;
    this.#options.output.moved(this.room, reason ? { epoch, seq, reason } : { epoch, seq });
  }

  #retire(epoch: string): void {
    const retired = (this.#retired ??= new Set());
    retired.add(epoch);
    if (retired.size > 8) retired.delete(retired.values().next().value as string);
  }

  #setRecent(events: RoomEvent[]): void {
    this.#recent = events;
    this.#recentBytes = 0;
    for (const event of events) this.#recentBytes += eventBytes(event);
  }

  #skipTo(seq: number): void {
    this.#setRecent([]);
    this.#seq = seq;
    const reason = this.#options.historySize === 0 ? 'history_disabled' : 'history_expired';
    this.#options.output.moved(this.room, { epoch: this.#epoch, seq, reason });
  }
}

function localEpoch(): string {
  return `local-${randomBytes(6).toString('base64url')}`;
}

/** The longest run of `events` that ends at `top` with no gap, at most `keep` long. */
function contiguousTail(events: RoomEvent[], top: number, keep: number): RoomEvent[] {
  const out: RoomEvent[] = [];
  let expected = top;
  for (let i = events.length - 1; i >= 0 && out.length < keep; i--) {
    const event = events[i] as RoomEvent;
    if (event.seq !== expected) break;
    out.push(event);
    expected--;
  }
  return out.reverse();
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
