import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  connectWithToken,
  devLogin,
  joinRoom,
  mintToken,
  scrapeMetric,
  type ConnectedClient,
} from '../../support/client.js';
import { startGatewayProcess, type GatewayProcess } from '../../support/gateway-process.js';
import { createPartition, linksOf, nftUnusable, type Partition } from '../../support/partition.js';
import {
  arrived,
  logCount,
  percentile,
  sharedHistory,
  startPublisher,
  untilDelivered,
  untilReady,
  type Ack,
} from '../../support/partition-scenario.js';
import { startRedisServer, type RedisServerHandle } from '../../support/redis-server.js';

/**
 * Silent partitions between the gateways and a standalone Redis: packets dropped on
 * loopback with nftables, nothing reset (docs/architecture.md, "Partitions and late
 * commands"). Short timings keep the suite quick: Redis is judged unresponsive after
 * 1 s, and each partition lasts a few seconds.
 */
const UNRESPONSIVE_AFTER_MS = 1_000;
const PARTITION_MS = 4_000;

const unusable = await nftUnusable();
if (unusable) console.warn(`partition suite skipped: ${unusable}`);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const env = (redis: RedisServerHandle) => ({
  REDIS_URL: redis.url,
  REDIS_UNRESPONSIVE_AFTER_MS: String(UNRESPONSIVE_AFTER_MS),
  LOG_LEVEL: 'warn',
});

/** Every shared (not local) ack reached `member` exactly once, in the order the publisher got them. */
function expectEverySharedOnceInOrder(member: ConnectedClient, shared: Ack[]): void {
  expect(arrived(member.events, new Set(shared.map((ack) => ack.id)))).toEqual(shared.map((ack) => ack.id));
}

describe.skipIf(unusable !== undefined)(
  'partitions between the gateways and Redis (standalone)',
  { timeout: 60_000 },
  () => {
    let redis: RedisServerHandle;
    let partition: Partition;
    const processes: GatewayProcess[] = [];
    const clients: ConnectedClient[] = [];

    const replica = async (): Promise<GatewayProcess> => {
      const started = await startGatewayProcess({ env: env(redis) });
      processes.push(started);
      return started;
    };
    const member = async (gateway: GatewayProcess, user: string, room: string): Promise<ConnectedClient> => {
      const client = await joinRoom(gateway.url, user, room);
      clients.push(client);
      return client;
    };

    /**
     * Drops `links` of replica `a` until it says Redis is unresponsive (then runs `meanwhile`)
     * and for the rest of PARTITION_MS, heals, and waits until `a` is connected again.
     */
    const cutOff = async (
      a: GatewayProcess,
      links: Parameters<Partition['dropPairs']>[0],
      meanwhile?: () => Promise<void>,
    ): Promise<void> => {
      partition = await createPartition();
      await partition.dropPairs(links);
      await untilReady([a.url], 'A unresponsive', (r) => r.status === 'degraded' && r.redis === 'unresponsive');
      await meanwhile?.();
      await sleep(PARTITION_MS - UNRESPONSIVE_AFTER_MS);
      await partition.heal();
      await untilReady([a.url], 'A connected again', (r) => r.redis === 'connected');
      await sleep(1_000);
    };

    beforeAll(async () => {
      redis = await startRedisServer();
    });
    afterEach(async () => {
      await partition?.close();
      for (const client of clients.splice(0)) client.close();
      await Promise.all(processes.splice(0).map((p) => p.stop('SIGKILL')));
    });
    afterAll(async () => {
      await redis?.stop();
    });

    it('a blackhole between both replicas and Redis: no ghost, nothing lost, readiness tells the truth, tokens used once', async () => {
      const [a, b] = await Promise.all([replica(), replica()]);
      const room = 'blackhole';
      const onA = await member(a, 'member-a', room);
      const onB = await member(b, 'member-b', room);
      // A token minted before the blackhole (in Redis), redeemed during it.
      const alice = await devLogin(a.url, 'alice');
      const before = await mintToken(a.url, alice, 'tokens');

      const publisher = startPublisher(() => a.url, room);
      await sleep(1_000);
      partition = await createPartition();
      const cutAt = Date.now();
      await partition.dropPort(redis.port);
      await untilReady([a.url, b.url], 'both degraded and unresponsive', (r) => {
        return r.status === 'degraded' && r.redis === 'unresponsive';
      });
      const degradedAt = Date.now();
      const detectedMs = degradedAt - cutAt;
      expect(await scrapeMetric(a.url, 'switchboard_redis_up')).toBe(0);

      // While the circuit is open: redeem the old token, and mint and redeem a new one, on A.
      const during = await mintToken(a.url, alice, 'tokens');
      const usedBefore = await connectWithToken(a.url, before.token);
      const usedDuring = await connectWithToken(a.url, during.token);
      clients.push(usedBefore, usedDuring);
      // Both uses are recorded in A's memory, to be written to Redis when it answers again.
      expect(await scrapeMetric(a.url, 'switchboard_token_fallback_entries')).toBeGreaterThanOrEqual(2);
      await sleep(Math.max(0, PARTITION_MS - (Date.now() - cutAt)));
      // Sent after the circuit was seen open, answered before the link came back.
      const whileOpen = publisher.acks.filter((ack) => ack.at - ack.ms > degradedAt);

      await partition.heal();
      const healedAt = Date.now();
      await untilReady([a.url, b.url], 'both connected again', (r) => r.status === 'ready' && r.redis === 'connected');
      await sleep(1_500);
      await publisher.stop();

      const shared = publisher.acks.filter((ack) => !ack.local);
      const local = publisher.acks.filter((ack) => ack.local);
      const afterHeal = shared.filter((ack) => ack.at > healedAt);
      await untilDelivered(onA, shared);
      await untilDelivered(onB, shared);

      expect(publisher.failures).toEqual([]);
      expect(local.length).toBeGreaterThan(0);
      expect(afterHeal.length).toBeGreaterThan(0);
      // Readiness: degraded within REDIS_UNRESPONSIVE_AFTER_MS + 1 s of the cut.
      expect(detectedMs).toBeLessThanOrEqual(UNRESPONSIVE_AFTER_MS + 1_000);
      // With the circuit open, publishes answer at once, as local.
      expect(whileOpen.every((ack) => ack.local)).toBe(true);
      expect(whileOpen.length).toBeGreaterThan(10);
      expect(
        percentile(
          whileOpen.map((ack) => ack.ms),
          99,
        ),
      ).toBeLessThan(100);

      // Every member: every acknowledged shared event once, in order; local ones only on A, once.
      expectEverySharedOnceInOrder(onA, shared);
      expectEverySharedOnceInOrder(onB, shared);
      const localIds = new Set(local.map((ack) => ack.id));
      expect(arrived(onB.events, localIds)).toEqual([]);
      expect(arrived(onA.events, localIds)).toEqual(local.map((ack) => ack.id));

      // No ghost: nothing answered local is in the shared history, and no seq was given twice.
      const history = await sharedHistory(redis.url, room);
      const historyIds = history.events.map((event) => event.id);
      expect(historyIds.filter((id) => localIds.has(id))).toEqual([]);
      expect(new Set(historyIds).size).toBe(historyIds.length);
      const sharedSeqs = shared.map((ack) => ack.seq);
      expect(new Set(sharedSeqs).size).toBe(sharedSeqs.length);

      // One warning on entering the state and one on leaving it, per replica.
      for (const gateway of [a, b]) {
        expect(logCount(gateway.output(), 'redis unresponsive')).toBe(1);
        expect(logCount(gateway.output(), 'redis responsive again')).toBe(1);
      }

      // Tokens: each was used once during the blackhole; after it, neither is accepted anywhere.
      await expect.poll(() => scrapeMetric(a.url, 'switchboard_token_fallback_entries'), { timeout: 10_000 }).toBe(0);
      for (const gateway of [a, b]) {
        for (const token of [before.token, during.token]) {
          await expect(connectWithToken(gateway.url, token)).rejects.toThrow('token_used');
        }
      }
    });

    it('only one replica cut off: its members still get every shared event once, in order', async () => {
      const [a, b] = await Promise.all([replica(), replica()]);
      const room = 'one-cut';
      const onA = await member(a, 'member-a', room);
      const onB = await member(b, 'member-b', room);
      // The backend publishes through B, which keeps Redis; A's links are cut.
      const publisher = startPublisher(() => b.url, room);
      await sleep(1_000);
      await cutOff(a, await linksOf(redis.port, a.pid), async () => {
        expect((await untilReady([b.url], 'B still connected', (r) => r.redis === 'connected'), true)).toBe(true);
      });
      await publisher.stop();

      expect(publisher.acks.every((ack) => !ack.local)).toBe(true);
      await untilDelivered(onA, publisher.acks);
      await untilDelivered(onB, publisher.acks);
      expectEverySharedOnceInOrder(onB, publisher.acks);
      // A's member: everything, or (only if the history no longer had it) a room:epoch saying so.
      if (onA.moves.some((move) => move.reason)) {
        const got = arrived(onA.events, new Set(publisher.acks.map((ack) => ack.id)));
        expect(new Set(got).size).toBe(got.length);
      } else expectEverySharedOnceInOrder(onA, publisher.acks);
    });

    it('the subscriber link alone cut: commands keep working, the backfill delivers what the channel dropped', async () => {
      const [a, b] = await Promise.all([replica(), replica()]);
      const room = 'sub-cut';
      const onA = await member(a, 'member-a', room);
      const onB = await member(b, 'member-b', room);
      const publisher = startPublisher(() => a.url, room);
      await sleep(1_000);
      // Only A's room-channel subscriber: its publishes (commands) still reach Redis.
      const links = await linksOf(redis.port, a.pid, (peer) => peer.name === 'switchboard-rooms-sub');
      expect(links).toHaveLength(1);
      await cutOff(a, links);
      await publisher.stop();

      // Commands never stopped working: every publish was shared.
      expect(publisher.acks.every((ack) => !ack.local)).toBe(true);
      await untilDelivered(onA, publisher.acks);
      await untilDelivered(onB, publisher.acks);
      expectEverySharedOnceInOrder(onA, publisher.acks);
      expectEverySharedOnceInOrder(onB, publisher.acks);
    });

    it('a blackhole during a rolling restart: the new replica starts local and joins the shared history after', async () => {
      const [a, b] = await Promise.all([replica(), replica()]);
      const room = 'rolling';
      const onA = await member(a, 'member-a', room);
      await member(b, 'member-b', room);
      const publisher = startPublisher(() => a.url, room);
      await sleep(1_000);
      partition = await createPartition();
      await partition.dropPort(redis.port);
      await untilReady([a.url, b.url], 'both unresponsive', (r) => r.redis === 'unresponsive');
      // B is replaced while Redis is unreachable: the new one boots without it.
      await b.stop('SIGTERM');
      const c = await replica();
      const onC = await member(c, 'member-c', room);
      await sleep(1_500);
      await partition.heal();
      const healedAt = Date.now();
      await untilReady([a.url, c.url], 'both connected', (r) => r.redis === 'connected', 20_000);
      await sleep(1_500);
      await publisher.stop();

      const shared = publisher.acks.filter((ack) => !ack.local);
      const afterHeal = shared.filter((ack) => ack.at > healedAt);
      expect(afterHeal.length).toBeGreaterThan(0);
      await untilDelivered(onA, shared);
      await untilDelivered(onC, afterHeal);
      expectEverySharedOnceInOrder(onA, shared);
      // C's member joined in C's local epoch: told that the numbering moved, then every shared event once.
      expect(onC.moves.some((move) => move.reason === 'epoch_changed')).toBe(true);
      expectEverySharedOnceInOrder(onC, afterHeal);
      const history = await sharedHistory(redis.url, room);
      const localIds = new Set(publisher.acks.filter((ack) => ack.local).map((ack) => ack.id));
      expect(history.events.filter((event) => localIds.has(event.id))).toEqual([]);
    });
  },
);
