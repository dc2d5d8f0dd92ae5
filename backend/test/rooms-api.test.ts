import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BatchPublishResponse, RoomDetailResponse, RoomsListResponse, WebhookBody } from '@switchboard/contract';
import { accessToken, joinRoom, postJson, type ConnectedClient } from '../../support/client.js';
import { startTestGateway, type TestGateway } from '../../support/gateway.js';
import { startReplicas, type GatewayProcess } from '../../support/gateway-process.js';
import { waitFor } from '../../support/ports.js';
import { startTopology, type TestTopology, type TopologyKind } from '../../support/redis-topology.js';
import { startWebhookReceiver, type WebhookReceiver } from '../../support/webhook-receiver.js';

const reader = accessToken({ sub: 'backend', scope: 'read' });
const publisher = accessToken({ sub: 'backend', scope: 'publish' });
const get = async (url: string, token = reader): Promise<{ status: number; body: unknown }> => {
  const response = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
  return { status: response.status, body: (await response.json()) as unknown };
};
const received = async (receiver: WebhookReceiver): Promise<WebhookBody[]> =>
  (await receiver.received()).map((hook) => JSON.parse(hook.body) as WebhookBody);

/** The server API for rooms, against gateways that share `urls`' Redis (or one in memory). */
function roomsApiTests(setup: () => { urls: string[]; receiver: WebhookReceiver; replicaIds: string[] }) {
  const clients: ConnectedClient[] = [];
  afterAll(() => {
    for (const client of clients) client.close();
  });
  const url = (i: number) => setup().urls[i % setup().urls.length] ?? '';

  it('lists active rooms with member counts and last seq, paged with a cursor, for scope read', async () => {
    const joins: Array<[number, string, string]> = [
      [0, 'ann', 'api-a'],
      [1, 'ben', 'api-a'],
      [0, 'cat', 'api-b'],
      [1, 'dan', 'api-c'],
    ];
    for (const [replica, user, room] of joins) clients.push(await joinRoom(url(replica), user, room));
    for (const n of [1, 2]) {
      const published = await postJson(
        `${url(1)}/api/rooms/api-a/events`,
        { type: 'note', data: { n } },
        { authorization: `Bearer ${publisher}` },
      );
      expect(published.status).toBe(202);
    }

    expect((await fetch(`${url(0)}/api/rooms`)).status).toBe(401);
    expect((await get(`${url(0)}/api/rooms`, publisher)).status).toBe(403);
    const all = await waitFor('every room listed', async () => {
      const body = (await get(`${url(0)}/api/rooms`)).body as RoomsListResponse;
      return body.rooms.length === 3 && body.rooms[0]?.members === 2 ? body : undefined;
    });
    expect(all).toEqual({
      rooms: [
        { room: 'api-a', members: 2, top: 2 },
        { room: 'api-b', members: 1, top: 0 },
        { room: 'api-c', members: 1, top: 0 },
      ],
    });

    const first = (await get(`${url(1)}/api/rooms?limit=2`)).body as RoomsListResponse;
    expect(first.rooms.map((room) => room.room)).toEqual(['api-a', 'api-b']);
    expect(typeof first.cursor).toBe('string');
    const second = await get(`${url(0)}/api/rooms?limit=2&cursor=${first.cursor ?? ''}`);
    expect(second.body).toEqual({ rooms: [{ room: 'api-c', members: 1, top: 0 }] });

    const bad = await get(`${url(0)}/api/rooms?cursor=${encodeURIComponent('{{{')}`);
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ error: { code: 'invalid_request' } });
    expect((await get(`${url(0)}/api/rooms?limit=101`)).status).toBe(400);
  });

  it('describes one room: members, position and the replicas serving it', async () => {
    const { status, body } = await get(`${url(1)}/api/rooms/api-a`);
    expect(status).toBe(200);
    const { epoch, ...rest } = body as RoomDetailResponse;
    expect(typeof epoch).toBe('string');
    expect(rest).toEqual({
      room: 'api-a',
      members: 2,
      top: 2,
      replicas: [...new Set(setup().replicaIds.slice(0, 2))].sort(),
    });
    const empty = await get(`${url(0)}/api/rooms/nobody-here`);
    expect(empty.body).toMatchObject({ room: 'nobody-here', members: 0, top: 0, replicas: [] });
    expect((await get(`${url(0)}/api/rooms/api-a`, publisher)).status).toBe(403);
    expect((await get(`${url(0)}/api/rooms/bad{room}`)).status).toBe(400);
  });

  it('publishes a batch into several rooms, each event with its own result', async () => {
    const member = clients.find((client) => client.session.room === 'api-c') as ConnectedClient;
    const batch = (events: unknown[], token = publisher) =>
      postJson(`${url(0)}/api/rooms/events:batch`, { events }, { authorization: `Bearer ${token}` });
    const answer = await batch([
      { room: 'api-a', type: 'note', data: { n: 3 } },
      { room: 'api-b', type: 'not a type!', data: {} },
      { room: 'api-c', type: 'note', data: { n: 1 }, idempotencyKey: 'batch-1' },
      { room: 'api-a', type: 'note', data: { n: 4 } },
      { room: 'api-c', type: 'note', data: { n: 1 }, idempotencyKey: 'batch-1' },
    ]);
    expect(answer.status).toBe(200);
    const { results } = answer.body as BatchPublishResponse;
    expect(results).toHaveLength(5);
    expect(results[0]).toMatchObject({ ok: true, seq: 3 });
    expect(results[1]).toMatchObject({ ok: false, error: { code: 'invalid_request' } });
    expect(results[2]).toMatchObject({ ok: true, seq: 1 });
    expect(results[3]).toMatchObject({ ok: true, seq: 4 });
    // The repeated key answers the first event and publishes nothing.
    expect(results[4]).toEqual(results[2]);
    await waitFor('the batch event', () => (member.events.length >= 1 ? true : undefined));
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(member.events.map((event) => event.data)).toEqual([{ n: 1 }]);

    expect((await batch([{ room: 'api-a', type: 'x' }], reader)).status).toBe(403);
    expect((await batch([])).status).toBe(400);
    const tooMany = await batch(Array.from({ length: 101 }, () => ({ room: 'api-a', type: 'x' })));
    expect(tooMany.status).toBe(400);
  });

  it('posts room.occupied and member.joined for these rooms', async () => {
    const hooks = await waitFor('webhooks', async () => {
      const got = (await received(setup().receiver)).filter((hook) => hook.room.startsWith('api-'));
      return got.filter((hook) => hook.type === 'room.occupied').length >= 3 ? got : undefined;
    });
    expect(
      hooks
        .filter((hook) => hook.type === 'room.occupied')
        .map((hook) => hook.room)
        .sort(),
    ).toEqual(['api-a', 'api-b', 'api-c']);
    await waitFor('member.joined', async () => {
      const got = (await received(setup().receiver)).filter(
        (h) => h.type === 'member.joined' && h.room.startsWith('api-'),
      );
      return got.length === 4 ? true : undefined;
    });
  });
}

for (const kind of ['standalone', 'cluster'] as TopologyKind[]) {
  describe(`server API for rooms, two replicas on ${kind}`, () => {
    let topology: TestTopology;
    let receiver: WebhookReceiver;
    let replicas: GatewayProcess[] = [];
    beforeAll(async () => {
      [topology, receiver] = await Promise.all([startTopology(kind), startWebhookReceiver()]);
      replicas = await startReplicas({ ...topology.env, PRESENCE_TTL_SECONDS: '3', WEBHOOK_URLS: receiver.url }, [
        `${kind}-1`,
        `${kind}-2`,
      ]);
    }, 90_000);
    afterAll(async () => {
      await Promise.all(replicas.map((replica) => replica.stop('SIGKILL')));
      await receiver?.close();
      await topology?.stop();
    });
    roomsApiTests(() => ({ urls: replicas.map((r) => r.url), receiver, replicaIds: replicas.map((r) => r.replica) }));
  });
}

describe('server API for rooms and webhooks in memory mode', () => {
  let gateway: TestGateway;
  let receiver: WebhookReceiver;
  beforeAll(async () => {
    receiver = await startWebhookReceiver();
    gateway = await startTestGateway({ WEBHOOK_URLS: receiver.url, LOG_LEVEL: 'warn' });
  }, 30_000);
  afterAll(async () => {
    await gateway?.close();
    await receiver?.close();
  });
  roomsApiTests(() => ({ urls: [gateway.url], receiver, replicaIds: ['in-process', 'in-process'] }));

  it('posts member.left and room.vacated when the last member leaves', async () => {
    const client = await joinRoom(gateway.url, 'eve', 'memory-room');
    client.close();
    const story = await waitFor('room.vacated', async () => {
      const got = (await received(receiver)).filter((hook) => hook.room === 'memory-room');
      return got.some((hook) => hook.type === 'room.vacated') ? got : undefined;
    });
    expect(story.map((hook) => hook.type)).toEqual(['room.occupied', 'member.joined', 'member.left', 'room.vacated']);
    expect(story[2]?.data).toEqual({ reason: 'left' });
  });
});
