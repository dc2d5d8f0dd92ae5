import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReadyResponse } from '@switchboard/contract';
import { connectWithToken, devLogin, mintToken, type ConnectedClient } from '../../support/client.js';
import { startGatewayProcess, type GatewayProcess } from '../../support/gateway-process.js';
import { waitFor } from '../../support/ports.js';
import { startRedisServer, type RedisServerHandle } from '../../support/redis-server.js';

const readyz = async (url: string) => (await (await fetch(`${url}/readyz`)).json()) as ReadyResponse;

describe('MAX_CONNECTIONS_PER_USER across replicas', () => {
  let redis: RedisServerHandle;
  let replicas: GatewayProcess[];
  const open: ConnectedClient[] = [];
  const connect = async (replica: GatewayProcess, user: string): Promise<ConnectedClient> => {
    const minted = await mintToken(replica.url, await devLogin(replica.url, user), 'capped');
    const client = await connectWithToken(replica.url, minted.token);
    open.push(client);
    return client;
  };

  beforeAll(async () => {
    redis = await startRedisServer();
    const env = { REDIS_URL: redis.url, MAX_CONNECTIONS_PER_USER: '2', PRESENCE_TTL_SECONDS: '3' };
    replicas = await Promise.all(['cap-1', 'cap-2'].map((replica) => startGatewayProcess({ env, replica })));
  });
  afterAll(async () => {
    for (const client of open) client.close();
    await Promise.all(replicas.map((replica) => replica.stop('SIGKILL')));
    await redis.stop();
  });

  it('holds on every replica, frees a slot on disconnect and when a replica dies, and fails open without Redis', async () => {
    const [one, two] = replicas as [GatewayProcess, GatewayProcess];
    const first = await connect(one, 'greedy');
    await connect(two, 'greedy');
    for (const replica of [one, two]) await expect(connect(replica, 'greedy')).rejects.toThrow('rate_limited');
    // Another user is not affected.
    await connect(one, 'modest');

    first.close();
    await waitFor('a slot back', async () => {
      try {
        await connect(two, 'greedy');
        return true;
      } catch {
        return undefined;
      }
    });
    await expect(connect(one, 'greedy')).rejects.toThrow('rate_limited');

    // A replica killed with the user's sockets: its count goes when a survivor reaps it.
    const doomed = await startGatewayProcess({
      env: { REDIS_URL: redis.url, MAX_CONNECTIONS_PER_USER: '3', PRESENCE_TTL_SECONDS: '3' },
      replica: 'cap-doomed',
    });
    await connect(doomed, 'crashy');
    await connect(doomed, 'crashy');
    await expect(connect(one, 'crashy')).rejects.toThrow('rate_limited');
    await doomed.stop('SIGKILL');
    await waitFor(
      'the dead replica reaped',
      async () => {
        try {
          await connect(one, 'crashy');
          return true;
        } catch {
          return undefined;
        }
      },
      { timeoutMs: 20_000 },
    );

    // Without Redis the cap falls back to what each replica counts itself.
    await redis.kill();
    await waitFor('degraded', async () => (await readyz(one.url)).status === 'degraded' || undefined);
    await connect(one, 'offline-user');
    await connect(one, 'offline-user');
    await expect(connect(one, 'offline-user')).rejects.toThrow('rate_limited');
    await redis.start();
  }, 60_000);
});
