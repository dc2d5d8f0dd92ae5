import type { PeerInfo, PeerLeftReason } from '@switchboard/contract';
import type { PeerPage, PresenceListener } from './types.js';

/**
 * One room's peers, in the order this replica learnt them. `order` numbers them in that
 * order (a Map keeps insertion order, and a peer that leaves and comes back is a new peer
 * id), so a page cursor is the number of the last peer it listed: stable while peers come
 * and go, and every peer that stays is listed once.
 */
interface RoomPeers {
  peers: Map<string, PeerInfo>;
  order: Map<string, number>;
  next: number;
}

const SILENT: PresenceListener = { joined: () => undefined, left: () => undefined };

/** `room`-`peerId` pairs: one connection has the same peer id in each of its rooms. */
export const memberKey = (room: string, peerId: string): string => `${room}\n${peerId}`;

/**
 * This replica's view of the rooms it has members in: every peer of those rooms,
 * local or remote. Both presence drivers keep one; the Redis driver also feeds it
 * from other replicas.
 */
export class RoomView {
  private readonly rooms = new Map<string, RoomPeers>();
  private readonly localCounts = new Map<string, number>();
  /** Local memberships still being admitted: they have no session yet, and are announced once they do. */
  private readonly unannounced = new Set<string>();

  private listener: PresenceListener;

  constructor(
    listener: PresenceListener | undefined,
    private readonly replica: string,
  ) {
    this.listener = listener ?? SILENT;
  }

  listen(listener: PresenceListener): void {
    this.listener = listener;
  }

  tracks(room: string): boolean {
    return this.rooms.has(room);
  }

  has(room: string, peerId: string): boolean {
    return this.rooms.get(room)?.peers.has(peerId) ?? false;
  }

  /** How many peers the room has (0 when this replica does not follow it). */
  count(room: string): number {
    return this.rooms.get(room)?.peers.size ?? 0;
  }

  peer(room: string, peerId: string): PeerInfo | undefined {
    return this.rooms.get(room)?.peers.get(peerId);
  }

  peers(room: string): PeerInfo[] {
    const peers = this.rooms.get(room)?.peers;
    return peers ? [...peers.values()] : [];
  }

  /**
   * At most `max` of the peers the `session` of newcomer `peerId` lists: not itself, nor
   * local ones still being admitted, since their own announcement reaches it later
   * (listing them too would tell it twice). Costs O(max), not O(room).
   */
  snapshot(room: string, peerId: string, max: number): PeerInfo[] {
    const out: PeerInfo[] = [];
    const peers = this.rooms.get(room)?.peers;
    if (!peers || max === 0) return out;
    for (const peer of peers.values()) {
      if (peer.peerId === peerId || this.unannounced.has(memberKey(room, peer.peerId))) continue;
      out.push(peer);
      if (out.length >= max) break;
    }
    return out;
  }

  /** The peers after `cursor` (see RoomPeers), at most `limit`, and the cursor of the next page. */
  page(room: string, cursor: number, limit: number): PeerPage {
    const entry = this.rooms.get(room);
    if (!entry) return { peers: [], peerCount: 0 };
    const peers: PeerInfo[] = [];
    let last = cursor;
    for (const [peerId, peer] of entry.peers) {
      const order = entry.order.get(peerId) ?? 0;
      if (order <= cursor) continue;
      if (peers.length === limit) return { peers, peerCount: entry.peers.size, cursor: last };
      peers.push(peer);
      last = order;
    }
    return { peers, peerCount: entry.peers.size };
  }

  localPeers(): Array<{ room: string; peer: PeerInfo }> {
    const out: Array<{ room: string; peer: PeerInfo }> = [];
    for (const [room, { peers }] of this.rooms) {
      for (const peer of peers.values()) if (peer.replica === this.replica) out.push({ room, peer });
    }
    return out;
  }

  /** Adds a peer of this replica; `announce: false` leaves telling the room to `announce()`. */
  addLocal(room: string, peer: PeerInfo, announce = true): void {
    this.localCounts.set(room, (this.localCounts.get(room) ?? 0) + 1);
    if (!announce) this.unannounced.add(memberKey(room, peer.peerId));
    this.add(room, peer, announce);
  }

  announce(room: string, peer: PeerInfo): void {
    this.unannounced.delete(memberKey(room, peer.peerId));
    if (this.has(room, peer.peerId)) this.listener.joined(room, peer, this.count(room));
  }

  removeLocal(room: string, peerId: string, reason: PeerLeftReason): void {
    this.unannounced.delete(memberKey(room, peerId));
    if (!this.rooms.get(room)?.peers.has(peerId)) return;
    this.remove(room, peerId, reason);
    const count = (this.localCounts.get(room) ?? 1) - 1;
    if (count > 0) this.localCounts.set(room, count);
    else {
      // No local member left: stop following the room.
      this.localCounts.delete(room);
      this.rooms.delete(room);
    }
  }

  /** Adds a peer (announcing it) if this replica follows the room. */
  add(room: string, peer: PeerInfo, announce = true): void {
    let entry = this.rooms.get(room);
    if (!entry) {
      if (peer.replica !== this.replica) return;
      entry = { peers: new Map(), order: new Map(), next: 1 };
      this.rooms.set(room, entry);
    }
    const known = entry.peers.has(peer.peerId);
    entry.peers.set(peer.peerId, peer);
    if (known) return;
    entry.order.set(peer.peerId, entry.next++);
    if (announce) this.listener.joined(room, peer, entry.peers.size);
  }

  /** Adds peers learned from Redis without announcing them (they were there before us). */
  merge(room: string, peers: PeerInfo[]): void {
    const entry = this.rooms.get(room);
    if (!entry) return;
    for (const peer of peers) {
      if (entry.peers.has(peer.peerId)) continue;
      entry.peers.set(peer.peerId, peer);
      entry.order.set(peer.peerId, entry.next++);
    }
  }

  remove(room: string, peerId: string, reason: PeerLeftReason): void {
    const entry = this.rooms.get(room);
    if (!entry?.peers.delete(peerId)) return;
    entry.order.delete(peerId);
    this.listener.left(room, peerId, reason, entry.peers.size);
  }

  /**
   * Replaces what this view holds of `room` with `peers` (those of `replica` only, when
   * given), announcing the difference. This replica's own peers are never touched.
   */
  reconcile(room: string, peers: PeerInfo[], replica?: string): void {
    const entry = this.rooms.get(room);
    if (!entry) return;
    const incoming = new Set(peers.map((peer) => peer.peerId));
    for (const peer of [...entry.peers.values()]) {
      if (peer.replica === this.replica || (replica !== undefined && peer.replica !== replica)) continue;
      if (!incoming.has(peer.peerId)) this.remove(room, peer.peerId, 'disconnect');
    }
    for (const peer of peers) if (peer.replica !== this.replica) this.add(room, peer);
  }
}
