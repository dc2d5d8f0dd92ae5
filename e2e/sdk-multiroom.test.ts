/**
 * The SDK's many rooms on one connection, in Node against real gateways: two replicas on
 * one Redis, one client in three rooms over one socket, events landing in their own room,
 * and a `kill -9` of the client's replica recovering all three rooms through the other
 * replica with one new connection.
 */
import { io } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RecoveryOutcome, RoomEvent } from '@switchboard/contract';
import { createSwitchboard, type Room, type Switchboard } from '../frontend/src/sdk/index.js';
import { accessToken, postJson } from '../support/client.js';
import { startGatewayProcess, type GatewayProcess } from '../support/gateway-process.js';
import { waitFor } from '../support/ports.js';
import { startRedisServer, type RedisServerHandle } from '../support/redis-server.js';

const SUFFIX = Date.now().toString(36);
const ROOMS = ['lobby', 'call', 'feed'].map((name) => `${name}-${SUFFIX}`);

interface Joined {
  room: Room;
  texts: string[];
  recoveries: RecoveryOutcome[];
}

let redis: RedisServerHandle | undefined;
let first: GatewayProcess | undefined;
let second: GatewayProcess | undefined;
let switchboard: Switchboard | undefined;
/** Sockets the SDK opened, by gateway URL. */
const opened: string[] = [];
/** When set, the next publish reaches the gateway but its ack is lost with the connection. */
let loseNextPublishAck = false;
/** What the gateway answered to publishes whose ack was lost. */
const lostAcks: unknown[] = [];
let joined: Joined[] = [];

function replicas(): [GatewayProcess, GatewayProcess] {
  if (!first || !second) throw new Error('gateways did not start');
  return [first, second];
}

async function publish(gateway: GatewayProcess, room: string, text: string): Promise<void> {
  const service = accessToken({ sub: 'notifier', scope: 'publish' });
  const response = await postJson(
    `${gateway.url}/api/rooms/${room}/events`,
    { type: 'note', data: text },
    { authorization: `Bearer ${service}` },
  );
  expect(response.status).toBe(202);
}

const textOf = (event: RoomEvent): string => (typeof event.data === 'string' ? event.data : JSON.stringify(event.data));

beforeAll(async () => {
  redis = await startRedisServer();
  const env = { REDIS_URL: redis.url, PRESENCE_TTL_SECONDS: '3' };
  [first, second] = await Promise.all([
    startGatewayProcess({ env, replica: 'multi-a' }),
    startGatewayProcess({ env, replica: 'multi-b' }),
  ]);
  switchboard = createSwitchboard({
    urls: [first.url, second.url],
    getAccessToken: () => accessToken({ sub: 'ada' }),
    backoff: { baseMs: 100, maxMs: 1_000 },
    connect: (url, options) => {
      opened.push(url);
      const socket = io(url, options);
      const emitWithAck = socket.emitWithAck.bind(socket) as (event: string, ...args: unknown[]) => Promise<unknown>;
      // As when a replica's connection breaks between applying a publish and acking it.
      socket.emitWithAck = (async (event: string, ...args: unknown[]) => {
        if (event !== 'publish' || !loseNextPublishAck) return emitWithAck(event, ...args);
        loseNextPublishAck = false;
        lostAcks.push(await emitWithAck(event, ...args));
        socket.io.engine.close();
        throw new Error('the ack was lost with the connection');
      }) as typeof socket.emitWithAck;
      return socket;
    },
  });
  const sb = switchboard;
  joined = ROOMS.map((name) => {
    const entry: Joined = { room: sb.join(name), texts: [], recoveries: [] };
    entry.room.on('room:event', (event) => entry.texts.push(textOf(event)));
    entry.room.on('recovery', (outcome) => entry.recoveries.push(outcome));
    return entry;
  });
  await Promise.all(joined.map(({ room }) => room.ready));
}, 60_000);

afterAll(async () => {
  switchboard?.close();
  await Promise.all([first?.stop(), second?.stop()]);
  await redis?.stop();
}, 30_000);

describe('an SDK client in three rooms on real gateways', () => {
  it('is in every room over one socket, with one peer id', () => {
    const [a] = replicas();
    expect(opened).toEqual([a.url]);
    const peerIds = new Set(joined.map(({ room }) => room.peerId));
    expect(peerIds.size).toBe(1);
    for (const { room } of joined) expect(room.state).toMatchObject({ status: 'connected', replica: a.replica });
    expect(joined.map(({ room }) => room.peerCount)).toEqual([1, 1, 1]);
  });

  it('hands each room only its own events, whichever replica they were published on', async () => {
    const [, b] = replicas();
    for (const name of ROOMS) await publish(b, name, `first in ${name}`);
    await waitFor('every room’s first event', () => joined.every(({ texts }) => texts.length === 1) || undefined);
    expect(joined.map(({ texts }) => texts)).toEqual(ROOMS.map((name) => [`first in ${name}`]));
    // The client's own publish goes to its room.
    const [lobby, call] = joined;
    await expect(call?.room.publish('note', 'from the call')).resolves.toMatchObject({ seq: 2 });
    await waitFor('the call’s own event', () => call?.texts.includes('from the call') || undefined);
    expect(lobby?.texts).toEqual([`first in ${ROOMS[0]}`]);
  });

  it('recovers all three rooms through the other replica after kill -9, with one new socket', async () => {
    const [a, b] = replicas();
    await a.stop('SIGKILL');
    // Published while the client is between replicas: each room must get its own back.
    for (const [i, name] of ROOMS.entries()) {
      for (let n = 1; n <= i + 1; n++) await publish(b, name, `missed ${n} in ${name}`);
    }
    await waitFor(
      'every room back on the other replica with what it missed',
      () =>
        joined.every(
          ({ room, recoveries }) =>
            room.state.status === 'connected' && room.state.replica === b.replica && recoveries.length > 0,
        ) || undefined,
      { timeoutMs: 20_000 },
    );
    await waitFor('the missed events', () => joined.every(({ texts }, i) => texts.length >= 2 + i) || undefined);
    expect(joined.map(({ recoveries }) => recoveries)).toEqual(
      ROOMS.map((_, i) => [{ recovered: true, replayed: i + 1 }]),
    );
    expect(joined.map(({ texts }) => texts.filter((text) => text.startsWith('missed')))).toEqual(
      ROOMS.map((name, i) => Array.from({ length: i + 1 }, (_, n) => `missed ${n + 1} in ${name}`)),
    );
    expect(joined[1]?.texts.filter((text) => text === 'from the call')).toHaveLength(1);
    // One more socket, to the surviving replica (any attempts at the dead one refused first).
    expect(opened.filter((url) => url === b.url)).toHaveLength(1);
    expect(new Set(joined.map(({ room }) => room.peerId)).size).toBe(1);
  });

  it('publishes once when the ack is lost with the connection: retried with its key, settled once', async () => {
    const [, b] = replicas();
    const feed = joined[2];
    if (!feed || !switchboard) throw new Error('not joined');
    // Another member of the room, on a connection of its own.
    const observer = createSwitchboard({ url: b.url, getAccessToken: () => accessToken({ sub: 'grace' }) });
    try {
      const watcher = observer.join(ROOMS[2] ?? '');
      const seen: string[] = [];
      watcher.on('room:event', (event) => seen.push(event.id));
      await watcher.ready;

      loseNextPublishAck = true;
      const settled: unknown[] = [];
      const published = feed.room.publish('note', 'exactly once');
      published.then(
        (answer) => settled.push(answer),
        (error: unknown) => settled.push(error),
      );
      const answer = await published;
      // The gateway applied the first copy; the retry after the reconnect got the same answer.
      expect(lostAcks).toEqual([{ ok: true, ...answer }]);
      await waitFor('the event at the observer', () => seen.includes(answer.id) || undefined);
      await waitFor('the event in its own room', () => feed.texts.includes('exactly once') || undefined);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(seen.filter((id) => id === answer.id)).toHaveLength(1);
      expect(feed.texts.filter((text) => text === 'exactly once')).toHaveLength(1);
      expect(settled).toEqual([answer]);
      const history = await watcher.history({ limit: 100 });
      expect(history.events.filter((event) => textOf(event) === 'exactly once').map((event) => event.id)).toEqual([
        answer.id,
      ]);
    } finally {
      observer.close();
    }
  });
});
