import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ReadyResponse } from '@switchboard/contract';
import { createClusterView } from './admin/cluster-view.js';
import { createDevAdminToken } from './admin/dev-token.js';
import { createAdminRoutes } from './admin/routes.js';
import { createSampler } from './admin/sampler.js';
import { createAccessTokenVerifier, createDevAccessTokenSigner } from './auth/access-token.js';
import { createRoomAccess } from './auth/room-access.js';
import type { Config } from './config/index.js';
import { createMemoryHistory } from './history/memory.js';
import { createRedisHistory } from './history/redis.js';
import { createHttpApp } from './http/app.js';
import type { Logger } from './observability/logger.js';
import { createMetrics, type Metrics } from './observability/metrics.js';
import { createMemoryPresence } from './presence/memory.js';
import { createRedisPresence } from './presence/redis.js';
import { createMemoryConnectionCap } from './realtime/connection-cap.js';
import { createRedisConnectionCap } from './realtime/connection-cap-redis.js';
import { nativeWsAddons } from './realtime/native-addons.js';
import { createRoomBus } from './realtime/room-bus.js';
import type { RoomsApi } from './realtime/rooms-api.js';
import { createRealtime, type RealtimeDrivers } from './realtime/server.js';
import { createRedisConnection, type RedisConnection } from './redis/connection.js';
import { createRtcTokenCodec } from './tokens/rtc-token.js';
import { createTokenService } from './tokens/service.js';
import { createUpstreamSessions } from './upstream/service.js';

export interface GatewayOptions {
  config: Config;
  logger: Logger;
  /** The built demo app, served at `/` when it exists. */
  staticDir?: string;
}

export interface Gateway {
  readonly port: number;
  readonly metricsPort: number | undefined;
  /** Drains sockets, then closes servers and Redis; idempotent. */
  close(): Promise<void>;
}

/** How long Redis may take to connect at boot before the log says the gateway runs degraded. */
const DEGRADED_NOTICE_MS = 2_000;

function listen(server: Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/**
 * The composition root below main.ts: builds every part from config, in order,
 * and owns what it opens. Never blocks on Redis: a down Redis means degraded mode.
 */
export async function startGateway({ config, logger, staticDir }: GatewayOptions): Promise<Gateway> {
  const metrics = createMetrics();
  const topology = config.redis.topology;
  const redis = topology
    ? createRedisConnection({ topology, logger, metrics, unresponsiveAfterMs: config.redis.unresponsiveAfterMs })
    : undefined;
  const keyPrefix =
    config.redis.keyPrefix && !config.redis.keyPrefix.endsWith(':')
      ? `${config.redis.keyPrefix}:`
      : config.redis.keyPrefix;
  const tokens = createTokenService({
    codec: createRtcTokenCodec(config.rtcToken),
    redis,
    keyPrefix,
    mintPerMinute: config.limits.mintPerMinute,
    memoryCap: config.limits.memoryTokenCap,
    logger,
    metrics,
  });
  const drivers = createRealtimeDrivers(config, { redis, keyPrefix, logger, metrics });
  const openai = config.upstream.openai;
  const upstream = openai
    ? createUpstreamSessions({
        // Loaded only when configured: the `openai` package adds ~0.2 s to every start.
        provider: (await import('./upstream/openai-provider.js')).createOpenAiProvider({
          apiKey: openai.apiKey,
          baseUrl: openai.baseUrl,
          session: openai.session,
          timeoutMs: config.upstream.timeoutMs,
        }),
        models: openai.models,
        voices: openai.voices,
        sessionsPerUser: config.upstream.sessionsPerUser,
        mintsPerMinute: config.upstream.mintsPerMinute,
        timeoutMs: config.upstream.timeoutMs,
        secretTtlSeconds: config.upstream.secretTtlSeconds,
        redis,
        keyPrefix,
        memoryCap: config.limits.memoryTokenCap,
        logger,
        metrics,
      })
    : undefined;
  let draining = false;

  const readiness = (): ReadyResponse => {
    const redisStatus = !redis
      ? 'disabled'
      : redis.isUnresponsive()
        ? 'unresponsive'
        : redis.isHealthy()
          ? 'connected'
          : 'disconnected';
    return {
      status: draining ? 'draining' : redisStatus === 'connected' || redisStatus === 'disabled' ? 'ready' : 'degraded',
      redis: redisStatus,
      tokenStore: tokens.currentStore(),
      replica: config.replicaId,
      connections: realtime.connections(),
    };
  };

  // Realtime is built after the HTTP app (Socket.IO attaches to its server), so reached lazily.
  const roomsApi: RoomsApi = {
    publish: (room, event, from) => realtime.rooms.publish(room, event, from),
    peers: (room) => realtime.rooms.peers(room),
    history: (room, query) => realtime.rooms.history(room, query),
    kick: (room, userId) => realtime.rooms.kick(room, userId),
  };
  const sampler = config.adminEnabled
    ? createSampler({
        replica: config.replicaId,
        metrics,
        status: () => readiness().status,
        connections: () => realtime.connections(),
        localRooms: () => realtime.localRooms(),
      })
    : undefined;
  const clusterView = sampler
    ? createClusterView({ sampler, redis, keyPrefix, replica: config.replicaId, logger })
    : undefined;
  const app = createHttpApp({
    logger,
    metrics,
    tokens,
    access: createAccessTokenVerifier({ ...config.accessJwt, logger }),
    devLogin: config.devLogin ? createDevAccessTokenSigner(config.accessJwt) : undefined,
    corsOrigins: config.corsOrigins,
    ice: config.ice,
    readiness,
    rooms: roomsApi,
    roomAccess: createRoomAccess({ config: config.roomAccess, logger, metrics }),
    roomsClaim: config.roomAccess.claim,
    serveMetrics: config.metricsPort === 0,
    staticDir,
    allowInsecureConnect: config.env !== 'production',
    upstream,
    admin: clusterView
      ? (auth) =>
          createAdminRoutes({
            ...auth,
            view: clusterView,
            rooms: roomsApi,
            devToken: createDevAdminToken(config),
            logger,
          })
      : undefined,
  });
  const server = createServer(app);
  // Socket.IO must attach after the app's request listener, so the app reaches it lazily.
  const realtime = createRealtime({
    httpServer: server,
    tokens,
    ...drivers,
    redis,
    adapter: config.adapter,
    keyPrefix,
    replica: config.replicaId,
    corsOrigins: config.corsOrigins,
    limits: config.limits,
    rooms: config.rooms,
    coalesceMs: config.coalesceMs,
    historySettings: config.history,
    trackRoomActivity: config.adminEnabled,
    // What remains of the shutdown budget for closing servers and Redis.
    drainBudgetMs: Math.max(0, config.shutdownTimeoutMs - 2_000),
    logger,
    metrics,
  });

  let metricsServer: Server | undefined;
  if (config.metricsPort !== 0) {
    metricsServer = createServer((req, res) => {
      if (req.url !== '/metrics') {
        res.writeHead(404).end();
        return;
      }
      metrics.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
        () => res.writeHead(500).end(),
      );
    });
  }

  const port = await listen(server, config.port);
  const metricsPort = metricsServer ? await listen(metricsServer, config.metricsPort) : undefined;
  const addons = nativeWsAddons();
  logger.info(
    {
      port,
      metricsPort,
      redis: topology?.kind ?? 'disabled',
      // Without Redis, Socket.IO keeps its default in-memory adapter whatever SOCKETIO_ADAPTER says.
      adapter: redis ? config.adapter : 'memory',
      history: config.history.size > 0 ? config.history.size : 'off',
      roomAccess: config.roomAccess.mode,
      wsNative: addons,
    },
    'gateway listening',
  );
  if (!addons.bufferutil) logger.warn('bufferutil did not load: WebSocket masking falls back to JavaScript');
  // The Redis clients each report their own errors; this is the one line that says what it means.
  const degradedCheck =
    redis &&
    setTimeout(() => {
      if (!redis.isReady())
        logger.warn(
          { redis: topology?.kind },
          'running degraded: Redis is unreachable, so tokens are kept in memory and room events reach this ' +
            "replica's members only; retrying in the background",
        );
    }, DEGRADED_NOTICE_MS);
  if (degradedCheck) degradedCheck.unref();

  let closing: Promise<void> | undefined;
  return {
    port,
    metricsPort,
    close() {
      closing ??= (async () => {
        draining = true;
        clearTimeout(degradedCheck || undefined);
        await realtime.close();
        sampler?.close();
        await clusterView?.close();
        server.closeAllConnections();
        if (metricsServer) {
          metricsServer.closeAllConnections();
          await new Promise((resolve) => metricsServer?.close(resolve));
        }
        drivers.bus.close();
        drivers.cap.close();
        drivers.closeHistory();
        tokens.close();
        upstream?.close();
        await redis?.close();
        logger.info('gateway closed');
      })();
      return closing;
    },
  };
}

/**
 * The realtime core's drivers, each picked once here from config: Redis-backed when Redis
 * is configured (shared by every replica), in-process otherwise.
 */
function createRealtimeDrivers(
  config: Config,
  deps: { redis: RedisConnection | undefined; keyPrefix: string; logger: Logger; metrics: Metrics },
): RealtimeDrivers & { closeHistory: () => void } {
  const { redis, keyPrefix, logger, metrics } = deps;
  const replica = config.replicaId;
  const bus = createRoomBus({
    redis,
    keyPrefix,
    sharded: config.adapter === 'redis-sharded',
    replica,
    logger,
    metrics,
  });
  const limit = config.limits.connectionsPerUser;
  if (!redis) {
    const cap = createMemoryConnectionCap({ limit });
    const history = createMemoryHistory({ ...config.history, sink: bus.sink });
    return {
      bus,
      cap,
      history,
      presence: createMemoryPresence(undefined, replica),
      closeHistory: () => history.close(),
    };
  }
  const cap = createRedisConnectionCap({ limit, replica, redis, keyPrefix, logger });
  return {
    bus,
    cap,
    history: createRedisHistory(redis, { ...config.history, keyPrefix, sharded: config.adapter === 'redis-sharded' }),
    presence: createRedisPresence({
      redis,
      publish: (room, message) => bus.send(room, { kind: 'presence', message }),
      replica,
      keyPrefix,
      ttlSeconds: config.presenceTtlSeconds,
      onReplicaGone: (gone, userIds) => cap.forgetReplica(gone, userIds),
      logger,
      metrics,
    }),
    closeHistory: () => undefined,
  };
}
