import { afterEach, describe, expect, it, vi } from 'vitest';
import { Call, type ChatMessage } from '../src/sdk/index.js';
import type { PeerConnectionFactory, PeerConnectionHandlers } from '../src/sdk/peer-connection.js';
import { FakePeerConnection, FakeRoom, peer, session } from './fakes.js';

interface Made {
  pc: FakePeerConnection;
  handlers: PeerConnectionHandlers;
  iceServers: unknown[];
}

const calls: Call[] = [];

afterEach(() => {
  for (const call of calls.splice(0)) call.close();
});

function setUp(options: { stallTimeoutMs?: number } = {}) {
  const room = new FakeRoom();
  const made: Made[] = [];
  const factory: PeerConnectionFactory = ({ iceServers }, handlers) => {
    const pc = new FakePeerConnection(`pc${made.length + 1}`, handlers, iceServers);
    made.push({ pc, handlers, iceServers });
    return pc;
  };
  const call = new Call({ room, createPeerConnection: factory, ...options });
  calls.push(call);
  return { room, made, call };
}

describe('call over a room', () => {
  it('connects to everyone already in the room, with the ICE servers of the minted token', () => {
    const { room, made, call } = setUp();
    room.fire('session', session('m-me', [peer('b-bob', 'Bob'), peer('z-zoe', 'Zoe')]));

    expect(made).toHaveLength(2);
    expect(made[0]?.iceServers).toEqual([{ urls: ['stun:stun.example.test:3478'] }]);
    expect(call.peers().map((p) => [p.name, p.polite, p.connectionState])).toEqual([
      ['Bob', false, 'new'],
      ['Zoe', true, 'new'],
    ]);
  });

  it('relays negotiation through signal, addressed to the peer', async () => {
    const { room, made } = setUp();
    room.fire('session', session('m-me', [peer('b-bob', 'Bob')]));
    made[0]?.handlers.negotiationNeeded();
    await vi.waitFor(() => {
      expect(room.signals).toEqual([{ to: 'b-bob', kind: 'offer', data: { type: 'offer', sdp: 'offer pc1 #1' } }]);
    });
    made[0]?.handlers.iceCandidate({ candidate: 'candidate:1', sdpMid: '0', sdpMLineIndex: 0 });
    expect(room.signals[1]).toMatchObject({ to: 'b-bob', kind: 'candidate' });
  });

  it('lets the other side offer first when we are the polite one, then answers it', async () => {
    const { room, made } = setUp();
    room.fire('session', session('a-me', [peer('b-bob', 'Bob')]));
    made[0]?.handlers.negotiationNeeded();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(room.signals).toEqual([]);

    room.fire('signal', {
      room: 'standup',
      from: 'b-bob',
      kind: 'offer',
      data: { type: 'offer', sdp: 'offer from bob' },
    });
    await vi.waitFor(() => {
      expect(room.signals.map((s) => s.kind)).toEqual(['answer']);
    });
    expect(made[0]?.pc.rollbacks).toBe(0);
  });

  it('replaces a connection whose ICE never started, saying bye first', async () => {
    const { room, made, call } = setUp({ stallTimeoutMs: 30 });
    // We are the impolite side towards Ann and Bob, and the polite side towards Zoe.
    room.fire('session', session('m-me', [peer('a-ann', 'Ann'), peer('b-bob', 'Bob'), peer('z-zoe', 'Zoe')]));
    made[0]?.handlers.connectionStateChange('connecting');

    await vi.waitFor(() => {
      expect(room.signals).toContainEqual({ to: 'b-bob', kind: 'bye', data: null });
    });
    const byes = room.signals.filter((s) => s.kind === 'bye').map((s) => s.to);
    expect(new Set(byes)).toEqual(new Set(['b-bob']));
    // Ann's connection is under way and Zoe's is hers to replace; Bob's starts over.
    expect(made.slice(0, 4).map((m) => [m.pc.label, m.pc.closed])).toEqual([
      ['pc1', false],
      ['pc2', true],
      ['pc3', false],
      ['pc4', false],
    ]);
    expect(call.peers().map((p) => p.name)).toEqual(['Ann', 'Bob', 'Zoe']);
  });

  it('closes the connection of a peer that left and never revives it from a late signal', () => {
    const { room, made, call } = setUp();
    room.fire('session', session('m-me', [peer('b-bob', 'Bob')]));
    room.fire('peer:left', { room: 'standup', peerId: 'b-bob', reason: 'replica_lost' });

    expect(made[0]?.pc.closed).toBe(true);
    expect(call.peers()).toEqual([]);
    room.fire('signal', { room: 'standup', from: 'b-bob', kind: 'candidate', data: { candidate: 'candidate:9' } });
    expect(made).toHaveLength(1);
  });

  it('gives a peer who rejoined with a new id a fresh connection', () => {
    const { room, made, call } = setUp();
    room.fire('session', session('m-me', [peer('b-bob-1', 'Bob')]));
    room.fire('peer:joined', peer('b-bob-2', 'Bob', 'replica-2'));
    room.fire('peer:left', { room: 'standup', peerId: 'b-bob-1', reason: 'replica_lost' });

    expect(made.map((m) => [m.pc.label, m.pc.closed])).toEqual([
      ['pc1', true],
      ['pc2', false],
    ]);
    expect(call.peers().map((p) => [p.peerId, p.replica])).toEqual([['b-bob-2', 'replica-2']]);
  });

  it('rebuilds every connection when we rejoin with a new peer id of our own', () => {
    const { room, made, call } = setUp();
    room.fire('session', session('a-me-1', [peer('b-bob', 'Bob')]));
    expect(call.peers()[0]?.polite).toBe(true);
    room.fire('state', {
      status: 'reconnecting',
      url: 'http://gw-2',
      replica: undefined,
      peerId: undefined,
      error: { code: 'unreachable', message: 'gone' },
      attempt: 1,
      retryAt: undefined,
    });
    // While reconnecting, media keeps flowing peer to peer.
    expect(made[0]?.pc.closed).toBe(false);

    // Our old self may still be listed until the lost replica's presence expires.
    room.fire('session', session('y-me-2', [peer('a-me-1', 'Me'), peer('b-bob', 'Bob')], { replica: 'replica-2' }));
    expect(made.map((m) => m.pc.closed)).toEqual([true, false]);
    expect(call.peers().map((p) => p.name)).toEqual(['Bob']);
    expect(call.myPeerId).toBe('y-me-2');
    // Politeness follows the new id, and Bob decides the same from his side.
    expect(call.peers()[0]?.polite).toBe(false);
  });

  it('answers a peer whose offer overtook its peer:joined, and learns its name', async () => {
    const { room, made, call } = setUp();
    room.directory = [peer('c-cat', 'Cat')];
    room.fire('session', session('m-me', []));
    room.fire('signal', {
      room: 'standup',
      from: 'c-cat',
      kind: 'offer',
      data: { type: 'offer', sdp: 'offer from cat' },
    });

    expect(made).toHaveLength(1);
    await vi.waitFor(() => {
      expect(room.signals.map((s) => [s.to, s.kind])).toEqual([['c-cat', 'answer']]);
      expect(call.peers().map((p) => p.name)).toEqual(['Cat']);
    });
  });

  it('chats over open channels only, and names the sender', () => {
    const { room, made, call } = setUp();
    const chat: ChatMessage[] = [];
    call.on('chat', (message) => chat.push(message));
    room.fire('session', session('m-me', [peer('b-bob', 'Bob'), peer('z-zoe', 'Zoe')]));
    const [bob, zoe] = made;
    if (!bob || !zoe) throw new Error('expected two connections');

    bob.pc.chatOpen = true;
    bob.handlers.chatOpen();
    expect(call.peers().map((p) => p.chatOpen)).toEqual([true, false]);
    expect(call.sendChat('hello')).toBe(1);
    expect(bob.pc.chatSent.map((raw) => (JSON.parse(raw) as { text: string }).text)).toEqual(['hello']);
    expect(zoe.pc.chatSent).toEqual([]);

    bob.handlers.chatMessage(JSON.stringify({ text: 'hi there', ts: 5 }));
    bob.handlers.chatMessage('not json');
    expect(chat.map((m) => [m.self, m.name, m.text])).toEqual([
      [true, 'Me', 'hello'],
      [false, 'Bob', 'hi there'],
    ]);
  });

  it('restarts ICE when a connection fails, and reports the state', () => {
    const { room, made, call } = setUp();
    room.fire('session', session('m-me', [peer('b-bob', 'Bob')]));
    made[0]?.handlers.connectionStateChange('connected');
    expect(call.peers()[0]?.connectionState).toBe('connected');
    made[0]?.handlers.connectionStateChange('failed');
    expect(made[0]?.pc.restarts).toBe(1);
  });

  it('hangs up with a bye to each peer and closes everything when the room is left', () => {
    const { room, made, call } = setUp();
    room.fire('session', session('m-me', [peer('b-bob', 'Bob')]));
    call.close();
    expect(room.signals).toEqual([{ to: 'b-bob', kind: 'bye', data: null }]);
    expect(made[0]?.pc.closed).toBe(true);

    const other = setUp();
    other.room.fire('session', session('m-me', [peer('b-bob', 'Bob')]));
    other.room.fire('state', {
      status: 'failed',
      url: undefined,
      replica: undefined,
      peerId: undefined,
      error: { code: 'unauthorized', message: 'no' },
      attempt: 0,
      retryAt: undefined,
    });
    expect(other.made[0]?.pc.closed).toBe(true);
    expect(other.call.peers()).toEqual([]);
  });

  it('closes the connection of a peer who said bye but keeps them in the room', () => {
    const { room, made, call } = setUp();
    room.fire('session', session('m-me', [peer('b-bob', 'Bob')]));
    room.fire('signal', { room: 'standup', from: 'b-bob', kind: 'bye', data: null });
    expect(made[0]?.pc.closed).toBe(true);
    expect(call.peers().map((p) => [p.name, p.connectionState])).toEqual([['Bob', 'none']]);
  });
});
