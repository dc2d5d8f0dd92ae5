import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics } from '../src/observability/metrics.js';
import { createRedisConnection, type RedisConnection } from '../src/redis/connection.js';
import { createMemoryTokenStore } from '../src/tokens/memory-store.js';
import { createRedisTokenStore } from '../src/tokens/redis-store.js';
import type { TokenStore } from '../src/tokens/store.js';
import { waitFor } from '../../support/ports.js';
import { startRedisServer, type RedisServerHandle } from '../../support/redis-server.js';

let redisServer: RedisServerHandle;
let redis: RedisConnection;
const memory = createMemoryTokenStore({ cap: 1_000 });

beforeAll(async () => {
  redisServer = await startRedisServer();
  redis = createRedisConnection({ url: redisServer.url, logger: pino({ level: 'silent' }), metrics: createMetrics() });
  await waitFor('redis ready', () => redis.isReady() || undefined);
});
afterAll(async () => {
  memory.close();
  await redis.close();
  await redisServer.stop();
});

let n = 0;
const record = (ttlMs = 60_000) => ({ jti: `jti-${process.pid}-${n++}`, sub: 'alice', expiresAt: Date.now() + ttlMs });
const limit = (max = 100) => ({ key: `mint:user-${n++}`, max, windowMs: 60_000 });

// One suite, every driver: the fallback must behave like the real thing.
describe.each([
  ['memory', () => memory as TokenStore],
  ['redis', () => createRedisTokenStore(redis, 'contract:')],
])('%s token store', (_kind, store) => {
  it('redeems a minted token exactly once', async () => {
    const r = record();
    expect(await store().mint(r, limit())).toEqual({ ok: true });
    expect(await store().redeem(r.jti)).toBe('redeemed');
    expect(await store().redeem(r.jti)).not.toBe('redeemed');
  });

  it('lets exactly one of many concurrent redemptions win', async () => {
    const r = record();
    await store().mint(r, limit());
    const outcomes = await Promise.all(Array.from({ length: 20 }, () => store().redeem(r.jti)));
    expect(outcomes.filter((o) => o === 'redeemed')).toHaveLength(1);
  });

  it('knows the owner of a live token and revokes it', async () => {
    const r = record();
    await store().mint(r, limit());
    expect(await store().owner(r.jti)).toBe('alice');
    expect(await store().revoke(r.jti)).toBe(true);
    expect(await store().revoke(r.jti)).toBe(false);
    expect(await store().owner(r.jti)).toBeUndefined();
    expect(await store().redeem(r.jti)).not.toBe('redeemed');
  });

  it('forgets tokens when their TTL runs out', async () => {
    const r = record(150);
    await store().mint(r, limit());
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await store().owner(r.jti)).toBeUndefined();
    expect(await store().redeem(r.jti)).not.toBe('redeemed');
  });

  it('counts mints against the limit and says when to retry', async () => {
    const l = limit(3);
    const outcomes = [];
    for (let i = 0; i < 5; i++) outcomes.push(await store().mint(record(), l));
    expect(outcomes.slice(0, 3)).toEqual([{ ok: true }, { ok: true }, { ok: true }]);
    for (const outcome of outcomes.slice(3)) {
      expect(outcome.ok).toBe(false);
      if (!outcome.ok) {
        expect(outcome.retryAfterMs).toBeGreaterThan(0);
        expect(outcome.retryAfterMs).toBeLessThanOrEqual(60_000);
      }
    }
  });
});

describe('memory token store bounds', () => {
  it('holds at most its cap, evicting the oldest entries instead of growing', async () => {
    const small = createMemoryTokenStore({ cap: 100 });
    const l = { key: 'mint:bulk', max: 1e9, windowMs: 60_000 };
    const first = record();
    await small.mint(first, l);
    for (let i = 0; i < 1_000; i++) await small.mint(record(), l);
    expect(small.size).toBe(100);
    expect(await small.owner(first.jti)).toBeUndefined();
    small.close();
  });

  it('evicts expired entries on its own and reports them', async () => {
    let expired = 0;
    const store = createMemoryTokenStore({ cap: 100, sweepIntervalMs: 50, onExpired: (count) => (expired += count) });
    for (let i = 0; i < 10; i++) await store.mint(record(60), { key: 'k', max: 100, windowMs: 60_000 });
    await waitFor('sweep', () => store.size === 0 || undefined, { timeoutMs: 2_000 });
    expect(expired).toBe(10);
    store.close();
  });
});
