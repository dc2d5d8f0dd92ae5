import { createClient } from 'redis';
import type { BenchConfig } from '../lib/config.js';
import { serviceToken, type System, type SystemRedis } from '../lib/systems.js';
import { JSON_HEADERS, openPool, runAll } from '../loadgen/http-client.js';
import { round } from '../loadgen/stats.js';

export interface HistoryMemoryResult {
  rooms: number;
  eventsPerRoom: number;
  /** Events each room's history held at the end (its ROOM_HISTORY_SIZE). */
  eventsKept: number;
  /** Bytes of the event's `data` as JSON, and of the whole stored event (id, type, from, ts, seq). */
  dataBytes: number;
  eventBytes: number;
  /** `MEMORY USAGE … SAMPLES 0` of every key of a room (its history log and counter), mean over the rooms. */
  bytesPerRoom: number;
  /** bytesPerRoom / eventsKept: what one kept event costs. */
  bytesPerEvent: number;
}

type RedisClient = ReturnType<typeof createClient>;

/** A chat message as an app would publish it from its backend. */
const TYPICAL_DATA = {
  text: 'Sounds good. I will share the slides right after the call; can everyone see my screen now?',
  author: 'user-0042',
  replyTo: null,
};

/**
 * Redis memory of a room's history once it is full: rooms filled with `eventsPerRoom`
 * typical events each, published over HTTP (no members), measured key by key with
 * `MEMORY USAGE`, which other keys coming and going (tokens expiring) do not disturb.
 * Switchboard only: the baseline keeps no history.
 */
export async function measureHistoryMemory(
  system: System,
  redis: SystemRedis,
  config: BenchConfig,
): Promise<HistoryMemoryResult> {
  const { rooms, eventsPerRoom } = config.historyMemory;
  const replica = system.replicas[0];
  if (!replica) throw new Error('no replica');
  const client = createClient({ url: redis.url });
  client.on('error', () => undefined);
  const pool = openPool(replica.host, replica.port, 16);
  try {
    await client.connect();
    const headers = `Authorization: Bearer ${serviceToken()}\r\n${JSON_HEADERS}`;
    const body = JSON.stringify({ type: 'chat', data: TYPICAL_DATA });
    for (let room = 0; room < rooms; room++) {
      await runAll(pool, eventsPerRoom, async (connection) => {
        const response = await connection.request('POST', `/api/rooms/memory-${room}/events`, headers, body);
        if (response.status !== 202)
          throw new Error(`publish answered ${response.status}: ${response.body.toString()}`);
      });
    }
    const keys = await roomKeys(client, 'memory-');
    let bytes = 0;
    for (const key of keys) bytes += (await client.memoryUsage(key, { SAMPLES: 0 })) ?? 0;
    const stored = await client.lRange(await eventLog(client, keys), 0, -1);
    const eventBytes = stored.reduce((sum, entry) => sum + Buffer.byteLength(entry), 0) / Math.max(1, stored.length);
    const bytesPerRoom = bytes / rooms;
    return {
      rooms,
      eventsPerRoom,
      eventsKept: stored.length,
      dataBytes: Buffer.byteLength(JSON.stringify(TYPICAL_DATA)),
      eventBytes: round(eventBytes, 0),
      bytesPerRoom: round(bytesPerRoom, 0),
      bytesPerEvent: round(bytesPerRoom / Math.max(1, stored.length), 1),
    };
  } finally {
    pool.close();
    if (client.isOpen) await client.close();
  }
}

/** Every key of the rooms named `<prefix>…`: a room's keys carry its name as their hash tag. */
async function roomKeys(client: RedisClient, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const page = await client.scan(cursor, { MATCH: `*{${prefix}*}*`, COUNT: 1000 });
    cursor = page.cursor;
    keys.push(...page.keys);
  } while (cursor !== '0');
  return keys;
}

/** One room's event log: the list among the keys. */
async function eventLog(client: RedisClient, keys: string[]): Promise<string> {
  for (const key of keys) if ((await client.type(key)) === 'list') return key;
  throw new Error('no room history log in Redis');
}
