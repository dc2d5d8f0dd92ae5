import { createHmac, timingSafeEqual } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Ack, PublishEventResponse, WebhookBody } from '@switchboard/contract';
import { webhookBodySchema } from '@switchboard/contract/schemas';
import { accessToken, joinRoom, postJson, scrapeMetric, type ConnectedClient } from '../../support/client.js';
import { startReplicas, type GatewayProcess } from '../../support/gateway-process.js';
import { waitFor } from '../../support/ports.js';
import { startTopology, type TestTopology } from '../../support/redis-topology.js';
import { startWebhookReceiver, type ReceivedWebhook, type WebhookReceiver } from '../../support/webhook-receiver.js';
import { OUTBOX_PARTITIONS } from '../src/webhooks/index.js';
import { partitionOf } from '../src/webhooks/redis-outbox.js';

const SECRET = 'webhook-test-secret-0123456789abcdef0123456789';
const PRESENCE_TTL_SECONDS = 3;

/** What a receiver does with `Switchboard-Signature` (the README's example, in short). */
function verify(body: string, header: string | undefined, secret: string, nowMs: number, toleranceSeconds = 300) {
  const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header ?? '');
  if (!match?.[1] || !match[2]) return false;
  if (Math.abs(nowMs / 1000 - Number(match[1])) > toleranceSeconds) return false;
  const expected = createHmac('sha256', secret).update(`${match[1]}.${body}`).digest();
  return timingSafeEqual(expected, Buffer.from(match[2], 'hex'));
}

const parse = (hook: ReceivedWebhook): WebhookBody => webhookBodySchema.parse(JSON.parse(hook.body));

/** Each room's webhooks, in the order received. */
function byRoom(hooks: ReceivedWebhook[]): Map<string, WebhookBody[]> {
  const rooms = new Map<string, WebhookBody[]>();
  for (const hook of hooks) {
    const body = parse(hook);
    rooms.set(body.room, [...(rooms.get(body.room) ?? []), body]);
  }
  return rooms;
}

/** The room.occupied / room.vacated story of a room: must alternate, starting occupied. */
function occupancy(hooks: WebhookBody[]): string[] {
  return hooks.filter((hook) => hook.type.startsWith('room.')).map((hook) => hook.type);
}
const alternates = (story: string[]) =>
  story.every((type, i) => type === (i % 2 === 0 ? 'room.occupied' : 'room.vacated'));

describe('lifecycle webhooks and idempotent publish, three replicas on one Redis', () => {
  let topology: TestTopology;
  let receiver: WebhookReceiver;
  let replicas: GatewayProcess[];
  const clients: ConnectedClient[] = [];
  const service = accessToken({ sub: 'backend', scope: 'publish read' });
  const url = (i: number) => replicas[i % replicas.length]?.url ?? '';
  const join = async (replica: number, user: string, room: string) => {
    const client = await joinRoom(url(replica), user, room);
    clients.push(client);
    return client;
  };
  /** Closes a member's socket and waits until its replica has let it go. */
  const leave = async (client: ConnectedClient) => {
    const gone = new Promise((resolve) => client.socket.once('disconnect', resolve));
    client.close();
    await gone;
  };

  beforeAll(async () => {
    [topology, receiver] = await Promise.all([startTopology('standalone'), startWebhookReceiver()]);
    replicas = await startReplicas(
      {
        ...topology.env,
        PRESENCE_TTL_SECONDS: String(PRESENCE_TTL_SECONDS),
        WEBHOOK_URLS: receiver.url,
        WEBHOOK_SECRET: SECRET,
        // Kept from the receiver: publishes are not lifecycle events, this proves the filter.
        WEBHOOK_EVENTS: 'room.occupied,room.vacated,member.joined,member.left',
      },
      ['w1', 'w2', 'w3'],
    );
  }, 60_000);
  afterAll(async () => {
    for (const client of clients) client.close();
    await Promise.all((replicas ?? []).map((replica) => replica.stop('SIGKILL')));
    await receiver?.close();
    await topology?.stop();
  });

  it('answers ten concurrent publishes of one idempotency key, through three replicas, with one event', async () => {
    const members = await Promise.all([0, 1, 2].map((i) => join(i, `idem-${i}`, 'idem-room')));
    const socketAcks = await Promise.all(
      Array.from(
        { length: 10 },
        (_, i) =>
          members[i % 3]?.socket.emitWithAck('publish', {
            type: 'chat',
            data: { text: 'once' },
            idempotencyKey: 'socket-key-1',
          }) as Promise<Ack<PublishEventResponse>>,
      ),
    );
    const first = socketAcks[0];
    expect(first).toMatchObject({ ok: true, seq: 1 });
    for (const ack of socketAcks) expect(ack).toEqual(first);

    const httpAnswers = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        postJson(
          `${url(i)}/api/rooms/idem-room/events`,
          { type: 'chat', data: { text: 'http once' }, idempotencyKey: 'http-key-1' },
          { authorization: `Bearer ${service}` },
        ),
      ),
    );
    for (const answer of httpAnswers) {
      expect(answer.status).toBe(202);
      expect(answer.body).toEqual(httpAnswers[0]?.body);
    }
    expect(httpAnswers[0]?.body).toMatchObject({ seq: 2 });

    // Another key is another event; the same key in another room too.
    const other = await postJson(
      `${url(0)}/api/rooms/idem-room/events`,
      { type: 'chat', data: { text: 'next' }, idempotencyKey: 'http-key-2' },
      { authorization: `Bearer ${service}` },
    );
    expect(other.body).toMatchObject({ seq: 3 });
    const elsewhere = await postJson(
      `${url(1)}/api/rooms/idem-other/events`,
      { type: 'chat', data: {}, idempotencyKey: 'http-key-1' },
      { authorization: `Bearer ${service}` },
    );
    expect(elsewhere.body).toMatchObject({ seq: 1 });

    for (const member of members) {
      await waitFor('three events', () => (member.events.length >= 3 ? true : undefined));
      expect(member.events.map((event) => event.seq)).toEqual([1, 2, 3]);
      expect(member.events[0]?.id).toBe(first?.ok ? first.id : '');
    }
    const history = await fetch(`${url(2)}/api/rooms/idem-room/events`, {
      headers: { authorization: `Bearer ${service}` },
    });
    expect(((await history.json()) as { events: unknown[] }).events).toHaveLength(3);
    const repeats = await Promise.all(replicas.map((r) => scrapeMetric(r.url, 'switchboard_idempotent_repeats_total')));
    expect(repeats.reduce((sum, n) => sum + n, 0)).toBe(18);

    // A key longer than 64 characters is refused, and nothing is published.
    const long = await members[0]?.socket.emitWithAck('publish', {
      type: 'chat',
      data: {},
      idempotencyKey: 'k'.repeat(65),
    });
    expect(long).toMatchObject({ ok: false, error: { code: 'invalid_payload' } });
    for (const member of members) await leave(member);
  });

  it('tells each room occupied and vacated exactly once per transition while 50 members churn through 20 rooms', async () => {
    const rooms = Array.from({ length: 20 }, (_, i) => `churn-${i}`);
    const inRoom = new Map<string, ConnectedClient>();
    const roomOf = new Map<string, string>();
    const joins = new Map<string, number>();
    const leaves = new Map<string, number>();
    const count = (map: Map<string, number>, room: string) => map.set(room, (map.get(room) ?? 0) + 1);
    let step = 0;
    const doJoin = async (user: string, room: string) => {
      const client = await join(step++, user, room);
      inRoom.set(user, client);
      roomOf.set(user, room);
      count(joins, room);
    };
    const doLeave = async (user: string) => {
      const client = inRoom.get(user);
      const room = roomOf.get(user);
      if (!client || !room) return;
      inRoom.delete(user);
      await leave(client);
      count(leaves, room);
    };

    // Two members into each empty room at the same moment, through different replicas.
    await Promise.all(
      rooms.flatMap((room, i) => [
        (async () => {
          const client = await join(i, `pair-a-${i}`, room);
          inRoom.set(`pair-a-${i}`, client);
          roomOf.set(`pair-a-${i}`, room);
          count(joins, room);
        })(),
        (async () => {
          const client = await join(i + 1, `pair-b-${i}`, room);
          inRoom.set(`pair-b-${i}`, client);
          roomOf.set(`pair-b-${i}`, room);
          count(joins, room);
        })(),
      ]),
    );
    // The pairs leave, and 50 members join and leave in a random order, ten at a time.
    await Promise.all([...inRoom.keys()].map((user) => doLeave(user)));
    let seed = 17;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const users = Array.from({ length: 50 }, (_, i) => `member-${i}`);
    for (let round = 0; round < 16; round++) {
      const busy = new Set<string>();
      const batch: Array<Promise<void>> = [];
      for (let k = 0; k < 10; k++) {
        const user = users[random(users.length)] as string;
        if (busy.has(user)) continue;
        busy.add(user);
        batch.push(inRoom.has(user) ? doLeave(user) : doJoin(user, rooms[random(rooms.length)] as string));
      }
      await Promise.all(batch);
    }
    const occupied = new Set(roomOf.size > 0 ? [...inRoom.keys()].map((user) => roomOf.get(user)) : []);

    const expectedHooks = [...joins.values(), ...leaves.values()].reduce((sum, n) => sum + n, 0);
    const settled = await waitFor(
      'every join and leave webhook',
      async () => {
        const hooks = (await receiver.received()).filter((hook) => hook.body.includes('"room":"churn-'));
        const members = hooks.filter((hook) => hook.body.includes('"type":"member.'));
        return members.length >= expectedHooks ? hooks : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    // Give any stray duplicate time to arrive before judging.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const hooks = (await receiver.received()).filter((hook) => hook.body.includes('"room":"churn-'));
    expect(hooks.length).toBeGreaterThanOrEqual(settled.length);
    const ids = hooks.map((hook) => parse(hook).id);
    expect(new Set(ids).size).toBe(ids.length);
    const perRoom = byRoom(hooks);
    for (const room of rooms) {
      const story = perRoom.get(room) ?? [];
      const rooms = occupancy(story);
      expect(alternates(rooms), `${room}: ${rooms.join(' ')}`).toBe(true);
      expect(rooms[rooms.length - 1]).toBe(occupied.has(room) ? 'room.occupied' : 'room.vacated');
      expect(story.filter((hook) => hook.type === 'member.joined')).toHaveLength(joins.get(room) ?? 0);
      expect(story.filter((hook) => hook.type === 'member.left')).toHaveLength(leaves.get(room) ?? 0);
      // Within a room, what a member did arrives in the order it happened.
      for (const hook of story.filter((h) => h.type === 'member.left')) {
        const joinedAt = story.findIndex((h) => h.type === 'member.joined' && h.peerId === hook.peerId);
        expect(joinedAt).toBeGreaterThanOrEqual(0);
        expect(story.indexOf(hook)).toBeGreaterThan(joinedAt);
        expect(hook.data).toEqual({ reason: 'left' });
      }
    }
    for (const user of [...inRoom.keys()]) await doLeave(user);
  }, 180_000);

  it('shares the outbox among the replicas: each delivers its part of the partitions and of the webhooks', async () => {
    const partitions = await waitFor('the outbox partitions split between the three replicas', async () => {
      const held = await Promise.all(replicas.map((r) => scrapeMetric(r.url, 'switchboard_webhook_outbox_partitions')));
      return held.reduce((sum, n) => sum + n, 0) === OUTBOX_PARTITIONS && held.every((n) => n >= 2) ? held : undefined;
    });
    expect(Math.max(...partitions)).toBeLessThanOrEqual(Math.ceil(OUTBOX_PARTITIONS / 3));
    // A room in every partition: each replica has some of their webhooks to deliver.
    const rooms = new Map<number, string>();
    for (let i = 0; rooms.size < OUTBOX_PARTITIONS; i++) {
      const room = `share-${i}`;
      if (!rooms.has(partitionOf(room, OUTBOX_PARTITIONS))) rooms.set(partitionOf(room, OUTBOX_PARTITIONS), room);
    }
    const before = await Promise.all(replicas.map((r) => scrapeMetric(r.url, 'switchboard_webhooks_delivered_total')));
    await Promise.all([...rooms.values()].map((room, i) => join(i, `sharer-${i}`, room)));
    await waitFor('member.joined of every room', async () => {
      const hooks = (await receiver.received()).map(parse);
      return [...rooms.values()].every((room) => hooks.some((h) => h.type === 'member.joined' && h.room === room))
        ? true
        : undefined;
    });
    const after = await Promise.all(replicas.map((r) => scrapeMetric(r.url, 'switchboard_webhooks_delivered_total')));
    after.forEach((count, i) => expect(count).toBeGreaterThan(before[i] ?? 0));
  });

  it('signs every webhook: the signature verifies, and not for a tampered body', async () => {
    const hooks = await receiver.received();
    expect(hooks.length).toBeGreaterThan(0);
    for (const hook of hooks) expect(verify(hook.body, hook.signature, SECRET, hook.at)).toBe(true);
    const hook = hooks[0] as ReceivedWebhook;
    const tampered = hook.body.replace('"room":"', '"room":"x');
    expect(verify(tampered, hook.signature, SECRET, hook.at)).toBe(false);
    expect(verify(hook.body, hook.signature, 'another-secret', hook.at)).toBe(false);
    // Replayed an hour later: outside a five-minute window.
    expect(verify(hook.body, hook.signature, SECRET, hook.at + 3_600_000)).toBe(false);
    // The filter kept what WEBHOOK_EVENTS does not name.
    expect(hooks.every((h) => parse(h).type !== 'upstream.minted')).toBe(true);
  });

  it('loses nothing while the receiver is down for 30 s, and delivers the backlog in order per room', async () => {
    await receiver.behave({ kind: 'drop' });
    const downSince = Date.now();
    const rooms = ['down-1', 'down-2', 'down-3'];
    // Per room: a joins, b joins, a leaves, b leaves, through different replicas.
    await Promise.all(
      rooms.map(async (room, i) => {
        const a = await join(i, `${room}-a`, room);
        const b = await join(i + 1, `${room}-b`, room);
        await leave(a);
        // Its replica wrote the leave before b's goes out from another replica.
        await waitFor(`${room}-a gone from Redis`, () =>
          topology.withClient(async (c) => ((await c.hLen(`presence:{${room}}`)) === 1 ? true : undefined)),
        );
        await leave(b);
      }),
    );
    await waitFor('attempts against the down receiver', async () =>
      (await receiver.attempts()) > 0 ? true : undefined,
    );
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, 30_000 - (Date.now() - downSince))));
    const retried = await Promise.all(replicas.map((r) => scrapeMetric(r.url, 'switchboard_webhooks_retried_total')));
    expect(retried.reduce((sum, n) => sum + n, 0)).toBeGreaterThan(0);
    await receiver.behave({ kind: 'accept' });

    const perRoom = await waitFor(
      'the backlog',
      async () => {
        const got = byRoom((await receiver.received()).filter((hook) => hook.body.includes('"room":"down-')));
        return rooms.every((room) => (got.get(room)?.length ?? 0) >= 6) ? got : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 500 },
    );
    for (const room of rooms) {
      const story = (perRoom.get(room) ?? []).map((hook) =>
        hook.type.startsWith('member.') ? `${hook.type} ${hook.userId ?? ''}` : hook.type,
      );
      expect(story).toEqual([
        'room.occupied',
        `member.joined ${room}-a`,
        `member.joined ${room}-b`,
        `member.left ${room}-a`,
        `member.left ${room}-b`,
        'room.vacated',
      ]);
    }
    const lag = await Promise.all(replicas.map((r) => scrapeMetric(r.url, 'switchboard_webhook_lag_seconds_count')));
    expect(lag.reduce((sum, n) => sum + n, 0)).toBeGreaterThan(0);
  }, 180_000);

  it('sends room.vacated exactly once when the replica holding the last member is killed', async () => {
    const victim = replicas[2] as GatewayProcess;
    const member = await join(2, 'doomed', 'crash-room');
    await waitFor('room.occupied and member.joined', async () =>
      (await receiver.received()).filter((hook) => hook.body.includes('"room":"crash-room"')).length >= 2
        ? true
        : undefined,
    );
    await victim.stop('SIGKILL');
    member.close();
    replicas = replicas.slice(0, 2);
    const story = await waitFor(
      'room.vacated after the crash',
      async () => {
        const got = byRoom(await receiver.received()).get('crash-room') ?? [];
        return got.some((hook) => hook.type === 'room.vacated') ? got : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    // Presence reaps once per survivor's heartbeat: give a second reaper time to (wrongly) repeat it.
    await new Promise((resolve) => setTimeout(resolve, PRESENCE_TTL_SECONDS * 2_000));
    // Delivery is at least once: a webhook the killed replica sent but had not acknowledged is
    // sent again by the replica that takes its outbox partition over, with the same id.
    const unique = (hooks: WebhookBody[]) => [...new Map(hooks.map((hook) => [hook.id, hook])).values()];
    const final = unique(byRoom(await receiver.received()).get('crash-room') ?? []);
    expect(final).toHaveLength(unique(story).length);
    expect(final.map((hook) => hook.type)).toEqual(['room.occupied', 'member.joined', 'member.left', 'room.vacated']);
    expect(final[2]?.data).toEqual({ reason: 'crashed' });
    expect(final[3]?.replica).not.toBe('w3');
  }, 120_000);
});
