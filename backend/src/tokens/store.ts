/** What the gateway remembers about a minted RTC token. */
export interface TokenRecord {
  /** Carries the owner's slot tag (see rtc-token.ts), so Redis keys can be derived from it alone. */
  jti: string;
  /** The user it was minted for, checked when someone revokes it. */
  sub: string;
  /** Epoch milliseconds. */
  expiresAt: number;
}

/** What a redemption also checks: was this user removed from the token's room after it was minted? */
export interface RedeemRecord extends TokenRecord {
  room: string;
  /** The token's `iat`, epoch seconds. */
  issuedAt: number;
}

/** The user was removed from the room at `at` (epoch ms): tokens issued up to then are refused. */
export interface KickRecord {
  userId: string;
  room: string;
  at: number;
  /** Epoch ms after which no token that predates the kick can still be live. */
  expiresAt: number;
}

/** Mints allowed per user per window. */
export interface MintLimit {
  max: number;
  windowMs: number;
}

/** `full`: the memory store cannot remember one more token without forgetting a live mark. */
export type MintOutcome = { ok: true } | { ok: false; retryAfterMs: number } | { ok: false; full: true };

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
  /** Atomically consumes the token, so exactly one redemption wins; `revoked` also after a kick. */
  redeem(record: RedeemRecord): Promise<RedeemOutcome>;
  /** Records a kick, so tokens issued before it for that user and room are refused. */
  kick(record: KickRecord): Promise<void>;
  /**
   * Makes a live, unused token unredeemable if `requester` owns it or is a service;
   * false when there is no such token (or it is someone else's).
   */
  revoke(jti: string, requester: Requester): Promise<boolean>;
}
