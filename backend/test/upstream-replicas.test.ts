import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UpstreamSessionResponse } from '@switchboard/contract';
import { accessToken, devLogin, postJson } from '../../support/client.js';
import { startFakeOpenAi, type FakeOpenAi } from '../../support/fake-openai.js';
import { startGatewayProcess, startReplicas, type GatewayProcess } from '../../support/gateway-process.js';
import { waitFor } from '../../support/ports.js';
import { startRedisServer, type RedisServerHandle } from '../../support/redis-server.js';

const API_KEY = 'sk-test-replicas-abcdefghijklmnopqrstuvwxyz0123';

const ask = (url: string, access: string) =>
  postJson(`${url}/api/rtc/upstream/openai`, { room: 'standup' }, { authorization: `Bearer ${access}` });
const forget = (url: string, access: string, id: string) =>
  fetch(`${url}/api/rtc/upstream/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${access}` } });

describe('upstream voice sessions across two replicas on one Redis', () => {
  let redis: RedisServerHandle;
  let provider: FakeOpenAi;
  let a: GatewayProcess;
  let b: GatewayProcess;
  let inspector: ReturnType<typeof createClient>;

  beforeAll(async () => {
    redis = await startRedisServer();
    provider = await startFakeOpenAi(API_KEY);
    const env = {
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: 'voice',
      OPENAI_API_KEY: API_KEY,
      OPENAI_BASE_URL: provider.baseUrl,
      UPSTREAM_SESSIONS_PER_USER: '2',
      LOG_LEVEL: 'debug',
    };
    [a, b] = await startReplicas(env, ['voice-a', 'voice-b']);
    inspector = createClient({ url: redis.url });
    inspector.on('error', () => undefined);
    await inspector.connect();
  });
  afterAll(async () => {
    await inspector.quit();
    await Promise.all([a.stop(), b.stop()]);
    await provider.close();
    await redis.stop();
  });

  it('refuses a user at the limit on the other replica too, and a DELETE on either frees a slot everywhere', async () => {
    const access = await devLogin(a.url, 'two-replica-user');
    const first = await ask(a.url, access);
    const second = await ask(b.url, access);
    expect([first.status, second.status]).toEqual([201, 201]);
    for (const url of [a.url, b.url]) {
      const refused = await ask(url, access);
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    }

    expect((await forget(b.url, access, (first.body as UpstreamSessionResponse).id)).status).toBe(204);
    expect((await ask(a.url, access)).status).toBe(201);
    expect((await ask(b.url, access)).status).toBe(429);
    // A service may forget anyone's record, through any replica.
    const service = accessToken({ sub: 'voice-backend', scope: 'revoke' });
    expect((await forget(a.url, service, (second.body as UpstreamSessionResponse).id)).status).toBe(204);
    expect((await ask(b.url, access)).status).toBe(201);
  });

  it("keeps each record in Redis exactly as long as the provider's expires_at says, then gives the slot back", async () => {
    // The provider answers a shorter life than the 60 s asked for; its answer decides.
    provider.behave({ kind: 'ok', expiresInSeconds: 2 });
    const access = await devLogin(a.url, 'short-lived-user');
    const minted = [(await ask(a.url, access)).body, (await ask(b.url, access)).body] as UpstreamSessionResponse[];
    expect((await ask(a.url, access)).status).toBe(429);

    const [tag, key] = (minted[0]?.id ?? '').split('.');
    const recordKey = `voice:rtc:upstream:{${tag}}.${key}`;
    const ttl = await inspector.pTTL(recordKey);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(2_000);
    const stored = (await inspector.get(recordKey)) ?? '';
    expect(JSON.parse(stored)).toMatchObject({ owner: 'short-lived-user', room: 'standup', model: 'gpt-realtime' });
    expect(stored).not.toContain(minted[0]?.value);

    provider.behave({ kind: 'ok' });
    const freed = await waitFor('an expired secret to free a slot', async () => {
      const response = await ask(b.url, access);
      return response.status === 201 ? response : undefined;
    });
    expect(freed.status).toBe(201);
    expect(await inspector.exists(recordKey)).toBe(0);
  });

  it('logged neither the API key nor any minted secret on either replica', () => {
    expect(provider.minted.length).toBeGreaterThan(4);
    for (const gateway of [a, b]) {
      const output = gateway.output();
      expect(output).toContain('client secret minted');
      expect(output).not.toContain(API_KEY);
      for (const value of provider.minted) expect(output).not.toContain(value);
    }
  });
});

describe('upstream voice sessions through a Redis outage', () => {
  it('mints from memory while Redis is down, with the limit held on the replica, then moves the records into Redis', async () => {
    const redis = await startRedisServer({ deferStart: true });
    const provider = await startFakeOpenAi(API_KEY);
    const gateway = await startGatewayProcess({
      env: { REDIS_URL: redis.url, OPENAI_API_KEY: API_KEY, OPENAI_BASE_URL: provider.baseUrl },
    });
    try {
      const access = await devLogin(gateway.url, 'outage-user');
      const minted = [(await ask(gateway.url, access)).body, (await ask(gateway.url, access)).body];
      expect(minted.map((body) => (body as UpstreamSessionResponse).model)).toEqual(['gpt-realtime', 'gpt-realtime']);
      expect((await ask(gateway.url, access)).status).toBe(429);

      await redis.start();
      const inspector = createClient({ url: redis.url });
      inspector.on('error', () => undefined);
      await inspector.connect();
      try {
        for (const body of minted) {
          const [tag, key] = (body as UpstreamSessionResponse).id.split('.');
          const ttl = await waitFor('an outage record replayed into redis', async () => {
            const value = await inspector.pTTL(`rtc:upstream:{${tag}}.${key}`);
            return value > 0 ? value : undefined;
          });
          expect(ttl).toBeLessThanOrEqual(60_000);
        }
        // Redis now holds both slots, so the limit holds there too.
        expect((await ask(gateway.url, access)).status).toBe(429);
      } finally {
        await inspector.quit();
      }
    } finally {
      await gateway.stop();
      await provider.close();
      await redis.stop();
    }
  });
});
