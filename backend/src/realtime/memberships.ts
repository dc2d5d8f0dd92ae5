import {
  socketIoRoom,
  type Capability,
  type PeerLeftReason,
  type RoomEventFrame,
  type RoomPosition,
  type SessionEndedPayload,
  type SessionPayload,
} from '@switchboard/contract';
import type { Metrics } from '../observability/metrics.js';
import type { Presence } from '../presence/types.js';
import type { RtcClaims } from '../tokens/rtc-token.js';
import type { ConnectionCap } from './connection-cap.js';
import type { Rooms } from './rooms.js';
import type { ExpiryWheel } from './session-expiry.js';
import type { GatewaySocket, Membership } from './types.js';

export interface MembershipsOptions {
  presence: Presence;
  rooms: Rooms;
  cap: ConnectionCap;
  /** Ends memberships at their `expiresAt`. */
  expiry: ExpiryWheel<Membership>;
  /** Closes connections that stay in no room. */
  idle: ExpiryWheel<GatewaySocket>;
  replica: string;
  /** `PRESENCE_SNAPSHOT_MAX`. */
  snapshotMax: number;
  /** How long a connection may stay in no room before it is closed. */
  roomlessMs: number;
  metrics: Metrics;
}

export interface Memberships {
  /**
   * Enters `claims.room`: presence, position, recovery. `answer` gets the room's session
   * (as `session` or as `room:join`'s ack); the replay and live traffic follow it, in that
   * order, in the same tick. Undefined when the membership ended meanwhile (the connection
   * closed, or the user was removed from the room).
   */
  join(
    socket: GatewaySocket,
    claims: RtcClaims,
    recover: RoomPosition | undefined,
    answer: (session: SessionPayload) => void,
  ): Promise<SessionPayload | undefined>;
  /** Leaves one room (a `room:leave`, or the connection closing); the room sees `peer:left`. */
  leave(membership: Membership, reason: PeerLeftReason): void;
  /** The server ends a membership: `session:ended`, then a connection left in no room is closed. */
  end(membership: Membership, reason: SessionEndedPayload['reason']): void;
  /** Ends this replica's memberships of `userId` in `room`, joined or still joining. */
  kickLocal(room: string, userId: string, sockets: Iterable<GatewaySocket>): void;
  /** A connection in no room: closed unless it joins one within `roomlessMs`. */
  standby(socket: GatewaySocket): void;
  /** The connection closed: leaves every room and gives back its place in the user's cap. */
  release(socket: GatewaySocket): void;
}

/** How many replayed events go out in one `room:events` frame. */
const REPLAY_FRAME = 100;

const CAPS_PUBLISH: Capability[] = ['publish'];
const CAPS_NONE: Capability[] = [];

/** One shared array per capability set (there are two) rather than one per membership. */
export function sharedCaps(caps: Capability[]): Capability[] {
  if (caps.length === 0) return CAPS_NONE;
  return caps.length === 1 && caps[0] === 'publish' ? CAPS_PUBLISH : caps;
}

/**
 * What being in a room means for a connection, from entering it to leaving it. A join
 * costs the same in a room of 10,000 as in a room of 10: the session lists at most
 * `snapshotMax` peers, and nothing in it walks the room.
 */
export function createMemberships(options: MembershipsOptions): Memberships {
  const { presence, rooms, cap, expiry, idle, replica, metrics } = options;
  const current = (membership: Membership): boolean =>
    membership.socket.connected && membership.socket.data.rooms.get(membership.room) === membership;

  const leave = (membership: Membership, reason: PeerLeftReason): void => {
    const { socket, room } = membership;
    if (socket.data.rooms.get(room) !== membership) return;
    socket.data.rooms.delete(room);
    expiry.cancel(membership);
    // Out of the room's broadcasts first: the leaver does not hear of its own leaving.
    void socket.leave(socketIoRoom(room));
    presence.leave(room, membership.peer.peerId, membership.leaving ?? reason);
    if (membership.inRoom) {
      membership.inRoom = false;
      rooms.leave(room);
    }
    if (socket.data.rooms.size === 0 && socket.connected) idle.schedule(socket, Date.now() + options.roomlessMs);
    metrics.rooms.set(rooms.count());
  };

  const end = (membership: Membership, reason: SessionEndedPayload['reason']): void => {
    const { socket, room } = membership;
    if (socket.data.rooms.get(room) !== membership || membership.leaving) return;
    membership.leaving = reason;
    socket.emit('session:ended', { room, reason });
    leave(membership, reason);
    // As before many rooms per connection: a connection whose only session ended closes.
    if (socket.data.rooms.size === 0) socket.disconnect(true);
  };

  return {
    async join(socket, claims, recover, answer) {
      const data = socket.data;
      const room = claims.room;
      const now = Date.now();
      const membership: Membership = {
        room,
        socket,
        peer: {
          peerId: socket.id,
          userId: claims.sub,
          // Usually the same text: keep one string, not two.
          name: claims.name === claims.sub ? claims.sub : claims.name,
          replica,
          joinedAt: now,
        },
        caps: sharedCaps(claims.caps),
        expiresAt: claims.sexp * 1000,
        inRoom: false,
        leaving: undefined,
      };
      data.rooms.set(room, membership);
      idle.cancel(socket);
      if (membership.expiresAt <= now) {
        end(membership, 'session_expired');
        return undefined;
      }
      expiry.schedule(membership, membership.expiresAt);
      // Entered first: the room's channel is then subscribed, so a peer that joins on another
      // replica after presence has read the room is announced on it rather than missed.
      const stream = await rooms.enter(room);
      if (!current(membership)) {
        rooms.leave(room);
        return undefined;
      }
      membership.inRoom = true;
      await presence.join(room, membership.peer);
      if (!current(membership)) return undefined;
      const finish = recover ? await rooms.prepareRecovery(stream, recover) : undefined;
      if (!current(membership)) return undefined;
      // From here to the join, one tick: nothing can slip between the session, the replay
      // and the first live event, nor between the session's peers and those announced after
      // (joins still queued are in its peers; its own announcement joins their batch, which
      // it is then spared: see PresenceFrames).
      rooms.flush(room);
      const recovery = finish?.(Date.now());
      const session: SessionPayload = {
        peerId: socket.id,
        userId: claims.sub,
        name: membership.peer.name,
        room,
        replica,
        peers: presence.snapshot(room, socket.id, options.snapshotMax),
        peerCount: presence.count(room),
        expiresAt: membership.expiresAt,
        caps: membership.caps,
        position: stream.position,
        ...(recovery ? { recovery: recovery.outcome } : {}),
      };
      answer(session);
      if (recovery) {
        const events = recovery.events;
        for (let i = 0; i < events.length; i += REPLAY_FRAME) {
          const frame: RoomEventFrame[] = events.slice(i, i + REPLAY_FRAME).map((event) => ({ ...event, room }));
          socket.emit('room:events', frame);
        }
        const outcome = recovery.outcome;
        metrics.recoveries.inc({ outcome: outcome.recovered ? 'recovered' : outcome.reason });
        metrics.recoveryReplayed.inc(outcome.replayed);
      }
      void socket.join(socketIoRoom(room));
      presence.announce(room, membership.peer);
      metrics.rooms.set(rooms.count());
      return session;
    },

    leave,
    end,
    standby: (socket) => idle.schedule(socket, Date.now() + options.roomlessMs),

    kickLocal(room, userId, sockets) {
      for (const socket of sockets) {
        const membership = socket.data.rooms.get(room);
        if (!membership || membership.peer.userId !== userId || membership.leaving === 'kicked') continue;
        end(membership, 'kicked');
        metrics.kicks.inc();
      }
    },

    release(socket) {
      const data = socket.data;
      idle.cancel(socket);
      for (const membership of [...data.rooms.values()]) leave(membership, data.leaving ?? 'disconnect');
      idle.cancel(socket);
      if (data.counted === true && data.userId) cap.release(data.userId);
      data.counted = 'closed';
      metrics.connectedSockets.dec();
    },
  };
}
