import type { UpstreamProvider } from '@switchboard/contract';

/** What the gateway remembers about a minted client secret: never the secret itself. */
export interface UpstreamRecord {
  /** `<owner tag>.<random>`, see ids.ts. */
  id: string;
  owner: string;
  room: string | undefined;
  provider: UpstreamProvider;
  model: string;
  voice: string;
  /** Epoch milliseconds: when the secret expires at the provider. */
  expiresAt: number;
}

/** What one owner may reserve: live slots at once, and reservations per window. */
export interface ReserveLimits {
  /** Live secrets (held or committed slots) at once. */
  live: number;
  /** Reservations in any `windowMs`: each one reaches the provider, so each counts, deleted or not. */
  perWindow: number;
  windowMs: number;
}

/** Which limit refused a reservation: `live` (also a full memory fallback) or `rate`. */
export type ReserveLimit = 'live' | 'rate';

export type ReserveOutcome = { ok: true } | { ok: false; limit: ReserveLimit; retryAfterMs: number };

/**
 * Live upstream secrets per owner. A mint first reserves a slot (before the provider
 * is asked, so a refused request costs nothing upstream), then commits the record with
 * the secret's real expiry, or releases the slot when the provider failed. A slot is
 * freed when its record expires or is removed; a reservation stays counted against the
 * owner's rate for its whole window, so deleting records early buys no more mints.
 * The owner is known from the id.
 */
export interface UpstreamStore {
  readonly kind: 'redis' | 'memory';
  /**
   * Atomically forgets the owner's expired slots and reservations that left the window
   * and, if both limits leave room, holds a slot for `id` until `holdUntil` (epoch ms)
   * and counts the reservation. Refused: the limit that refused, and how long until
   * both leave room.
   */
  reserve(id: string, holdUntil: number, limits: ReserveLimits): Promise<ReserveOutcome>;
  /** Stores the record until `record.expiresAt`, and holds its slot exactly as long. */
  commit(record: UpstreamRecord): Promise<void>;
  /** Frees the slot of a reservation that was never committed. */
  release(id: string): Promise<void>;
  /** The live record, or undefined. */
  get(id: string): Promise<UpstreamRecord | undefined>;
  /** Forgets the record and frees its slot; false when there was no live record. */
  remove(id: string): Promise<boolean>;
}

/** The record as stored: everything but the id, which the key carries. */
export type StoredRecord = Omit<UpstreamRecord, 'id'>;

export function isStoredRecord(value: unknown): value is StoredRecord {
  if (typeof value !== 'object' || value === null) return false;
  const r = value as Record<string, unknown>;
  return (
    typeof r.owner === 'string' &&
    (r.room === undefined || typeof r.room === 'string') &&
    r.provider === 'openai' &&
    typeof r.model === 'string' &&
    typeof r.voice === 'string' &&
    typeof r.expiresAt === 'number'
  );
}
