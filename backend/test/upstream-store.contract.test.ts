import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RedisConnection } from '../src/redis/connection.js';
import { newUpstreamId } from '../src/upstream/ids.js';
import { createMemoryUpstreamStore } from '../src/upstream/memory-store.js';
import { createRedisUpstreamStore } from '../src/upstream/redis-store.js';
import type { ReserveLimits, UpstreamRecord, UpstreamStore } from '../src/upstream/store.js';
import { startConnectedRedis, type ConnectedRedis } from '../../support/redis-connection.js';

let connected: ConnectedRedis;
let redis: RedisConnection;
let inspector: ReturnType<typeof createClient>;
const memory = createMemoryUpstreamStore({ cap: 1_000 });

beforeAll(async () => {
  connected = await startConnectedRedis();
  redis = connected.redis;
  inspector = createClient({ url: connected.server.url });
  inspector.on('error', () => undefined);
  await inspector.connect();
});
afterAll(async () => {
  memory.close();
  await inspector.quit();
  await connected.stop();
});

let n = 0;
const user = () => `user-${process.pid}-${n++}`;
const record = (id: string, owner: string, ttlMs = 60_000): UpstreamRecord => ({
  id,
  owner,
  room: 'lobby',
  provider: 'openai',
  model: 'gpt-realtime',
  voice: 'marin',
  expiresAt: Date.now() + ttlMs,
});
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Two live slots, and a rate high enough to stay out of the way unless a test lowers it. */
const limits = (live = 2, perWindow = 1_000, windowMs = 60_000): ReserveLimits => ({ live, perWindow, windowMs });

/** Reserves and commits one secret for `owner`; returns its id. */
async function mint(store: UpstreamStore, owner: string, ttlMs = 60_000, within = limits()): Promise<string> {
  const id = newUpstreamId(owner);
  expect(await store.reserve(id, Date.now() + ttlMs, within)).toEqual({ ok: true });
  await store.commit(record(id, owner, ttlMs));
  return id;
}

// One suite, every driver: the fallback must count like the real thing.
describe.each([
  ['memory', () => memory as UpstreamStore],
  ['redis', () => createRedisUpstreamStore(redis, 'contract:')],
])('%s upstream store', (_kind, store) => {
  it('holds at most `max` live slots per owner, says when one frees, and leaves other owners alone', async () => {
    const alice = user();
    await mint(store(), alice, 60_000);
    await mint(store(), alice, 30_000);
    const refused = await store().reserve(newUpstreamId(alice), Date.now() + 60_000, limits());
    expect(refused.ok).toBe(false);
    if (!refused.ok) {
      // The earliest slot frees in ~30 s.
      expect(refused.retryAfterMs).toBeGreaterThan(25_000);
      expect(refused.retryAfterMs).toBeLessThanOrEqual(30_000);
      expect(refused.limit).toBe('live');
    }
    await mint(store(), user());
  });

  it('lets exactly `max` of many concurrent reservations win', async () => {
    const owner = user();
    const outcomes = await Promise.all(
      Array.from({ length: 20 }, () => store().reserve(newUpstreamId(owner), Date.now() + 60_000, limits())),
    );
    expect(outcomes.filter((outcome) => outcome.ok)).toHaveLength(2);
  });

  it('frees a slot when its record expires, when it is removed, and when a reservation is released', async () => {
    const owner = user();
    const short = await mint(store(), owner, 200);
    const removable = await mint(store(), owner);
    expect((await store().reserve(newUpstreamId(owner), Date.now() + 60_000, limits())).ok).toBe(false);

    await sleep(300);
    expect(await store().get(short)).toBeUndefined();
    const reserved = newUpstreamId(owner);
    expect(await store().reserve(reserved, Date.now() + 60_000, limits())).toEqual({ ok: true });
    await store().release(reserved);

    expect(await store().remove(removable)).toBe(true);
    expect(await store().remove(removable)).toBe(false);
    expect(await store().get(removable)).toBeUndefined();
    await mint(store(), owner);
    await mint(store(), owner);
  });

  it('counts every reservation in the window, removed, released or expired, and says when the oldest leaves it', async () => {
    const owner = user();
    const rate = limits(2, 3, 60_000);
    const removed = await mint(store(), owner, 60_000, rate);
    expect(await store().remove(removed)).toBe(true);
    const released = newUpstreamId(owner);
    expect(await store().reserve(released, Date.now() + 60_000, rate)).toEqual({ ok: true });
    await store().release(released);
    await mint(store(), owner, 100, rate);
    await sleep(150);
    // No live slot is held any more, yet three reservations fall in the minute.
    const refused = await store().reserve(newUpstreamId(owner), Date.now() + 60_000, rate);
    expect(refused).toMatchObject({ ok: false, limit: 'rate' });
    if (!refused.ok) {
      expect(refused.retryAfterMs).toBeGreaterThan(55_000);
      expect(refused.retryAfterMs).toBeLessThanOrEqual(60_000);
    }
    await mint(store(), user(), 60_000, rate);
  });

  it('gives the rate back as reservations leave the window, and lets exactly the allowance of concurrent ones win', async () => {
    const owner = user();
    const rate = limits(100, 3, 400);
    const outcomes = await Promise.all(
      Array.from({ length: 20 }, () => store().reserve(newUpstreamId(owner), Date.now() + 60_000, rate)),
    );
    expect(outcomes.filter((outcome) => outcome.ok)).toHaveLength(3);
    await sleep(450);
    expect((await store().reserve(newUpstreamId(owner), Date.now() + 60_000, rate)).ok).toBe(true);
  });

  it('answers the longer wait when both limits refuse', async () => {
    const owner = user();
    const both = limits(1, 1, 10_000);
    await mint(store(), owner, 60_000, both);
    const refused = await store().reserve(newUpstreamId(owner), Date.now() + 60_000, both);
    expect(refused).toMatchObject({ ok: false, limit: 'live' });
    if (!refused.ok) expect(refused.retryAfterMs).toBeGreaterThan(55_000);
  });

  it('gives back the record it stored, without its secret', async () => {
    const owner = user();
    const id = await mint(store(), owner);
    expect(await store().get(id)).toEqual({ ...record(id, owner), expiresAt: expect.any(Number) as number });
    expect(await store().get(newUpstreamId(owner))).toBeUndefined();
  });
});

describe('redis upstream store keys', () => {
  it('keeps each record exactly as long as its secret lives, under the prefix and one hash tag per owner', async () => {
    const store = createRedisUpstreamStore(redis, 'tenant-a:');
    const owner = user();
    const id = await mint(store, owner, 5_000);
    const [tag, key] = id.split('.');
    const recordKey = `tenant-a:rtc:upstream:{${tag}}.${key}`;
    const slotsKey = `tenant-a:rtc:upstream:user:{${tag}}`;
    const ttl = await inspector.pTTL(recordKey);
    expect(ttl).toBeGreaterThan(4_000);
    expect(ttl).toBeLessThanOrEqual(5_000);
    expect(await inspector.pTTL(slotsKey)).toBeLessThanOrEqual(5_000);
    expect(await inspector.zRange(slotsKey, 0, -1)).toEqual([id]);
    expect(JSON.parse((await inspector.get(recordKey)) ?? '')).toMatchObject({ owner, model: 'gpt-realtime' });
    // Both keys of an owner hash to one Cluster slot through `{<tag>}`.
    expect(recordKey.match(/\{[^}]+\}/)?.[0]).toBe(slotsKey.match(/\{[^}]+\}/)?.[0]);
    // The rate window: one reservation, forgotten with the window.
    const mintsKey = `tenant-a:rtc:upstream:mints:{${tag}}`;
    expect(await inspector.zRange(mintsKey, 0, -1)).toEqual([id]);
    expect(await inspector.pTTL(mintsKey)).toBeGreaterThan(55_000);
    expect(await inspector.pTTL(mintsKey)).toBeLessThanOrEqual(60_000);
  });
});
