import { io } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type {
  Ack,
  PeerJoinedPayload,
  PeerLeftPayload,
  PublishEventResponse,
  RoomEventFrame,
  RoomPosition,
  SessionPayload,
} from '@switchboard/contract';
import {
  accessToken,
  devLogin,
  joinRoom,
  mintToken,
  nextEvent,
  publishNumbered,
  seqs,
  type ConnectedClient,
  type TestSocket,
} from '../../../support/client.js';
import { startReplicas, type GatewayProcess } from '../../../support/gateway-process.js';
import { waitFor } from '../../../support/ports.js';
import { startTopology, type TestTopology, type TopologyKind } from '../../../support/redis-topology.js';

/** Small, so the cap is reachable: the client below is in exactly this many rooms. */
const MAX_ROOMS = 3;

/** One connection, opened without a token, that joins rooms with `room:join`. */
interface MultiRoomClient {
  socket: TestSocket;
  /** Every frame about a room, in arrival order, with its kind. */
  frames: Array<{ kind: string; room: string; payload: unknown }>;
  events(room: string): RoomEventFrame[];
  join(token: string, recover?: RoomPosition): Promise<Ack<SessionPayload>>;
  close(): void;
}

function connectWithoutToken(baseUrl: string): Promise<MultiRoomClient> {
  const socket: TestSocket = io(baseUrl, { transports: ['websocket'], reconnection: false, forceNew: true });
  const frames: MultiRoomClient['frames'] = [];
  const record = (kind: string) => (payload: { room: string }) => frames.push({ kind, room: payload.room, payload });
  socket.on('room:event', record('room:event'));
  socket.on('room:events', (batch) => {
    for (const event of batch) frames.push({ kind: 'room:event', room: event.room, payload: event });
  });
  socket.on('peer:joined', record('peer:joined'));
  socket.on('peers:joined', (batch) => {
    for (const peer of batch) frames.push({ kind: 'peer:joined', room: peer.room, payload: peer });
  });
  socket.on('peer:left', record('peer:left'));
  socket.on('signal', record('signal'));
  socket.on('session:ended', record('session:ended'));
  const client: MultiRoomClient = {
    socket,
    frames,
    events: (room) =>
      frames.filter((f) => f.kind === 'room:event' && f.room === room).map((f) => f.payload as RoomEventFrame),
    join: (token, recover) => socket.emitWithAck('room:join', recover ? { token, recover } : { token }),
    close: () => socket.close(),
  };
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(client));
    socket.once('connect_error', reject);
  });
}

function joined(ack: Ack<SessionPayload>): SessionPayload {
  if (!ack.ok) throw new Error(`room:join refused: ${ack.error.code} ${ack.error.message}`);
  return ack;
}

/**
 * Many rooms on one connection, across two gateway processes, run once per Redis topology
 * (one server, Cluster, Sentinel): the same assertions must hold on each.
 */
export function multiRoomSuite(kind: TopologyKind): void {
  describe(`one connection in many rooms, two replicas on ${kind}`, () => {
    let topology: TestTopology;
    let replicas: GatewayProcess[];
    const opened: Array<{ close(): void }> = [];
    const url = (i: number) => replicas[i]?.url ?? '';
    const service = accessToken({ sub: 'backend', scope: 'publish read' });
    const tokenFor = async (replica: number, user: string, room: string) =>
      (await mintToken(url(replica), await devLogin(url(replica), user), room)).token;
    const multi = async (replica: number) => {
      const client = await connectWithoutToken(url(replica));
      opened.push(client);
      return client;
    };
    const single = async (replica: number, user: string, room: string, recover?: RoomPosition) => {
      const client = await joinRoom(url(replica), user, room, undefined, recover);
      opened.push(client);
      return client;
    };
    const publish = (replica: number, room: string, n: number): Promise<PublishEventResponse> =>
      publishNumbered(url(replica), room, n, service);

    beforeAll(async () => {
      topology = await startTopology(kind);
      replicas = await startReplicas({ ...topology.env, MAX_ROOMS_PER_CONNECTION: String(MAX_ROOMS) }, ['m1', 'm2']);
    }, 60_000);
    afterAll(async () => {
      for (const client of opened) client.close();
      await Promise.all((replicas ?? []).map((replica) => replica.stop('SIGKILL')));
      await topology?.stop();
    });

    it('carries three rooms on one connection: events, signals and presence name their room and never cross', async () => {
      const rooms = ['lobby', 'call', 'feed'].map((name) => `${kind}-${name}`);
      const client = await multi(0);
      const sessions: SessionPayload[] = [];
      for (const room of rooms) sessions.push(joined(await client.join(await tokenFor(0, 'ada', room))));
      expect(sessions.map((s) => s.room)).toEqual(rooms);
      // One connection, one peer id, in every room; nobody else there yet.
      expect(new Set(sessions.map((s) => s.peerId)).size).toBe(1);
      for (const session of sessions) expect(session).toMatchObject({ userId: 'ada', peers: [], peerCount: 1 });

      // One member per room on the other replica, each on a connection of its own.
      const others: ConnectedClient[] = [];
      for (const [i, room] of rooms.entries()) {
        const seen = nextEvent(client.socket, 'peer:joined', (peer) => peer.room === room);
        const other = await single(1, `other-${i}`, room);
        others.push(other);
        expect(await seen).toMatchObject({ room, userId: `other-${i}`, replica: 'm2' });
        expect(other.session.peers.map((p) => p.userId)).toEqual(['ada']);
      }

      // Events: each room's reach the multi-room client tagged with it, and only that room's members.
      for (const [i, room] of rooms.entries()) await publish(1, room, i);
      await waitFor('every room event', () =>
        rooms.every((room, i) => client.events(room).length === 1 && others[i]?.events.length === 1) ? true : undefined,
      );
      for (const [i, room] of rooms.entries()) {
        expect(client.events(room).map((e) => e.data)).toEqual([{ n: i }]);
        expect(others[i]?.events.map((e) => (e as RoomEventFrame).room)).toEqual([room]);
      }

      // Publishing names the room; leaving it out is refused on a connection in several rooms.
      const unnamed = await client.socket.emitWithAck('publish', { type: 'chat', data: 'which?' });
      expect(unnamed).toMatchObject({ ok: false, error: { code: 'invalid_payload' } });
      const named = await client.socket.emitWithAck('publish', { room: rooms[1], type: 'chat', data: 'hi' });
      expect(named).toMatchObject({ ok: true, seq: 2 });
      await waitFor('the call member hears it', () => (others[1]?.events.length === 2 ? true : undefined));
      expect(others[0]?.events).toHaveLength(1);
      expect(others[2]?.events).toHaveLength(1);

      // Signals: relayed inside the room both share, never through another.
      const [lobby, call] = [others[0], others[1]] as [ConnectedClient, ConnectedClient];
      const offer = nextEvent(lobby.socket, 'signal');
      expect(
        await client.socket.emitWithAck('signal', {
          room: rooms[0],
          to: lobby.session.peerId,
          kind: 'offer',
          data: { sdp: 'x' },
        }),
      ).toEqual({ ok: true });
      expect(await offer).toEqual({ room: rooms[0], from: sessions[0]?.peerId, kind: 'offer', data: { sdp: 'x' } });
      const crossed = await client.socket.emitWithAck('signal', {
        room: rooms[0],
        to: call.session.peerId,
        kind: 'offer',
        data: null,
      });
      expect(crossed).toMatchObject({ ok: false, error: { code: 'not_in_room' } });
      const answer = nextEvent(client.socket, 'signal');
      expect(
        await call.socket.emitWithAck('signal', { to: sessions[1]?.peerId ?? '', kind: 'answer', data: 1 }),
      ).toEqual({ ok: true });
      expect(await answer).toEqual({ room: rooms[1], from: call.session.peerId, kind: 'answer', data: 1 });

      // Paging and history are per room.
      const page = (await client.socket.emitWithAck('peers', { room: rooms[2] })) as Ack<{ peers: unknown[] }>;
      expect(page).toMatchObject({ ok: true, peerCount: 2 });
      const history = await client.socket.emitWithAck('history', { room: rooms[1] });
      expect(history.ok && history.events.map((e) => e.data)).toEqual([{ n: 1 }, 'hi']);

      // Nothing arrived about a room under another's name.
      const signals = client.frames.filter((f) => f.kind === 'signal');
      expect(signals.map((f) => f.room)).toEqual([rooms[1]]);
      for (const frame of client.frames) expect(rooms).toContain(frame.room);
    });

    it('leaves one room and keeps the others; refuses a room over MAX_ROOMS_PER_CONNECTION', async () => {
      const rooms = ['a', 'b', 'c'].map((name) => `${kind}-leave-${name}`);
      const client = await multi(0);
      for (const room of rooms) joined(await client.join(await tokenFor(0, 'bea', room)));
      const fourth = await client.join(await tokenFor(0, 'bea', `${kind}-leave-d`));
      expect(fourth).toMatchObject({ ok: false, error: { code: 'rate_limited' } });

      const witnesses = await Promise.all(rooms.map((room, i) => single(1, `witness-${i}`, room)));
      const leftB = nextEvent(witnesses[1]?.socket as TestSocket, 'peer:left');
      expect(await client.socket.emitWithAck('room:leave', { room: rooms[1] ?? '' })).toEqual({ ok: true });
      expect(await leftB).toEqual({ room: rooms[1], peerId: client.socket.id, reason: 'disconnect' });

      for (const [i, room] of rooms.entries()) await publish(1, room, i);
      await waitFor('events in the rooms still joined', () =>
        client.events(rooms[0] ?? '').length === 1 && client.events(rooms[2] ?? '').length === 1 ? true : undefined,
      );
      await waitFor('the witness of the left room hears its event', () =>
        witnesses[1]?.events.length === 1 ? true : undefined,
      );
      expect(client.events(rooms[1] ?? '')).toEqual([]);
      expect(client.socket.connected).toBe(true);
      // The others saw no one leave.
      const leaves = (i: number) =>
        new Promise<PeerLeftPayload[]>((resolve) => {
          const seen: PeerLeftPayload[] = [];
          witnesses[i]?.socket.on('peer:left', (left) => seen.push(left));
          setTimeout(() => resolve(seen), 300);
        });
      expect(await leaves(0)).toEqual([]);
      expect(await leaves(2)).toEqual([]);
      // The place it freed can be taken again, and a room it is not in is refused by name.
      joined(await client.join(await tokenFor(0, 'bea', `${kind}-leave-d`)));
      const notIn = await client.socket.emitWithAck('history', { room: rooms[1] });
      expect(notIn).toMatchObject({ ok: false, error: { code: 'not_in_room' } });
    });

    it('refuses a token for another user, and that token stays usable by its owner', async () => {
      const room = `${kind}-identity`;
      const client = await multi(1);
      joined(await client.join(await tokenFor(1, 'cyd', `${kind}-identity-own`)));
      const theirs = await tokenFor(1, 'dan', room);
      const refused = await client.join(theirs);
      expect(refused).toMatchObject({ ok: false, error: { code: 'forbidden' } });
      const dan = await connectWithoutToken(url(0));
      opened.push(dan);
      expect(joined(await dan.join(theirs))).toMatchObject({ room, userId: 'dan' });
      // A spent token is refused like at the handshake.
      expect(await client.join(theirs)).toMatchObject({ ok: false, error: { code: 'forbidden' } });
      const spent = await tokenFor(1, 'cyd', room);
      joined(await client.join(spent));
      const again = await connectWithoutToken(url(1));
      opened.push(again);
      expect(await again.join(spent)).toMatchObject({ ok: false, error: { code: 'token_used' } });
    });

    it('recovers all three rooms on reconnect after kill -9 of its replica', async () => {
      const rooms = ['x', 'y', 'z'].map((name) => `${kind}-crash-${name}`);
      const client = await multi(1);
      const sessions: SessionPayload[] = [];
      for (const room of rooms) sessions.push(joined(await client.join(await tokenFor(1, 'eve', room))));
      for (let n = 1; n <= 3; n++) for (const room of rooms) await publish(0, room, n);
      await waitFor('the first events', () =>
        rooms.every((room) => client.events(room).length === 3) ? true : undefined,
      );
      const positions = rooms.map((room, i) => ({
        epoch: sessions[i]?.position.epoch ?? '',
        seq: client.events(room).at(-1)?.seq ?? 0,
      }));

      await replicas[1]?.stop('SIGKILL');
      // Missed while it was away: a different number per room.
      for (const [i, room] of rooms.entries()) for (let n = 0; n <= i; n++) await publish(0, room, 10 + n);

      const back = await multi(0);
      const recovered: SessionPayload[] = [];
      for (const [i, room] of rooms.entries()) {
        recovered.push(joined(await back.join(await tokenFor(0, 'eve', room), positions[i])));
      }
      for (const [i, session] of recovered.entries()) {
        expect(session.recovery).toEqual({ recovered: true, replayed: i + 1 });
      }
      await waitFor('the replays', () =>
        rooms.every((room, i) => back.events(room).length === i + 1) ? true : undefined,
      );
      for (const [i, room] of rooms.entries()) {
        const all = [...client.events(room), ...back.events(room)];
        expect(seqs(all)).toMatchObject({ consecutive: true });
        expect(all.map((e) => (e.data as { n: number }).n)).toEqual([1, 2, 3, ...[10, 11, 12].slice(0, i + 1)]);
      }
      // And live again, in each room.
      for (const room of rooms) await publish(0, room, 99);
      await waitFor('live events after recovery', () =>
        rooms.every((room, i) => back.events(room).length === i + 2) ? true : undefined,
      );
      expect(replicas[0]?.output()).not.toMatch(/unhandled/i);
      const others = back.frames.filter((f) => !rooms.includes(f.room));
      expect(others).toEqual([]);
      expect(
        back.frames.filter((f) => f.kind === 'peer:joined').map((f) => (f.payload as PeerJoinedPayload).room),
      ).toEqual([]);
    }, 60_000);
  });
}
