import { parseUpstreamId } from './ids.js';
import type { ReserveLimits, ReserveOutcome, UpstreamRecord, UpstreamStore } from './store.js';

export interface MemoryUpstreamStoreOptions {
  /** Most slots held at once, and most reservations in the rate window, across owners; past it, reservations are refused. */
  cap: number;
  now?: () => number;
  sweepIntervalMs?: number;
}

export interface MemoryUpstreamStore extends UpstreamStore {
  readonly size: number;
  /** Removes and returns every live committed record, for replay into Redis. */
  drain(): UpstreamRecord[];
  /** Puts back records that could not be replayed. */
  restore(records: UpstreamRecord[]): void;
  close(): void;
}

/**
 * The fallback while Redis is down: the same slots, reservation counts and records, per
 * replica. Slots and reservation times are grouped by owner tag; expired ones are
 * dropped when their owner reserves again and by a periodic sweep, so the maps stay
 * bounded by `cap` live slots and `cap` reservations in the window.
 */
export function createMemoryUpstreamStore({
  cap,
  now = Date.now,
  sweepIntervalMs = 5_000,
}: MemoryUpstreamStoreOptions): MemoryUpstreamStore {
  /** owner tag → id → epoch ms until which the slot is held. */
  const slots = new Map<string, Map<string, number>>();
  const records = new Map<string, UpstreamRecord>();
  let size = 0;
  /** owner tag → epoch ms of each reservation still in the window, oldest first. */
  const mints = new Map<string, number[]>();
  let minted = 0;
  /** The longest window asked for so far: the sweep keeps reservations that long. */
  let windowMs = 0;

  const tagOf = (id: string): string => {
    const parsed = parseUpstreamId(id);
    if (!parsed) throw new Error('malformed upstream id');
    return parsed.tag;
  };
  const drop = (tag: string, id: string): void => {
    const owned = slots.get(tag);
    if (owned?.delete(id)) {
      size--;
      if (owned.size === 0) slots.delete(tag);
    }
    records.delete(id);
  };
  const forgetMints = (tag: string, before: number): void => {
    const times = mints.get(tag);
    if (!times) return;
    let stale = 0;
    while (stale < times.length && (times[stale] ?? Infinity) <= before) stale++;
    if (stale === 0) return;
    times.splice(0, stale);
    minted -= stale;
    if (times.length === 0) mints.delete(tag);
  };
  const prune = (tag: string, t: number): void => {
    for (const [id, until] of slots.get(tag) ?? []) if (until <= t) drop(tag, id);
    forgetMints(tag, t - windowMs);
  };
  const hold = (tag: string, id: string, until: number): void => {
    let owned = slots.get(tag);
    if (!owned) slots.set(tag, (owned = new Map<string, number>()));
    if (!owned.has(id)) size++;
    owned.set(id, until);
  };
  const keep = (record: UpstreamRecord): void => {
    if (record.expiresAt <= now()) return;
    hold(tagOf(record.id), record.id, record.expiresAt);
    records.set(record.id, record);
  };
  const sweep = (): void => {
    const t = now();
    for (const tag of new Set([...slots.keys(), ...mints.keys()])) prune(tag, t);
  };
  const timer = setInterval(sweep, sweepIntervalMs);
  timer.unref();

  /** As the Redis script decides: the limit that waits longest, and how long. */
  const refusal = (tag: string, t: number, limits: ReserveLimits): ReserveOutcome | undefined => {
    let wait = 0;
    let limit: 'live' | 'rate' | undefined;
    const owned = [...(slots.get(tag)?.values() ?? [])].sort((a, b) => a - b);
    if (owned.length >= limits.live) {
      wait = (owned[owned.length - limits.live] ?? t) - t;
      limit = 'live';
    }
    const times = mints.get(tag) ?? [];
    if (times.length >= limits.perWindow) {
      const leaves = (times[times.length - limits.perWindow] ?? t) + limits.windowMs - t;
      if (leaves > wait) [wait, limit] = [leaves, 'rate'];
    }
    return limit ? { ok: false, limit, retryAfterMs: Math.max(1, wait) } : undefined;
  };

  const live = (id: string): UpstreamRecord | undefined => {
    const record = records.get(id);
    if (record && record.expiresAt <= now()) {
      drop(tagOf(id), id);
      return undefined;
    }
    return record;
  };

  return {
    kind: 'memory',
    get size() {
      return size;
    },
    reserve(id, holdUntil, limits: ReserveLimits): Promise<ReserveOutcome> {
      const tag = tagOf(id);
      const t = now();
      windowMs = Math.max(windowMs, limits.windowMs);
      prune(tag, t);
      forgetMints(tag, t - limits.windowMs);
      if (size >= cap || minted >= cap) sweep();
      const refused = refusal(tag, t, limits);
      if (refused) return Promise.resolve(refused);
      // Full across owners: a bound on memory, not a per-user limit; a second is a guess.
      if (size >= cap || minted >= cap) return Promise.resolve({ ok: false, limit: 'live', retryAfterMs: 1_000 });
      hold(tag, id, holdUntil);
      let times = mints.get(tag);
      if (!times) mints.set(tag, (times = []));
      times.push(t);
      minted++;
      return Promise.resolve({ ok: true });
    },
    commit(record) {
      keep(record);
      return Promise.resolve();
    },
    release(id) {
      drop(tagOf(id), id);
      return Promise.resolve();
    },
    get(id) {
      return Promise.resolve(live(id));
    },
    remove(id) {
      const found = live(id) !== undefined;
      drop(tagOf(id), id);
      return Promise.resolve(found);
    },
    drain() {
      sweep();
      const out = [...records.values()];
      for (const record of out) drop(tagOf(record.id), record.id);
      return out;
    },
    restore(list) {
      for (const record of list) keep(record);
    },
    close() {
      clearInterval(timer);
    },
  };
}
