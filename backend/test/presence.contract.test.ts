import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PeerInfo } from '@switchboard/contract';
import { createMetrics } from '../src/observability/metrics.js';
import { createMemoryPresence } from '../src/presence/memory.js';
import { createRedisPresence } from '../src/presence/redis.js';
import type { Presence, PresenceMessage } from '../src/presence/types.js';
import type { RedisConnection } from '../src/redis/connection.js';
import { waitFor } from '../../support/ports.js';
import { startConnectedRedis, type ConnectedRedis } from '../../support/redis-connection.js';

let connected: ConnectedRedis;
let redis: RedisConnection;
beforeAll(async () => {
  connected = await startConnectedRedis();
  redis = connected.redis;
});
afterAll(async () => {
  await connected.stop();
});

interface Heard {
  joined: string[];
  left: string[];
}

let prefix = 0;
type Factory = (heard: Heard) => Presence;
const listenerFor = (heard: Heard) => ({
  joined: (room: string, peer: PeerInfo) => heard.joined.push(`${room}/${peer.peerId}`),
  left: (room: string, peerId: string, reason: string) => heard.left.push(`${room}/${peerId}/${reason}`),
});
const peer = (peerId: string): PeerInfo => ({
  peerId,
  userId: `u-${peerId}`,
  name: peerId,
  replica: 'r1',
  joinedAt: 1,
});

// One suite, every driver.
describe.each<[string, () => Factory]>([
  ['memory', () => (heard) => createMemoryPresence(listenerFor(heard), 'r1')],
  [
    'redis',
    () => {
      const keyPrefix = `p${prefix++}:`;
      return (heard) =>
        createRedisPresence({
          redis,
          publish: () => undefined,
          onReplicaGone: () => Promise.resolve(),
          listener: listenerFor(heard),
          replica: 'r1',
          keyPrefix,
          ttlSeconds: 10,
          logger: pino({ level: 'silent' }),
          metrics: createMetrics(),
        });
    },
  ],
])('%s presence', (_kind, makeFactory) => {
  it('tracks joins and leaves, answering lookups and lists', async () => {
    const heard: Heard = { joined: [], left: [] };
    const presence = makeFactory()(heard);
    const join = async (p: PeerInfo) => {
      await presence.join('room', p);
      const others = presence.snapshot('room', p.peerId, Number.MAX_SAFE_INTEGER);
      presence.announce('room', p);
      return others;
    };
    expect(await join(peer('a'))).toEqual([]);
    expect(await join(peer('b'))).toEqual([peer('a')]);
    expect(presence.has('room', 'a')).toBe(true);
    expect(presence.has('other', 'a')).toBe(false);
    expect((await presence.list('room')).map((p) => p.peerId).sort()).toEqual(['a', 'b']);
    presence.leave('room', 'a', 'disconnect');
    expect(presence.has('room', 'a')).toBe(false);
    expect((await presence.list('room')).map((p) => p.peerId)).toEqual(['b']);
    expect(heard.joined).toEqual(['room/a', 'room/b']);
    expect(heard.left).toEqual(['room/a/disconnect']);
    await presence.close('server_shutdown');
    expect(heard.left).toEqual(['room/a/disconnect', 'room/b/server_shutdown']);
    await presence.close('server_shutdown');
  });
});

describe('redis presence across replicas', () => {
  it('shares rooms between replicas and reaps a replica that stops heartbeating', async () => {
    // The room's channel, as the realtime layer runs it: every other replica hears a message.
    const replicas = new Map<string, Presence>();
    const gone: string[] = [];
    const replica = (id: string, heard: Heard, ttlSeconds = 10) => {
      const presence = createRedisPresence({
        redis,
        publish: (_room, message: PresenceMessage) => {
          for (const [other, p] of replicas) if (other !== id) p.receive(message);
        },
        onReplicaGone: (dead, users) => {
          gone.push(`${dead}:${users.join(',')}`);
          return Promise.resolve();
        },
        listener: listenerFor(heard),
        replica: id,
        keyPrefix: 'cluster:',
        ttlSeconds,
        logger: pino({ level: 'silent' }),
        metrics: createMetrics(),
      });
      replicas.set(id, presence);
      return presence;
    };
    const heardOne: Heard = { joined: [], left: [] };
    const one = replica('one', heardOne, 1);
    // Two heartbeats every 20 s, so to one (TTL 1 s) it looks dead right after joining.
    const two = replica('two', { joined: [], left: [] }, 60);
    const p1 = { ...peer('p1'), replica: 'one' };
    const p2 = { ...peer('p2'), replica: 'two' };
    await one.join('shared', p1);
    one.announce('shared', p1);
    await two.join('shared', p2);
    const others = two.snapshot('shared', 'p2', Number.MAX_SAFE_INTEGER);
    two.announce('shared', p2);
    expect(others.map((p) => p.peerId)).toEqual(['p1']);
    expect(one.has('shared', 'p2')).toBe(true);
    expect(heardOne.joined).toEqual(['shared/p1', 'shared/p2']);

    await waitFor('reaped', () => (heardOne.left.includes('shared/p2/replica_lost') ? true : undefined), {
      timeoutMs: 5_000,
    });
    expect(one.has('shared', 'p2')).toBe(false);
    expect((await one.list('shared')).map((p) => p.peerId)).toEqual(['p1']);
    // Whoever reaped `two` also freed its users' connection counts.
    expect(gone).toContain('two:u-p2');
    await one.close('server_shutdown');
    await two.close('server_shutdown');
  });
});
