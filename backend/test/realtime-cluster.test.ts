import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Ack, PeerInfo, RoomEvent } from '@switchboard/contract';
import {
  accessToken,
  connectWithToken,
  devLogin,
  joinRoom,
  mintToken,
  nextEvent,
  postJson,
  type ConnectedClient,
} from '../../support/client.js';
import { startGatewayProcess, type GatewayProcess } from '../../support/gateway-process.js';
import { waitFor } from '../../support/ports.js';
import { startRedisServer, type RedisServerHandle } from '../../support/redis-server.js';

const PRESENCE_TTL_SECONDS = 3;

describe('three replicas on one Redis', () => {
  let redis: RedisServerHandle;
  let replicas: GatewayProcess[];
  const clients: ConnectedClient[] = [];
  const join = async (replica: number, user: string, room: string) => {
    const client = await joinRoom(replicas[replica]?.url ?? '', user, room);
    clients.push(client);
    return client;
  };

  beforeAll(async () => {
    redis = await startRedisServer();
    const env = { REDIS_URL: redis.url, PRESENCE_TTL_SECONDS: String(PRESENCE_TTL_SECONDS), LOG_LEVEL: 'info' };
    replicas = await Promise.all(['r1', 'r2', 'r3'].map((replica) => startGatewayProcess({ env, replica })));
  });
  afterAll(async () => {
    for (const client of clients) client.close();
    await Promise.all(replicas.map((replica) => replica.stop('SIGKILL')));
    await redis.stop();
  });

  it('relays presence, signals and room events between replicas', async () => {
    const alice = await join(0, 'alice', 'call-1');
    const bobJoined = nextEvent(alice.socket, 'peer:joined', (peer) => peer.userId === 'bob');
    const bob = await join(1, 'bob', 'call-1');
    expect(alice.session.replica).toBe('r1');
    expect(bob.session.replica).toBe('r2');

    const seenByAlice = await bobJoined;
    expect(seenByAlice).toMatchObject({ peerId: bob.session.peerId, userId: 'bob', replica: 'r2' });
    expect(bob.session.peers.map((p) => p.peerId)).toEqual([alice.session.peerId]);

    // Offer, answer and candidate, each stamped with the true sender.
    for (const [from, to, kind] of [
      [alice, bob, 'offer'],
      [bob, alice, 'answer'],
      [alice, bob, 'candidate'],
    ] as const) {
      const received = nextEvent(to.socket, 'signal', (message) => message.kind === kind);
      const ack = (await from.socket.emitWithAck('signal', { to: to.session.peerId, kind, data: { n: kind } })) as Ack;
      expect(ack).toEqual({ ok: true });
      expect(await received).toEqual({ from: from.session.peerId, kind, data: { n: kind } });
    }

    // Room events from either member and from a backend over HTTP on the third replica.
    const ackA = (await alice.socket.emitWithAck('publish', { type: 'chat', data: { text: 'hi' } })) as Ack<{
      id: string;
    }>;
    const ackB = (await bob.socket.emitWithAck('publish', { type: 'chat', data: { text: 'yo' } })) as Ack<{
      id: string;
    }>;
    const service = accessToken({ sub: 'transcriber', scope: 'publish' });
    const http = await postJson(
      `${replicas[2]?.url ?? ''}/api/rooms/call-1/events`,
      { type: 'transcript', data: { line: 'hello' } },
      { authorization: `Bearer ${service}` },
    );
    expect(http.status).toBe(202);
    const ids = [ackA.ok && ackA.id, ackB.ok && ackB.id, (http.body as { id: string }).id];
    for (const client of [alice, bob]) {
      await waitFor('three room events', () => (client.events.length >= 3 ? true : undefined));
      expect(client.events.map((e) => e.id).sort()).toEqual([...ids].sort());
    }
    const transcript = alice.events.find((e) => e.type === 'transcript') as RoomEvent;
    expect(transcript).toMatchObject({ from: 'service:transcriber', data: { line: 'hello' } });
    expect(alice.events.find((e) => e.id === ids[1])?.from).toBe(bob.session.peerId);

    // The HTTP peers view agrees, across replicas.
    const peers = (await (
      await fetch(`${replicas[2]?.url ?? ''}/api/rooms/call-1/peers`, {
        headers: { authorization: `Bearer ${service}` },
      })
    ).json()) as { peers: PeerInfo[] };
    expect(peers.peers.map((p) => p.userId).sort()).toEqual(['alice', 'bob']);
  });

  it('keeps rooms apart: no signals or events across rooms, and a spoofed sender is refused', async () => {
    const xena = await join(0, 'xena', 'room-x');
    const yuri = await join(1, 'yuri', 'room-y');
    const ack = (await xena.socket.emitWithAck('signal', { to: yuri.session.peerId, kind: 'offer', data: {} })) as Ack;
    expect(ack).toMatchObject({ ok: false, error: { code: 'not_in_room' } });
    const spoof = (await xena.socket.emitWithAck('signal', {
      to: yuri.session.peerId,
      kind: 'offer',
      data: {},
      from: 'someone-else',
    } as never)) as Ack;
    expect(spoof).toMatchObject({ ok: false, error: { code: 'invalid_payload' } });
    await xena.socket.emitWithAck('publish', { type: 'secret', data: 1 });
    await waitFor('own event', () => (xena.events.length === 1 ? true : undefined));
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(yuri.events).toEqual([]);

    // A user outside the room cannot list its peers over HTTP.
    const outsider = await devLogin(replicas[0]?.url ?? '', 'outsider');
    const response = await fetch(`${replicas[0]?.url ?? ''}/api/rooms/room-x/peers`, {
      headers: { authorization: `Bearer ${outsider}` },
    });
    expect(response.status).toBe(403);
  });

  it('lets exactly one of two replicas redeem the same token at once', async () => {
    const [r1, r2] = [replicas[0]?.url ?? '', replicas[1]?.url ?? ''];
    const minted = await mintToken(r1, await devLogin(r1, 'racer'), 'race');
    const outcomes = await Promise.allSettled([connectWithToken(r1, minted.token), connectWithToken(r2, minted.token)]);
    const won = outcomes.filter((o) => o.status === 'fulfilled');
    const lost = outcomes.filter((o) => o.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect(String((lost[0] as PromiseRejectedResult).reason)).toContain('token_used');
    for (const o of won) clients.push(o.value);
  });

  it('announces the peers of a kill -9ed replica as left, and stops listing them', async () => {
    const survivor = await join(0, 'survivor', 'fragile');
    const doomedJoined = nextEvent(survivor.socket, 'peer:joined', (p) => p.userId === 'doomed');
    const doomed = await join(2, 'doomed', 'fragile');
    await doomedJoined;
    const left = nextEvent(
      survivor.socket,
      'peer:left',
      (p) => p.peerId === doomed.session.peerId,
      (PRESENCE_TTL_SECONDS * 5 + 5) * 1000,
    );
    const killedAt = Date.now();
    await replicas[2]?.stop('SIGKILL');
    expect(await left).toEqual({ peerId: doomed.session.peerId, reason: 'replica_lost' });
    // The design bound is 15 s at the default TTL; here the TTL is 3 s.
    expect(Date.now() - killedAt).toBeLessThan(15_000);
    const peers = (await survivor.socket.emitWithAck('peers', {})) as Ack<{ peers: PeerInfo[] }>;
    expect(peers.ok && peers.peers.map((p) => p.userId)).toEqual(['survivor']);
    for (const replica of replicas.slice(0, 2)) expect(replica.output()).not.toMatch(/unhandled/i);
  });
});
