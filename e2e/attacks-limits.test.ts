import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HttpErrorResponse, ReadyResponse, UpstreamSessionResponse } from '@switchboard/contract';
import { devLogin, postJson } from '../support/client.js';
import { startFakeOpenAi, type FakeOpenAi } from '../support/fake-openai.js';
import { startGatewayProcess, type GatewayProcess } from '../support/gateway-process.js';
import { waitFor } from '../support/ports.js';
import { startRedisServer, type RedisServerHandle } from '../support/redis-server.js';

// Attacks on the abuse limits of the deployment, each against real processes: it
// succeeded before the limit existed, and must be refused now.

const API_KEY = 'sk-test-attacks-abcdefghijklmnopqrstuvwxyz0123';

async function untilRedis(gateway: GatewayProcess): Promise<void> {
  await waitFor(`${gateway.replica} on redis`, async () => {
    const ready = (await (await fetch(`${gateway.url}/readyz`)).json()) as ReadyResponse;
    return ready.redis === 'connected' || undefined;
  });
}

describe('attack: mint → DELETE → mint loops on the AI-voice route, across two replicas', () => {
  let redis: RedisServerHandle;
  let provider: FakeOpenAi;
  let a: GatewayProcess;
  let b: GatewayProcess;

  beforeAll(async () => {
    redis = await startRedisServer();
    provider = await startFakeOpenAi(API_KEY);
    // UPSTREAM_MINTS_PER_MINUTE is left at its default (10): the attack meets what ships.
    const env = { REDIS_URL: redis.url, OPENAI_API_KEY: API_KEY, OPENAI_BASE_URL: provider.baseUrl };
    [a, b] = await Promise.all([
      startGatewayProcess({ env, replica: 'attack-a' }),
      startGatewayProcess({ env, replica: 'attack-b' }),
    ]);
    await Promise.all([untilRedis(a), untilRedis(b)]);
  });
  afterAll(async () => {
    await Promise.all([a.stop(), b.stop()]);
    await provider.close();
    await redis.stop();
  });

  const mint = (url: string, access: string) =>
    postJson(`${url}/api/rtc/upstream/openai`, {}, { authorization: `Bearer ${access}` });
  const forget = (url: string, access: string, id: string) =>
    fetch(`${url}/api/rtc/upstream/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${access}` } });

  /** Mints on `here` and deletes on `there` as fast as it can; returns the mint statuses and refusals. */
  async function loop(here: string, there: string, access: string, rounds: number) {
    const statuses: number[] = [];
    const refusals: Array<{ retryAfter: number; body: HttpErrorResponse }> = [];
    for (let round = 0; round < rounds; round++) {
      const minted = await mint(here, access);
      statuses.push(minted.status);
      if (minted.status === 201) {
        expect((await forget(there, access, (minted.body as UpstreamSessionResponse).id)).status).toBe(204);
      } else {
        refusals.push({
          retryAfter: Number(minted.headers.get('retry-after')),
          body: minted.body as HttpErrorResponse,
        });
      }
    }
    return { statuses, refusals };
  }

  it('stops at UPSTREAM_MINTS_PER_MINUTE provider secrets per user, whichever replica is asked', async () => {
    const access = await devLogin(a.url, 'voice-attacker');
    const callsBefore = provider.calls.length;
    // Two loops at once, one per replica, each deleting through the other: every secret
    // is live only for a moment, so the live-session cap never stops them.
    const [fromA, fromB] = await Promise.all([loop(a.url, b.url, access, 15), loop(b.url, a.url, access, 15)]);
    const statuses = [...fromA.statuses, ...fromB.statuses];
    expect(statuses.filter((status) => status === 201)).toHaveLength(10);
    expect(statuses.filter((status) => status === 429)).toHaveLength(20);
    // The operator's key paid for exactly ten secrets.
    expect(provider.calls.length - callsBefore).toBe(10);
    for (const { retryAfter, body } of [...fromA.refusals, ...fromB.refusals]) {
      expect(body.error.code).toBe('rate_limited');
      expect(body.error.message).toMatch(/per minute/);
      expect(retryAfter).toBeGreaterThan(0);
      expect(retryAfter).toBeLessThanOrEqual(60);
    }

    // Still refused on both replicas; another user is not affected.
    for (const url of [a.url, b.url]) expect((await mint(url, access)).status).toBe(429);
    const bystander = await devLogin(b.url, 'voice-bystander');
    expect((await mint(a.url, bystander)).status).toBe(201);
  });
});
