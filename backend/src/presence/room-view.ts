import type { PeerInfo, PeerLeftReason } from '@switchboard/contract';
import type { PresenceListener } from './types.js';

/**
 * This replica's view of the rooms it has members in: every peer of those rooms,
 * local or remote. Both presence drivers keep one; the Redis driver also feeds it
 * from other replicas.
 */
export class RoomView {
  private readonly rooms = new Map<string, Map<string, PeerInfo>>();
  private readonly localCounts = new Map<string, number>();
  /** Local peers still being admitted: they have no session yet, and are announced once they do. */
  private readonly unannounced = new Set<string>();

  constructor(
    private readonly listener: PresenceListener,
    private readonly replica: string,
  ) {}

  tracks(room: string): boolean {
    return this.rooms.has(room);
  }

  has(room: string, peerId: string): boolean {
    return this.rooms.get(room)?.has(peerId) ?? false;
  }

  peer(room: string, peerId: string): PeerInfo | undefined {
    return this.rooms.get(room)?.get(peerId);
  }

  peers(room: string): PeerInfo[] {
    const peers = this.rooms.get(room);
    return peers ? [...peers.values()] : [];
  }

  /**
   * The peers the `session` of newcomer `peerId` lists: not itself, nor local ones still
   * being admitted, since their own announcement reaches it later (listing them too would
   * tell it twice).
   */
  others(room: string, peerId: string): PeerInfo[] {
    return this.peers(room).filter((peer) => peer.peerId !== peerId && !this.unannounced.has(peer.peerId));
  }

  localPeers(): Array<{ room: string; peer: PeerInfo }> {
    const out: Array<{ room: string; peer: PeerInfo }> = [];
    for (const [room, peers] of this.rooms) {
      for (const peer of peers.values()) if (peer.replica === this.replica) out.push({ room, peer });
    }
    return out;
  }

  /** Adds a peer of this replica; `announce: false` leaves telling the room to `announce()`. */
  addLocal(room: string, peer: PeerInfo, announce = true): void {
    this.localCounts.set(room, (this.localCounts.get(room) ?? 0) + 1);
    if (!announce) this.unannounced.add(peer.peerId);
    this.add(room, peer, announce);
  }

  announce(room: string, peer: PeerInfo): void {
    this.unannounced.delete(peer.peerId);
    if (this.has(room, peer.peerId)) this.listener.joined(room, peer);
  }

  removeLocal(room: string, peerId: string, reason: PeerLeftReason): void {
    this.unannounced.delete(peerId);
    if (!this.rooms.get(room)?.has(peerId)) return;
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
    let peers = this.rooms.get(room);
    if (!peers) {
      if (peer.replica !== this.replica) return;
      peers = new Map();
      this.rooms.set(room, peers);
    }
    const known = peers.has(peer.peerId);
    peers.set(peer.peerId, peer);
    if (!known && announce) this.listener.joined(room, peer);
  }

  /** Adds peers learned from Redis without announcing them (they were there before us). */
  merge(room: string, peers: PeerInfo[]): void {
    const current = this.rooms.get(room);
    if (!current) return;
    for (const peer of peers) if (!current.has(peer.peerId)) current.set(peer.peerId, peer);
  }

  remove(room: string, peerId: string, reason: PeerLeftReason): void {
    const peers = this.rooms.get(room);
    if (peers?.delete(peerId)) this.listener.left(room, peerId, reason);
  }

  /**
   * Replaces what this view holds of `room` with `peers` (those of `replica` only, when
   * given), announcing the difference. This replica's own peers are never touched.
   */
  reconcile(room: string, peers: PeerInfo[], replica?: string): void {
    const members = this.rooms.get(room);
    if (!members) return;
    const incoming = new Set(peers.map((peer) => peer.peerId));
    for (const peer of [...members.values()]) {
      if (peer.replica === this.replica || (replica !== undefined && peer.replica !== replica)) continue;
      if (!incoming.has(peer.peerId)) this.remove(room, peer.peerId, 'disconnect');
    }
    for (const peer of peers) if (peer.replica !== this.replica) this.add(room, peer);
  }
}
