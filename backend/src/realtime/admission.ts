import type { IncomingMessage } from 'node:http';
import { ERROR_MESSAGES, type HandshakeErrorCode, type RoomPosition } from '@switchboard/contract';
import { handshakeAuthSchema, roomPositionSchema } from '@switchboard/contract/schemas';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { RedeemError, type TokenService } from '../tokens/service.js';
import type { RtcClaims } from '../tokens/rtc-token.js';
import type { ConnectionCap } from './connection-cap.js';
import { MembershipSet } from './membership-set.js';
import type { Memberships } from './memberships.js';
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
  memberships: Memberships;
  corsOrigins: '*' | string[];
  socketEventsPerSecond: number;
  isDraining: () => boolean;
  logger: Logger;
  metrics: Metrics;
}

export interface Admission {
  /** The `io.use` middleware: checks origin and token, and the user's connection cap. */
  handshake(socket: GatewaySocket, next: (error?: Error) => void): void;
  /** Joins an authenticated connection to its token's room (`session`); one without a token waits for `room:join`. */
  admit(socket: GatewaySocket): Promise<void>;
  /**
   * Redeems an RTC token for a connection (its handshake's, or a `room:join`'s): the
   * token's single use, and, for the connection's first token, the user's connection cap.
   */
  redeem(socket: GatewaySocket, claims: RtcClaims): Promise<void>;
}

/** Stands for an `auth.recover` that was sent but is not a position: it can match no epoch. */
const INVALID_POSITION: RoomPosition = { epoch: '', seq: 0 };

/** Thrown by `redeem` when the user is at MAX_CONNECTIONS_PER_USER. */
export class CapReachedError extends Error {
  constructor(message = 'too many connections for this user') {
    super(message);
    this.name = 'CapReachedError';
  }
}

/**
 * Who gets in. A handshake with a token costs one round trip to Redis (the token's
 * redemption and the cap's count, sent together to the user's slot); one without a token
 * costs nothing until the connection joins a room.
 */
export function createAdmission(options: AdmissionOptions): Admission {
  const { tokens, cap, memberships, metrics } = options;
  const log = options.logger.child({ component: 'admission' });
  const allowedOrigins = options.corsOrigins === '*' ? undefined : new Set(options.corsOrigins);

  const refuse = (code: HandshakeErrorCode, started: bigint, message?: string): HandshakeError => {
    metrics.handshakes.inc({ outcome: code });
    metrics.handshakeSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
    return new HandshakeError(code, message);
  };

  async function redeem(socket: GatewaySocket, claims: RtcClaims): Promise<void> {
    const data = socket.data;
    if (data.counted === true) {
      await tokens.consume(claims);
      return;
    }
    // Two first tokens at once would both count against the cap: the second waits its turn.
    if (data.counted === 'pending') throw new CapReachedError('this connection is still joining its first room');
    data.counted = 'pending';
    try {
      await acquire(socket, claims);
    } finally {
      if (data.counted === 'pending') data.counted = false;
    }
  }

  async function acquire(socket: GatewaySocket, claims: RtcClaims): Promise<void> {
    const data = socket.data;
    // Both go to the user's slot, so they travel together; the count is undone if the token fails.
    const [consumed, admitted] = await Promise.allSettled([tokens.consume(claims), cap.acquire(claims.sub)]);
    if (consumed.status === 'rejected') {
      if (admitted.status === 'fulfilled' && admitted.value) cap.release(claims.sub);
      throw consumed.reason;
    }
    // The token is spent; the client's next attempt mints a fresh one anyway.
    if (admitted.status === 'rejected' || !admitted.value) throw new CapReachedError();
    if (data.counted === 'closed') {
      // Closed while redeeming (a `room:join`): `release` already ran, so nothing else gives the place back.
      cap.release(claims.sub);
      return;
    }
    data.counted = true;
    data.userId = claims.sub;
  }

  return {
    redeem,

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
      const now = Date.now();
      socket.data = {
        userId: undefined,
        rooms: new MembershipSet(),
        admitting: undefined,
        counted: false,
        leaving: undefined,
        allowance: options.socketEventsPerSecond * 2,
        refilledAt: now,
        strikes: 0,
        queued: 0,
        cut: false,
      };
      const auth = handshakeAuthSchema.safeParse(socket.handshake.auth ?? {});
      const raw: unknown = (socket.handshake.auth as { token?: unknown } | undefined)?.token;
      if (raw === undefined || raw === null) {
        // No token: a connection in no room yet; it joins rooms with `room:join`.
        metrics.handshakes.inc({ outcome: 'ok' });
        next();
        return;
      }
      const token = auth.success ? auth.data.token : handshakeAuthSchema.shape.token.safeParse(raw).data;
      if (token === undefined) {
        next(refuse(raw === '' ? 'token_missing' : 'token_invalid', started));
        return;
      }
      // A malformed position is no reason to refuse a valid token: it just recovers nothing.
      const recover = auth.success
        ? auth.data.recover
        : (roomPositionSchema.safeParse((socket.handshake.auth as { recover?: unknown }).recover).data ??
          INVALID_POSITION);
      // verify() throws synchronously for a bad token; the promise chain catches that too.
      Promise.resolve()
        .then(async () => {
          const claims = tokens.verify(token);
          await redeem(socket, claims);
          return claims;
        })
        .then(
          (claims) => {
            if (options.isDraining()) {
              cap.release(claims.sub);
              return next(refuse('server_draining', started));
            }
            socket.data.admitting = { claims, recover };
            metrics.handshakes.inc({ outcome: 'ok' });
            metrics.handshakeSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
            next();
          },
          (error: unknown) => {
            if (error instanceof CapReachedError) return next(refuse('rate_limited', started, error.message));
            if (error instanceof RedeemError) return next(refuse(error.code, started));
            log.error({ err: error }, 'handshake failed');
            next(refuse('token_invalid', started));
          },
        );
    },

    async admit(socket) {
      forgetHandshake(socket);
      metrics.connectedSockets.inc();
      const admitting = socket.data.admitting;
      socket.data.admitting = undefined;
      // Without a token, rooms come with `room:join`; a connection that joins none is closed.
      if (!admitting) {
        memberships.standby(socket);
        return;
      }
      await memberships.join(socket, admitting.claims, admitting.recover, (session) => socket.emit('session', session));
    },
  };
}

const NOTHING = Object.freeze({});

/**
 * Drops what only the handshake needed, once a socket is admitted: its headers, its
 * token and the upgrade request (raw headers, parser state). Engine.IO keeps that
 * request reachable for the socket's whole life (socket.io's "memory usage" guide
 * discards `conn.request`; Engine.IO's upgrade response object holds it as well, so
 * its headers are emptied too). About 0.7 KB per socket; nothing reads them later.
 */
function forgetHandshake(socket: GatewaySocket): void {
  // `request` is a public field of Engine.IO's socket, nulled as the guide does (but only
  // now: the handshake's origin check reads its headers). Null already when a client opens
  // a second session on the same connection.
  const conn: { request: IncomingMessage | null } = socket.conn;
  const request = conn.request;
  if (request) {
    conn.request = null;
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
