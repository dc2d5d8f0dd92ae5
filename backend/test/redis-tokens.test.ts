import jwt from 'jsonwebtoken';
import { createClient } from 'redis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { MintTokenResponse, ReadyResponse } from '@switchboard/contract';
import { connectWithToken, devLogin, mintToken, postJson } from '../../support/client.js';
import { startTestGateway, type TestGateway } from '../../support/gateway.js';
import { startGatewayProcess, type GatewayProcess } from '../../support/gateway-process.js';
import { freePort, waitFor } from '../../support/ports.js';
import { startRedisServer, type RedisServerHandle } from '../../support/redis-server.js';
import { redisKeys } from '../src/redis/keys.js';

const tokenKey = (minted: MintTokenResponse, prefix = '') => redisKeys(prefix).token(minted.jti);

async function withRedis<T>(url: string, fn: (client: ReturnType<typeof createClient>) => Promise<T>): Promise<T> {
  const client = createClient({ url });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

const readyz = async (url: string) => (await (await fetch(`${url}/readyz`)).json()) as ReadyResponse;

describe('tokens on a real Redis', () => {
  let redis: RedisServerHandle;
  let gw: TestGateway;
  beforeAll(async () => {
    redis = await startRedisServer();
    gw = await startTestGateway({ REDIS_URL: redis.url, REDIS_KEY_PREFIX: 'tenant-a' });
    await waitFor('redis connected', async () => (await readyz(gw.url)).redis === 'connected' || undefined);
  });
  afterAll(async () => {
    await gw.close();
    await redis.stop();
  });

  it('stores rtc:token:{<user tag>}<jti> with a TTL of at most 60 s, deletes it on redemption and refuses reuse', async () => {
    const minted = await mintToken(gw.url, await devLogin(gw.url, 'alice'), 'lobby');
    expect(minted.jti).toBe((jwt.decode(minted.token) as { jti: string }).jti);
    const key = tokenKey(minted, 'tenant-a:');
    const ttl = await withRedis(redis.url, (c) => c.ttl(key));
    expect(ttl).toBeGreaterThanOrEqual(1);
    expect(ttl).toBeLessThanOrEqual(60);
    expect(await readyz(gw.url)).toMatchObject({ status: 'ready', redis: 'connected', tokenStore: 'redis' });

    const client = await connectWithToken(gw.url, minted.token);
    expect(await withRedis(redis.url, (c) => c.exists(key))).toBe(0);
    client.close();
    await expect(connectWithToken(gw.url, minted.token)).rejects.toThrow('token_used');
  });

  it('shares the mint rate limit through Redis under ratelimit:*', async () => {
    const keys = await withRedis(redis.url, (c) => c.keys('tenant-a:ratelimit:*'));
    expect(keys).toContain(redisKeys('tenant-a:').mintWindow('alice'));
  });
});

describe('Redis with a password', () => {
  it('authenticates with the password in REDIS_URL, and never logs it', async () => {
    const redis = await startRedisServer({ password: 'p@ss word/with:odd chars' });
    const gateway = await startGatewayProcess({ env: { REDIS_URL: redis.url, LOG_LEVEL: 'debug' } });
    try {
      await waitFor('redis connected', async () => (await readyz(gateway.url)).redis === 'connected' || undefined);
      const minted = await mintToken(gateway.url, await devLogin(gateway.url, 'secure'), 'vault');
      expect(await withRedis(redis.url, (c) => c.exists(tokenKey(minted)))).toBe(1);
      expect(gateway.output()).not.toContain('p@ss');
      expect(gateway.output()).not.toContain(encodeURIComponent('p@ss word/with:odd chars'));
      // The ws add-ons loaded from their prebuilt binaries (npm 11 runs no install scripts).
      expect(gateway.output()).toContain('"wsNative":{"bufferutil":true,"utf8Validate":true}');
    } finally {
      await gateway.stop('SIGKILL');
      await redis.stop();
    }
  });
});

describe('Redis outages', () => {
  let redis: RedisServerHandle | undefined;
  let gateway: GatewayProcess | undefined;
  afterEach(async () => {
    await gateway?.stop('SIGKILL');
    await redis?.stop();
  });

  it('starts with Redis down, serves from memory at once, then moves the outage tokens into Redis', async () => {
    redis = await startRedisServer({ port: await freePort(), deferStart: true });
    gateway = await startGatewayProcess({ env: { REDIS_URL: redis.url, LOG_LEVEL: 'info' } });
    const url = gateway.url;
    expect(await readyz(url)).toMatchObject({ status: 'degraded', redis: 'disconnected', tokenStore: 'memory' });

    const access = await devLogin(url, 'early-bird');
    const started = Date.now();
    const minted = await mintToken(url, access, 'lobby');
    // Not a performance goal: a request that waited on a down Redis would take seconds.
    expect(Date.now() - started).toBeLessThan(1_000);

    await redis.start();
    await waitFor('readyz connected', async () => (await readyz(url)).redis === 'connected' || undefined, {
      timeoutMs: 10_000,
    });
    expect(await readyz(url)).toMatchObject({ status: 'ready', tokenStore: 'redis' });
    const key = tokenKey(minted);
    const ttl = await waitFor('outage token replayed', async () => {
      const value = await withRedis(redis?.url ?? '', (c) => c.ttl(key));
      return value > 0 ? value : undefined;
    });
    expect(ttl).toBeLessThanOrEqual(60);
    // The replayed token is still good for exactly one connection.
    const client = await connectWithToken(url, minted.token);
    client.close();
    await expect(connectWithToken(url, minted.token)).rejects.toThrow('token_used');
  });

  it('keeps minting through Redis being killed and restarted, without a failure, hang or crash', async () => {
    redis = await startRedisServer();
    gateway = await startGatewayProcess({
      env: { REDIS_URL: redis.url, LOG_LEVEL: 'info', MINT_RATE_PER_MINUTE: '100000' },
    });
    const url = gateway.url;
    await waitFor('redis connected', async () => (await readyz(url)).redis === 'connected' || undefined);
    const access = await devLogin(url, 'loop');

    const statuses = new Map<number | string, number>();
    let running = true;
    const loop = async () => {
      while (running) {
        try {
          const response = await postJson(
            `${url}/api/rtc/tokens`,
            { room: 'loop' },
            { authorization: `Bearer ${access}` },
          );
          statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
        } catch (error) {
          statuses.set(String(error), (statuses.get(String(error)) ?? 0) + 1);
        }
      }
    };
    const loops = [loop(), loop(), loop()];
    await new Promise((resolve) => setTimeout(resolve, 700));
    await redis.kill();
    await waitFor('degraded', async () => (await readyz(url)).tokenStore === 'memory' || undefined);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    await redis.start();
    await waitFor('reconnected', async () => (await readyz(url)).redis === 'connected' || undefined, {
      timeoutMs: 10_000,
    });
    await new Promise((resolve) => setTimeout(resolve, 500));
    running = false;
    await Promise.all(loops);

    expect([...statuses.keys()]).toEqual([201]);
    expect(statuses.get(201)).toBeGreaterThan(50);
    expect(gateway.output()).not.toMatch(/unhandled/i);

    const minted = (await postJson(`${url}/api/rtc/tokens`, { room: 'after' }, { authorization: `Bearer ${access}` }))
      .body as MintTokenResponse;
    expect(await withRedis(redis.url, (c) => c.exists(tokenKey(minted)))).toBe(1);
    // Still alive and answering.
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
  });
});
