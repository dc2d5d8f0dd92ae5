import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HistoryResponse, ReadyResponse, RoomEvent } from '@switchboard/contract';
import { accessToken, joinRoom, postJson, seqs, type ConnectedClient } from '../../support/client.js';
import { startTestGateway, type TestGateway } from '../../support/gateway.js';
import { startGatewayProcess, type GatewayProcess } from '../../support/gateway-process.js';
import { waitFor } from '../../support/ports.js';
import { startRedisServer, type RedisServerHandle } from '../../support/redis-server.js';

const readyz = async (url: string) => (await (await fetch(`${url}/readyz`)).json()) as ReadyResponse;
const publish = (client: ConnectedClient, n: number) => client.socket.emitWithAck('publish', { type: 'n', data: n });
const last = (client: ConnectedClient) => client.events[client.events.length - 1] as RoomEvent;

describe('degraded mode: Redis unreachable while a room is busy, then back', () => {
  let redis: RedisServerHandle;
  let replicas: GatewayProcess[];
  const clients: ConnectedClient[] = [];
  const join = async (replica: number, user: string, recover?: { epoch: string; seq: number }) => {
    const client = await joinRoom(replicas[replica]?.url ?? '', user, 'outage', undefined, recover);
    clients.push(client);
    return client;
  };

  beforeAll(async () => {
    redis = await startRedisServer();
    const env = { REDIS_URL: redis.url, LOG_LEVEL: 'info' };
    replicas = await Promise.all([startGatewayProcess({ env }), startGatewayProcess({ env })]);
  });
  afterAll(async () => {
    for (const client of clients) client.close();
    await Promise.all(replicas.map((replica) => replica.stop('SIGKILL')));
    await redis.stop();
  });

  it('numbers events locally and says so, refuses recovery across the gap, and rejoins the shared history', async () => {
    const a = await join(0, 'a');
    const b = await join(1, 'b');
    for (let n = 1; n <= 3; n++) await publish(a, n);
    await waitFor('three events on both', () => (a.events.length === 3 && b.events.length === 3) || undefined);
    const shared = a.session.position.epoch;
    const beforeOutage = { epoch: shared, seq: 3 };

    await redis.kill();
    await waitFor('both degraded', async () => {
      const states = await Promise.all(replicas.map((r) => readyz(r.url)));
      return states.every((s) => s.status === 'degraded') || undefined;
    });
    // Only this replica's members can be reached now: the ack says so, and the room moves to a
    // local epoch forked where it was, so its members lose nothing and see no repeat.
    const during = [await publish(a, 4), await publish(a, 5)];
    for (const ack of during) expect(ack).toMatchObject({ ok: true, local: true });
    expect(during.map((ack) => ack.ok && ack.seq)).toEqual([4, 5]);
    await waitFor('the local events', () => a.events.length === 5 || undefined);
    expect(a.moves).toHaveLength(1);
    const local = a.moves[0];
    expect(local?.epoch).not.toBe(shared);
    expect(local).toEqual({ room: local?.room, epoch: local?.epoch, seq: 3 });
    expect(seqs(a.events)).toEqual({ seqs: [1, 2, 3, 4, 5], consecutive: true });
    expect(b.events).toHaveLength(3);

    // The local epoch exists on one replica only: recovery into it works there and nowhere else.
    const crossing = await join(0, 'c', { epoch: local?.epoch ?? '', seq: 4 });
    expect(crossing.session.recovery).toEqual({ recovered: true, replayed: 1 });
    const elsewhere = await join(1, 'c', { epoch: local?.epoch ?? '', seq: 4 });
    expect(elsewhere.session.recovery).toEqual({ recovered: false, replayed: 0, reason: 'epoch_changed' });
    // The other replica still serves the shared stream, in which nothing happened since.
    const unchanged = await join(1, 'c', beforeOutage);
    expect(unchanged.session.recovery).toEqual({ recovered: true, replayed: 0 });

    // Redis comes back empty (a restart without persistence): the history it held is gone.
    await redis.start();
    await waitFor('both connected', async () => {
      const states = await Promise.all(replicas.map((r) => readyz(r.url)));
      return states.every((s) => s.redis === 'connected') || undefined;
    });
    await waitFor('a told it moved back to a shared epoch', () => (a.moves.length === 2 ? true : undefined), {
      timeoutMs: 15_000,
    });
    const rejoined = a.moves[1];
    expect(rejoined?.reason).toBe('epoch_changed');

    // Cross-replica delivery resumes by itself, numbered in the new shared epoch.
    await waitFor('cross-replica again', async () => {
      await publish(b, 6);
      return a.events.some((e) => e.data === 6) || undefined;
    });
    await waitFor('b has its own', () => b.events.some((e) => e.data === 6) || undefined);
    const aSix = a.events.find((e) => e.data === 6) as RoomEvent;
    const bSix = b.events.find((e) => e.data === 6) as RoomEvent;
    expect(aSix.seq).toBe(bSix.seq);
    // A position from before the outage, or from the local epoch, is refused everywhere.
    for (const position of [beforeOutage, { epoch: local?.epoch ?? '', seq: 5 }]) {
      const late = await join(1, 'd', position);
      expect(late.session.recovery).toEqual({ recovered: false, replayed: 0, reason: 'epoch_changed' });
    }
    const fresh = await join(0, 'e', { epoch: b.session.position.epoch, seq: 0 });
    expect(fresh.session.recovery?.recovered).toBe(false);
    expect(last(b).seq).toBe(b.events.length - 3);
    for (const replica of replicas) expect(replica.output()).not.toMatch(/unhandled/i);
  }, 60_000);
});

describe('history turned off (ROOM_HISTORY_SIZE=0)', () => {
  let redis: RedisServerHandle;
  let gw: TestGateway;
  beforeAll(async () => {
    redis = await startRedisServer();
    gw = await startTestGateway({ REDIS_URL: redis.url, ROOM_HISTORY_SIZE: '0' });
    await waitFor('redis', async () => (await readyz(gw.url)).redis === 'connected' || undefined);
  });
  afterAll(async () => {
    await gw.close();
    await redis.stop();
  });

  it('still numbers events, but keeps none and recovers nothing', async () => {
    const member = await joinRoom(gw.url, 'm', 'nohistory');
    await publish(member, 1);
    await publish(member, 2);
    await waitFor('two events', () => member.events.length === 2 || undefined);
    expect(seqs(member.events)).toEqual({ seqs: [1, 2], consecutive: true });
    const page = await member.socket.emitWithAck('history', {});
    expect(page).toMatchObject({ ok: true, top: 2, events: [] });
    member.close();
    const back = await joinRoom(gw.url, 'm', 'nohistory', undefined, { epoch: member.session.position.epoch, seq: 1 });
    expect(back.session.recovery).toEqual({ recovered: false, replayed: 0, reason: 'history_disabled' });
    back.close();
  });
});

describe('memory mode keeps the whole contract from an in-process history', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({ RECOVERY_MAX_EVENTS: '4', ROOM_HISTORY_SIZE: '6' });
  });
  afterAll(() => gw.close());

  it('recovers, refuses what it cannot deliver, and serves history over the socket and HTTP', async () => {
    const member = await joinRoom(gw.url, 'solo', 'memory');
    for (let n = 1; n <= 3; n++) await publish(member, n);
    await waitFor('three', () => member.events.length === 3 || undefined);
    const position = { epoch: member.session.position.epoch, seq: 3 };
    member.close();
    const service = accessToken({ sub: 'backend', scope: 'publish read' });
    for (let n = 4; n <= 6; n++) {
      const response = await postJson(
        `${gw.url}/api/rooms/memory/events`,
        { type: 'n', data: n },
        {
          authorization: `Bearer ${service}`,
        },
      );
      expect(response.body).toMatchObject({ seq: n });
    }
    const back = await joinRoom(gw.url, 'solo', 'memory', undefined, position);
    expect(back.session.recovery).toEqual({ recovered: true, replayed: 3 });
    await waitFor('the replay', () => back.events.length === 3 || undefined);
    expect(seqs(back.events).seqs).toEqual([4, 5, 6]);

    for (let n = 7; n <= 10; n++) await publish(back, n);
    await waitFor('ten', () => back.events.length === 7 || undefined);
    back.close();
    const tooMany = await joinRoom(gw.url, 'solo', 'memory', undefined, { epoch: position.epoch, seq: 5 });
    expect(tooMany.session.recovery).toEqual({ recovered: false, replayed: 0, reason: 'too_many' });
    const other = await joinRoom(gw.url, 'solo', 'memory', undefined, { epoch: 'elsewhere', seq: 1 });
    expect(other.session.recovery).toEqual({ recovered: false, replayed: 0, reason: 'epoch_changed' });

    const http = await fetch(`${gw.url}/api/rooms/memory/events?after=6`, {
      headers: { authorization: `Bearer ${service}` },
    });
    const page = (await http.json()) as HistoryResponse;
    expect(page.top).toBe(10);
    expect(page.events.map((e) => e.seq)).toEqual([7, 8, 9, 10]);
    const latest = await tooMany.socket.emitWithAck('history', { limit: 3 });
    expect(latest.ok && latest.events.map((e) => e.seq)).toEqual([8, 9, 10]);
    tooMany.close();
    other.close();
  });
});
