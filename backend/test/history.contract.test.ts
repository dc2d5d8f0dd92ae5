import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RoomEvent } from '@switchboard/contract';
import { createMemoryHistory } from '../src/history/memory.js';
import { createRedisHistory } from '../src/history/redis.js';
import type { RoomHistory, UnsequencedEvent } from '../src/history/types.js';
import { startConnectedRedis, type ConnectedRedis } from '../../support/redis-connection.js';

const SETTINGS = { size: 5, maxBytes: 1 << 20, ttlSeconds: 60 };

let connected: ConnectedRedis;
const sunk: Array<{ room: string; epoch: string; event: RoomEvent }> = [];
const memory = createMemoryHistory({ ...SETTINGS, sink: (room, epoch, event) => sunk.push({ room, epoch, event }) });

beforeAll(async () => {
  connected = await startConnectedRedis();
});
afterAll(async () => {
  memory.close();
  await connected.stop();
});

let n = 0;
const room = () => `history-contract-${process.pid}-${n++}`;
const draft = (i: number): UnsequencedEvent => ({ id: `id-${i}`, type: 't', data: { i }, from: 'p', ts: Date.now() });

// One suite, every driver: memory mode must keep the contract Redis keeps.
describe.each([
  ['memory', () => memory as RoomHistory],
  ['redis', () => createRedisHistory(connected.redis, { ...SETTINGS, keyPrefix: 'contract:', sharded: false })],
])('%s history', (_kind, history) => {
  it('numbers a room’s events 1, 2, 3… in one epoch, and rooms apart', async () => {
    const [a, b] = [room(), room()];
    const first = await history().append(a, draft(1));
    const second = await history().append(a, draft(2));
    const other = await history().append(b, draft(3));
    expect([first.seq, second.seq, other.seq]).toEqual([1, 2, 1]);
    expect(second.epoch).toBe(first.epoch);
  });

  it('never hands out a seq twice, however many publish at once', async () => {
    const a = room();
    const seqs = await Promise.all(Array.from({ length: 40 }, (_, i) => history().append(a, draft(i))));
    expect(seqs.map((s) => s.seq).sort((x, y) => x - y)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
  });

  it('reads oldest first: after a position, or the latest; keeps the last ROOM_HISTORY_SIZE', async () => {
    const a = room();
    for (let i = 1; i <= 8; i++) await history().append(a, draft(i));
    const latest = await history().read(a, { after: undefined, limit: 3 });
    expect(latest.top).toBe(8);
    expect(latest.events.map((e) => e.seq)).toEqual([6, 7, 8]);
    const after = await history().read(a, { after: 5, limit: 100 });
    expect(after.events.map((e) => e.seq)).toEqual([6, 7, 8]);
    expect(after.events[0]).toMatchObject({ id: 'id-6', data: { i: 6 }, seq: 6 });
    // Only five are kept.
    const all = await history().read(a, { after: 0, limit: 100 });
    expect(all.events.map((e) => e.seq)).toEqual([4, 5, 6, 7, 8]);
  });

  it('gives a room with no history an epoch that stays, and top 0', async () => {
    const a = room();
    const empty = await history().read(a, { after: undefined, limit: 10 });
    expect(empty).toMatchObject({ top: 0, events: [] });
    expect((await history().read(a, { after: 0, limit: 10 })).epoch).toBe(empty.epoch);
    expect((await history().append(a, draft(1))).epoch).toBe(empty.epoch);
  });
});

// Only Redis can lose acknowledged writes (a failover, a restored snapshot); one process's log cannot.
describe('redis history that went backwards', () => {
  const history = () => createRedisHistory(connected.redis, { ...SETTINGS, keyPrefix: 'contract:', sharded: false });

  it('starts a new epoch once, and numbers on in it', async () => {
    const a = room();
    const { epoch } = await history().append(a, draft(1));
    const next = await history().restart(a, epoch);
    expect(next).not.toBe(epoch);
    // A second report of the same regression does not start yet another epoch.
    expect(await history().restart(a, epoch)).toBe(next);
    expect((await history().append(a, draft(2))).epoch).toBe(next);
  });

  it('starts a new epoch when what a replica delivered is ahead of the history', async () => {
    const a = room();
    const { epoch } = await history().append(a, draft(1));
    const appended = await history().append(a, draft(2), { epoch, seq: 7 });
    expect(appended.epoch).not.toBe(epoch);
    expect((await history().read(a, { after: 0, limit: 10 })).epoch).toBe(appended.epoch);
  });
});

describe('memory history', () => {
  it('never goes backwards: a restart keeps the epoch, and every event reaches the sink', async () => {
    const a = room();
    const { epoch } = await memory.append(a, draft(1));
    expect(await memory.restart(a, epoch)).toBe(epoch);
    expect(sunk.filter((s) => s.room === a).map((s) => [s.epoch, s.event.seq])).toEqual([[epoch, 1]]);
  });
});
