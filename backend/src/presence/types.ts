import type { PeerInfo, PeerLeftReason } from '@switchboard/contract';

/** Who is in which room, across replicas. Lookups on the hot path are synchronous. */
export interface Presence {
  /** Adds a local peer; resolves with the other peers of the room. */
  join(room: string, peer: PeerInfo): Promise<PeerInfo[]>;
  leave(room: string, peerId: string, reason: PeerLeftReason): void;
  /** Whether `peerId` is in `room`, from the local view (no Redis round trip). */
  has(room: string, peerId: string): boolean;
  list(room: string): Promise<PeerInfo[]>;
  /** Removes every local peer (graceful shutdown) and stops background work; idempotent. */
  close(reason: PeerLeftReason): Promise<void>;
}

/** Delivery of presence changes to this replica's sockets. */
export interface PresenceListener {
  joined(room: string, peer: PeerInfo): void;
  left(room: string, peerId: string, reason: PeerLeftReason): void;
}

/** Messages replicas exchange so each keeps its view of shared rooms current. */
export type PresenceMessage =
  | { t: 'join'; room: string; peer: PeerInfo }
  | { t: 'leave'; room: string; peerId: string; reason: PeerLeftReason }
  | { t: 'sync'; replica: string; peers: Array<{ room: string; peer: PeerInfo }> };

export interface PresenceBus {
  publish(message: PresenceMessage): void;
  subscribe(handler: (message: PresenceMessage) => void): void;
}
