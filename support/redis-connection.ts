import { pino } from 'pino';
import { createMetrics } from '../backend/src/observability/metrics.js';
import { createRedisConnection, type RedisConnection } from '../backend/src/redis/connection.js';
import { waitFor } from './ports.js';
import { startRedisServer, type RedisServerHandle } from './redis-server.js';

export interface ConnectedRedis {
  readonly server: RedisServerHandle;
  /** The gateway's own connection to it, ready. */
  readonly redis: RedisConnection;
  /** Closes the connection, then stops the server. */
  stop(): Promise<void>;
}

/** A redis-server of its own on a free port, and the gateway's connection to it once ready. */
export async function startConnectedRedis(): Promise<ConnectedRedis> {
  const server = await startRedisServer();
  const redis = createRedisConnection({
    topology: { kind: 'standalone', url: server.url },
    logger: pino({ level: 'silent' }),
    metrics: createMetrics(),
  });
  await waitFor('redis ready', () => redis.isReady() || undefined);
  return {
    server,
    redis,
    async stop() {
      await redis.close();
      await server.stop();
    },
  };
}
