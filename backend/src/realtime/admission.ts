import type { IncomingMessage } from 'node:http';
import {
  ERROR_MESSAGES,
  socketIoRoom,
  type Capability,
  type HandshakeErrorCode,
  type PeerInfo,
  type RoomPosition,
} from '@switchboard/contract';
import { roomPositionSchema } from '@switchboard/contract/schemas';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { Presence } from '../presence/types.js';
import { RedeemError, type TokenService } from '../tokens/service.js';
import type { ConnectionCap } from './connection-cap.js';
import type { Rooms } from './rooms.js';
import type { ExpiryWheel } from './session-expiry.js';
import type { GatewaySocket } from './types.js';

class HandshakeError extends Error {
  readonly data: { code: HandshakeErrorCode; message: string };
  constructor(code: HandshakeErrorCode, message: string = ERROR_MESSAGES[code]) {
    super(code);
    this.data = { code, message };
  }
}

export interface AdmissionOptions {
  tokens: TokenService;
  cap: ConnectionCap;
  presence: Presence;
  rooms: Rooms;
  expiry: ExpiryWheel<GatewaySocket>;
  replica: string;
  corsOrigins: '*' | string[];
  socketEventsPerSecond: number;
  isDraining: () => boolean;
  logger: Logger;
  metrics: Metrics;
}

export interface Admission {
  /** The `io.use` middleware: checks origin and token, and the user's connection cap. */
  handshake(socket: GatewaySocket, next: (error?: Error) => void): void;
  /** Joins an authenticated socket to its room: presence, position, recovery, `session`. */
  admit(socket: GatewaySocket): Promise<void>;
  /** Undoes what `handshake` and `admit` did. */
  release(socket: GatewaySocket): void;
}

/** How many replayed events go out in one `room:events` frame. */
const REPLAY_FRAME = 100;

/**
 * Who gets in, and what joining means. A handshake costs one round trip to Redis (the
 * token's redemption and the cap's count, sent together to the user's slot); admission
 * writes presence without waiting, except the first time this replica serves the room:
 * then it subscribes to the room's channel, reads the room's position and its peers.
 */
export function createAdmission(options: AdmissionOptions): Admission {
  const { tokens, cap, presence, rooms, expiry, replica, metrics } = options;
  const log = options.logger.child({ component: 'admission' });
  const allowedOrigins = options.corsOrigins === '*' ? undefined : new Set(options.corsOrigins);

  const refuse = (code: HandshakeErrorCode, started: bigint, message?: string): HandshakeError => {
    metrics.handshakes.inc({ outcome: code });
    metrics.handshakeSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
    return new HandshakeError(code, message);
  };

  async function redeem(token: string, started: bigint) {
    const claims = tokens.verify(token);
    // Both go to the user's slot, so they travel together; the count is undone if the token fails.
    const [consumed, admitted] = await Promise.allSettled([tokens.consume(claims), cap.acquire(claims.sub)]);
    if (consumed.status === 'rejected') {
      if (admitted.status === 'fulfilled' && admitted.value) cap.release(claims.sub);
      throw consumed.reason;
    }
    if (admitted.status === 'rejected' || !admitted.value) {
      // The token is spent; the client's next attempt mints a fresh one anyway.
      throw refuse('rate_limited', started, 'too many connections for this user');
    }
    return claims;
  }

  return {
    handshake(socket, next) {
      const started = process.hrtime.bigint();
      if (options.isDraining()) {
        next(refuse('server_draining', started));
        return;
      }
      const origin = socket.handshake.headers.origin;
      if (allowedOrigins && origin && !allowedOrigins.has(origin) && !sameHost(origin, socket.handshake.headers.host)) {
        next(refuse('origin_forbidden', started));
        return;
      }
      const auth: unknown = socket.handshake.auth;
      const { token, recover } = (typeof auth === 'object' && auth !== null ? auth : {}) as {
        token?: unknown;
        recover?: unknown;
      };
      if (typeof token !== 'string' || token.length === 0 || token.length > 4096) {
        next(refuse(typeof token === 'string' && token.length > 0 ? 'token_invalid' : 'token_missing', started));
        return;
      }
      // A malformed position is no reason to refuse a valid token: it just recovers nothing.
      const position = recover === undefined ? undefined : roomPositionSchema.safeParse(recover);
      // verify() throws synchronously for a bad token; the promise chain catches that too.
      Promise.resolve()
        .then(() => redeem(token, started))
        .then(
          (claims) => {
            if (options.isDraining()) {
              cap.release(claims.sub);
              return next(refuse('server_draining', started));
            }
            const now = Date.now();
            socket.data = {
              userId: claims.sub,
              // Usually the same text: keep one string per socket, not two.
              name: claims.name === claims.sub ? claims.sub : claims.name,
              room: claims.room,
              caps: sharedCaps(claims.caps),
              expiresAt: claims.sexp * 1000,
              joinedAt: now,
              recover: position?.success ? position.data : position ? INVALID_POSITION : undefined,
              inRoom: false,
              leaving: undefined,
              allowance: options.socketEventsPerSecond * 2,
              refilledAt: now,
              strikes: 0,
            };
            metrics.handshakes.inc({ outcome: 'ok' });
            metrics.handshakeSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
            next();
          },
          (error: unknown) => {
            if (error instanceof HandshakeError) return next(error);
            if (error instanceof RedeemError) return next(refuse(error.code, started));
            log.error({ err: error }, 'handshake failed');
            next(refuse('token_invalid', started));
          },
        );
    },

    async admit(socket) {
      forgetHandshake(socket);
      const data = socket.data;
      metrics.connectedSockets.inc();
      if (data.expiresAt <= Date.now()) {
        data.leaving = 'session_expired';
        socket.emit('session:ended', { reason: 'session_expired' });
        socket.disconnect(true);
        return;
      }
      expiry.schedule(socket, data.expiresAt);
      const peer: PeerInfo = {
        peerId: socket.id,
        userId: data.userId,
        name: data.name,
        replica,
        joinedAt: data.joinedAt,
      };
      // Entered first: the room's channel is then subscribed, so a peer that joins on another
      // replica after presence has read the room is announced on it rather than missed.
      const stream = await rooms.enter(data.room);
      await presence.join(data.room, peer);
      data.inRoom = true;
      const recover = data.recover;
      data.recover = undefined;
      const finish = recover ? await rooms.prepareRecovery(stream, recover) : undefined;
      if (!socket.connected) {
        // Left while joining; `release` ran before the room was entered.
        rooms.leave(data.room);
        data.inRoom = false;
        return;
      }
      // From here to the join, one tick: nothing can slip between `session`, the
      // replay and the first live event, nor between `session.peers` and the peers
      // announced to this socket afterwards.
      rooms.flush(data.room);
      const recovery = finish?.(Date.now());
      socket.emit('session', {
        peerId: socket.id,
        userId: data.userId,
        name: data.name,
        room: data.room,
        replica,
        peers: presence.others(data.room, socket.id),
        expiresAt: data.expiresAt,
        caps: data.caps,
        position: stream.position,
        ...(recovery ? { recovery: recovery.outcome } : {}),
      });
      if (recovery) {
        for (let i = 0; i < recovery.events.length; i += REPLAY_FRAME) {
          socket.emit('room:events', recovery.events.slice(i, i + REPLAY_FRAME));
        }
        const outcome = recovery.outcome;
        metrics.recoveries.inc({ outcome: outcome.recovered ? 'recovered' : outcome.reason });
        metrics.recoveryReplayed.inc(outcome.replayed);
      }
      void socket.join(socketIoRoom(data.room));
      presence.announce(data.room, peer);
      metrics.rooms.set(rooms.count());
    },

    release(socket) {
      const data = socket.data;
      // A socket refused in the handshake has no session data.
      if (!data.userId) return;
      expiry.cancel(socket);
      metrics.connectedSockets.dec();
      cap.release(data.userId);
      presence.leave(data.room, socket.id, data.leaving ?? 'disconnect');
      if (data.inRoom) {
        data.inRoom = false;
        rooms.leave(data.room);
      }
      metrics.rooms.set(rooms.count());
    },
  };
}

/** Stands for an `auth.recover` that was sent but is not a position: it can match no epoch. */
const INVALID_POSITION: RoomPosition = { epoch: '', seq: 0 };

const NOTHING = Object.freeze({});
const CAPS_PUBLISH: Capability[] = ['publish'];
const CAPS_NONE: Capability[] = [];

/** One shared array per capability set (there are two) rather than one per socket. */
export function sharedCaps(caps: Capability[]): Capability[] {
  if (caps.length === 0) return CAPS_NONE;
  return caps.length === 1 && caps[0] === 'publish' ? CAPS_PUBLISH : caps;
}

/**
 * Drops what only the handshake needed, once a socket is admitted: its headers, its
 * token and the upgrade request (raw headers, parser state). Engine.IO keeps that
 * request reachable for the socket's whole life (socket.io's "memory usage" guide
 * discards `conn.request`; Engine.IO's upgrade response object holds it as well, so
 * its headers are emptied too). About 0.7 KB per socket; nothing reads them later.
 */
function forgetHandshake(socket: GatewaySocket): void {
  // Null already when a client opens a second session on the same connection.
  const request = socket.conn.request as IncomingMessage | null;
  if (request) {
    Reflect.set(socket.conn, 'request', null);
    request.rawHeaders.length = 0;
    request.headers = NOTHING;
  }
  socket.handshake.headers = NOTHING;
  socket.handshake.auth = NOTHING;
}

function sameHost(origin: string, host: string | undefined): boolean {
  try {
    return host !== undefined && new URL(origin).host === host;
  } catch {
    return false;
  }
}
