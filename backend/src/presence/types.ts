import type { PeerInfo, PeerLeftReason } from '@switchboard/contract';

/** Who is in which room, across replicas. Lookups on the hot path are synchronous. */
export interface Presence {
  /** Adds a local peer; resolves once this replica knows the room's peers. */
  join(room: string, peer: PeerInfo): Promise<void>;
  /**
   * The room's announced peers other than `peerId`: what a newcomer's `session` lists. Read
   * in the tick the session is sent, so that every later peer is announced to it instead.
   */
  others(room: string, peerId: string): PeerInfo[];
  /** Tells the room about a peer `join` added, once it knows its own session. */
  announce(room: string, peer: PeerInfo): void;
  leave(room: string, peerId: string, reason: PeerLeftReason): void;
  /** Whether `peerId` is in `room`, from the local view (no Redis round trip). */
  has(room: string, peerId: string): boolean;
  list(room: string): Promise<PeerInfo[]>;
  /** A change another replica published on the room's channel. */
  receive(message: PresenceMessage): void;
  /** Re-reads a room from Redis after messages may have been lost, announcing the difference. */
  refresh(room: string): Promise<void>;
  /** Removes every local peer (graceful shutdown) and stops background work; idempotent. */
  close(reason: PeerLeftReason): Promise<void>;
}

/** Delivery of presence changes to this replica's sockets. */
export interface PresenceListener {
  joined(room: string, peer: PeerInfo): void;
  left(room: string, peerId: string, reason: PeerLeftReason): void;
}

/** Messages replicas exchange on a room's channel, so each keeps its view of the room current. */
export type PresenceMessage =
  | { t: 'join'; room: string; peer: PeerInfo }
  | { t: 'leave'; room: string; peerId: string; reason: PeerLeftReason }
  | { t: 'sync'; room: string; replica: string; peers: PeerInfo[] };
