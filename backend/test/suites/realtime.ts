import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Ack, HistoryResponse, PeerInfo, PublishEventResponse, RoomEvent } from '@switchboard/contract';
import {
  accessToken,
  connectWithToken,
  devLogin,
  joinRoom,
  mintToken,
  nextEvent,
  postJson,
  publishNumbered,
  seqs,
  type ConnectedClient,
} from '../../../support/client.js';
import { startReplicas, type GatewayProcess } from '../../../support/gateway-process.js';
import { waitFor } from '../../../support/ports.js';
import { startTopology, type TestTopology, type TopologyKind } from '../../../support/redis-topology.js';

const PRESENCE_TTL_SECONDS = 3;
/** Small, so that refusals are reachable in a test: behind by more than 50 is expired, by more than 80 too many. */
const HISTORY_SIZE = 50;
const RECOVERY_MAX = 80;

export interface RealtimeSuite {
  topology: () => TestTopology;
  replicas: () => GatewayProcess[];
}

/**
 * The realtime and history contract across three gateway processes, run once per Redis
 * topology (one server, Cluster, Sentinel): the same assertions must hold on each.
 * `extra` adds the topology's own tests, run after these with the same processes.
 */
export function realtimeSuite(kind: TopologyKind, extra?: (suite: RealtimeSuite) => void): void {
  describe(`three replicas on ${kind}`, () => {
    let topology: TestTopology;
    let replicas: GatewayProcess[];
    const clients: ConnectedClient[] = [];
    const url = (i: number) => replicas[i]?.url ?? '';
    const join = async (
      replica: number,
      user: string,
      room: string,
      recover?: RoomEvent | { epoch: string; seq: number },
    ) => {
      const client = await joinRoom(
        url(replica),
        user,
        room,
        undefined,
        recover && 'epoch' in recover ? recover : undefined,
      );
      clients.push(client);
      return client;
    };
    const service = accessToken({ sub: 'backend', scope: 'publish read' });
    const publish = (replica: number, room: string, n: number): Promise<PublishEventResponse> =>
      publishNumbered(url(replica), room, n, service);

    beforeAll(async () => {
      topology = await startTopology(kind);
      const env = {
        ...topology.env,
        PRESENCE_TTL_SECONDS: String(PRESENCE_TTL_SECONDS),
        ROOM_HISTORY_SIZE: String(HISTORY_SIZE),
        RECOVERY_MAX_EVENTS: String(RECOVERY_MAX),
        LOG_LEVEL: 'info',
      };
      replicas = await startReplicas(env, ['r1', 'r2', 'r3']);
    }, 60_000);
    afterAll(async () => {
      for (const client of clients) client.close();
      // Also when a replica did not start: the topology must not outlive the suite.
      await Promise.all((replicas ?? []).map((replica) => replica.stop('SIGKILL')));
      await topology?.stop();
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
        const ack = (await from.socket.emitWithAck('signal', {
          to: to.session.peerId,
          kind,
          data: { n: kind },
        })) as Ack;
        expect(ack).toEqual({ ok: true });
        expect(await received).toEqual({ room: 'call-1', from: from.session.peerId, kind, data: { n: kind } });
      }

      // Room events from either member and from a backend over HTTP on the third replica.
      const ackA = await alice.socket.emitWithAck('publish', {
        type: 'chat',
        data: { text: 'hi' },
      });
      const ackB = await bob.socket.emitWithAck('publish', {
        type: 'chat',
        data: { text: 'yo' },
      });
      const http = await postJson(
        `${url(2)}/api/rooms/call-1/events`,
        { type: 'transcript', data: { line: 'hello' } },
        { authorization: `Bearer ${service}` },
      );
      expect(http.status).toBe(202);
      expect(ackA).toMatchObject({ ok: true, seq: 1 });
      expect(ackB).toMatchObject({ ok: true, seq: 2 });
      expect(http.body).toMatchObject({ seq: 3 });
      const ids = [ackA.ok && ackA.id, ackB.ok && ackB.id, (http.body as { id: string }).id];
      for (const client of [alice, bob]) {
        await waitFor('three room events', () => (client.events.length >= 3 ? true : undefined));
        expect(client.events.map((e) => e.id)).toEqual(ids);
        expect(seqs(client.events)).toEqual({ seqs: [1, 2, 3], consecutive: true });
      }
      const transcript = alice.events.find((e) => e.type === 'transcript') as RoomEvent;
      expect(transcript).toMatchObject({ from: 'service:backend', data: { line: 'hello' } });
      expect(alice.events.find((e) => e.id === ids[1])?.from).toBe(bob.session.peerId);

      // The HTTP peers view agrees, across replicas.
      const peers = (await (
        await fetch(`${url(2)}/api/rooms/call-1/peers`, { headers: { authorization: `Bearer ${service}` } })
      ).json()) as { peers: PeerInfo[] };
      expect(peers.peers.map((p) => p.userId).sort()).toEqual(['alice', 'bob']);
    });

    it('announces a burst of joins to every member exactly once, batched into fewer frames than peers', async () => {
      const members = await Promise.all(
        Array.from({ length: 12 }, (_, i) => join(i % 3, `burst-${String(i)}`, 'burst-1')),
      );
      const ids = members.map((member) => member.session.peerId);
      const missing = () =>
        members.flatMap((member) => {
          const known = new Set([...member.session.peers.map((p) => p.peerId), ...member.joined]);
          const lacks = ids.filter((id) => id !== member.session.peerId && !known.has(id));
          return lacks.length > 0 ? [`${member.session.peerId} lacks ${lacks.join(',')}`] : [];
        });
      await waitFor('every member to know every other', () => missing().length === 0 || undefined).catch(
        (error: unknown) => {
          throw new Error(`${String(error)}\n${missing().join('\n')}`);
        },
      );
      // Each other member once: from the session or from one announcement, never both.
      await new Promise((resolve) => setTimeout(resolve, 300));
      for (const member of members) {
        const known = [...member.session.peers.map((p) => p.peerId), ...member.joined];
        expect(known.length, `${member.session.peerId} heard of a peer twice`).toBe(new Set(known).size);
      }
      const announced = members.reduce((sum, member) => sum + member.joined.length, 0);
      const frames = members.reduce((sum, member) => sum + member.joinFrames, 0);
      expect(frames).toBeLessThan(announced);
    });

    it('keeps rooms apart: no signals or events across rooms, and a spoofed sender is refused', async () => {
      const xena = await join(0, 'xena', 'room-x');
      const yuri = await join(1, 'yuri', 'room-y');
      const ack = (await xena.socket.emitWithAck('signal', {
        to: yuri.session.peerId,
        kind: 'offer',
        data: {},
      })) as Ack;
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

      // A user outside the room can neither list its peers nor read its history over HTTP.
      const outsider = await devLogin(url(0), 'outsider');
      for (const path of ['peers', 'events']) {
        const response = await fetch(`${url(0)}/api/rooms/room-x/${path}`, {
          headers: { authorization: `Bearer ${outsider}` },
        });
        expect(response.status).toBe(403);
      }
    });

    it('lets exactly one of two replicas redeem the same token at once', async () => {
      const minted = await mintToken(url(0), await devLogin(url(0), 'racer'), 'race');
      const outcomes = await Promise.allSettled([
        connectWithToken(url(0), minted.token),
        connectWithToken(url(1), minted.token),
      ]);
      const won = outcomes.filter((o) => o.status === 'fulfilled');
      const lost = outcomes.filter((o) => o.status === 'rejected');
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(1);
      expect(String((lost[0] as PromiseRejectedResult).reason)).toContain('token_used');
      for (const o of won) clients.push(o.value);
    });

    it('numbers events from concurrent publishers on two replicas without a gap or a repeat', async () => {
      const observer = await join(2, 'observer', 'ordered');
      const publisherA = await join(0, 'pub-a', 'ordered');
      const publisherB = await join(1, 'pub-b', 'ordered');
      // 300 each, in bursts of 100: the per-socket rate limit refills 100 in 2 s.
      const burst = (client: ConnectedClient, label: string, from: number) =>
        Promise.all(
          Array.from({ length: 100 }, (_, i) => client.socket.emitWithAck('publish', { type: label, data: from + i })),
        );
      const acks = (
        await Promise.all(
          [publisherA, publisherB].map(async (client, p) => {
            const out: Array<Ack<PublishEventResponse>> = [];
            for (let chunk = 0; chunk < 3; chunk++) {
              if (chunk > 0) await new Promise((resolve) => setTimeout(resolve, 2_100));
              out.push(...(await burst(client, `p${p}`, chunk * 100)));
            }
            return out;
          }),
        )
      ).flat();
      const accepted = acks.filter((ack): ack is Ack<PublishEventResponse> & { ok: true } => ack.ok);
      expect(accepted).toHaveLength(600);
      await waitFor('every event at the observer', () => observer.events.length >= accepted.length || undefined, {
        timeoutMs: 20_000,
      });
      const seen = seqs(observer.events);
      expect(seen.consecutive).toBe(true);
      expect(seen.seqs[0]).toBe(1);
      expect(new Set(observer.events.map((e) => e.id))).toEqual(new Set(accepted.map((ack) => ack.id)));
      // Each publisher's own events keep the order it published them in.
      for (const label of ['p0', 'p1']) {
        const own = observer.events.filter((e) => e.type === label).map((e) => e.data as number);
        expect(own).toEqual([...own].sort((a, b) => a - b));
      }
    }, 60_000);

    it('recovers exactly the missed events on another replica, then continues live without a gap', async () => {
      const member = await join(0, 'wanderer', 'recover-1');
      for (let n = 1; n <= 5; n++) await publish(1, 'recover-1', n);
      await waitFor('five events', () => member.events.length === 5 || undefined);
      const last = member.events[4] as RoomEvent;
      const position = { epoch: member.session.position.epoch, seq: last.seq };
      member.close();
      for (let n = 6; n <= 12; n++) await publish(2, 'recover-1', n);

      const back = await join(1, 'wanderer', 'recover-1', position);
      expect(back.session.recovery).toEqual({ recovered: true, replayed: 7 });
      await waitFor('the replay', () => back.events.length === 7 || undefined);
      for (let n = 13; n <= 15; n++) await publish(0, 'recover-1', n);
      await waitFor('the live ones', () => back.events.length === 10 || undefined);
      expect(seqs(back.events)).toEqual({ seqs: [6, 7, 8, 9, 10, 11, 12, 13, 14, 15], consecutive: true });
      expect(back.events.map((e) => (e.data as { n: number }).n)).toEqual([6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
      expect(back.session.position).toEqual({ epoch: position.epoch, seq: 12 });
    });

    it('reads history over the socket and HTTP, oldest first, after a position or the latest', async () => {
      const reader = await join(2, 'reader', 'read-1');
      for (let n = 1; n <= 8; n++) await publish(0, 'read-1', n);
      await waitFor('eight events', () => reader.events.length === 8 || undefined);
      const after = await reader.socket.emitWithAck('history', { after: 5 });
      expect(after).toMatchObject({ ok: true, top: 8, epoch: reader.session.position.epoch });
      expect(after.ok && after.events.map((e) => e.seq)).toEqual([6, 7, 8]);
      const latest = await reader.socket.emitWithAck('history', { limit: 2 });
      expect(latest.ok && latest.events.map((e) => e.seq)).toEqual([7, 8]);
      const bad = (await reader.socket.emitWithAck('history', { limit: 1000 })) as Ack;
      expect(bad).toMatchObject({ ok: false, error: { code: 'invalid_payload' } });

      // Over HTTP from a replica with no member in the room: a service may, the member may.
      const http = await fetch(`${url(1)}/api/rooms/read-1/events?after=2&limit=3`, {
        headers: { authorization: `Bearer ${service}` },
      });
      expect(http.status).toBe(200);
      const page = (await http.json()) as HistoryResponse;
      expect(page.top).toBe(8);
      expect(page.events.map((e) => e.seq)).toEqual([3, 4, 5]);
      // The socket's frames name their room; the history's events are those of the room asked for.
      expect({ ...page.events[0], room: 'read-1' }).toEqual(reader.events[2]);
      const asMember = await fetch(`${url(1)}/api/rooms/read-1/events`, {
        headers: { authorization: `Bearer ${await devLogin(url(1), 'reader')}` },
      });
      expect(((await asMember.json()) as HistoryResponse).events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      const bogus = await fetch(`${url(1)}/api/rooms/read-1/events?after=-1`, {
        headers: { authorization: `Bearer ${service}` },
      });
      expect(bogus.status).toBe(400);
    });

    it('refuses to recover what it cannot deliver whole, and replays nothing then', async () => {
      const first = await join(0, 'laggard', 'refuse-1');
      await publish(1, 'refuse-1', 0);
      await waitFor('one event', () => first.events.length === 1 || undefined);
      const position = { epoch: first.session.position.epoch, seq: 1 };
      first.close();

      // 60 behind: more than the history keeps (50), fewer than a recovery may carry (80).
      for (let n = 1; n <= 60; n++) await publish(1, 'refuse-1', n);
      const expired = await join(2, 'laggard', 'refuse-1', position);
      expect(expired.session.recovery).toEqual({ recovered: false, replayed: 0, reason: 'history_expired' });
      expect(expired.session.position.seq).toBe(61);
      // 90 behind: too many.
      for (let n = 61; n <= 90; n++) await publish(1, 'refuse-1', n);
      const tooMany = await join(1, 'laggard', 'refuse-1', position);
      expect(tooMany.session.recovery).toEqual({ recovered: false, replayed: 0, reason: 'too_many' });
      // A position from another epoch.
      const stranger = await join(0, 'laggard', 'refuse-1', { epoch: 'not-this-one', seq: 3 });
      expect(stranger.session.recovery).toEqual({ recovered: false, replayed: 0, reason: 'epoch_changed' });
      // Only live events after each session's position arrive: nothing is replayed.
      await publish(1, 'refuse-1', 91);
      for (const client of [expired, tooMany, stranger]) {
        await waitFor('the live event', () => client.events.some((e) => e.seq === 92) || undefined);
        expect(client.events.every((e) => e.seq > client.session.position.seq)).toBe(true);
      }
    });

    it('answers epoch_changed once the history is gone (FLUSHALL), and starts a new epoch', async () => {
      const member = await join(0, 'flushed', 'flush-1');
      await publish(0, 'flush-1', 1);
      await waitFor('one event', () => member.events.length === 1 || undefined);
      const position = { epoch: member.session.position.epoch, seq: 1 };
      member.close();
      await topology.onMasters((client) => client.flushAll());
      await publish(1, 'flush-1', 2);
      const back = await join(2, 'flushed', 'flush-1', position);
      expect(back.session.recovery).toEqual({ recovered: false, replayed: 0, reason: 'epoch_changed' });
      expect(back.session.position.epoch).not.toBe(position.epoch);
      expect(back.session.position.seq).toBe(1);
    });

    extra?.({ topology: () => topology, replicas: () => replicas });

    it('recovers on a surviving replica after kill -9 of the member’s replica, while events flow', async () => {
      const member = await join(2, 'survivor-to-be', 'crash-1');
      const witness = await join(0, 'witness', 'crash-1');
      let n = 0;
      let publishing = true;
      const flow = (async () => {
        while (publishing) {
          await publish(n % 2, 'crash-1', ++n);
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      })();
      await waitFor('some events', () => member.events.length >= 10 || undefined);
      const left = nextEvent(
        witness.socket,
        'peer:left',
        (p) => p.peerId === member.session.peerId,
        (PRESENCE_TTL_SECONDS * 5 + 5) * 1000,
      );
      const killedAt = Date.now();
      await replicas[2]?.stop('SIGKILL');
      const last = member.events[member.events.length - 1] as RoomEvent;
      const position = { epoch: member.session.position.epoch, seq: last.seq };
      await new Promise((resolve) => setTimeout(resolve, 300));
      const back = await join(1, 'survivor-to-be', 'crash-1', position);
      expect(back.session.recovery?.recovered).toBe(true);
      publishing = false;
      await flow;
      await waitFor('every event', () => (back.events[back.events.length - 1]?.seq === n ? true : undefined));
      const all = [...member.events, ...back.events];
      expect(seqs(all)).toMatchObject({ consecutive: true });
      expect(all.length).toBe(n);

      expect(await left).toEqual({ room: 'crash-1', peerId: member.session.peerId, reason: 'replica_lost' });
      expect(Date.now() - killedAt).toBeLessThan(15_000);
      const peers = (await witness.socket.emitWithAck('peers', {})) as Ack<{ peers: PeerInfo[] }>;
      expect(peers.ok && peers.peers.map((p) => p.userId).sort()).toEqual(['survivor-to-be', 'witness']);
      for (const replica of replicas.slice(0, 2)) expect(replica.output()).not.toMatch(/unhandled/i);
    }, 60_000);
  });
}
