import { LIMITS, type PeerInfo, type PeerJoinedPayload, type PeerLeftReason } from '@switchboard/contract';
import type { PresenceListener } from '../presence/types.js';
import { createCoalescer } from './coalescer.js';
import type { GatewaySocket } from './types.js';

/** Something frames can be sent to: a socket, or a broadcast to a room's local members. */
interface Target {
  emit: GatewaySocket['emit'];
}

export interface PresenceFramesOptions {
  /** The room's local members, except the given peer ids. */
  members: (room: string, except?: string[]) => Target;
  /** A socket of this replica by peer id. */
  socket: (peerId: string) => GatewaySocket | undefined;
  coalesceMs: number;
  /** `ROOM_ANNOUNCE_MAX`: above this many members a room gets counts, not announcements. */
  announceMax: number;
  /** `PRESENCE_COUNT_INTERVAL_MS`. */
  countIntervalMs: number;
}

export interface PresenceFrames extends PresenceListener {
  close(): void;
}

export interface CountCoalescer {
  /** The room's size changed; `count` reads it when the frame goes out. */
  changed(room: string): void;
  close(): void;
}

/**
 * A large room's member count, sent at most once per `intervalMs` per room and only when
 * it differs from the count last sent: however fast members come and go, each member
 * gets one small frame per interval. One timer per replica, running only while some
 * room has changed.
 */
export function createCountCoalescer(options: {
  intervalMs: number;
  count: (room: string) => number;
  send: (room: string, count: number) => void;
  /** Whether the room still sends counts (it may have shrunk back to announcements). */
  counting: (count: number) => boolean;
}): CountCoalescer {
  const changed = new Set<string>();
  const sent = new Map<string, number>();
  let timer: NodeJS.Timeout | undefined;
  const tick = (): void => {
    timer = undefined;
    for (const room of changed) {
      const count = options.count(room);
      if (sent.get(room) !== count) options.send(room, count);
      // A room back to announcing (or gone) starts afresh if it grows again.
      if (count > 0 && options.counting(count)) sent.set(room, count);
      else sent.delete(room);
    }
    changed.clear();
  };
  return {
    changed(room) {
      changed.add(room);
      timer ??= setTimeout(tick, options.intervalMs);
    },
    close() {
      clearTimeout(timer);
      timer = undefined;
      changed.clear();
      sent.clear();
    },
  };
}

/** Splits a batch so that no `peers:joined` frame gets near the frame limit. */
const CHUNK = LIMITS.peersPage;

/**
 * What the room's sockets on this replica hear of presence changes. Up to
 * `ROOM_ANNOUNCE_MAX` members, every join and leave is announced (joins within
 * `EVENT_COALESCE_MS` as one frame); above it, members get `presence:count` instead,
 * so that a join costs the same in a room of 10,000 as in a room of 10.
 */
export function createPresenceFrames(options: PresenceFramesOptions): PresenceFrames {
  const { members, announceMax } = options;

  const announce = (target: Target, room: string, peers: PeerInfo[]): void => {
    for (let i = 0; i < peers.length; i += CHUNK) {
      const chunk: PeerJoinedPayload[] = peers.slice(i, i + CHUNK).map((peer) => ({ ...peer, room }));
      if (chunk.length === 1 && chunk[0]) target.emit('peer:joined', chunk[0]);
      else target.emit('peers:joined', chunk);
    }
  };
  // A burst of joins (a meeting starting, a drained replica's clients arriving) reaches each
  // member as one frame per window instead of one per join. A peer in the batch already
  // learnt those before it from its `session`, so it gets only those after it.
  const joins = createCoalescer<PeerInfo>({
    coalesceMs: options.coalesceMs,
    deliver: (room, peers) => {
      announce(
        members(
          room,
          peers.map((peer) => peer.peerId),
        ),
        room,
        peers,
      );
      peers.forEach((peer, i) => {
        const socket = options.socket(peer.peerId);
        if (socket && i + 1 < peers.length) announce(socket, room, peers.slice(i + 1));
      });
    },
  });
  const counts = createCountCoalescer({
    intervalMs: options.countIntervalMs,
    count: (room) => roomSizes.get(room) ?? 0,
    send: (room, count) => members(room).emit('presence:count', { room, count }),
    counting: (count) => count > announceMax,
  });
  /** Each counting room's latest size, as the presence view reported it. */
  const roomSizes = new Map<string, number>();
  const counted = (room: string, count: number, before: number): boolean => {
    if (before <= announceMax && count <= announceMax) {
      roomSizes.delete(room);
      return false;
    }
    if (count > 0) roomSizes.set(room, count);
    else roomSizes.delete(room);
    counts.changed(room);
    return true;
  };

  return {
    joined(room: string, peer: PeerInfo, count: number) {
      if (counted(room, count, count)) return;
      joins.push(room, [peer]);
    },
    left(room: string, peerId: string, reason: PeerLeftReason, count: number) {
      if (counted(room, count, count + 1)) return;
      // Never a leave before the join it ends.
      joins.flush(room);
      members(room).emit('peer:left', { room, peerId, reason });
    },
    close() {
      joins.close();
      counts.close();
      roomSizes.clear();
    },
  };
}
