import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { RedisClient, RedisConnection } from '../redis/connection.js';
import type { RedisKeys } from '../redis/keys.js';
import { lua, runScript } from '../redis/lua.js';
import type { Dispatcher, OutboxEntry } from './dispatcher.js';

/** The consumer group every replica reads the outbox streams in. */
export const OUTBOX_GROUP = 'deliverers';

/** Renews a partition's lease only while this replica still holds it. */
const RENEW = lua(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`);

/** Gives a lease up only if this replica holds it. */
const RELEASE = lua(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`);

/** FNV-1a: which partition a room's webhooks go to (the same on every replica). */
export function partitionOf(room: string, partitions: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < room.length; i++) {
    hash ^= room.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % partitions;
}

interface StreamMessage {
  id: string;
  message: Record<string, string>;
}

/** Messages of an XREADGROUP or XAUTOCLAIM reply (RESP2, as node-redis 5 shapes it). */
function messagesOf(reply: unknown): StreamMessage[] {
  if (!reply) return [];
  const list: unknown = Array.isArray(reply)
    ? (reply[0] as { messages?: unknown } | undefined)?.messages
    : (reply as { messages?: unknown }).messages;
  if (!Array.isArray(list)) return [];
  return list.filter(
    (item): item is StreamMessage =>
      typeof item === 'object' && item !== null && typeof (item as StreamMessage).id === 'string',
  );
}

function entryOf(partition: string, { id, message }: StreamMessage): OutboxEntry | undefined {
  const body = message.b;
  if (typeof body !== 'string') return undefined;
  let ts = 0;
  try {
    ts = Number((JSON.parse(body) as { ts?: unknown }).ts) || 0;
  } catch {
    // A malformed entry is delivered as it is; the receiver decides.
  }
  return { id, partition, room: message.r ?? '', body, ts };
}

export interface RedisOutboxOptions {
  redis: RedisConnection;
  keys: RedisKeys;
  partitions: number;
  replica: string;
  /** A partition whose deliverer stops renewing is taken over after this long. */
  leaseMs: number;
  dispatcher: Dispatcher;
  /** Most entries held in memory per partition. */
  bufferPerPartition?: number;
  pollMs?: number;
  logger: Logger;
  metrics: Metrics;
}

export interface RedisOutbox {
  /** Writes webhooks a script could not write itself (Redis Cluster, `upstream.minted`), in order. */
  enqueue(room: string, bodies: string[], maxLength: number): Promise<void>;
  /** Acknowledges a delivered or given-up entry: it leaves the outbox. */
  done(entry: OutboxEntry): Promise<void>;
  close(): Promise<void>;
}

/**
 * The durable outbox: `partitions` Redis Streams, a room's webhooks always in the same
 * one, in the order they happened. Each partition is delivered by one replica at a time,
 * the holder of its lease (so a room's webhooks go out in order); the others take it
 * over when the holder stops renewing (it died, or lost Redis), claim what it had read
 * but not acknowledged (XAUTOCLAIM) and deliver that first. An entry leaves the stream
 * once accepted or given up (XACK + XDEL), so a stream's length is its backlog.
 */
export function createRedisOutbox(options: RedisOutboxOptions): RedisOutbox {
  const { redis, keys, replica, leaseMs, dispatcher, metrics } = options;
  const log = options.logger.child({ component: 'webhooks' });
  const buffer = options.bufferPerPartition ?? 500;
  const pollMs = options.pollMs ?? 100;
  interface Partition {
    name: string;
    stream: string;
    lease: string;
    owned: boolean;
    /** Held: when to renew the lease; not held: when to try to take it. */
    renewAt: number;
    /** After a takeover: read this consumer's pending entries from here before new ones. */
    pendingFrom: string | undefined;
    /** Being handed to another replica: nothing more is read; released once what was read is acknowledged. */
    handing: boolean;
  }
  const partitions: Partition[] = Array.from({ length: options.partitions }, (_, i) => ({
    name: String(i),
    stream: keys.webhookOutbox(i),
    lease: keys.webhookLease(i),
    owned: false,
    renewAt: 0,
    pendingFrom: undefined,
    handing: false,
  }));
  /** Replicas delivering webhooks (this one included), from `webhookDeliverers`; refreshed once a second. */
  let deliverers = 1;
  let countedAt = 0;
  const share = (): number => Math.ceil(partitions.length / Math.max(1, deliverers));
  const owned = (): number => partitions.reduce((count, p) => count + (p.owned ? 1 : 0), 0);
  let closed = false;
  let running: Promise<void> | undefined;
  let lastWarning = 0;
  let lengthsAt = 0;

  const warn = (what: string, error: unknown): void => {
    if (Date.now() - lastWarning < 5_000) return;
    lastWarning = Date.now();
    log.warn({ err: error instanceof Error ? error.message : String(error) }, `webhook outbox ${what} failed`);
  };

  const lose = (p: Partition): void => {
    if (!p.owned) return;
    p.owned = false;
    p.handing = false;
    p.pendingFrom = undefined;
    dispatcher.drop(p.name);
    metrics.webhookOutboxPartitions.set(owned());
  };

  async function takeOver(c: RedisClient, p: Partition): Promise<void> {
    try {
      await c.xGroupCreate(p.stream, OUTBOX_GROUP, '0', { MKSTREAM: true });
    } catch (error) {
      if (!(error instanceof Error && error.message.includes('BUSYGROUP'))) throw error;
    }
    // Whatever the previous holder read and did not acknowledge becomes ours; the lease
    // says it no longer delivers (or, if it still finishes a request, that is a repeat).
    let cursor = '0-0';
    for (let rounds = 0; rounds < 1_000; rounds++) {
      const reply = await c.xAutoClaim(p.stream, OUTBOX_GROUP, replica, 0, cursor, { COUNT: 500 });
      cursor = reply.nextId;
      if (cursor === '0-0') break;
    }
    p.pendingFrom = '0';
  }

  async function lease(p: Partition, now: number): Promise<void> {
    if (p.owned) {
      if (now < p.renewAt) return;
      const renewed = await redis.run('webhook-lease', (c) => runScript(c, RENEW, [p.lease], [replica, leaseMs]));
      if (renewed === 1) p.renewAt = now + leaseMs / 3;
      else lose(p);
      return;
    }
    // A free partition is looked for once a second, not on every poll, and only while this
    // replica delivers less than its share: the replicas split the partitions between them.
    if (now < p.renewAt || owned() >= share()) return;
    p.renewAt = now + 1_000;
    const taken = await redis.run('webhook-lease', (c) => c.set(p.lease, replica, { condition: 'NX', PX: leaseMs }));
    if (taken !== 'OK') return;
    await redis.run('webhook-takeover', (c) => takeOver(c, p));
    p.owned = true;
    p.renewAt = now + leaseMs / 3;
    metrics.webhookOutboxPartitions.set(owned());
    log.info({ partition: p.name }, 'delivering webhook outbox partition');
  }

  /** Counts the replicas that deliver webhooks (each says so here once a second; silent ones drop out after a lease). */
  async function count(now: number): Promise<void> {
    if (now - countedAt < 1_000) return;
    countedAt = now;
    const key = keys.webhookDeliverers;
    const [, , live] = await redis.run('webhook-deliverers', (c) =>
      Promise.all([
        c.zAdd(key, { score: now, value: replica }),
        c.zRemRangeByScore(key, '-inf', now - leaseMs),
        c.zCard(key),
      ]),
    );
    deliverers = Math.max(1, live);
  }

  /**
   * Hands one partition over when this replica holds more than its share (another replica
   * started): it stops reading it, and gives the lease up once what it read is acknowledged,
   * so the next holder finds nothing of it pending and sends nothing twice.
   */
  async function handOver(): Promise<void> {
    const held = partitions.filter((p) => p.owned);
    if (held.length > share() && !held.some((p) => p.handing)) {
      const last = held[held.length - 1];
      if (last) last.handing = true;
    }
    for (const p of held) {
      if (!p.handing || dispatcher.held(p.name) > 0) continue;
      await acked;
      await redis.run('webhook-release', (c) => runScript(c, RELEASE, [p.lease], [replica]));
      lose(p);
      // Not taken back at once: the replica it was handed to looks once a second.
      p.renewAt = Date.now() + 2_000;
      log.info({ partition: p.name, deliverers }, 'handed webhook outbox partition to another replica');
    }
  }

  async function read(p: Partition): Promise<void> {
    const room = buffer - dispatcher.held(p.name);
    if (!p.owned || p.handing || room <= 0) return;
    const from = p.pendingFrom ?? '>';
    const reply = await redis.run('webhook-read', (c) =>
      c.xReadGroup(OUTBOX_GROUP, replica, { key: p.stream, id: from }, { COUNT: Math.min(room, 100) }),
    );
    if (!p.owned) return;
    const messages = messagesOf(reply);
    if (p.pendingFrom !== undefined) {
      const last = messages[messages.length - 1];
      p.pendingFrom = last ? last.id : undefined;
    }
    dispatcher.add(messages.flatMap((message) => entryOf(p.name, message) ?? []));
  }

  /** A lease not renewed for a while may be another replica's soon: stop before it can take over. */
  const loseStale = (p: Partition, now: number): void => {
    if (p.owned && now >= p.renewAt + leaseMs / 3) lose(p);
  };

  async function tick(): Promise<void> {
    const now = Date.now();
    if (closed) return;
    if (!redis.isReady()) {
      for (const p of partitions) loseStale(p, now);
      return;
    }
    try {
      await count(now);
      await handOver();
    } catch (error) {
      warn('share', error);
    }
    await Promise.all(
      partitions.map(async (p) => {
        try {
          await lease(p, now);
          await read(p);
        } catch (error) {
          loseStale(p, Date.now());
          warn('poll', error);
        }
      }),
    );
    dispatcher.pump();
    const oldest = dispatcher.oldest();
    metrics.webhookOutboxOldestSeconds.set(oldest === undefined ? 0 : Math.max(0, now - oldest) / 1000);
    if (now - lengthsAt >= 5_000) {
      lengthsAt = now;
      const held = partitions.filter((p) => p.owned);
      const lengths = await redis
        .run('webhook-length', (c) => Promise.all(held.map((p) => c.xLen(p.stream))))
        .catch(() => undefined);
      if (lengths) metrics.webhookOutboxLength.set(lengths.reduce((sum, length) => sum + length, 0));
    }
  }

  /** Entries done since the last flush, by partition. */
  const acks = new Map<string, string[]>();
  let acked: Promise<void> | undefined;
  async function flushAcks(): Promise<void> {
    const batch = [...acks];
    acks.clear();
    acked = undefined;
    await redis.run('webhook-ack', (c) =>
      Promise.all(
        batch.flatMap(([partition, ids]) => {
          const stream = keys.webhookOutbox(Number(partition));
          return [c.xAck(stream, OUTBOX_GROUP, ids), c.xDel(stream, ids)];
        }),
      ),
    );
  }

  const timer = setInterval(() => {
    if (running) return;
    running = tick().finally(() => {
      running = undefined;
    });
  }, pollMs);
  timer.unref();

  return {
    async enqueue(room, bodies, maxLength) {
      if (bodies.length === 0) return;
      const stream = keys.webhookOutbox(partitionOf(room, partitions.length));
      // Routed by the stream: on a Cluster, a master judged silent fails the write at once
      // instead of piling more onto its link (the caller keeps the bodies and retries).
      await redis.run(
        'webhook-enqueue',
        (c) =>
          Promise.all(
            bodies.map((b) =>
              c.xAdd(
                stream,
                '*',
                { r: room, b },
                { TRIM: { strategy: 'MAXLEN', strategyModifier: '~', threshold: maxLength } },
              ),
            ),
          ),
        { key: stream },
      );
    },
    done(entry) {
      // Acknowledged together with the others done in the same turn: one XACK and one
      // XDEL per partition, not per webhook.
      const ids = acks.get(entry.partition);
      if (ids) ids.push(entry.id);
      else acks.set(entry.partition, [entry.id]);
      acked ??= new Promise<void>((resolve) => setImmediate(resolve)).then(flushAcks);
      return acked;
    },
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      await running;
      await dispatcher.close();
      // Failed acknowledgements are logged by the dispatcher; those entries are sent again.
      await acked?.catch(() => undefined);
      // Handed over at once rather than after the lease runs out.
      const held = partitions.filter((p) => p.owned);
      await redis
        .run('webhook-release', (c) =>
          Promise.all([
            ...held.map((p) => runScript(c, RELEASE, [p.lease], [replica])),
            c.zRem(keys.webhookDeliverers, replica),
          ]),
        )
        .catch(() => undefined);
    },
  };
}
