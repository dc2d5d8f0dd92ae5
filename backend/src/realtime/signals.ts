import type { JsonValue, SignalKind } from '@switchboard/contract';
import type { Metrics } from '../observability/metrics.js';
import type { Presence } from '../presence/types.js';
import type { RelayedSignal, RoomBus } from './room-bus.js';
import type { GatewaySocket, Membership } from './types.js';

export interface Signals {
  /**
   * Relays a signal from `from`'s connection to peer `to` of the same room, on whichever
   * replica it is. False when `to` is not in that room (or is the sender).
   */
  send(from: Membership, to: string, kind: SignalKind, data: JsonValue): boolean;
}

export interface SignalsOptions {
  presence: Presence;
  bus: RoomBus;
  /** A socket of this replica by peer id. */
  socket: (peerId: string) => GatewaySocket | undefined;
  metrics: Metrics;
}

/**
 * Signals, both relays: to a peer on this replica at once, to one elsewhere through the
 * room's channel. Either way a signal reaches its target only inside the room it was sent
 * in, so two connections that share one room cannot signal each other through another.
 */
export function createSignals({ presence, bus, socket, metrics }: SignalsOptions): Signals {
  const deliver = (room: string, to: string, signal: RelayedSignal): void => {
    const target = socket(to);
    if (!target?.data.rooms.has(room)) return;
    target.emit('signal', { room, ...signal });
    metrics.eventsOut.inc({ event: 'signal' });
  };
  bus.handle({ signal: deliver, holds: (peerId) => socket(peerId) !== undefined });

  return {
    send(from, to, kind, data) {
      const room = from.room;
      if (to === from.peer.peerId || !presence.has(room, to)) return false;
      const signal: RelayedSignal = { from: from.peer.peerId, kind, data };
      // A local target costs nothing; a remote one one publish on the room's channel.
      if (socket(to)) deliver(room, to, signal);
      else {
        bus.send(room, { kind: 'signal', to, signal });
        metrics.eventsOut.inc({ event: 'signal' });
      }
      return true;
    },
  };
}
