import type { Server as HttpServer } from 'node:http';
import { Server } from 'socket.io';
import { LIMITS, socketIoRoom, type PeerInfo, type PeerLeftReason, type RoomEvent } from '@switchboard/contract';
import { createMemoryHistory, type MemoryHistory } from '../history/memory.js';
import { createRedisHistory } from '../history/redis.js';
import type { HistorySettings, RoomHistory } from '../history/types.js';
import type { LocalRoom } from '../admin/sampler.js';
import type { RoomsApi } from '../http/app.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { createMemoryPresence } from '../presence/memory.js';
import { createRedisPresence } from '../presence/redis.js';
import type { Presence, PresenceListener } from '../presence/types.js';
import type { RedisConnection } from '../redis/connection.js';
import type { TokenService } from '../tokens/service.js';
import type { Lifecycle } from '../webhooks/lifecycle.js';
import { createRedisAdapter } from './adapter.js';
import { createAdmission } from './admission.js';
import { createClientEvents } from './client-events.js';
import { createCoalescer } from './coalescer.js';
import { createConnectionCap } from './connection-cap.js';
import { createRoomChannels, type RoomChannels } from './room-channels.js';
import { createRooms } from './rooms.js';
import { createExpiryWheel } from './session-expiry.js';
import { createSlowConsumers } from './slow-consumers.js';
import type { GatewayServer, GatewaySocket } from './types.js';

/** How long a moving client may take, after its delay, to start its next session elsewhere. */
const HANDOVER_MS = 1_500;

export interface RealtimeOptions {
  httpServer: HttpServer;
  tokens: TokenService;
  redis: RedisConnection | undefined;
  adapter: 'redis' | 'redis-sharded';
  keyPrefix: string;
  replica: string;
  corsOrigins: '*' | string[];
  limits: { connectionsPerUser: number; socketEventsPerSecond: number; socketMaxBufferedBytes: number };
  coalesceMs: number;
  presenceTtlSeconds: number;
  history: HistorySettings & { replyMaxBytes: number; recoveryMaxEvents: number };
  /** Keep what `localRooms()` reports on (the dashboard's sampler reads it). */
  trackRoomActivity?: boolean;
  /** Most time the drain may spend handing sockets over before it disconnects them. */
  drainBudgetMs: number;
  /** Lifecycle webhooks, told by presence of every join and leave. */
  lifecycle?: Lifecycle;
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
 * The Socket.IO side of the gateway, wired from its parts: admission (handshake and
 * joining), client events, and rooms (ordered delivery with history) over the rooms'
 * channels in Redis, or in-process in memory mode.
 */
export function createRealtime(options: RealtimeOptions): Realtime {
  const { tokens, redis, replica, metrics, limits, logger } = options;
  const sharded = options.adapter === 'redis-sharded';

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
  const members = (room: string) => io.local.to(socketIoRoom(room));
  let draining = false;

  const announce = (target: { emit: GatewaySocket['emit'] }, peers: PeerInfo[]): void => {
    if (peers.length === 1 && peers[0]) target.emit('peer:joined', peers[0]);
    else if (peers.length > 1) target.emit('peers:joined', peers);
  };
  // A burst of joins (a meeting starting, a drained replica's clients arriving) reaches each
  // member as one frame per window instead of one per join. A peer in the batch already
  // learnt those before it from its `session`, so it gets only those after it.
  const joins = createCoalescer<PeerInfo>({
    coalesceMs: options.coalesceMs,
    deliver: (room, peers) => {
      announce(members(room).except(peers.map((peer) => peer.peerId)), peers);
      peers.forEach((peer, i) => {
        const socket = sockets.get(peer.peerId);
        if (socket) announce(socket, peers.slice(i + 1));
      });
    },
  });
  const listener: PresenceListener = {
    joined(room: string, peer: PeerInfo) {
      joins.push(room, [peer]);
    },
    left(room: string, peerId: string, reason: PeerLeftReason) {
      // Never a leave before the join it ends.
      joins.flush(room);
      members(room).emit('peer:left', { peerId, reason });
    },
  };

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
    if (events.length === 1 && events[0]) io.local.to(name).emit('room:event', events[0]);
    else io.local.to(name).emit('room:events', events);
    metrics.frames.inc(count);
    metrics.deliveries.inc(count * events.length);
  };

  let channels: RoomChannels | undefined;
  let memoryHistory: MemoryHistory | undefined;
  const history: RoomHistory = redis
    ? createRedisHistory(redis, { ...options.history, keyPrefix: options.keyPrefix, sharded })
    : (memoryHistory = createMemoryHistory({
        ...options.history,
        sink: (room, epoch, event) => rooms.receive(room, { kind: 'event', epoch, event }),
      }));
  if (redis) {
    channels = createRoomChannels({
      redis,
      keyPrefix: options.keyPrefix,
      sharded,
      onMessage: (room, message) => rooms.receive(room, message),
      replica,
      holds: (peerId) => sockets.has(peerId),
      onResubscribed: () => {
        rooms.catchUpAll();
        const prefix = socketIoRoom('');
        for (const name of io.of('/').adapter.rooms.keys()) {
          if (name.startsWith(prefix)) presence.refresh(name.slice(prefix.length)).catch(() => undefined);
        }
      },
      logger,
      metrics,
    });
  }

  const rooms = createRooms({
    history,
    channels,
    redis,
    historySize: options.history.size,
    historyMaxBytes: options.history.maxBytes,
    historyReplyMaxBytes: options.history.replyMaxBytes,
    historyTtlSeconds: options.history.ttlSeconds,
    recoveryMaxEvents: options.history.recoveryMaxEvents,
    coalesceMs: options.coalesceMs,
    emitEvents,
    emitMoved: (room, payload) => members(room).emit('room:epoch', payload),
    onChannelMessage: (room, message) => {
      if (message.kind === 'presence') {
        presence.receive(message.message);
        return;
      }
      if (message.kind === 'kick') {
        kickLocal(room, message.userId);
        return;
      }
      const target = sockets.get(message.to);
      if (target?.data.room === room) {
        target.emit('signal', message.signal);
        metrics.eventsOut.inc({ event: 'signal' });
      }
    },
    logger,
    metrics,
  });

  const cap = createConnectionCap({
    limit: limits.connectionsPerUser,
    replica,
    redis,
    keyPrefix: options.keyPrefix,
    logger,
  });

  const presence: Presence =
    redis && channels
      ? createRedisPresence({
          redis,
          publish: (room, message) => channels?.send(room, { kind: 'presence', message }),
          listener,
          replica,
          keyPrefix: options.keyPrefix,
          ttlSeconds: options.presenceTtlSeconds,
          onReplicaGone: (gone, userIds) => cap.forgetReplica(gone, userIds),
          lifecycle: options.lifecycle,
          logger,
          metrics,
        })
      : createMemoryPresence(listener, replica, options.lifecycle);

  /** Ends this replica's sockets of `userId` in `room`, joined or still being admitted. */
  const kickLocal = (room: string, userId: string): void => {
    for (const socket of sockets.values()) {
      const data = socket.data;
      if (data.room !== room || data.userId !== userId || data.leaving === 'kicked') continue;
      data.leaving = 'kicked';
      socket.emit('session:ended', { reason: 'kicked' });
      socket.disconnect(true);
      metrics.kicks.inc();
    }
  };

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

  const expiry = createExpiryWheel<GatewaySocket>((socket) => {
    socket.data.leaving = 'session_expired';
    socket.emit('session:ended', { reason: 'session_expired' });
    socket.disconnect(true);
  });

  const admission = createAdmission({
    tokens,
    cap,
    presence,
    rooms,
    expiry,
    replica,
    corsOrigins: options.corsOrigins,
    socketEventsPerSecond: limits.socketEventsPerSecond,
    isDraining: () => draining,
    logger,
    metrics,
  });
  const attachClientEvents = createClientEvents({
    tokens,
    presence,
    rooms,
    expiry,
    slowConsumers,
    socketEventsPerSecond: limits.socketEventsPerSecond,
    localSocket: (peerId) => sockets.get(peerId),
    relaySignal: (room, to, signal) => channels?.send(room, { kind: 'signal', to, signal }),
    logger,
    metrics,
  });

  // Shared, not per-socket closures: a listener per socket is memory per socket.
  function onDisconnect(this: GatewaySocket): void {
    admission.release(this);
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
        kickLocal(room, userId);
        channels?.send(room, { kind: 'kick', userId });
      },
    },
    connections: () => sockets.size,
    localRooms() {
      const local: LocalRoom[] = [];
      const all = io.of('/').adapter.rooms;
      const prefix = socketIoRoom('');
      for (const [name, members] of all) {
        if (!name.startsWith(prefix)) continue;
        const room = name.slice(prefix.length);
        local.push({ room, members: members.size, seq: lastSeq.get(room) ?? 0 });
      }
      for (const room of lastSeq.keys()) if (!all.has(socketIoRoom(room))) lastSeq.delete(room);
      return local;
    },
    close() {
      closing ??= (async () => {
        await drain();
        expiry.close();
        rooms.close();
        await presence.close('server_shutdown');
        joins.close();
        channels?.close();
        memoryHistory?.close();
        cap.close();
        await io.close();
      })();
      return closing;
    },
  };
}
