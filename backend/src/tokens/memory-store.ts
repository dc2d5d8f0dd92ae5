import type {
  KickRecord,
  MintLimit,
  MintOutcome,
  RedeemOutcome,
  RedeemRecord,
  TokenRecord,
  TokenState,
  TokenStore,
} from './store.js';

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
  /**
   * Most entries held. Past it new mints are refused (`full`): a used or revoked mark is
   * never forgotten before its token expires, or the token would pass a second time.
   */
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
  /** Puts back entries that could not be replayed (these may pass the cap: they were held before). */
  restore(entries: TokenSnapshot[]): void;
  /** Records a token redeemed through its signature alone; false when the map is full. */
  markUsed(record: TokenRecord): boolean;
  /** Whether a kick on this replica refuses a token issued at `issuedAt` (epoch seconds). */
  kicked(userId: string, room: string, issuedAt: number): boolean;
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
  // `<len>:<user><room>` -> kick; few (services kick), and swept with the rest.
  const kicks = new Map<string, { at: number; expiresAt: number }>();
  const kickKey = (userId: string, room: string) => `${userId.length}:${userId}${room}`;

  const sweep = (): void => {
    const t = now();
    let expired = 0;
    for (const [jti, entry] of entries) {
      if (entry.expiresAt > t) break;
      if (entry.state === 'minted') expired++;
      entries.delete(jti);
    }
    for (const [key, window] of windows) if (window.resetAt <= t) windows.delete(key);
    for (const [key, kick] of kicks) if (kick.expiresAt <= t) kicks.delete(key);
    if (expired > 0) onExpired?.(expired);
  };
  const timer = setInterval(sweep, sweepIntervalMs);
  timer.unref();

  /** Room for one more entry, after dropping what has expired. */
  const hasRoom = (): boolean => {
    if (entries.size >= cap) sweep();
    return entries.size < cap;
  };
  const put = (jti: string, entry: Entry): void => {
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
      if (!hasRoom()) return Promise.resolve({ ok: false, full: true } as const);
      const outcome = take(record.sub, limit);
      if (outcome.ok) put(record.jti, { sub: record.sub, expiresAt: record.expiresAt, state: 'minted' });
      return Promise.resolve(outcome);
    },
    redeem(record: RedeemRecord): Promise<RedeemOutcome> {
      if (this.kicked(record.sub, record.room, record.issuedAt)) return Promise.resolve('revoked');
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
    kick({ userId, room, at, expiresAt }: KickRecord) {
      const key = kickKey(userId, room);
      const known = kicks.get(key);
      kicks.set(key, { at: Math.max(at, known?.at ?? 0), expiresAt: Math.max(expiresAt, known?.expiresAt ?? 0) });
      return Promise.resolve();
    },
    kicked(userId, room, issuedAt) {
      const kick = kicks.get(kickKey(userId, room));
      // Seconds against milliseconds: a token issued in the second of the kick is refused too.
      return kick !== undefined && kick.expiresAt > now() && issuedAt * 1000 <= kick.at;
    },
    markUsed(record) {
      if (!hasRoom()) return false;
      put(record.jti, { sub: record.sub, expiresAt: record.expiresAt, state: 'used' });
      return true;
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
