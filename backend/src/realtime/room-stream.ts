import { randomBytes } from 'node:crypto';
import type { RecoveryFailureReason, RoomEpochPayload, RoomEvent, RoomPosition } from '@switchboard/contract';
import { eventBytes, type HistoryPage, type HistoryQuery, type UnsequencedEvent } from '../history/types.js';

/** Where a stream's ordered output goes: this replica's members of the room. */
export interface StreamOutput {
  /** Events in seq order, each once. */
  deliver(room: string, events: RoomEvent[]): void;
  /** The numbering moved to another epoch (or skipped, with a reason); sent in order with events. */
  moved(room: string, payload: Omit<RoomEpochPayload, 'room'>): void;
}

/** What every room's stream on a replica shares (one object, not one per room). */
export interface RoomStreamOptions {
  /** Reads the shared history (Redis, or memory mode's log). */
  read: (room: string, query: HistoryQuery) => Promise<HistoryPage>;
  /** The room's history went backwards in `epoch`: start a new one (unless done); resolves with the current epoch. */
  restart: (room: string, epoch: string) => Promise<string>;
  /** A history that went backwards was found (counted, and logged by the caller). */
  onRegressed: (room: string) => void;
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
  /** Moving onto another epoch (a regression, or an epoch seen on the channel): the channel waits. */
  #repositioning: Promise<void> | undefined;
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
    // Local mode ignores the channel; `rejoin` reads what it missed. So does a move in progress.
    if (this.#fork || this.#repositioning || this.#retired?.has(epoch)) return;
    if (epoch !== this.#epoch) {
      // The history this stream counted in is gone (flushed, restarted, expired) or went
      // backwards and was renamed: move onto the new one, reading it first.
      void this.#reposition(undefined);
      return;
    }
    if (event.seq <= this.#seq) {
      // A seq this stream delivered, for another event: the history went backwards.
      const delivered = this.#recentAt(event.seq);
      if (delivered && delivered.id !== event.id) void this.#reposition(this.#epoch);
      return;
    }
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
    if (this.#repositioning) return this.#repositioning;
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
      if (this.#closed || this.#fork || this.#repositioning) return;
      // Another epoch, or this one behind what had been delivered when it was read (it
      // went backwards; not #seq, which live events may have moved on meanwhile).
      if (page.epoch !== this.#epoch || page.top < after) {
        void this.#reposition(page.epoch === this.#epoch ? this.#epoch : undefined);
        return;
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
   * that were already delivered here (an append whose reply was lost but which Redis
   * applied in time: reconciled by event id). Then reads on to the top before anything live.
   */
  async rejoin(): Promise<void> {
    const fork = this.#fork;
    if (!fork || this.#closed) return;
    let page = await this.#options.read(this.room, { after: fork.seq, limit: FILL_PAGE });
    if (page.epoch !== fork.epoch && fork.seq > 0) page = await this.#readFromStart();
    if (this.#closed || this.#fork !== fork) return;
    this.#fork = undefined;
    // The shared events this stream delivered before it forked, by seq.
    const lineage = this.#lineage(fork.seq);
    this.#adopt(page, { epoch: fork.epoch, seq: fork.seq }, fork.ids, lineage);
    await this.catchUp();
  }

  /**
   * Moves onto the history's current epoch, reading it first: after an epoch seen on the
   * channel, or (`regressed`, the epoch this stream counted in) after the history was
   * found behind what this stream delivered, which starts a new epoch in the history
   * first. Channel events wait meanwhile (they are in what is read). Never rejects.
   */
  #reposition(regressed: string | undefined): Promise<void> {
    this.#repositioning ??= (async () => {
      for (let attempt = 0; !this.#closed && !this.#fork;) {
        try {
          if (regressed) {
            this.#options.onRegressed(this.room);
            await this.#options.restart(this.room, regressed);
          }
          const page = await this.#readFromStart();
          if (this.#closed || this.#fork) return;
          if (page.epoch === this.#epoch) {
            // Nothing moved after all (a restart found the history already renamed back): read on.
            if (page.top >= this.#seq || regressed) return;
            regressed = this.#epoch;
            continue;
          }
          this.#adopt(page, { epoch: this.#epoch, seq: this.#seq }, new Set(), this.#lineage(this.#seq));
          return;
        } catch (error) {
          this.#options.onFillError(error);
          await sleep(Math.min(2_000, 100 * 2 ** attempt++));
        }
      }
    })().finally(() => {
      this.#repositioning = undefined;
      if (!this.#closed) void this.catchUp();
    });
    return this.#repositioning;
  }

  /** The whole log (as far as one page goes), so a move can match it against what was delivered. */
  #readFromStart(): Promise<HistoryPage> {
    return this.#options.read(this.room, { after: 0, limit: Math.max(FILL_PAGE, this.#options.historySize) });
  }

  /** Event ids this stream delivered in its current epoch, by seq (up to `upTo`). */
  #lineage(upTo: number): Map<number, string> {
    const ids = new Map<number, string>();
    for (const event of this.#recent) if (event.seq <= upTo) ids.set(event.seq, event.id);
    return ids;
  }

  /**
   * Continues in `page`'s epoch. The same epoch as `base`: from `base.seq`. Another one:
   * from the last event of the page that this stream already delivered (the page
   * continues its history: a rename after a regression keeps the log), or from the start
   * of the page (a new history); members get `room:epoch` either way. Events whose ids
   * are in `seen` were delivered here already and are skipped.
   */
  #adopt(
    page: HistoryPage,
    base: { epoch: string | undefined; seq: number },
    seen: Set<string>,
    lineage: Map<number, string>,
  ): void {
    let position = base.seq;
    let reason: RecoveryFailureReason | undefined;
    if (page.epoch !== base.epoch) {
      reason = 'epoch_changed';
      const first = page.events[0];
      position = first ? first.seq - 1 : page.top;
      // Below what this stream remembers, a continued history's events were delivered too.
      const remembered = Math.min(...lineage.keys());
      if (page.events.some((event) => lineage.get(event.seq) === event.id)) {
        for (const event of page.events) {
          if (event.seq > base.seq || (event.seq >= remembered && lineage.get(event.seq) !== event.id)) break;
          position = event.seq;
        }
      }
    }
    this.#moveTo(page.epoch, position, reason);
    const fresh = page.events.filter((event) => event.seq > position);
    if (fresh[0] && fresh[0].seq > position + 1) this.#skipTo(fresh[0].seq - 1);
    this.#take(fresh, seen);
  }

  /** Delivers `events` (contiguous, in order), except those in `seen`, which are only recorded. */
  #take(events: RoomEvent[], seen: Set<string>): void {
    let from = 0;
    for (let i = 0; i < events.length; i++) {
      const event = events[i] as RoomEvent;
      if (!seen.has(event.id)) continue;
      this.#deliver(events.slice(from, i));
      this.#remember([event]);
      from = i + 1;
    }
    this.#deliver(events.slice(from));
  }

  #recentAt(seq: number): RoomEvent | undefined {
    const first = this.#recent[0]?.seq;
    return first === undefined ? undefined : this.#recent[seq - first];
  }

  close(): void {
    this.#closed = true;
    this.#dropHeld();
  }

  #deliver(events: RoomEvent[]): void {
    if (this.#remember(events)) this.#options.output.deliver(this.room, events);
  }

  /** Advances the position over `events` without sending them (false when there are none). */
  #remember(events: RoomEvent[]): boolean {
    const last = events[events.length - 1];
    if (!last) return false;
    this.#seq = last.seq;
    const { keep, keepBytes } = this.#options;
    for (const event of events) {
      this.#recent.push(event);
      this.#recentBytes += eventBytes(event);
    }
    while (this.#recent.length > 1 && (this.#recent.length > keep || this.#recentBytes > keepBytes)) {
      this.#recentBytes -= eventBytes(this.#recent.shift() as RoomEvent);
    }
    return true;
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
