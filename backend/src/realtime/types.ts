import type { Server, Socket } from 'socket.io';
import type {
  Capability,
  ClientToServerEvents,
  PeerLeftReason,
  RoomPosition,
  ServerToClientEvents,
} from '@switchboard/contract';

/** What the gateway keeps per socket; small on purpose (one per connection). */
export interface SessionData {
  userId: string;
  name: string;
  room: string;
  caps: Capability[];
  /** Epoch milliseconds. */
  expiresAt: number;
  joinedAt: number;
  /** The handshake's `auth.recover`, until the socket is admitted. */
  recover: RoomPosition | undefined;
  /** Whether the socket holds a reference on its room's stream (see Rooms.enter). */
  inRoom: boolean;
  /** Set when the server ends the session, for the `peer:left` the room sees. */
  leaving: PeerLeftReason | undefined;
  /** Token bucket for client events. */
  allowance: number;
  refilledAt: number;
  strikes: number;
}

/** Replicas exchange nothing through Socket.IO itself: room traffic has channels of its own. */
export type InterServerEvents = Record<string, never>;

export type GatewaySocket = Socket<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SessionData>;
export type GatewayServer = Server<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SessionData>;
