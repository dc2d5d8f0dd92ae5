import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryConnectionCap, type ConnectionCap } from '../src/realtime/connection-cap.js';
import { createRedisConnectionCap } from '../src/realtime/connection-cap-redis.js';
import { startConnectedRedis, type ConnectedRedis } from '../../support/redis-connection.js';

const LIMIT = 3;
let connected: ConnectedRedis;
const opened: ConnectionCap[] = [];
beforeAll(async () => {
  connected = await startConnectedRedis();
});
afterAll(async () => {
  for (const cap of opened) cap.close();
  await connected.stop();
});

const redisCap = (replica: string): ConnectionCap => {
  const cap = createRedisConnectionCap({
    limit: LIMIT,
    replica,
    redis: connected.redis,
    keyPrefix: 'cap-contract:',
    logger: pino({ level: 'silent' }),
  });
  opened.push(cap);
  return cap;
};

let n = 0;
const user = () => `cap-user-${process.pid}-${n++}`;

// One suite, every driver: memory mode's cap behaves like one replica's.
describe.each([
  ['memory', () => createMemoryConnectionCap({ limit: LIMIT })],
  ['redis', () => redisCap('one')],
])('%s connection cap', (_kind, make) => {
  it('counts up to the limit, refuses past it, and a release frees a place', async () => {
    const cap = make();
    const who = user();
    const outcomes = await Promise.all(Array.from({ length: LIMIT + 2 }, () => cap.acquire(who)));
    expect(outcomes.filter(Boolean)).toHaveLength(LIMIT);
    expect(await cap.acquire(user())).toBe(true);
    cap.release(who);
    expect(await cap.acquire(who)).toBe(true);
    expect(await cap.acquire(who)).toBe(false);
  });
});

describe('redis connection cap across replicas', () => {
  it('shares the limit between replicas, and forgets a gone replica’s sockets', async () => {
    const [a, b] = [redisCap('a'), redisCap('b')];
    const who = user();
    expect(await a.acquire(who)).toBe(true);
    expect(await a.acquire(who)).toBe(true);
    expect(await b.acquire(who)).toBe(true);
    expect(await b.acquire(who)).toBe(false);
    await b.forgetReplica('a', [who]);
    expect(await b.acquire(who)).toBe(true);
    expect(await b.acquire(who)).toBe(true);
    expect(await b.acquire(who)).toBe(false);
  });
});
