import type { MintLimit, MintOutcome, RedeemOutcome, TokenRecord, TokenStore } from './store.js';

const MINTED = 0;
const USED = 1;

interface Entry {
  sub: string;
  expiresAt: number;
  state: typeof MINTED | typeof USED;
}

export interface MemoryTokenStoreOptions {
  /** Most entries held; past it the oldest are evicted. */
  cap: number;
  now?: () => number;
  /** Called with the number of minted tokens evicted unredeemed because they expired. */
  onExpired?: (count: number) => void;
  sweepIntervalMs?: number;
}

export interface MemoryTokenStore extends TokenStore {
  readonly size: number;
  /** Removes and returns every live entry, for replay into Redis. */
  drain(): Array<{ jti: string; sub: string; expiresAt: number; used: boolean }>;
  /** Puts back entries that could not be replayed. */
  restore(entries: Array<{ jti: string; sub: string; expiresAt: number; used: boolean }>): void;
  close(): void;
}

/**
 * Bounded in-memory token store. Insertion order is expiry order (one TTL for all),
 * so expired entries are always at the front of the Map and eviction is O(expired).
 */
export function createMemoryTokenStore({
  cap,
  now = Date.now,
  onExpired,
  sweepIntervalMs = 5_000,
}: MemoryTokenStoreOptions): MemoryTokenStore {
  const entries = new Map<string, Entry>();
  const windows = new Map<string, { resetAt: number; count: number }>();

  const sweep = (): void => {
    const t = now();
    let expired = 0;
    for (const [jti, entry] of entries) {
      if (entry.expiresAt > t) break;
      if (entry.state === MINTED) expired++;
      entries.delete(jti);
    }
    for (const [key, window] of windows) if (window.resetAt <= t) windows.delete(key);
    if (expired > 0) onExpired?.(expired);
  };
  const timer = setInterval(sweep, sweepIntervalMs);
  timer.unref();

  const put = (jti: string, entry: Entry): void => {
    if (entries.size >= cap) sweep();
    while (entries.size >= cap) {
      const oldest = entries.keys().next();
      if (oldest.done) break;
      entries.delete(oldest.value);
    }
    entries.delete(jti);
    entries.set(jti, entry);
  };

  const live = (jti: string): Entry | undefined => {
    const entry = entries.get(jti);
    if (entry && entry.expiresAt <= now()) {
      entries.delete(jti);
      return undefined;
    }
    return entry;
  };

  const take = (limit: MintLimit): MintOutcome => {
    const t = now();
    let window = windows.get(limit.key);
    if (!window || window.resetAt <= t) {
      if (windows.size >= cap) sweep();
      window = { resetAt: t + limit.windowMs, count: 0 };
      windows.set(limit.key, window);
    }
    window.count++;
    return window.count <= limit.max ? { ok: true } : { ok: false, retryAfterMs: window.resetAt - t };
  };

  return {
    kind: 'memory',
    get size() {
      return entries.size;
    },
    mint(record: TokenRecord, limit: MintLimit) {
      const outcome = take(limit);
      if (outcome.ok) put(record.jti, { sub: record.sub, expiresAt: record.expiresAt, state: MINTED });
      return Promise.resolve(outcome);
    },
    redeem(jti: string): Promise<RedeemOutcome> {
      const entry = live(jti);
      if (entry?.state === USED) return Promise.resolve('used');
      if (entry) {
        entry.state = USED;
        return Promise.resolve('redeemed');
      }
      return Promise.resolve('unknown');
    },
    owner(jti: string) {
      const entry = live(jti);
      return Promise.resolve(entry?.state === MINTED ? entry.sub : undefined);
    },
    revoke(jti: string) {
      const entry = live(jti);
      if (entry?.state !== MINTED) return Promise.resolve(false);
      entry.state = USED;
      return Promise.resolve(true);
    },
    drain() {
      sweep();
      const out = [...entries].map(([jti, e]) => ({ jti, sub: e.sub, expiresAt: e.expiresAt, used: e.state === USED }));
      entries.clear();
      return out;
    },
    restore(list) {
      for (const e of list) put(e.jti, { sub: e.sub, expiresAt: e.expiresAt, state: e.used ? USED : MINTED });
    },
    close() {
      clearInterval(timer);
    },
  };
}

/** Marks a token as used in the memory store when it was never recorded there. */
export function markUsed(store: MemoryTokenStore, record: TokenRecord): void {
  store.restore([{ jti: record.jti, sub: record.sub, expiresAt: record.expiresAt, used: true }]);
}
