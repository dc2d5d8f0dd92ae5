import type { MintLimit, MintOutcome, RedeemOutcome, TokenRecord, TokenState, TokenStore } from './store.js';

interface Entry {
  sub: string;
  expiresAt: number;
  state: TokenState;
}

/** A token as the fallback map holds it, for replay into Redis. */
export interface TokenSnapshot {
  jti: string;
  sub: string;
  expiresAt: number;
  state: TokenState;
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
  drain(): TokenSnapshot[];
  /** Puts back entries that could not be replayed, or records a token redeemed elsewhere. */
  restore(entries: TokenSnapshot[]): void;
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
      if (entry.state === 'minted') expired++;
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

  const take = (user: string, limit: MintLimit): MintOutcome => {
    const t = now();
    let window = windows.get(user);
    if (!window || window.resetAt <= t) {
      if (windows.size >= cap) sweep();
      window = { resetAt: t + limit.windowMs, count: 0 };
      windows.set(user, window);
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
      const outcome = take(record.sub, limit);
      if (outcome.ok) put(record.jti, { sub: record.sub, expiresAt: record.expiresAt, state: 'minted' });
      return Promise.resolve(outcome);
    },
    redeem(record: TokenRecord): Promise<RedeemOutcome> {
      const entry = live(record.jti);
      if (!entry) return Promise.resolve('unknown');
      if (entry.state !== 'minted') return Promise.resolve(entry.state);
      entry.state = 'used';
      return Promise.resolve('redeemed');
    },
    revoke(jti, requester) {
      const entry = live(jti);
      if (entry?.state !== 'minted' || (!requester.service && entry.sub !== requester.userId)) {
        return Promise.resolve(false);
      }
      entry.state = 'revoked';
      return Promise.resolve(true);
    },
    drain() {
      sweep();
      const out = [...entries].map(([jti, e]) => ({ jti, sub: e.sub, expiresAt: e.expiresAt, state: e.state }));
      entries.clear();
      return out;
    },
    restore(list) {
      for (const e of list) put(e.jti, { sub: e.sub, expiresAt: e.expiresAt, state: e.state });
    },
    close() {
      clearInterval(timer);
    },
  };
}
