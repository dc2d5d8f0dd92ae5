/** What the gateway remembers about a minted RTC token. */
export interface TokenRecord {
  jti: string;
  /** The user it was minted for, checked when someone revokes it. */
  sub: string;
  /** Epoch milliseconds. */
  expiresAt: number;
}

export interface MintLimit {
  /** Bucket the mint counts against (one per user). */
  key: string;
  max: number;
  windowMs: number;
}

export type MintOutcome = { ok: true } | { ok: false; retryAfterMs: number };

/** `redeemed`: first use; `used`: redeemed or revoked before; `unknown`: this store never saw it. */
export type RedeemOutcome = 'redeemed' | 'used' | 'unknown';

/**
 * Where RTC tokens live between mint and redemption. The Redis driver makes single
 * use cluster-wide; the memory driver is the fallback that keeps one replica serving.
 */
export interface TokenStore {
  readonly kind: 'redis' | 'memory';
  /** Counts the mint against `limit` and, if allowed, records the token. */
  mint(record: TokenRecord, limit: MintLimit): Promise<MintOutcome>;
  /** Atomically consumes the token, so exactly one redemption wins. */
  redeem(jti: string): Promise<RedeemOutcome>;
  /** The owner of a live token, or undefined when there is none. */
  owner(jti: string): Promise<string | undefined>;
  /** Makes a live token unredeemable; false when there was none. */
  revoke(jti: string): Promise<boolean>;
}
