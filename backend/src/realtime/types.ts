import type { Server, Socket } from 'socket.io';
import type {
  Capability,
  ClientToServerEvents,
  PeerInfo,
  PeerLeftReason,
  RoomPosition,
  ServerToClientEvents,
} from '@switchboard/contract';
import type { RtcClaims } from '../tokens/rtc-token.js';
import type { MembershipSet } from './membership-set.js';

/**
 * One connection in one room: its peer entry there, what its token for that room allows,
 * and until when. A connection holds one per room it is in.
 */
export interface Membership {
  readonly room: string;
  readonly socket: GatewaySocket;
  /** The peer the room sees; `peerId` is the connection's, the same in all its rooms. */
  readonly peer: PeerInfo;
  caps: Capability[];
  /** Epoch milliseconds; the membership ends then unless it is refreshed. */
  expiresAt: number;
  /** Whether it holds a reference on its room's stream (see Rooms.enter). */
  inRoom: boolean;
  /** Set when the membership ends, for the `peer:left` the room sees. */
  leaving: PeerLeftReason | undefined;
}

/** What the gateway keeps per connection; small on purpose (one per connection). */
export interface SessionData {
  /** Fixed by the connection's first RTC token; undefined until then (a handshake without one). */
  userId: string | undefined;
  /** The rooms this connection is in, or being admitted to. */
  rooms: MembershipSet;
  /** The handshake's token and `auth.recover`, until the connection is admitted to its room. */
  admitting: { claims: RtcClaims; recover: RoomPosition | undefined } | undefined;
  /**
   * Whether the connection counts against its user's connection cap: `pending` while its
   * first token is redeemed, `closed` once it was released (nothing may count it after).
   */
  counted: boolean | 'pending' | 'closed';
  /** Set when the server ends the whole connection (shutdown), for the `peer:left` its rooms see. */
  leaving: PeerLeftReason | undefined;
  /** Token bucket for client events. */
  allowance: number;
  refilledAt: number;
  strikes: number;
  /** Bytes of frames Engine.IO queued since its transport last flushed (see slow-consumers.ts). */
  queued: number;
  /** Cut as a slow consumer. */
  cut: boolean;
}

/** Replicas exchange nothing through Socket.IO itself: room traffic has channels of its own. */
export type InterServerEvents = Record<string, never>;

export type GatewaySocket = Socket<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SessionData>;
export type GatewayServer = Server<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SessionData>;
