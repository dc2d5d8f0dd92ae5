import type { IncomingMessage, Server as HttpServer } from 'node:http';
import { Server, type Socket } from 'socket.io';
import {
  ERROR_MESSAGES,
  LIMITS,
  type AckError,
  type Capability,
  type ClientToServerEvents,
  type ErrorCode,
  type HandshakeErrorCode,
  type PeerInfo,
  type PeerLeftReason,
  type RoomEvent,
  type ServerToClientEvents,
} from '@switchboard/contract';
import {
  peersRequestSchema,
  publishRequestSchema,
  sessionRefreshRequestSchema,
  signalRequestSchema,
} from '@switchboard/contract/schemas';
import type { z } from 'zod';
import type { RoomsApi } from '../http/app.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { createMemoryPresence } from '../presence/memory.js';
import { createRedisPresence } from '../presence/redis.js';
import type { Presence, PresenceMessage } from '../presence/types.js';
import type { RedisConnection } from '../redis/connection.js';
import { RedeemError, type TokenService } from '../tokens/service.js';
import { createRedisAdapter } from './adapter.js';
import { createRoomEventBus } from './room-events.js';
import { createExpiryWheel } from './session-expiry.js';

interface SessionData {
  userId: string;
  name: string;
  room: string;
  caps: Capability[];
  /** Epoch milliseconds. */
  expiresAt: number;
  joinedAt: number;
  /** Token bucket for client events. */
  allowance: number;
  refilledAt: number;
  strikes: number;
}

interface InterServerEvents {
  presence: (message: PresenceMessage) => void;
  'room:batch': (room: string, events: RoomEvent[]) => void;
}

type GatewaySocket = Socket<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SessionData>;
type GatewayServer = Server<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SessionData>;

export interface RealtimeOptions {
  httpServer: HttpServer;
  tokens: TokenService;
  redis: RedisConnection | undefined;
  adapter: 'redis' | 'redis-sharded';
  keyPrefix: string;
  replica: string;
  corsOrigins: '*' | string[];
  limits: { connectionsPerUser: number; socketEventsPerSecond: number };
  coalesceMs: number;
  presenceTtlSeconds: number;
  logger: Logger;
  metrics: Metrics;
}

export interface Realtime {
  readonly rooms: RoomsApi;
  connections(): number;
  /**
   * Stops admitting sockets, tells connected ones to reconnect elsewhere, disconnects
   * them, leaves presence and closes Socket.IO (and the HTTP server under it); idempotent.
   */
  close(): Promise<void>;
}

/** Offences (invalid or rate-limited events) a socket may commit before it is cut off. */
const MAX_STRIKES = 100;

class HandshakeError extends Error {
  readonly data: { code: HandshakeErrorCode; message: string };
  constructor(code: HandshakeErrorCode, message: string = ERROR_MESSAGES[code]) {
    super(code);
    this.data = { code, message };
  }
}

type Reply = (result: { ok: true; [key: string]: unknown } | AckError) => void;

const fail = (code: ErrorCode, message: string = ERROR_MESSAGES[code]): AckError => ({
  ok: false,
  error: { code, message },
});

function validationMessage(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return ERROR_MESSAGES.invalid_payload;
  return issue.path.length > 0 ? `${issue.path.join('.')}: ${issue.message}` : issue.message;
}

export function createRealtime(options: RealtimeOptions): Realtime {
  const { tokens, redis, replica, metrics, limits } = options;
  const log = options.logger.child({ component: 'realtime' });
  const allowedOrigins = options.corsOrigins === '*' ? undefined : new Set(options.corsOrigins);

  const io: GatewayServer = new Server(options.httpServer, {
    serveClient: false,
    // An SDP offer with many candidates is ~10 KiB; 1 MB invites memory abuse.
    maxHttpBufferSize: LIMITS.socketPacketBytes,
    cors: { origin: allowedOrigins ? [...allowedOrigins] : '*', methods: ['GET', 'POST'] },
    perMessageDeflate: false,
    httpCompression: false,
    pingInterval: 20_000,
    pingTimeout: 20_000,
    connectTimeout: 10_000,
  });
  if (redis) {
    io.adapter(
      createRedisAdapter({
        redis,
        kind: options.adapter,
        keyPrefix: options.keyPrefix,
        // The root logger: each part names its own component, and pino would repeat the key.
        logger: options.logger,
        metrics,
      }),
    );
  }

  let draining = false;
  const perUser = new Map<string, number>();
  const peerLeftReasons = new WeakMap<GatewaySocket, PeerLeftReason>();

  // ---- presence -------------------------------------------------------------
  const listener = {
    joined(room: string, peer: PeerInfo) {
      io.local.to(room).except(peer.peerId).emit('peer:joined', peer);
    },
    left(room: string, peerId: string, reason: PeerLeftReason) {
      io.local.to(room).emit('peer:left', { peerId, reason });
    },
  };
  const presence: Presence = redis
    ? createRedisPresence({
        redis,
        listener,
        replica,
        keyPrefix: options.keyPrefix,
        ttlSeconds: options.presenceTtlSeconds,
        logger: options.logger,
        metrics,
        bus: {
          publish: (message) => io.serverSideEmit('presence', message),
          subscribe: (handler) => io.on('presence', handler),
        },
      })
    : createMemoryPresence(listener, replica);

  // ---- room events ----------------------------------------------------------
  const deliverLocal = (room: string, events: RoomEvent[]): void => {
    const members = io.of('/').adapter.rooms.get(room)?.size ?? 0;
    if (members === 0) return;
    if (events.length === 1 && events[0]) io.local.to(room).emit('room:event', events[0]);
    else io.local.to(room).emit('room:events', events);
    metrics.frames.inc(members);
    metrics.deliveries.inc(members * events.length);
  };
  const bus = createRoomEventBus({
    coalesceMs: options.coalesceMs,
    metrics,
    transport: {
      deliverLocal,
      broadcast: (room, events) => {
        if (redis) io.serverSideEmit('room:batch', room, events);
      },
    },
  });
  io.on('room:batch', (room, events) => {
    bus.receive(room, events);
  });

  // ---- session expiry -------------------------------------------------------
  const expiry = createExpiryWheel<GatewaySocket>((socket) => {
    peerLeftReasons.set(socket, 'session_expired');
    socket.emit('session:ended', { reason: 'session_expired' });
    socket.disconnect(true);
  });

  // ---- handshake ------------------------------------------------------------
  const refuse = (code: HandshakeErrorCode, started: bigint, message?: string): HandshakeError => {
    metrics.handshakes.inc({ outcome: code });
    metrics.handshakeSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
    return new HandshakeError(code, message);
  };

  io.use((socket, next) => {
    const started = process.hrtime.bigint();
    if (draining) return next(refuse('server_draining', started));
    const origin = socket.handshake.headers.origin;
    if (allowedOrigins && origin && !allowedOrigins.has(origin) && !sameHost(origin, socket.handshake.headers.host)) {
      return next(refuse('origin_forbidden', started));
    }
    const auth: unknown = socket.handshake.auth;
    const token = typeof auth === 'object' && auth !== null ? (auth as { token?: unknown }).token : undefined;
    if (typeof token !== 'string' || token.length === 0) return next(refuse('token_missing', started));
    if (token.length > 4096) return next(refuse('token_invalid', started));
    tokens.redeem(token).then(
      (claims) => {
        if (draining) return next(refuse('server_draining', started));
        if ((perUser.get(claims.sub) ?? 0) >= limits.connectionsPerUser) {
          return next(refuse('rate_limited', started, 'too many connections for this user'));
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
          allowance: limits.socketEventsPerSecond * 2,
          refilledAt: now,
          strikes: 0,
        };
        metrics.handshakes.inc({ outcome: 'ok' });
        metrics.handshakeSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
        next();
      },
      (error: unknown) => {
        if (error instanceof RedeemError) return next(refuse(error.code, started));
        log.error({ err: error }, 'handshake failed');
        next(refuse('token_invalid', started));
      },
    );
  });

  io.on('connection', (socket) => {
    forgetHandshake(socket);
    void admit(socket).catch((error: unknown) => {
      log.error({ err: error }, 'failed to admit socket');
      socket.disconnect(true);
    });
  });

  async function admit(socket: GatewaySocket): Promise<void> {
    const data = socket.data;
    perUser.set(data.userId, (perUser.get(data.userId) ?? 0) + 1);
    metrics.connectedSockets.inc();
    socket.on('disconnect', onDisconnect);
    // One catch-all instead of one listener per event: each named listener grows the
    // socket's dictionary-mode `_events` (~150 bytes per socket, net of the catch-all).
    socket.onAny(onClientEvent);
    if (data.expiresAt <= Date.now()) {
      peerLeftReasons.set(socket, 'session_expired');
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
    const peers = await presence.join(data.room, peer);
    if (!socket.connected) {
      // Left while presence was being written.
      presence.leave(data.room, socket.id, 'disconnect');
      return;
    }
    socket.emit('session', {
      peerId: socket.id,
      userId: data.userId,
      name: data.name,
      room: data.room,
      replica,
      peers,
      expiresAt: data.expiresAt,
      caps: data.caps,
    });
    // Joined after `session` is queued, so no room traffic can overtake it.
    await socket.join(data.room);
    metrics.rooms.set(io.of('/').adapter.rooms.size - io.of('/').sockets.size);
  }

  const clientEvents: Record<string, (this: GatewaySocket, payload: unknown, ack: unknown) => void> = {
    signal: onSignal,
    publish: onPublish,
    'session:refresh': onRefresh,
    peers: onPeers,
  };

  function onClientEvent(this: GatewaySocket, event: unknown, payload?: unknown, ack?: unknown): void {
    if (typeof event === 'string' && Object.hasOwn(clientEvents, event)) clientEvents[event]?.call(this, payload, ack);
  }

  function onDisconnect(this: GatewaySocket): void {
    const data = this.data;
    expiry.cancel(this);
    metrics.connectedSockets.dec();
    const count = (perUser.get(data.userId) ?? 1) - 1;
    if (count > 0) perUser.set(data.userId, count);
    else perUser.delete(data.userId);
    presence.leave(data.room, this.id, peerLeftReasons.get(this) ?? 'disconnect');
    metrics.rooms.set(Math.max(0, io.of('/').adapter.rooms.size - io.of('/').sockets.size));
  }

  /**
   * Common gate for client events: an ack function, the rate limit and the schema.
   * Returns the parsed payload, or undefined after acking the error.
   */
  function accept<S extends z.ZodType>(
    socket: GatewaySocket,
    event: string,
    schema: S,
    payload: unknown,
    ack: unknown,
  ): { payload: z.infer<S>; reply: Reply } | undefined {
    const reply: Reply = typeof ack === 'function' ? (ack as Reply) : () => undefined;
    const data = socket.data;
    const now = Date.now();
    const rate = limits.socketEventsPerSecond;
    data.allowance = Math.min(rate * 2, data.allowance + ((now - data.refilledAt) * rate) / 1000);
    data.refilledAt = now;
    let refusal: AckError | undefined;
    let parsed: z.ZodSafeParseResult<z.infer<S>> | undefined;
    if (data.allowance < 1) refusal = fail('rate_limited');
    else {
      data.allowance -= 1;
      parsed = schema.safeParse(payload);
      if (!parsed.success) refusal = fail('invalid_payload', validationMessage(parsed.error));
    }
    if (refusal || !parsed?.success) {
      metrics.eventsIn.inc({ event, result: refusal?.error.code ?? 'invalid_payload' });
      reply(refusal ?? fail('invalid_payload'));
      if (++data.strikes > MAX_STRIKES) {
        log.warn({ peerId: socket.id, event }, 'disconnecting a socket that keeps sending bad or too many events');
        socket.disconnect(true);
      }
      return undefined;
    }
    metrics.eventsIn.inc({ event, result: 'ok' });
    return { payload: parsed.data, reply };
  }

  function onSignal(this: GatewaySocket, payload: unknown, ack: unknown): void {
    const accepted = accept(this, 'signal', signalRequestSchema, payload, ack);
    if (!accepted) return;
    const { to, kind, data } = accepted.payload;
    const room = this.data.room;
    if (to === this.id || !presence.has(room, to)) {
      accepted.reply(fail('not_in_room'));
      return;
    }
    const message = { from: this.id, kind, data };
    const local = io.of('/').sockets.get(to);
    // A local target skips the adapter entirely; a remote one costs its one publish.
    if (local) {
      if (local.data.room === room) local.emit('signal', message);
    } else io.to(to).emit('signal', message);
    metrics.eventsOut.inc({ event: 'signal' });
    accepted.reply({ ok: true });
  }

  function onPublish(this: GatewaySocket, payload: unknown, ack: unknown): void {
    if (!this.data.caps.includes('publish')) {
      const reply = typeof ack === 'function' ? (ack as Reply) : undefined;
      metrics.eventsIn.inc({ event: 'publish', result: 'forbidden' });
      reply?.(fail('forbidden', 'this token does not carry the publish capability'));
      return;
    }
    const accepted = accept(this, 'publish', publishRequestSchema, payload, ack);
    if (!accepted) return;
    const id = bus.publish(
      this.data.room,
      { type: accepted.payload.type, data: accepted.payload.data ?? null },
      this.id,
    );
    accepted.reply({ ok: true, id });
  }

  function onRefresh(this: GatewaySocket, payload: unknown, ack: unknown): void {
    const accepted = accept(this, 'session:refresh', sessionRefreshRequestSchema, payload, ack);
    if (!accepted) return;
    refresh(this, accepted.payload.token).then(accepted.reply, () => {
      accepted.reply(fail('internal'));
    });
  }

  async function refresh(socket: GatewaySocket, token: string): Promise<Parameters<Reply>[0]> {
    let claims;
    try {
      claims = await tokens.redeem(token);
    } catch (error) {
      return error instanceof RedeemError ? fail(error.code) : fail('internal');
    }
    if (claims.room !== socket.data.room || claims.sub !== socket.data.userId) {
      return fail('forbidden', 'the token is for another room or user');
    }
    socket.data.expiresAt = claims.sexp * 1000;
    socket.data.caps = sharedCaps(claims.caps);
    expiry.schedule(socket, socket.data.expiresAt);
    return { ok: true, expiresAt: socket.data.expiresAt };
  }

  function onPeers(this: GatewaySocket, payload: unknown, ack: unknown): void {
    const accepted = accept(this, 'peers', peersRequestSchema, payload, ack);
    if (!accepted) return;
    presence.list(this.data.room).then(
      (peers) => {
        accepted.reply({ ok: true, peers });
      },
      () => {
        accepted.reply(fail('internal'));
      },
    );
  }

  let closing: Promise<void> | undefined;
  const drain = async (): Promise<void> => {
    draining = true;
    const sockets = [...io.of('/').sockets.values()];
    for (const socket of sockets) {
      // Spread reconnects so a drained replica's clients do not stampede the rest.
      socket.emit('server:shutdown', { reconnectAfterMs: 250 + Math.floor(Math.random() * 1_750) });
      peerLeftReasons.set(socket, 'server_shutdown');
    }
    bus.close();
    // Let the notices reach the wire before the transports close.
    if (sockets.length > 0) await new Promise((resolve) => setTimeout(resolve, 200));
    for (const socket of sockets) socket.disconnect(true);
  };

  return {
    rooms: {
      publish: (room, event, from) =>
        bus.publish(room, { type: event.type, data: event.data as RoomEvent['data'] }, from),
      peers: (room) => presence.list(room),
    },
    connections: () => io.of('/').sockets.size,
    close() {
      closing ??= (async () => {
        await drain();
        expiry.close();
        await presence.close('server_shutdown');
        await io.close();
      })();
      return closing;
    },
  };
}

const NOTHING = Object.freeze({});
const CAPS_PUBLISH: Capability[] = ['publish'];
const CAPS_NONE: Capability[] = [];

/** One shared array per capability set (there are two) rather than one per socket. */
function sharedCaps(caps: Capability[]): Capability[] {
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
