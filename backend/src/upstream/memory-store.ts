import { parseUpstreamId } from './ids.js';
import type { ReserveOutcome, UpstreamRecord, UpstreamStore } from './store.js';

export interface MemoryUpstreamStoreOptions {
  /** Most slots held at once, across owners; past it, reservations are refused. */
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
 * The fallback while Redis is down: the same slots and records, per replica. Slots are
 * grouped by owner tag; expired ones are dropped when their owner reserves again and
 * by a periodic sweep, so the maps stay bounded by `cap` live slots.
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
  const prune = (tag: string, t: number): void => {
    for (const [id, until] of slots.get(tag) ?? []) if (until <= t) drop(tag, id);
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
    for (const tag of [...slots.keys()]) prune(tag, t);
  };
  const timer = setInterval(sweep, sweepIntervalMs);
  timer.unref();

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
    reserve(id, holdUntil, max): Promise<ReserveOutcome> {
      const tag = tagOf(id);
      const t = now();
      prune(tag, t);
      if (size >= cap) sweep();
      const owned = [...(slots.get(tag)?.values() ?? [])];
      if (owned.length >= max) return Promise.resolve({ ok: false, retryAfterMs: Math.max(1, Math.min(...owned) - t) });
      // Full across owners: a bound on memory, not a per-user limit; a second is a guess.
      if (size >= cap) return Promise.resolve({ ok: false, retryAfterMs: 1_000 });
      hold(tag, id, holdUntil);
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
