import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReadyResponse } from '@switchboard/contract';
import { joinRoom, type ConnectedClient } from '../../support/client.js';
import { startGatewayProcess, type GatewayProcess } from '../../support/gateway-process.js';
import { waitFor } from '../../support/ports.js';
import { startRedisServer, type RedisServerHandle } from '../../support/redis-server.js';

const readyz = async (url: string) => (await (await fetch(`${url}/readyz`)).json()) as ReadyResponse;

describe.each(['redis', 'redis-sharded'] as const)('Redis killed and restarted (SOCKETIO_ADAPTER=%s)', (adapter) => {
  let redis: RedisServerHandle;
  let replicas: GatewayProcess[];
  const clients: ConnectedClient[] = [];

  beforeAll(async () => {
    redis = await startRedisServer();
    const env = { REDIS_URL: redis.url, SOCKETIO_ADAPTER: adapter, LOG_LEVEL: 'info' };
    replicas = await Promise.all([startGatewayProcess({ env }), startGatewayProcess({ env })]);
  });
  afterAll(async () => {
    for (const client of clients) client.close();
    await Promise.all(replicas.map((replica) => replica.stop('SIGKILL')));
    await redis.stop();
  });

  it('keeps local delivery through the outage and resumes cross-replica delivery by itself', async () => {
    const [one, two] = replicas as [GatewayProcess, GatewayProcess];
    const a1 = await joinRoom(one.url, 'a1', 'resilient');
    const a2 = await joinRoom(one.url, 'a2', 'resilient');
    const b1 = await joinRoom(two.url, 'b1', 'resilient');
    clients.push(a1, a2, b1);
    const publish = async (client: ConnectedClient, text: string) =>
      client.socket.emitWithAck('publish', { type: 'chat', data: { text } });
    const texts = (client: ConnectedClient) => client.events.map((e) => (e.data as { text: string }).text);

    await publish(a1, 'before');
    await waitFor('cross-replica before', () => (texts(b1).includes('before') ? true : undefined));

    await redis.kill();
    await waitFor('both degraded', async () => {
      const states = await Promise.all(replicas.map((r) => readyz(r.url)));
      return states.every((s) => s.status === 'degraded') || undefined;
    });
    expect(await publish(a1, 'during')).toMatchObject({ ok: true });
    await waitFor('local delivery during outage', () => (texts(a2).includes('during') ? true : undefined));

    await redis.start();
    await waitFor(
      'both reconnected',
      async () => {
        const states = await Promise.all(replicas.map((r) => readyz(r.url)));
        return states.every((s) => s.redis === 'connected') || undefined;
      },
      { timeoutMs: 15_000 },
    );
    // Subscriptions come back asynchronously after the command connection; retry until one crosses.
    const crosses = (from: ConnectedClient, to: ConnectedClient, text: string) =>
      waitFor(
        `"${text}" across replicas`,
        async () => {
          await publish(from, text);
          await new Promise((resolve) => setTimeout(resolve, 100));
          return texts(to).includes(text) || undefined;
        },
        { timeoutMs: 15_000, intervalMs: 200 },
      );
    await crosses(a1, b1, 'after');
    await crosses(b1, a1, 'back');
    expect(a1.socket.connected && a2.socket.connected && b1.socket.connected).toBe(true);
    for (const replica of replicas) {
      expect(replica.output()).not.toMatch(/unhandled|TypeError/i);
      expect((await fetch(`${replica.url}/healthz`)).status).toBe(200);
    }
  });
});
