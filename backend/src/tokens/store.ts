/** What the gateway remembers about a minted RTC token. */
export interface TokenRecord {
  /** Carries the owner's slot tag (see rtc-token.ts), so Redis keys can be derived from it alone. */
  jti: string;
  /** The user it was minted for, checked when someone revokes it. */
  sub: string;
  /** Epoch milliseconds. */
  expiresAt: number;
}

/** Mints allowed per user per window. */
export interface MintLimit {
  max: number;
  windowMs: number;
}

export type MintOutcome = { ok: true } | { ok: false; retryAfterMs: number };

export interface Requester {
  userId: string;
  service: boolean;
}

export type TokenState = 'minted' | 'used' | 'revoked';

/**
 * `redeemed`: first use; `used`: redeemed before; `revoked`: revoked before it was used;
 * `unknown`: this store never saw it (or forgot it when it expired).
 */
export type RedeemOutcome = 'redeemed' | 'used' | 'revoked' | 'unknown';

/**
 * Where RTC tokens live between mint and redemption. The Redis driver makes single
 * use cluster-wide; the memory driver is the fallback that keeps one replica serving.
 */
export interface TokenStore {
  readonly kind: 'redis' | 'memory';
  /** Counts the mint against `limit` and, if allowed, records the token. */
  mint(record: TokenRecord, limit: MintLimit): Promise<MintOutcome>;
  /** Atomically consumes the token, so exactly one redemption wins. */
  redeem(record: TokenRecord): Promise<RedeemOutcome>;
  /**
   * Makes a live, unused token unredeemable if `requester` owns it or is a service;
   * false when there is no such token (or it is someone else's).
   */
  revoke(jti: string, requester: Requester): Promise<boolean>;
}
