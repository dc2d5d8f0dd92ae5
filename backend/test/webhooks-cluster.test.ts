import { createClient, createCluster } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WebhookBody } from '@switchboard/contract';
import { webhookBodySchema } from '@switchboard/contract/schemas';
import { joinRoom, type ConnectedClient } from '../../support/client.js';
import { startReplicas, type GatewayProcess } from '../../support/gateway-process.js';
import { createPartition, linksOf, nftUnusable, type Partition, type PortPair } from '../../support/partition.js';
import { untilReady } from '../../support/partition-scenario.js';
import { waitFor } from '../../support/ports.js';
import { startRedisCluster, type RedisClusterHandle } from '../../support/redis-cluster.js';
import { startWebhookReceiver, type ReceivedWebhook, type WebhookReceiver } from '../../support/webhook-receiver.js';
import { OUTBOX_PARTITIONS } from '../src/webhooks/index.js';
import { partitionOf } from '../src/webhooks/redis-outbox.js';

/**
 * Lifecycle webhooks on a Redis Cluster, where the outbox stream is in another slot than
 * the room's presence hash, so the presence scripts cannot write it themselves: they keep
 * the webhooks in the room's slot and the replica moves them (docs/architecture.md,
 * "Lifecycle webhooks"). The gaps between the two are performed for real: the gateways
 * cut off from the outbox's master (nftables), the last member's leave applied, and then
 * either that master drops the connections with the write on them, or the leave's replica
 * is killed before it could write the outbox.
 */
const SECRET = 'webhook-test-secret-0123456789abcdef0123456789';
const PRESENCE_TTL_SECONDS = 3;

const unusable = await nftUnusable();
if (unusable) console.warn(`Cluster webhook crash test skipped: ${unusable}`);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
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
const occupancy = (hooks: WebhookBody[]) =>
  hooks.filter((hook) => hook.type.startsWith('room.')).map((hook) => hook.type);
const alternates = (story: string[]) =>
  story.every((type, i) => type === (i % 2 === 0 ? 'room.occupied' : 'room.vacated'));

describe('lifecycle webhooks on a Redis Cluster, two replicas', { timeout: 90_000 }, () => {
  let cluster: RedisClusterHandle;
  let receiver: WebhookReceiver;
  let replicas: [GatewayProcess, GatewayProcess];
  let env: Record<string, string>;
  /** Replicas a test started of its own. */
  const extra: GatewayProcess[] = [];
  let partition: Partition | undefined;
  const clients: ConnectedClient[] = [];
  const join = async (gateway: GatewayProcess, user: string, room: string) => {
    const client = await joinRoom(gateway.url, user, room);
    clients.push(client);
    return client;
  };
  const leave = async (client: ConnectedClient) => {
    const gone = new Promise((resolve) => client.socket.once('disconnect', resolve));
    client.close();
    await gone;
  };
  /** A client of the whole Cluster, for the test's own reads. */
  const withCluster = async <T>(read: (c: ReturnType<typeof createCluster>) => Promise<T>): Promise<T> => {
    const c = createCluster({ rootNodes: cluster.urls.map((url) => ({ url })) });
    c.on('error', () => undefined);
    await c.connect();
    try {
      return await read(c);
    } finally {
      c.destroy();
    }
  };

  beforeAll(async () => {
    [cluster, receiver] = await Promise.all([startRedisCluster(), startWebhookReceiver()]);
    env = {
      REDIS_CLUSTER_URLS: cluster.urls.join(','),
      REDIS_UNRESPONSIVE_AFTER_MS: '1000',
      PRESENCE_TTL_SECONDS: String(PRESENCE_TTL_SECONDS),
      WEBHOOK_URLS: receiver.url,
      WEBHOOK_SECRET: SECRET,
    };
    replicas = await startReplicas(env, ['cw1', 'cw2']);
  }, 60_000);
  afterAll(async () => {
    for (const client of clients) client.close();
    await partition?.close();
    await Promise.all([...(replicas ?? []), ...extra].map((replica) => replica.stop('SIGKILL')));
    await receiver?.close();
    await cluster?.stop();
  });

  it('tells each room occupied and vacated once per transition while members churn through both replicas', async () => {
    const [a, b] = replicas;
    const rooms = Array.from({ length: 8 }, (_, i) => `cchurn-${i}`);
    const inRoom = new Map<string, { client: ConnectedClient; room: string }>();
    const joins = new Map<string, number>();
    const leaves = new Map<string, number>();
    const count = (map: Map<string, number>, room: string) => map.set(room, (map.get(room) ?? 0) + 1);
    let step = 0;
    const doJoin = async (user: string, room: string, gateway = step++ % 2 === 0 ? a : b) => {
      const client = await join(gateway, user, room);
      inRoom.set(user, { client, room });
      count(joins, room);
    };
    const doLeave = async (user: string) => {
      const member = inRoom.get(user);
      if (!member) return;
      inRoom.delete(user);
      await leave(member.client);
      count(leaves, member.room);
    };

    // Two members into each empty room at the same moment, one through each replica.
    await Promise.all(rooms.flatMap((room, i) => [doJoin(`pa-${i}`, room, a), doJoin(`pb-${i}`, room, b)]));
    await Promise.all([...inRoom.keys()].map((user) => doLeave(user)));
    let seed = 7;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const users = Array.from({ length: 24 }, (_, i) => `cm-${i}`);
    for (let round = 0; round < 12; round++) {
      const busy = new Set<string>();
      const batch: Array<Promise<void>> = [];
      for (let k = 0; k < 8; k++) {
        const user = users[random(users.length)] as string;
        if (busy.has(user)) continue;
        busy.add(user);
        batch.push(inRoom.has(user) ? doLeave(user) : doJoin(user, rooms[random(rooms.length)] as string));
      }
      await Promise.all(batch);
    }
    const occupied = new Set([...inRoom.values()].map(({ room }) => room));

    const expected = [...joins.values(), ...leaves.values()].reduce((sum, n) => sum + n, 0);
    await waitFor(
      'every join and leave webhook',
      async () => {
        const members = (await receiver.received()).filter(
          (hook) => hook.body.includes('"room":"cchurn-') && hook.body.includes('"type":"member.'),
        );
        return members.length >= expected || undefined;
      },
      { timeoutMs: 30_000, intervalMs: 250 },
    );
    // Time for a stray repeat to arrive before judging.
    await sleep(1_000);
    const hooks = (await receiver.received()).filter((hook) => hook.body.includes('"room":"cchurn-'));
    const ids = hooks.map((hook) => parse(hook).id);
    expect(new Set(ids).size).toBe(ids.length);
    const perRoom = byRoom(hooks);
    for (const room of rooms) {
      const story = perRoom.get(room) ?? [];
      const transitions = occupancy(story);
      expect(alternates(transitions), `${room}: ${transitions.join(' ')}`).toBe(true);
      expect(transitions.at(-1)).toBe(occupied.has(room) ? 'room.occupied' : 'room.vacated');
      expect(story.filter((hook) => hook.type === 'member.joined')).toHaveLength(joins.get(room) ?? 0);
      expect(story.filter((hook) => hook.type === 'member.left')).toHaveLength(leaves.get(room) ?? 0);
      for (const left of story.filter((hook) => hook.type === 'member.left')) {
        const joinedAt = story.findIndex((hook) => hook.type === 'member.joined' && hook.peerId === left.peerId);
        expect(joinedAt).toBeGreaterThanOrEqual(0);
        expect(story.indexOf(left)).toBeGreaterThan(joinedAt);
      }
    }
    // Everything moved: nothing is left waiting in the rooms' slots.
    const pending = await withCluster((c) => Promise.all(rooms.map((room) => c.lLen(`presence:{${room}}:hooks`))));
    expect(pending).toEqual(rooms.map(() => 0));
    for (const user of [...inRoom.keys()]) await doLeave(user);
  });

  /** A room whose presence hash and outbox stream are on two different masters (their ports). */
  const splitRoom = (prefix: string) =>
    withCluster(async (c) => {
      const slots = await c.sendCommand<Array<[number, number, [string, number]]>>(undefined, true, [
        'CLUSTER',
        'SLOTS',
      ]);
      const masterOf = async (key: string) => {
        const slot = Number(await c.sendCommand(key, true, ['CLUSTER', 'KEYSLOT', key]));
        const owner = slots.find(([from, to]) => slot >= from && slot <= to)?.[2][1];
        if (owner === undefined) throw new Error(`no master for ${key}`);
        return owner;
      };
      for (let i = 0; i < 100; i++) {
        const room = `${prefix}-${i}`;
        const presenceMaster = await masterOf(`presence:{${room}}`);
        const outboxMaster = await masterOf(`webhooks:{outbox:${partitionOf(room, OUTBOX_PARTITIONS)}}`);
        if (presenceMaster !== outboxMaster) return { room, presenceMaster, outboxMaster };
      }
      throw new Error('no room with its presence and its outbox on two masters');
    });
  /** Joins `user` to `room` on `gateway` and waits until its room.occupied and member.joined arrived. */
  const occupy = async (gateway: GatewayProcess, user: string, room: string) => {
    const member = await join(gateway, user, room);
    await waitFor(
      'room.occupied and member.joined',
      async () => ((byRoom(await receiver.received()).get(room)?.length ?? 0) >= 2 ? true : undefined),
      { timeoutMs: 15_000 },
    );
    return member;
  };
  /** Drops every connection of both gateways to the master on `port`; resolves with gateway A's. */
  const cutOff = async (port: number) => {
    const [a, b] = replicas;
    const aLinks = await linksOf(port, a.pid);
    const bLinks = await linksOf(port, b.pid);
    expect(aLinks.length).toBeGreaterThan(0);
    expect(bLinks.length).toBeGreaterThan(0);
    partition = await createPartition();
    await partition.dropPairs([...aLinks, ...bLinks]);
    return aLinks;
  };
  /** Closes the member's socket and waits until its leave emptied the room's hash on the master on `port`. */
  const leaveAndWait = async (member: ConnectedClient, room: string, port: number) => {
    const onPresenceMaster = createClient({ url: `redis://127.0.0.1:${port}` });
    onPresenceMaster.on('error', () => undefined);
    await onPresenceMaster.connect();
    try {
      member.close();
      await waitFor(
        'the leave applied',
        async () => ((await onPresenceMaster.hLen(`presence:{${room}}`)) === 0 ? true : undefined),
        { timeoutMs: 10_000 },
      );
    } finally {
      onPresenceMaster.destroy();
    }
  };
  /** Closes these connections on the side of the Redis server on `port` (CLIENT KILL). */
  const closeOnServer = async (port: number, links: PortPair[]) => {
    const server = createClient({ url: `redis://127.0.0.1:${port}` });
    server.on('error', () => undefined);
    await server.connect();
    try {
      for (const { local } of links) {
        await server.sendCommand(['CLIENT', 'KILL', 'ADDR', `127.0.0.1:${local}`]).catch(() => undefined);
      }
    } finally {
      server.destroy();
    }
  };
  /**
   * Waits for the room's room.vacated, and a while longer for a repeat; expects the whole
   * story once, the vacated one made by `maker`, and nothing left pending.
   */
  const expectVacatedOnce = async (room: string, maker: string) => {
    const story = await waitFor(
      `room.vacated of ${room}`,
      async () => {
        const got = byRoom(await receiver.received()).get(room) ?? [];
        return got.some((hook) => hook.type === 'room.vacated') ? got : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 250 },
    );
    // Another heartbeat, flush or reap must not repeat it.
    await sleep(PRESENCE_TTL_SECONDS * 1_000);
    const final = byRoom(await receiver.received()).get(room) ?? [];
    expect(final.length).toBe(story.length);
    const unique = [...new Map(final.map((hook) => [hook.id, hook])).values()];
    expect(unique.map((hook) => hook.type)).toEqual(['room.occupied', 'member.joined', 'member.left', 'room.vacated']);
    expect(final.filter((hook) => hook.type === 'room.vacated')).toHaveLength(1);
    expect(unique[2]?.data).toEqual({ reason: 'left' });
    expect(unique[3]?.replica).toBe(maker);
    expect(await withCluster((c) => c.lLen(`presence:{${room}}:hooks`))).toBe(0);
  };

  it.skipIf(unusable !== undefined)(
    'sends room.vacated once when the outbox was out of reach at the last leave, as soon as it is back',
    async () => {
      const [a, b] = replicas;
      const { room, presenceMaster, outboxMaster } = await splitRoom('cretry');
      const member = await occupy(a, 'unlucky', room);
      const aLinks = await cutOff(outboxMaster);
      await untilReady([a.url, b.url], 'the outbox master judged silent', (r) => r.redis === 'unresponsive');
      await leaveAndWait(member, room, presenceMaster);
      await sleep(1_000);
      // The master drops the connections (as a restart would): a write that waited on them is
      // gone, never applied late.
      await closeOnServer(outboxMaster, aLinks);
      await partition?.close();
      partition = undefined;
      // Moved by its own replica's heartbeat, once the claim of the failed move lapsed.
      await expectVacatedOnce(room, a.replica);
    },
  );

  it.skipIf(unusable !== undefined)(
    'sends room.vacated once when the replica whose leave emptied the room is killed before it reached the outbox',
    async () => {
      const [a] = replicas;
      const { room, presenceMaster, outboxMaster } = await splitRoom('ccrash');
      const member = await occupy(a, 'doomed', room);
      // Both gateways cut off from the outbox's master, and from it only.
      const aLinks = await cutOff(outboxMaster);
      // The last member leaves: its replica's presence script empties the room on one master,
      // and its write to the outbox on the other cannot get through.
      await leaveAndWait(member, room, presenceMaster);
      // Past the 500 ms deadline of that write.
      await sleep(1_000);
      await a.stop('SIGKILL');
      // The killed process's connections may still hold the unsent write; its kernel would
      // send it once the cut heals. Closed on the server's side first, nothing of it can land.
      await closeOnServer(outboxMaster, aLinks);
      await partition?.heal();
      // The body its script decided, moved by the surviving replica (its reaper or heartbeat).
      await expectVacatedOnce(room, a.replica);
    },
  );

  it('sends the drained member.left and room.vacated of a replica shut down gracefully', async () => {
    const [, b] = replicas;
    // Takes over the outbox partitions the shut-down replica hands back.
    const [c] = await startReplicas(env, ['cw3']);
    extra.push(c);
    const room = 'cdrain';
    const members = [await join(b, 'drained-1', room), await join(b, 'drained-2', room)];
    await waitFor(
      'room.occupied and two member.joined',
      async () => ((byRoom(await receiver.received()).get(room)?.length ?? 0) >= 3 ? true : undefined),
      { timeoutMs: 15_000 },
    );
    expect(await b.stop('SIGTERM')).toBe(0);
    for (const member of members) member.close();
    const story = await waitFor(
      "the drain's webhooks",
      async () => {
        const got = byRoom(await receiver.received()).get(room) ?? [];
        return got.some((hook) => hook.type === 'room.vacated') ? got : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 250 },
    );
    const unique = [...new Map(story.map((hook) => [hook.id, hook])).values()];
    expect(unique.map((hook) => hook.type)).toEqual([
      'room.occupied',
      'member.joined',
      'member.joined',
      'member.left',
      'member.left',
      'room.vacated',
    ]);
    expect(unique.filter((hook) => hook.type === 'member.left').map((hook) => hook.data)).toEqual([
      { reason: 'drained' },
      { reason: 'drained' },
    ]);
    expect(await withCluster((client) => client.lLen(`presence:{${room}}:hooks`))).toBe(0);
  });
});
