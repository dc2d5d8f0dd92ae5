import type { Server as HttpServer } from 'node:http';
import { Server } from 'socket.io';
import { LIMITS, socketIoRoom, type RoomEvent, type RoomEventFrame } from '@switchboard/contract';
import type { HistorySettings, RoomHistory } from '../history/types.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { Presence } from '../presence/types.js';
import type { RedisConnection } from '../redis/connection.js';
import type { TokenService } from '../tokens/service.js';
import { createRedisAdapter } from './adapter.js';
import { createAdmission } from './admission.js';
import { createClientEvents } from './client-events.js';
import type { ConnectionCap } from './connection-cap.js';
import { createMemberships } from './memberships.js';
import { createPresenceFrames } from './presence-frames.js';
import type { RoomBus } from './room-bus.js';
import type { LocalRoom, RoomsApi } from './rooms-api.js';
import { createRooms } from './rooms.js';
import { createExpiryWheel } from './session-expiry.js';
import { createSignals } from './signals.js';
import { createSlowConsumers } from './slow-consumers.js';
import type { GatewayServer, GatewaySocket, Membership } from './types.js';

/** How long a moving client may take, after its delay, to start its next session elsewhere. */
const HANDOVER_MS = 1_500;
/** A connection in no room (a handshake without a token, or after its last `room:leave`) is closed after this. */
const ROOMLESS_MS = LIMITS.roomlessConnectionMs;

/** The drivers, built once by the composition root (gateway.ts) and handed in. */
export interface RealtimeDrivers {
  history: RoomHistory;
  presence: Presence;
  bus: RoomBus;
  cap: ConnectionCap;
}

export interface RealtimeOptions extends RealtimeDrivers {
  httpServer: HttpServer;
  tokens: TokenService;
  redis: RedisConnection | undefined;
  adapter: 'redis' | 'redis-sharded';
  keyPrefix: string;
  replica: string;
  corsOrigins: '*' | string[];
  limits: { socketEventsPerSecond: number; socketMaxBufferedBytes: number };
  rooms: {
    maxPerConnection: number;
    presenceSnapshotMax: number;
    announceMax: number;
    presenceCountIntervalMs: number;
  };
  coalesceMs: number;
  historySettings: HistorySettings & { replyMaxBytes: number; recoveryMaxEvents: number };
  /** Keep what `localRooms()` reports on (the dashboard's sampler reads it). */
  trackRoomActivity?: boolean;
  /** Most time the drain may spend handing sockets over before it disconnects them. */
  drainBudgetMs: number;
  logger: Logger;
  metrics: Metrics;
}

export interface Realtime {
  readonly rooms: RoomsApi;
  connections(): number;
  /** Rooms with members on this replica (read once a second by the dashboard's sampler). */
  localRooms(): LocalRoom[];
  /**
   * Stops admitting sockets, tells connected ones to reconnect elsewhere, disconnects
   * them, leaves presence and closes Socket.IO (and the HTTP server under it); idempotent.
   */
  close(): Promise<void>;
}

/**
 * The Socket.IO side of the gateway, assembled from its parts around one idea: a
 * connection holds a membership per room it is in. The room bus brings each room's
 * traffic from the other replicas and dispatches it (events to the rooms registry,
 * signals to the relay, presence to the presence driver, kicks to the memberships);
 * what reaches this replica's sockets leaves through the registry's streams and the
 * presence frames.
 */
export function createRealtime(options: RealtimeOptions): Realtime {
  const { tokens, redis, replica, metrics, limits, logger, presence, bus, cap, history } = options;
  const settings = options.historySettings;

  const io: GatewayServer = new Server(options.httpServer, {
    serveClient: false,
    // A little above the event limit, so an oversized event is answered, not dropped.
    maxHttpBufferSize: LIMITS.socketPacketBytes,
    cors: { origin: options.corsOrigins === '*' ? '*' : options.corsOrigins, methods: ['GET', 'POST'] },
    perMessageDeflate: false,
    httpCompression: false,
    pingInterval: 20_000,
    pingTimeout: 20_000,
    connectTimeout: 10_000,
  });
  if (redis) {
    io.adapter(createRedisAdapter({ redis, kind: options.adapter, keyPrefix: options.keyPrefix, logger, metrics }));
  }
  const sockets = io.of('/').sockets;
  const members = (room: string, except?: string[]) => {
    const target = io.local.to(socketIoRoom(room));
    return except ? target.except(except) : target;
  };
  let draining = false;

  /**
   * The `seq` last delivered in each room with local members: the dashboard's event rates.
   * Kept only for the dashboard, whose sampler prunes it every second (`localRooms`).
   */
  const lastSeq = new Map<string, number>();
  const trackSeqs = options.trackRoomActivity === true;
  const emitEvents = (room: string, events: RoomEvent[]): void => {
    const name = socketIoRoom(room);
    const count = io.of('/').adapter.rooms.get(name)?.size ?? 0;
    if (count === 0) return;
    if (trackSeqs) lastSeq.set(room, events[events.length - 1]?.seq ?? 0);
    // Tagged once per replica and frame: Socket.IO encodes a broadcast once for all its members.
    if (events.length === 1 && events[0]) io.local.to(name).emit('room:event', { ...events[0], room });
    else
      io.local.to(name).emit(
        'room:events',
        events.map((event): RoomEventFrame => ({ ...event, room })),
      );
    metrics.frames.inc(count);
    metrics.deliveries.inc(count * events.length);
  };

  const rooms = createRooms({
    history,
    bus,
    redis,
    historySize: settings.size,
    historyMaxBytes: settings.maxBytes,
    historyReplyMaxBytes: settings.replyMaxBytes,
    historyTtlSeconds: settings.ttlSeconds,
    recoveryMaxEvents: settings.recoveryMaxEvents,
    coalesceMs: options.coalesceMs,
    emitEvents,
    emitMoved: (room, payload) => members(room).emit('room:epoch', payload),
    logger,
    metrics,
  });

  const frames = createPresenceFrames({
    members,
    socket: (peerId) => sockets.get(peerId),
    coalesceMs: options.coalesceMs,
    announceMax: options.rooms.announceMax,
    countIntervalMs: options.rooms.presenceCountIntervalMs,
  });
  presence.listen(frames);
  const signals = createSignals({ presence, bus, socket: (peerId) => sockets.get(peerId), metrics });

  const expiry = createExpiryWheel<Membership>((membership) => memberships.end(membership, 'session_expired'));
  const idle = createExpiryWheel<GatewaySocket>((socket) => {
    if (socket.data.rooms.size === 0) socket.disconnect(true);
  });
  const memberships = createMemberships({
    presence,
    rooms,
    cap,
    expiry,
    idle,
    replica,
    snapshotMax: options.rooms.presenceSnapshotMax,
    roomlessMs: ROOMLESS_MS,
    metrics,
  });

  bus.handle({
    presence: (message) => presence.receive(message),
    kick: (room, userId) => memberships.kickLocal(room, userId, sockets.values()),
    resubscribed: () => {
      // Presence messages may have been lost with the link: read the rooms with local members again.
      const prefix = socketIoRoom('');
      for (const name of io.of('/').adapter.rooms.keys()) {
        if (name.startsWith(prefix)) presence.refresh(name.slice(prefix.length)).catch(() => undefined);
      }
    },
  });

  const slowConsumers = createSlowConsumers({
    maxBytes: limits.socketMaxBufferedBytes,
    onSlow: (socket, unsentBytes) => {
      metrics.slowConsumers.inc();
      logger.warn(
        { component: 'realtime', peerId: socket.id, userId: socket.data.userId, unsentBytes },
        'disconnected a slow consumer (SOCKET_MAX_BUFFERED_BYTES)',
      );
    },
  });

  const admission = createAdmission({
    tokens,
    cap,
    memberships,
    corsOrigins: options.corsOrigins,
    socketEventsPerSecond: limits.socketEventsPerSecond,
    isDraining: () => draining,
    logger,
    metrics,
  });
  const attachClientEvents = createClientEvents({
    tokens,
    admission,
    memberships,
    presence,
    rooms,
    signals,
    expiry,
    slowConsumers,
    socketEventsPerSecond: limits.socketEventsPerSecond,
    maxRoomsPerConnection: options.rooms.maxPerConnection,
    isDraining: () => draining,
    logger,
    metrics,
  });

  // Shared, not per-socket closures: a listener per socket is memory per socket.
  function onDisconnect(this: GatewaySocket): void {
    memberships.release(this);
  }
  io.use((socket, next) => admission.handshake(socket, next));
  io.on('connection', (socket) => {
    socket.on('disconnect', onDisconnect);
    slowConsumers.watch(socket);
    attachClientEvents(socket);
    admission.admit(socket).catch((error: unknown) => {
      logger.error({ component: 'realtime', err: error }, 'failed to admit socket');
      socket.disconnect(true);
    });
  });

  let closing: Promise<void> | undefined;
  /**
   * Tells every socket to move, then keeps delivering to it until its client has a session
   * on another replica and closes this one (the SDK connects before it lets go), or the
   * handover window ends: a rolling deploy costs no event, whatever the history holds.
   */
  const drain = async (): Promise<void> => {
    draining = true;
    let latest = 0;
    for (const socket of sockets.values()) {
      // Spread reconnects so a drained replica's clients do not stampede the rest.
      const reconnectAfterMs = 250 + Math.floor(Math.random() * 1_750);
      latest = Math.max(latest, reconnectAfterMs);
      socket.emit('server:shutdown', { reconnectAfterMs });
      socket.data.leaving = 'server_shutdown';
    }
    const until = Date.now() + Math.min(latest + HANDOVER_MS, options.drainBudgetMs);
    while (sockets.size > 0 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 50));
    for (const socket of [...sockets.values()]) socket.disconnect(true);
  };

  return {
    rooms: {
      publish: (room, event, from) => rooms.publish(room, event, from),
      peers: (room) => presence.list(room),
      history: (room, query) => rooms.read(room, query),
      async kick(room, userId) {
        // Tokens first: a kicked client that reconnects at once must already be refused.
        await tokens.kick(userId, room);
        memberships.kickLocal(room, userId, sockets.values());
        bus.send(room, { kind: 'kick', userId });
      },
    },
    connections: () => sockets.size,
    localRooms() {
      const local: LocalRoom[] = [];
      const all = io.of('/').adapter.rooms;
      const prefix = socketIoRoom('');
      for (const [name, roomMembers] of all) {
        if (!name.startsWith(prefix)) continue;
        const room = name.slice(prefix.length);
        local.push({ room, members: roomMembers.size, seq: lastSeq.get(room) ?? 0 });
      }
      for (const room of lastSeq.keys()) if (!all.has(socketIoRoom(room))) lastSeq.delete(room);
      return local;
    },
    close() {
      closing ??= (async () => {
        await drain();
        expiry.close();
        idle.close();
        rooms.close();
        await presence.close('server_shutdown');
        frames.close();
        await io.close();
      })();
      return closing;
    },
  };
}
