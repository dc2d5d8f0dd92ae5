import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RedisConnection } from '../src/redis/connection.js';
import { createMemoryTokenStore } from '../src/tokens/memory-store.js';
import { createRedisTokenStore } from '../src/tokens/redis-store.js';
import { userSlotTag } from '../src/redis/keys.js';
import type { TokenStore } from '../src/tokens/store.js';
import { waitFor } from '../../support/ports.js';
import { startConnectedRedis, type ConnectedRedis } from '../../support/redis-connection.js';

let connected: ConnectedRedis;
let redis: RedisConnection;
const memory = createMemoryTokenStore({ cap: 1_000 });

beforeAll(async () => {
  connected = await startConnectedRedis();
  redis = connected.redis;
});
afterAll(async () => {
  memory.close();
  await connected.stop();
});

let n = 0;
/** A token of `sub`; jtis start with their owner's slot tag, as the codec mints them. */
const record = (ttlMs = 60_000, sub = `user-${process.pid}-${n++}`, room = 'lobby') => ({
  jti: `${userSlotTag(sub)}jti-${n++}`,
  sub,
  expiresAt: Date.now() + ttlMs,
  room,
  issuedAt: Math.floor(Date.now() / 1000),
});
const limit = (max = 100) => ({ max, windowMs: 60_000 });

// One suite, every driver: the fallback must behave like the real thing.
describe.each([
  ['memory', () => memory as TokenStore],
  ['redis', () => createRedisTokenStore(redis, 'contract:')],
])('%s token store', (_kind, store) => {
  it('redeems a minted token exactly once', async () => {
    const r = record();
    expect(await store().mint(r, limit())).toEqual({ ok: true });
    expect(await store().redeem(r)).toBe('redeemed');
    expect(await store().redeem(r)).not.toBe('redeemed');
  });

  it('lets exactly one of many concurrent redemptions win', async () => {
    const r = record();
    await store().mint(r, limit());
    const outcomes = await Promise.all(Array.from({ length: 20 }, () => store().redeem(r)));
    expect(outcomes.filter((o) => o === 'redeemed')).toHaveLength(1);
  });

  it('revokes a live token for its owner or a service only, and then refuses it as revoked', async () => {
    const r = record();
    await store().mint(r, limit());
    expect(await store().revoke(r.jti, { userId: 'mallory', service: false })).toBe(false);
    expect(await store().revoke(r.jti, { userId: r.sub, service: false })).toBe(true);
    expect(await store().revoke(r.jti, { userId: r.sub, service: false })).toBe(false);
    expect(await store().redeem(r)).toBe('revoked');
    expect(await store().redeem(r)).toBe('revoked');

    const s = record();
    await store().mint(s, limit());
    expect(await store().revoke(s.jti, { userId: 'a-backend', service: true })).toBe(true);
    const used = record();
    await store().mint(used, limit());
    await store().redeem(used);
    expect(await store().revoke(used.jti, { userId: used.sub, service: false })).toBe(false);
  });

  it('forgets tokens when their TTL runs out', async () => {
    const r = record(150);
    await store().mint(r, limit());
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await store().revoke(r.jti, { userId: r.sub, service: false })).toBe(false);
    expect(await store().redeem(r)).toBe('unknown');
  });

  it('counts mints against the limit and says when to retry', async () => {
    const l = limit(3);
    const sub = `limited-${n++}`;
    const outcomes = [];
    for (let i = 0; i < 5; i++) outcomes.push(await store().mint(record(60_000, sub), l));
    expect(outcomes.slice(0, 3)).toEqual([{ ok: true }, { ok: true }, { ok: true }]);
    for (const outcome of outcomes.slice(3)) {
      expect(outcome).toMatchObject({ ok: false, retryAfterMs: expect.any(Number) as number });
      if (!outcome.ok && 'retryAfterMs' in outcome) {
        expect(outcome.retryAfterMs).toBeGreaterThan(0);
        expect(outcome.retryAfterMs).toBeLessThanOrEqual(60_000);
      }
    }
  });

  it('refuses, after a kick, the tokens issued up to it for that user and room only', async () => {
    const sub = `kicked-${n++}`;
    const before = record(60_000, sub, 'consult-1');
    const otherRoom = record(60_000, sub, 'consult-2');
    await store().mint(before, limit());
    await store().mint(otherRoom, limit());
    await store().kick({ userId: sub, room: 'consult-1', at: Date.now(), expiresAt: Date.now() + 60_000 });
    expect(await store().redeem(before)).toBe('revoked');
    expect(await store().redeem(otherRoom)).toBe('redeemed');
    // Minted after the kick (a later second): the app let the user back in.
    const after = { ...record(60_000, sub, 'consult-1'), issuedAt: Math.floor(Date.now() / 1000) + 1 };
    await store().mint(after, limit());
    expect(await store().redeem(after)).toBe('redeemed');
  });
});

describe('memory token store bounds', () => {
  it('holds at most its cap and then refuses mints, never forgetting a used or revoked mark early', async () => {
    const small = createMemoryTokenStore({ cap: 100 });
    const l = { max: 1e9, windowMs: 60_000 };
    const first = record();
    await small.mint(first, l);
    expect(await small.redeem(first)).toBe('redeemed');
    const outcomes = [];
    for (let i = 0; i < 1_000; i++) outcomes.push(await small.mint(record(), l));
    expect(small.size).toBe(100);
    expect(outcomes.filter((o) => o.ok)).toHaveLength(99);
    expect(outcomes[outcomes.length - 1]).toEqual({ ok: false, full: true });
    // The used mark is still there: a second use is refused, not "unknown".
    expect(await small.redeem(first)).toBe('used');
    expect(small.markUsed(record())).toBe(false);
    small.close();
  });

  it('evicts expired entries on its own and reports them', async () => {
    let expired = 0;
    const store = createMemoryTokenStore({ cap: 100, sweepIntervalMs: 50, onExpired: (count) => (expired += count) });
    for (let i = 0; i < 10; i++) await store.mint(record(60), { max: 100, windowMs: 60_000 });
    await waitFor('sweep', () => store.size === 0 || undefined, { timeoutMs: 2_000 });
    expect(expired).toBe(10);
    store.close();
  });
});
