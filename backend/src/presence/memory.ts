import type { PeerInfo, PeerLeftReason } from '@switchboard/contract';
import { RoomView } from './room-view.js';
import type { Presence, PresenceListener } from './types.js';

/** Presence for a single replica (memory mode): the local view is the whole truth. */
export function createMemoryPresence(
  listener: PresenceListener | undefined,
  replica: string,
): Presence & { view: RoomView } {
  const view = new RoomView(listener, replica);
  return {
    view,
    join(room: string, peer: PeerInfo) {
      view.addLocal(room, peer, false);
      return Promise.resolve();
    },
    snapshot: (room, peerId, max) => view.snapshot(room, peerId, max),
    count: (room) => view.count(room),
    page: (room, cursor, limit) => view.page(room, cursor, limit),
    announce: (room, peer) => view.announce(room, peer),
    leave(room: string, peerId: string, reason: PeerLeftReason) {
      view.removeLocal(room, peerId, reason);
    },
    has: (room, peerId) => view.has(room, peerId),
    list: (room) => Promise.resolve(view.peers(room)),
    receive: () => undefined,
    listen: (next) => view.listen(next),
    refresh: () => Promise.resolve(),
    close(reason) {
      for (const { room, peer } of view.localPeers()) view.removeLocal(room, peer.peerId, reason);
      return Promise.resolve();
    },
  };
}
