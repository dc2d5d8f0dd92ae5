import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisHistory } from '../src/history/redis.js';
import { createMetrics } from '../src/observability/metrics.js';
import { createRedisConnection, RedisUnavailableError, type RedisConnection } from '../src/redis/connection.js';
import { LateWriteError } from '../src/redis/late.js';
import { createRedisTokenStore } from '../src/tokens/redis-store.js';
import { waitFor } from '../../support/ports.js';
import { startRedisServer, type RedisServerHandle } from '../../support/redis-server.js';
import { startFreezableProxy, type FreezableProxy } from '../../support/tcp-proxy.js';

/**
 * Late commands against a real redis-server: guarded scripts refuse after their deadline
 * (judged by Redis TIME) and change nothing, a history behind what was delivered moves to
 * a new epoch, and a silent link opens the circuit and closes it again. The partition
 * suite does the same end to end with nftables; this one needs no root (the link goes
 * silent through a proxy that stops forwarding).
 */
describe('late commands and the circuit', () => {
  let server: RedisServerHandle;
  let proxy: FreezableProxy;
  let redis: RedisConnection;
  const logger = pino({ level: 'silent' });

  beforeAll(async () => {
    server = await startRedisServer();
    proxy = await startFreezableProxy({ port: server.port });
    redis = createRedisConnection({
      topology: { kind: 'standalone', url: `redis://127.0.0.1:${proxy.port}` },
      logger,
      metrics: createMetrics(),
      unresponsiveAfterMs: 300,
    });
    await waitFor(
      'redis ready with a measured clock',
      () => (redis.isReady() && redis.applyDeadline() > 0) || undefined,
    );
  });
  afterAll(async () => {
    proxy?.thaw();
    await redis?.close();
    await proxy?.close();
    await server?.stop();
  });

  /** The same connection, but every guarded write carries a deadline long past. */
  const late = (): RedisConnection => ({ ...redis, applyDeadline: () => 1 });

  it('refuses an append that arrives after its deadline, and the history is as it was', async () => {
    const settings = { keyPrefix: 'late:', sharded: false, size: 10, maxBytes: 65_536, ttlSeconds: 60 };
    const history = createRedisHistory(redis, settings);
    const event = { id: 'e1', type: 't', data: {}, from: 'x', ts: 1 };
    const first = await history.append('room', event);
    await expect(createRedisHistory(late(), settings).append('room', { ...event, id: 'ghost' })).rejects.toBeInstanceOf(
      LateWriteError,
    );
    const page = await history.read('room', { after: 0, limit: 10 });
    expect(page).toMatchObject({ epoch: first.epoch, top: 1 });
    expect(page.events.map((e) => e.id)).toEqual(['e1']);
  });

  it('refuses a late mint and a late redemption: the token is neither written nor consumed', async () => {
    const tokens = createRedisTokenStore(redis, 'late:');
    const limit = { max: 100, windowMs: 60_000 };
    const record = (jti: string) => ({
      jti,
      sub: 'user',
      room: 'room',
      issuedAt: Math.floor(Date.now() / 1000),
      expiresAt: Date.now() + 60_000,
    });
    await expect(createRedisTokenStore(late(), 'late:').mint(record('abcdefgh-never'), limit)).rejects.toBeInstanceOf(
      LateWriteError,
    );
    expect(await tokens.redeem(record('abcdefgh-never'))).toBe('unknown');
    await tokens.mint(record('abcdefgh-live'), limit);
    await expect(createRedisTokenStore(late(), 'late:').redeem(record('abcdefgh-live'))).rejects.toBeInstanceOf(
      LateWriteError,
    );
    expect(await tokens.redeem(record('abcdefgh-live'))).toBe('redeemed');
    // Consumed by that one redemption (the key is gone: a second finds nothing to redeem).
    expect(await tokens.redeem(record('abcdefgh-live'))).toBe('unknown');
  });

  it('numbers in a new epoch when the history is behind what the caller delivered; a restart renames once', async () => {
    const history = createRedisHistory(redis, {
      keyPrefix: 'regress:',
      sharded: false,
      size: 10,
      maxBytes: 65_536,
      ttlSeconds: 60,
    });
    const event = (id: string) => ({ id, type: 't', data: {}, from: 'x', ts: 1 });
    const one = await history.append('room', event('a'));
    // This replica delivered up to seq 5 of that epoch: the history lost four events.
    const next = await history.append('room', event('b'), { epoch: one.epoch, seq: 5 });
    expect(next.epoch).not.toBe(one.epoch);
    expect(next.seq).toBe(2);
    const page = await history.read('room', { after: 0, limit: 10 });
    expect(page.events.map((e) => [e.seq, e.id])).toEqual([
      [1, 'a'],
      [2, 'b'],
    ]);
    // A replica that saw it on the channel asks for a restart of the old epoch: already done.
    expect(await history.restart('room', one.epoch)).toBe(next.epoch);
    const renamed = await history.restart('room', next.epoch);
    expect(renamed).not.toBe(next.epoch);
    expect(await history.restart('room', next.epoch)).toBe(renamed);
  });

  it('a silent link makes Redis unresponsive, commands fail at once, and the first answered probe closes the circuit', async () => {
    let readyEvents = 0;
    const off = redis.onReady(() => readyEvents++);
    proxy.freeze();
    const frozenAt = Date.now();
    await waitFor('unresponsive', () => redis.isUnresponsive() || undefined, { timeoutMs: 3_000, intervalMs: 10 });
    expect(Date.now() - frozenAt).toBeLessThan(300 + 1_000);
    expect(redis.isDown()).toBe(true);
    const started = performance.now();
    await expect(redis.run('get', (c) => c.get('x'))).rejects.toBeInstanceOf(RedisUnavailableError);
    // Not the 500 ms command deadline: nothing was sent.
    expect(performance.now() - started).toBeLessThan(250);
    proxy.thaw();
    await waitFor('responsive again', () => (!redis.isUnresponsive() && redis.isReady()) || undefined);
    expect(readyEvents).toBe(1);
    expect(await redis.run('get', (c) => c.get('x'))).toBeNull();
    off();
  });
});
