import { createAdapter, createShardedAdapter } from '@socket.io/redis-adapter';
import { createServer } from 'node:http';
import { pino } from 'pino';
import { createClient, createCluster } from 'redis';
import { Server } from 'socket.io';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics } from '../src/observability/metrics.js';
import { createRedisAdapter } from '../src/realtime/adapter.js';
import { createRedisConnection } from '../src/redis/connection.js';
import { waitFor } from '../../support/ports.js';
import { startRedisCluster, type RedisClusterHandle } from '../../support/redis-cluster.js';
import { startRedisServer, type RedisServerHandle } from '../../support/redis-server.js';

/**
 * The node-redis 4 workarounds this gateway dropped or kept, each with the failure it was
 * for, reproduced against node-redis 5 and real servers.
 */
describe('node-redis 5 and the Socket.IO adapter, as this gateway relies on them', () => {
  let redis: RedisServerHandle;
  let cluster: RedisClusterHandle;
  const rejections: unknown[] = [];
  const onRejection = (reason: unknown) => rejections.push(reason);

  beforeAll(async () => {
    [redis, cluster] = await Promise.all([startRedisServer(), startRedisCluster()]);
    process.on('unhandledRejection', onRejection);
  }, 60_000);
  afterAll(async () => {
    process.off('unhandledRejection', onRejection);
    await Promise.all([redis.stop(), cluster.stop()]);
  });

  it('subscribes before the first connect on one server exactly once (node-redis 4 crashed, #2626): no deferral needed', async () => {
    const client = createClient({ url: redis.url });
    client.on('error', () => undefined);
    const received: string[] = [];
    const subscribed = client.subscribe('early', (message) => received.push(message));
    await client.connect();
    await subscribed;
    const publisher = createClient({ url: redis.url });
    await publisher.connect();
    expect(await publisher.publish('early', 'one')).toBe(1);
    await waitFor('the message', () => received.length === 1 || undefined);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(received).toEqual(['one']);
    await Promise.all([client.close(), publisher.close()]);
  });

  it('throws when a Cluster client subscribes before its first connect (redis/node-redis#2904): subscriptions wait for it', async () => {
    const client = createCluster({ rootNodes: cluster.urls.map((url) => ({ url })) });
    client.on('error', () => undefined);
    let thrown: unknown;
    try {
      await client.sSubscribe('early', () => undefined);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(TypeError);
    client.destroy();
  });

  it('drops the promise of a classic-adapter publish made while Redis is down: guarded; the sharded adapter catches its own', async () => {
    const offline = () => {
      const client = createClient({ url: redis.url, disableOfflineQueue: true });
      client.on('error', () => undefined);
      return client;
    };
    const raw = [offline(), offline(), offline(), offline()];
    await Promise.all(raw.map((client) => client.connect()));
    const connection = createRedisConnection({
      topology: { kind: 'standalone', url: redis.url },
      logger: pino({ level: 'silent' }),
      metrics: createMetrics(),
    });
    await waitFor('connected', () => connection.isReady() || undefined);
    const servers = [
      ['upstream classic', createAdapter(raw[0], raw[1])],
      ['upstream sharded', createShardedAdapter(raw[2], raw[3])],
      [
        'guarded classic',
        createRedisAdapter({
          redis: connection,
          kind: 'redis',
          keyPrefix: 'guard:',
          logger: pino({ level: 'silent' }),
          metrics: createMetrics(),
        }),
      ],
    ] as const;
    const ios = servers.map(([name, adapter]) => {
      const io = new Server(createServer());
      io.adapter(adapter);
      return { name, io };
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    await redis.kill();
    // Every client has noticed, so each publish meets an offline client, not a closing socket.
    await waitFor('down', () => (!connection.isReady() && raw.every((client) => !client.isReady)) || undefined);
    rejections.length = 0;
    // A broadcast that is not local goes through the adapter's publish.
    for (const { io } of ios) io.to('somewhere').emit('hello');
    await new Promise((resolve) => setTimeout(resolve, 300));
    const messages = rejections.map((reason) => (reason instanceof Error ? reason.message : String(reason)));
    // Exactly one: the upstream classic adapter's. The sharded adapter and our guard catch theirs.
    expect(messages).toEqual(['The client is offline']);
    await redis.start();
    for (const { io } of ios) await io.close();
    for (const client of raw) client.destroy();
    await connection.close();
  });
});
