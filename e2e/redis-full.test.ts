import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Ack, HistoryResponse, PeerInfo, PublishEventResponse } from '@switchboard/contract';
import {
  accessToken,
  connectWithToken,
  devLogin,
  joinRoom,
  mintToken,
  postJson,
  type ConnectedClient,
} from '../support/client.js';
import { startReplicas, type GatewayProcess } from '../support/gateway-process.js';
import { waitFor } from '../support/ports.js';
import { startRedisServer, type RedisServerHandle } from '../support/redis-server.js';

// What docs/deploy.md ("When Redis is full") promises, against a real redis-server run
// the way compose and the dev overlay run it: a small maxmemory and volatile-lru.

const MAXMEMORY = 8 * 1024 * 1024;

const peersOf = (client: ConnectedClient) =>
  new Promise<Ack<{ peers: PeerInfo[] }>>((resolve) => client.socket.emit('peers', {}, resolve));
const publish = (client: ConnectedClient, data: number) =>
  new Promise<Ack<PublishEventResponse>>((resolve) => client.socket.emit('publish', { type: 'n', data }, resolve));
const history = (client: ConnectedClient) =>
  new Promise<Ack<HistoryResponse>>((resolve) => client.socket.emit('history', {}, resolve));

describe('a full Redis with maxmemory and volatile-lru, under two gateways', () => {
  let redis: RedisServerHandle;
  let a: GatewayProcess;
  let b: GatewayProcess;
  let inspector: ReturnType<typeof createClient>;
  let alice: ConnectedClient;

  const usedMemory = async () => Number(/used_memory:(\d+)/.exec(await inspector.info('memory'))?.[1]);

  beforeAll(async () => {
    redis = await startRedisServer({
      args: () => ['--maxmemory', String(MAXMEMORY), '--maxmemory-policy', 'volatile-lru'],
    });
    const env = { REDIS_URL: redis.url, LOG_LEVEL: 'warn', MINT_RATE_PER_MINUTE: '2' };
    [a, b] = await startReplicas(env, ['full-a', 'full-b']);
    inspector = createClient({ url: redis.url });
    inspector.on('error', () => undefined);
    await inspector.connect();
    alice = await joinRoom(a.url, 'alice', 'ward-7');
    expect((await publish(alice, 1)).ok).toBe(true);

    // What fills a real Redis: other rooms' history, which expires on its own. Three
    // times what fits, so Redis must have evicted to take the last of it.
    const chunk = 'x'.repeat(64 * 1024);
    for (let i = 0; i < (3 * MAXMEMORY) / chunk.length; i++) {
      await inspector.set(`history:{idle-${i}}:log`, chunk, { PX: 600_000 });
    }
  });
  afterAll(async () => {
    alice.close();
    await inspector.quit();
    await Promise.all([a.stop(), b.stop()]);
    await redis.stop();
  });

  it('stays within maxmemory by evicting keys that expire anyway', async () => {
    const info = await inspector.info('stats');
    expect(Number(/evicted_keys:(\d+)/.exec(info)?.[1])).toBeGreaterThan(0);
    // Allocator granularity and the clients' own buffers may sit a little above it.
    expect(await usedMemory()).toBeLessThan(MAXMEMORY * 1.25);
  });

  it('keeps presence, which has no TTL: a newcomer on the other replica sees who was there', async () => {
    const bob = await joinRoom(b.url, 'bob', 'ward-7');
    try {
      const peers = await peersOf(bob);
      expect(peers.ok && peers.peers.map((peer) => peer.userId).sort()).toEqual(['alice', 'bob']);
    } finally {
      bob.close();
    }
  });

  it('goes on minting, redeeming across replicas, publishing and keeping history', async () => {
    const carol = await joinRoom(a.url, 'carol', 'ward-7');
    const dave = await connectWithToken(b.url, (await mintToken(a.url, await devLogin(a.url, 'dave'), 'ward-7')).token);
    try {
      const sent = await publish(carol, 2);
      expect(sent.ok).toBe(true);
      await waitFor('the event on the other replica', () => Promise.resolve(dave.events.length > 0 || undefined));
      const page = await history(dave);
      expect(page.ok && page.events.map((event) => event.data)).toContain(2);
      expect(a.output() + b.output()).not.toMatch(/OOM command not allowed/);
    } finally {
      carol.close();
      dave.close();
    }
  });

  it('refuses a token whose key was evicted, and one whose revocation mark was: both fail closed', async () => {
    const access = await devLogin(a.url, 'erin');
    const evicted = await mintToken(a.url, access, 'ward-7');
    const revoked = await mintToken(a.url, access, 'ward-7');
    const revoke = await fetch(`${a.url}/api/rtc/tokens/${revoked.jti}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${access}` },
    });
    expect(revoke.status).toBe(204);
    // What eviction does to them: the keys are gone.
    const keys = await inspector.keys(`rtc:token:*`);
    for (const jti of [evicted.jti, revoked.jti]) {
      const key = keys.find((candidate) => candidate.endsWith(jti));
      expect(key).toBeDefined();
      await inspector.del(key ?? '');
    }
    for (const [token, url] of [
      [evicted.token, b.url],
      [revoked.token, a.url],
    ] as const) {
      await expect(connectWithToken(url, token)).rejects.toThrow(/token_used|token_revoked/);
    }
  });

  it('counts limits in keys with a TTL: an evicted count starts again, so eviction never refuses anyone', async () => {
    const access = await devLogin(a.url, 'frank');
    const mint = () => postJson(`${a.url}/api/rtc/tokens`, { room: 'ward-7' }, { authorization: `Bearer ${access}` });
    expect([(await mint()).status, (await mint()).status, (await mint()).status]).toEqual([201, 201, 429]);
    const [window] = await inspector.keys('ratelimit:mint:*frank');
    expect(await inspector.pTTL(window ?? '')).toBeGreaterThan(0);
    await inspector.del(window ?? '');
    expect((await mint()).status).toBe(201);
  });

  it('gives every key it writes a TTL, except the presence bookkeeping, which eviction therefore never takes', async () => {
    const kicker = accessToken({ sub: 'ward-backend', scope: 'kick' });
    const kicked = await fetch(`${a.url}/api/rooms/ward-7/members/frank`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${kicker}` },
    });
    expect(kicked.status).toBe(204);
    const keys = (await inspector.keys('*')).filter((key) => !key.startsWith('history:{idle-'));
    expect(keys.some((key) => key.startsWith('rtc:kick:'))).toBe(true);
    expect(keys.length).toBeGreaterThan(3);
    const persistent: string[] = [];
    for (const key of keys) if ((await inspector.pTTL(key)) === -1) persistent.push(key);
    expect(persistent.length).toBeGreaterThan(0);
    expect(persistent.filter((key) => !key.startsWith('presence:'))).toEqual([]);
  });
});
