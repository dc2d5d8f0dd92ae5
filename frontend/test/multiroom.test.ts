import type { PeerInfo, RecoveryOutcome, RoomEvent, RoomEventFrame } from '@switchboard/contract';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ConnectionState, Room, SwitchboardOptions } from '../src/sdk/index.js';
import type { FakeGateway } from './fake-gateway.js';
import { client, closeAll, gateway } from './sdk-harness.js';

afterEach(closeAll);

let ts = 0;
const frame = (room: string, seq: number): RoomEventFrame => ({
  room,
  id: `${room}-${seq}`,
  type: 'note',
  data: { seq },
  from: 'p',
  ts: ++ts,
  seq,
});

/** What one room hands the app. */
function record(room: Room) {
  const events: string[] = [];
  const recoveries: RecoveryOutcome[] = [];
  const states: ConnectionState['status'][] = [];
  room.on('room:event', (event) => events.push(event.id));
  room.on('recovery', (outcome) => recoveries.push(outcome));
  room.on('state', (state) => states.push(state.status));
  return { events, recoveries, states };
}

/** One client in room `standup` (its handshake) and `lobby` (`room:join`), recording both. */
function twoRooms(gw: FakeGateway) {
  const switchboard = client({ urls: [gw.url] });
  const call = switchboard.join('standup');
  const lobby = switchboard.join('lobby');
  return { switchboard, call, lobby, inCall: record(call), inLobby: record(lobby) };
}

describe('many rooms on one connection', () => {
  it('carries two rooms over one socket and hands each room only its own events', async () => {
    const gw = await gateway({ replica: 'replica-1' });
    const { call, lobby, inCall, inLobby } = twoRooms(gw);
    const [callSession, lobbySession] = await Promise.all([call.ready, lobby.ready]);

    expect(gw.connections).toBe(1);
    expect(gw.sockets()).toHaveLength(1);
    expect(gw.handshakes).toHaveLength(1);
    expect(gw.joins).toEqual([{ room: 'lobby', recover: undefined }]);
    // One connection, one peer id in every room.
    expect(lobbySession.peerId).toBe(callSession.peerId);
    expect(lobby.state).toMatchObject({ status: 'connected', replica: 'replica-1' });

    const [socket] = gw.sockets();
    gw.logOf('lobby').push(frame('lobby', 1), frame('lobby', 2));
    socket?.emit('room:events', [frame('lobby', 1), frame('lobby', 2)]);
    socket?.emit('room:event', frame('standup', 1));
    socket?.emit('room:event', frame('elsewhere', 1));
    await expect(lobby.publish('note', 'hello lobby')).resolves.toEqual({ id: 'replica-1-event-3', seq: 3 });
    await vi.waitFor(() => {
      expect(inLobby.events).toEqual(['lobby-1', 'lobby-2', 'replica-1-event-3']);
    });
    expect(inCall.events).toEqual(['standup-1']);
    expect(gw.publishes.map(({ room }) => room)).toEqual(['lobby']);
  });

  it('recovers every room with one reconnect, each from its own position', async () => {
    const gw = await gateway({ replica: 'replica-1' });
    const { call, lobby, inCall, inLobby } = twoRooms(gw);
    await Promise.all([call.ready, lobby.ready]);
    const [socket] = gw.sockets();
    gw.log.push(frame('standup', 1));
    gw.logOf('lobby').push(frame('lobby', 1), frame('lobby', 2));
    socket?.emit('room:event', frame('standup', 1));
    socket?.emit('room:events', [frame('lobby', 1), frame('lobby', 2)]);
    await vi.waitFor(() => {
      expect(lobby.position).toEqual({ epoch: 'e1', seq: 2 });
    });

    // Events happen in both rooms while the connection is down.
    gw.log.push(frame('standup', 2), frame('standup', 3));
    gw.logOf('lobby').push(frame('lobby', 3));
    socket?.disconnect(true);
    await vi.waitFor(() => {
      expect(inCall.recoveries).toEqual([{ recovered: true, replayed: 2 }]);
      expect(inLobby.recoveries).toEqual([{ recovered: true, replayed: 1 }]);
    });
    expect(inCall.events).toEqual(['standup-1', 'standup-2', 'standup-3']);
    expect(inLobby.events).toEqual(['lobby-1', 'lobby-2', 'lobby-3']);
    expect(gw.connections).toBe(2);
    expect(gw.sockets()).toHaveLength(1);
    expect(gw.recovers).toEqual([undefined, { epoch: 'e1', seq: 1 }]);
    expect(gw.joins).toEqual([
      { room: 'lobby', recover: undefined },
      { room: 'lobby', recover: { epoch: 'e1', seq: 2 } },
    ]);
    expect(inLobby.states).toContain('reconnecting');
    expect(lobby.state.status).toBe('connected');
  });

  it('leaves one room with room:leave, and closes the socket only with the last', async () => {
    const gw = await gateway({ replica: 'replica-1' });
    const { switchboard, call, lobby } = twoRooms(gw);
    await Promise.all([call.ready, lobby.ready]);

    call.leave();
    await vi.waitFor(() => {
      expect(gw.leaves).toEqual(['standup']);
    });
    expect(call.state.status).toBe('disconnected');
    expect(lobby.state.status).toBe('connected');
    expect(gw.sockets()).toHaveLength(1);
    await expect(lobby.publish('note', 'still here')).resolves.toMatchObject({ seq: 1 });

    // A room joined later rides on the same socket.
    const feed = switchboard.join('feed');
    await feed.ready;
    expect(gw.connections).toBe(1);

    lobby.leave();
    await vi.waitFor(() => {
      expect(gw.leaves).toEqual(['standup', 'lobby']);
    });
    feed.leave();
    await vi.waitFor(() => {
      expect(gw.sockets()).toHaveLength(0);
    });
  });

  it('leaves a room that was left while the gateway was still admitting it', async () => {
    const gw = await gateway({ replica: 'replica-1', joinDelayMs: 200 });
    const switchboard = client({ urls: [gw.url] });
    const call = switchboard.join('standup');
    await call.ready;
    const lobby = switchboard.join('lobby');
    await vi.waitFor(() => {
      expect(gw.mints.map((mint) => mint.room)).toContain('lobby');
    });
    lobby.leave();
    await vi.waitFor(() => {
      expect(gw.leaves).toEqual(['lobby']);
    });
    expect(gw.joins.map(({ room }) => room)).toEqual(['lobby']);
    expect(call.state.status).toBe('connected');
  });

  it('ends only the room the app may not enter, or was removed from', async () => {
    const gw = await gateway({ replica: 'replica-1' });
    const switchboard = client({ urls: [gw.url] });
    const call = switchboard.join('standup');
    await call.ready;
    gw.failNextMint({ status: 403, code: 'forbidden' });
    const secret = switchboard.join('private-room');
    await expect(secret.ready).rejects.toMatchObject({ code: 'forbidden' });
    expect(secret.state.status).toBe('failed');

    const lobby = switchboard.join('lobby');
    await lobby.ready;
    gw.sockets()[0]?.emit('session:ended', { room: 'lobby', reason: 'kicked' });
    await vi.waitFor(() => {
      expect(lobby.state).toMatchObject({ status: 'failed', error: { code: 'kicked' } });
    });
    expect(call.state.status).toBe('connected');
    expect(gw.connections).toBe(1);
    await expect(call.publish('note')).resolves.toMatchObject({ seq: 1 });
  });

  it('refreshes each room’s session before it expires, with a token for that room', async () => {
    const gw = await gateway({ replica: 'replica-1', sessionMs: 1_000, refreshedSessionMs: 3_600_000 });
    const { call, lobby } = twoRooms(gw);
    const [first] = await Promise.all([call.ready, lobby.ready]);
    await vi.waitFor(() => {
      expect([...gw.refreshedRooms].sort()).toEqual(['lobby', 'standup']);
    });
    await vi.waitFor(() => {
      expect(call.session?.expiresAt).toBeGreaterThan(first.expiresAt + 60_000);
      expect(lobby.session?.expiresAt).toBeGreaterThan(first.expiresAt + 60_000);
    });
    // Each refresh redeemed a token minted for its own room.
    const roomOfToken = new Map(gw.mints.map((mint) => [mint.token, mint.room]));
    expect(gw.refreshes.map((token) => roomOfToken.get(token))).toEqual(gw.refreshedRooms);
    expect(gw.connections).toBe(1);
  });

  it('joins a room again when the gateway ends its session, leaving the others be', async () => {
    const gw = await gateway({ replica: 'replica-1' });
    const { call, lobby } = twoRooms(gw);
    await Promise.all([call.ready, lobby.ready]);
    const inCall = record(call);
    const inLobby = record(lobby);
    gw.logOf('lobby').push(frame('lobby', 1));
    gw.sockets()[0]?.emit('room:event', frame('lobby', 1));
    await vi.waitFor(() => {
      expect(lobby.position).toEqual({ epoch: 'e1', seq: 1 });
    });

    gw.logOf('lobby').push(frame('lobby', 2));
    gw.sockets()[0]?.emit('session:ended', { room: 'lobby', reason: 'session_expired' });
    await vi.waitFor(() => {
      expect(inLobby.recoveries).toEqual([{ recovered: true, replayed: 1 }]);
    });
    expect(gw.joins.at(-1)).toEqual({ room: 'lobby', recover: { epoch: 'e1', seq: 1 } });
    expect(inLobby.events).toEqual(['lobby-1', 'lobby-2']);
    expect([inLobby.states.at(0), inLobby.states.at(-1)]).toEqual(['reconnecting', 'connected']);
    expect(inCall.states).toEqual([]);
    expect(gw.connections).toBe(1);
  });

  it('moves every room off a draining replica before letting it go', async () => {
    const first = await gateway({ replica: 'replica-1' });
    const second = await gateway({ replica: 'replica-2' });
    const switchboard = client({ urls: [first.url, second.url] });
    const call = switchboard.join('standup');
    const lobby = switchboard.join('lobby');
    await Promise.all([call.ready, lobby.ready]);
    const inCall = record(call);
    const inLobby = record(lobby);

    first.sockets()[0]?.emit('server:shutdown', { reconnectAfterMs: 50 });
    await vi.waitFor(() => {
      expect(call.state.replica).toBe('replica-2');
      expect(lobby.state.replica).toBe('replica-2');
      expect(first.sockets()).toHaveLength(0);
    });
    expect(second.connections).toBe(1);
    expect(second.joins.map(({ room }) => room)).toEqual(['lobby']);
    // Neither room ever looked disconnected.
    expect([...inCall.states, ...inLobby.states].filter((status) => status !== 'connected')).toEqual([]);
  });
});

describe('publishing exactly once', () => {
  it('retries a publish whose ack was lost with the same key, and settles once with the event', async () => {
    const gw = await gateway({ replica: 'replica-1', loseAcks: 1 });
    const switchboard = client({ urls: [gw.url] });
    const room = switchboard.join('standup');
    const inRoom = record(room);
    await room.ready;

    const settled = vi.fn();
    const published = room.publish('note', { text: 'once' });
    published.then(settled, settled);
    await expect(published).resolves.toEqual({ id: 'replica-1-event-1', seq: 1 });
    // Sent twice with one key, published once, and seen once.
    expect(gw.connections).toBe(2);
    expect(gw.publishes).toHaveLength(2);
    expect(gw.publishes[0]?.idempotencyKey).toMatch(/^[0-9a-f-]{36}$/);
    expect(gw.publishes[1]?.idempotencyKey).toBe(gw.publishes[0]?.idempotencyKey);
    expect(gw.log.map((event: RoomEvent) => event.id)).toEqual(['replica-1-event-1']);
    await vi.waitFor(() => {
      expect(inRoom.events).toEqual(['replica-1-event-1']);
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(settled).toHaveBeenCalledTimes(1);
    expect(inRoom.events).toEqual(['replica-1-event-1']);
  });

  /** A room whose connection the gateway just dropped; it reconnects after `backoff.baseMs`. */
  async function reconnecting(options: Partial<SwitchboardOptions>) {
    const gw = await gateway({ replica: 'replica-1' });
    const room = client({ urls: [gw.url], ...options }).join('standup');
    await room.ready;
    gw.sockets()[0]?.disconnect(true);
    await vi.waitFor(() => {
      expect(room.state.status).toBe('reconnecting');
    });
    return { gw, room };
  }

  it('holds publishes made while reconnecting, up to a bound, and sends them in order after', async () => {
    const { gw, room } = await reconnecting({ maxPendingPublishes: 3, backoff: { baseMs: 300, maxMs: 300 } });
    const held = ['a', 'b', 'c'].map((text) => room.publish('note', text));
    await expect(room.publish('note', 'd')).rejects.toMatchObject({ code: 'rate_limited' });
    await expect(Promise.all(held)).resolves.toEqual([1, 2, 3].map((seq) => ({ id: `replica-1-event-${seq}`, seq })));
    expect(gw.log.map((event) => event.data)).toEqual(['a', 'b', 'c']);
  });

  it('rejects a publish that no gateway acknowledged in time, and every waiting one on leave', async () => {
    const { gw, room } = await reconnecting({ publishTimeoutMs: 200, backoff: { baseMs: 5_000, maxMs: 5_000 } });
    await expect(room.publish('note', 'late')).rejects.toMatchObject({ code: 'timeout' });
    const waiting = room.publish('note', 'left behind');
    room.leave();
    await expect(waiting).rejects.toMatchObject({ code: 'closed' });
    expect(gw.log).toEqual([]);
  });
});

describe('large rooms', () => {
  const peers: PeerInfo[] = Array.from({ length: 250 }, (_, i) => ({
    peerId: `p${i}`,
    userId: `u${i}`,
    name: `User ${i}`,
    replica: 'replica-1',
    joinedAt: i,
  }));

  it('keeps peerCount from the session, joins, leaves and presence:count', async () => {
    const gw = await gateway({ replica: 'replica-1', roomPeers: peers });
    const room = client({ urls: [gw.url] }).join('standup');
    const counts: number[] = [];
    room.on('peerCount', (count) => counts.push(count));
    await room.ready;
    expect(room.peerCount).toBe(251);
    const [socket] = gw.sockets();
    socket?.emit('peer:joined', { room: 'standup', peerId: 'q1', userId: 'q', name: 'Q', replica: 'r', joinedAt: 1 });
    socket?.emit('peer:left', { room: 'standup', peerId: 'p3', reason: 'disconnect' });
    socket?.emit('presence:count', { room: 'standup', count: 4_000 });
    socket?.emit('presence:count', { room: 'elsewhere', count: 9 });
    await vi.waitFor(() => {
      expect(counts).toEqual([251, 252, 251, 4_000]);
    });
    expect(room.peerCount).toBe(4_000);
  });

  it('pages through the peers, each once', async () => {
    const gw = await gateway({ replica: 'replica-1', roomPeers: peers });
    const room = client({ urls: [gw.url] }).join('standup');
    await room.ready;
    const first = await room.peersPage({ limit: 100 });
    expect(first.peers).toHaveLength(100);
    expect(first.peerCount).toBe(251);
    expect(first.cursor).toBe('100');
    const pages: number[] = [];
    for await (const page of room.peerPages({ limit: 100 })) pages.push(page.peers.length);
    expect(pages).toEqual([100, 100, 50]);
    const all = await room.peers();
    expect(new Set(all.map((peer) => peer.peerId)).size).toBe(250);
  });
});
