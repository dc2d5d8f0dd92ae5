import type { PeerInfo, PeerLeftReason, PeersPage } from '@switchboard/contract';

/** A page of a room's peers from the local view; `cursor` is a number here, a string on the wire. */
export type PeerPage = Omit<PeersPage, 'cursor'> & { cursor?: number };

/** Who is in which room, across replicas. Lookups on the hot path are synchronous. */
export interface Presence {
  /** Adds a local peer; resolves once this replica knows the room's peers. */
  join(room: string, peer: PeerInfo): Promise<void>;
  /**
   * At most `max` of the room's announced peers other than `peerId`: what a newcomer's
   * `session` lists. Read in the tick the session is sent, so that every later peer is
   * announced to it instead. O(max), whatever the room's size.
   */
  snapshot(room: string, peerId: string, max: number): PeerInfo[];
  /** How many peers the room has, from the local view (0 when this replica has no member there). */
  count(room: string): number;
  /** A page of the local view of a room this replica has members in (see RoomView.page). */
  page(room: string, cursor: number, limit: number): PeerPage;
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
  /** Where changes are delivered from now on (nowhere until then). */
  listen(listener: PresenceListener): void;
  /** Removes every local peer (graceful shutdown) and stops background work; idempotent. */
  close(reason: PeerLeftReason): Promise<void>;
}

/** Delivery of presence changes to this replica's sockets; `count` is the room's size after the change. */
export interface PresenceListener {
  joined(room: string, peer: PeerInfo, count: number): void;
  left(room: string, peerId: string, reason: PeerLeftReason, count: number): void;
}

/** Messages replicas exchange on a room's channel, so each keeps its view of the room current. */
export type PresenceMessage =
  | { t: 'join'; room: string; peer: PeerInfo }
  | { t: 'leave'; room: string; peerId: string; reason: PeerLeftReason }
  | { t: 'sync'; room: string; replica: string; peers: PeerInfo[] };
