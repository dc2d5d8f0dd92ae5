import type { PeerInfo, PeerLeftReason } from '@switchboard/contract';
import { NO_LIFECYCLE, type Lifecycle } from '../webhooks/lifecycle.js';
import { RoomView } from './room-view.js';
import type { Presence, PresenceListener } from './types.js';

/** Presence for a single replica (memory mode): the local view is the whole truth. */
export function createMemoryPresence(
  listener: PresenceListener | undefined,
  replica: string,
  lifecycle: Lifecycle = NO_LIFECYCLE,
): Presence & { view: RoomView } {
  const view = new RoomView(listener, replica);
  const leave = (room: string, peerId: string, reason: PeerLeftReason): void => {
    const peer = view.peer(room, peerId);
    if (!peer) return;
    view.removeLocal(room, peerId, reason);
    if (!lifecycle.enabled) return;
    const bodies = [lifecycle.left(room, peer, reason)];
    if (!view.tracks(room)) bodies.push(lifecycle.vacated(room));
    lifecycle.enqueue(room, bodies.filter(Boolean));
  };
  return {
    view,
    join(room: string, peer: PeerInfo) {
      const occupied = !view.tracks(room);
      view.addLocal(room, peer, false);
      if (lifecycle.enabled) {
        const [occupiedBody, joined] = lifecycle.joined(room, peer);
        lifecycle.enqueue(room, (occupied ? [occupiedBody, joined] : [joined]).filter(Boolean));
      }
      return Promise.resolve();
    },
    snapshot: (room, peerId, max) => view.snapshot(room, peerId, max),
    count: (room) => view.count(room),
    page: (room, cursor, limit) => view.page(room, cursor, limit),
    announce: (room, peer) => view.announce(room, peer),
    leave,
    has: (room, peerId) => view.has(room, peerId),
    list: (room) => Promise.resolve(view.peers(room)),
    receive: () => undefined,
    listen: (next) => view.listen(next),
    refresh: () => Promise.resolve(),
    close(reason) {
      for (const { room, peer } of view.localPeers()) leave(room, peer.peerId, reason);
      return Promise.resolve();
    },
  };
}
