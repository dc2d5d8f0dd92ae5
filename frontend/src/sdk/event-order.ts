import type {
  HistoryResponse,
  RecoveryFailureReason,
  RoomEpochPayload,
  RoomEvent,
  RoomPosition,
  SessionPayload,
} from '@switchboard/contract';

export interface EventOrderOptions {
  /** Hands one event to the app; called once per event, in seq order. */
  deliver: (event: RoomEvent) => void;
  /** Reads the room's history (the socket's `history` request). */
  fetchHistory: (after: number, limit: number) => Promise<HistoryResponse>;
  /** Events between the app's view and the room's were lost: the app should reload what it shows. */
  lost: (reason: RecoveryFailureReason) => void;
  /**
   * How long an event that arrived ahead of its predecessor waits for it before the
   * hole is filled from the history.
   * @default 250
   */
  holdMs?: number;
}

const FILL_LIMIT = 100;

/**
 * The client's side of the delivery guarantee: it keeps the room's position (the last
 * event the app saw), drops what it has seen already, and puts events in seq order. The
 * gateway already sends each event once and in order; this makes the app's view hold
 * across reconnects, replays and replicas too. A hole (a seq jump) is filled through
 * the `history` request instead of a reconnect.
 */
export class EventOrder {
  #position: RoomPosition | undefined;
  #held = new Map<number, RoomEvent>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #filling = false;
  /** The epoch the app was last told it moved to with `epoch_changed`. */
  #toldEpoch: string | undefined;
  /** Bumped on every session or move, so an answer to an older fill is ignored. */
  #generation = 0;
  readonly #options: EventOrderOptions;

  constructor(options: EventOrderOptions) {
    this.#options = options;
  }

  /** The last event the app saw: sent as `auth.recover` on every reconnect. */
  get position(): RoomPosition | undefined {
    return this.#position;
  }

  /** A new session: keep the position when the gateway recovered it, else start from the session's. */
  start(session: SessionPayload): void {
    this.#reset();
    if (!session.recovery?.recovered || !this.#position) this.#position = session.position;
    // A refused recovery is reported by the session itself; a notice of the same epoch is not news.
    const recovery = session.recovery;
    if (recovery && !recovery.recovered && recovery.reason === 'epoch_changed')
      this.#toldEpoch = session.position.epoch;
  }

  receive(event: RoomEvent): void {
    const position = this.#position;
    // Sent around the gateway's history (e.g. with @socket.io/redis-emitter): no seq to order by.
    if (typeof event.seq !== 'number' || !position) {
      this.#options.deliver(event);
      return;
    }
    if (event.seq <= position.seq) return;
    if (event.seq === position.seq + 1) {
      this.#advance(event);
      this.#drain();
      return;
    }
    this.#held.set(event.seq, event);
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      void this.#fill();
    }, this.#options.holdMs ?? 250);
  }

  /**
   * The room's numbering moved (`room:epoch`): continue from there, and say if something
   * was lost: once per new epoch, however many ways the client learns of it (the
   * gateway's notice, a fill of its own, a refused recovery).
   */
  moved(payload: Omit<RoomEpochPayload, 'room'>): void {
    this.#reset();
    this.#position = { epoch: payload.epoch, seq: payload.seq };
    if (!payload.reason) return;
    if (payload.reason === 'epoch_changed' && this.#toldEpoch === payload.epoch) return;
    if (payload.reason === 'epoch_changed') this.#toldEpoch = payload.epoch;
    this.#options.lost(payload.reason);
  }

  /** The socket is gone: drop what waits (a reconnect replays it), keep the position. */
  pause(): void {
    this.#reset();
  }

  #reset(): void {
    this.#generation++;
    this.#held.clear();
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #advance(event: RoomEvent): void {
    if (this.#position) this.#position = { epoch: this.#position.epoch, seq: event.seq };
    this.#options.deliver(event);
  }

  #drain(): void {
    const position = this.#position;
    if (!position) return;
    for (const seq of this.#held.keys()) if (seq <= position.seq) this.#held.delete(seq);
    for (let next = this.#held.get(position.seq + 1); next; next = this.#held.get(next.seq + 1)) {
      this.#held.delete(next.seq);
      this.#advance(next);
    }
    if (this.#held.size === 0) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }

  async #fill(): Promise<void> {
    const position = this.#position;
    if (this.#filling || !position || this.#held.size === 0) return;
    this.#filling = true;
    const generation = this.#generation;
    try {
      const page = await this.#options.fetchHistory(position.seq, FILL_LIMIT);
      // Events that arrived meanwhile may have moved the position on.
      const current = this.#position;
      if (generation !== this.#generation || !current) return;
      if (page.epoch !== current.epoch) {
        // The history it counted in is gone; what was missed cannot be told apart.
        this.moved({ epoch: page.epoch, seq: page.top, reason: 'epoch_changed' });
        return;
      }
      for (const event of page.events) if (event.seq > current.seq) this.#held.set(event.seq, event);
      const first = Math.min(...this.#held.keys());
      if (first > current.seq + 1) {
        // Trimmed from the history before it could be read: skip it, and say so.
        this.#position = { epoch: current.epoch, seq: first - 1 };
        this.#options.lost('history_expired');
      }
      this.#drain();
    } catch {
      // Not connected, or the gateway refused: a reconnect recovers from the position.
    } finally {
      this.#filling = false;
      if (generation === this.#generation && this.#held.size > 0) {
        this.#timer ??= setTimeout(() => {
          this.#timer = undefined;
          void this.#fill();
        }, this.#options.holdMs ?? 250);
      }
    }
  }
}
