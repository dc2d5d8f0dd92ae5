import {
  LIMITS,
  type MintTokenResponse,
  type RecoveryOutcome,
  type RoomEvent,
  type RoomEventFrame,
} from '@switchboard/contract';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { freePort } from '../../support/ports.js';
import {
  SwitchboardError,
  createSwitchboard,
  type AccessTokenContext,
  type ConnectionState,
  type Room,
} from '../src/sdk/index.js';
import { client, closeAll, gateway, onCleanup } from './sdk-harness.js';

afterEach(closeAll);

/** Records every state the room goes through, and waits for one that matches. */
function watch(room: Room) {
  const states: ConnectionState[] = [room.state];
  room.on('state', (state) => states.push(state));
  return {
    states,
    until(check: (state: ConnectionState) => boolean, what: string): Promise<ConnectionState> {
      return vi.waitFor(
        () => {
          const found = states.find(check);
          if (!found) throw new Error(`no state yet: ${what}; saw ${JSON.stringify(states.map((s) => s.status))}`);
          return found;
        },
        { timeout: 5_000, interval: 10 },
      );
    },
  };
}

describe('Switchboard client against a gateway', () => {
  it('joins a room with a freshly minted token and reports the replica serving it', async () => {
    const gw = await gateway({ replica: 'replica-1' });
    const room = client({ urls: [gw.url] }).join('standup');
    const seen = watch(room);

    const session = await room.ready;
    expect(session.replica).toBe('replica-1');
    expect(room.state).toMatchObject({
      status: 'connected',
      replica: 'replica-1',
      peerId: session.peerId,
      url: gw.url,
    });
    expect(seen.states[0]?.status).toBe('connecting');
    expect(gw.mints).toEqual([{ accessToken: 'access-token', room: 'standup', token: 'replica-1-token-1' }]);
    expect(gw.handshakes).toEqual(['replica-1-token-1']);
    expect(room.iceServers).toEqual([{ urls: ['stun:replica-1.test:3478'] }]);
  });

  it('hands app code coalesced room events one at a time, in order', async () => {
    const gw = await gateway({ replica: 'replica-1' });
    const room = client({ urls: [gw.url] }).join('standup');
    const received: string[] = [];
    room.on('room:event', (event) => received.push(event.id));
    await room.ready;

    let seq = 0;
    const event = (id: string): RoomEventFrame => ({
      room: 'standup',
      id,
      type: 'note',
      data: null,
      from: 'peer-x',
      ts: Date.now(),
      seq: ++seq,
    });
    const [socket] = gw.sockets();
    socket?.emit('room:events', [event('e1'), event('e2'), event('e3')]);
    socket?.emit('room:event', event('e4'));
    socket?.emit('room:events', [event('e5')]);

    await vi.waitFor(() => {
      expect(received).toEqual(['e1', 'e2', 'e3', 'e4', 'e5']);
    });
  });

  it('delivers room traffic that overtook the session after it, in order, batches unpacked', async () => {
    const gw = await gateway({
      replica: 'replica-1',
      beforeSession: (socket) => {
        socket.emit('peer:joined', {
          room: 'standup',
          peerId: 'p2',
          userId: 'bob',
          name: 'Bob',
          replica: 'replica-2',
          joinedAt: 1,
        });
        socket.emit('peers:joined', [
          { room: 'standup', peerId: 'p3', userId: 'cy', name: 'Cy', replica: 'replica-2', joinedAt: 2 },
          { room: 'standup', peerId: 'p4', userId: 'di', name: 'Di', replica: 'replica-1', joinedAt: 3 },
        ]);
        socket.emit('signal', { room: 'standup', from: 'p2', kind: 'offer', data: { type: 'offer', sdp: 'v=0' } });
        socket.emit('room:events', [
          { room: 'standup', id: 'e1', type: 'note', data: null, from: 'p2', ts: 1, seq: 1 },
        ]);
      },
    });
    const room = client({ urls: [gw.url] }).join('standup');
    const seen: string[] = [];
    room.on('session', () => seen.push(`session with peer id ${room.peerId ?? '?'}`));
    room.on('peer:joined', (peer) => seen.push(`joined ${peer.peerId}`));
    room.on('signal', (message) => seen.push(`${message.kind} from ${message.from}`));
    room.on('room:event', (event) => seen.push(`event ${event.id}`));
    const session = await room.ready;

    await vi.waitFor(() => {
      expect(seen).toEqual([
        `session with peer id ${session.peerId}`,
        'joined p2',
        'joined p3',
        'joined p4',
        'offer from p2',
        'event e1',
      ]);
    });
  });

  it('resolves acks, and rejects refused ones with the contract code', async () => {
    const gw = await gateway({ replica: 'replica-1' });
    const room = client({ urls: [gw.url] }).join('standup');
    await room.ready;

    await expect(room.publish('note', { text: 'hi' })).resolves.toEqual({ id: 'replica-1-event-1', seq: 1 });
    await expect(room.signal('peer-2', 'offer', { type: 'offer', sdp: 'v=0' })).resolves.toBeUndefined();
    await expect(room.peers()).resolves.toEqual([]);
    const refused = room.signal('nobody', 'bye', null);
    await expect(refused).rejects.toBeInstanceOf(SwitchboardError);
    await expect(refused).rejects.toMatchObject({ code: 'not_in_room' });

    room.leave();
    expect(room.state.status).toBe('disconnected');
    await expect(room.publish('note')).rejects.toMatchObject({ code: 'closed' });
  });

  it('refuses an event over the size limit before sending it, and stays connected', async () => {
    const gw = await gateway({ replica: 'replica-1' });
    const room = client({ urls: [gw.url] }).join('standup');
    const session = await room.ready;
    const huge = 'x'.repeat(LIMITS.eventBytes);
    await expect(room.publish('note', huge)).rejects.toMatchObject({ code: 'payload_too_large' });
    await expect(room.signal('peer-2', 'offer', { sdp: huge })).rejects.toMatchObject({ code: 'payload_too_large' });
    // Nothing was sent: same session, and the next event goes through.
    await expect(room.publish('note', 'small')).resolves.toMatchObject({ seq: 1 });
    expect(room.peerId).toBe(session.peerId);
  });

  it('fails over to the next gateway when the first cannot be reached', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const gw = await gateway({ replica: 'replica-2' });
    const room = client({ urls: [dead, gw.url] }).join('standup');
    const seen = watch(room);

    await expect(room.ready).resolves.toMatchObject({ replica: 'replica-2' });
    const retry = await seen.until((state) => state.error?.code === 'unreachable', 'an unreachable error');
    expect(retry).toMatchObject({ status: 'connecting', url: gw.url });
  });

  it('rejoins another replica after the delay a draining replica asks for', async () => {
    const first = await gateway({ replica: 'replica-1' });
    const second = await gateway({ replica: 'replica-2' });
    const room = client({ urls: [first.url, second.url] }).join('standup');
    const seen = watch(room);
    const firstSession = await room.ready;

    const notified = Date.now();
    for (const socket of first.sockets()) {
      socket.emit('server:shutdown', { reconnectAfterMs: 300 });
      socket.disconnect(true);
    }
    const rejoined = await seen.until(
      (state) => state.status === 'connected' && state.replica === 'replica-2',
      'a session on replica-2',
    );
    expect(Date.now() - notified).toBeGreaterThanOrEqual(290);
    expect(rejoined.peerId).not.toBe(firstSession.peerId);
    const waiting = seen.states.find((state) => state.status === 'reconnecting');
    expect(waiting?.error?.code).toBe('server_draining');
    // Each connection redeemed a token of its own.
    expect(second.handshakes).toEqual(['replica-2-token-1']);
  });

  it('connects elsewhere before letting a draining replica go, and misses nothing in between', async () => {
    let seq = 0;
    const event = (): RoomEventFrame => ({
      room: 'standup',
      id: `e${++seq}`,
      type: 'n',
      data: seq,
      from: 'p',
      ts: Date.now(),
      seq,
    });
    const log: RoomEvent[] = [];
    const first = await gateway({ replica: 'replica-1' });
    const second = await gateway({ replica: 'replica-2', log });
    const room = client({ urls: [first.url, second.url] }).join('standup');
    const seen = watch(room);
    const received: number[] = [];
    room.on('room:event', (e) => received.push(e.seq));
    await room.ready;

    const [draining] = first.sockets();
    draining?.emit('server:shutdown', { reconnectAfterMs: 100 });
    // The draining replica keeps delivering while its client moves; the new one replays after its position.
    const live = setInterval(() => {
      const next = event();
      log.push(next);
      draining?.emit('room:event', next);
    }, 10);
    await seen.until((state) => state.replica === 'replica-2', 'a session on replica-2');
    clearInterval(live);
    await vi.waitFor(() => {
      expect(first.sockets()).toHaveLength(0);
    });
    for (let i = 0; i < 3; i++) {
      const next = event();
      log.push(next);
      second.sockets()[0]?.emit('room:event', next);
    }
    await vi.waitFor(() => {
      expect(received).toEqual(Array.from({ length: seq }, (_, i) => i + 1));
    });
    // It never looked disconnected, and it asked to recover from where it was.
    expect(seen.states.some((state) => state.status !== 'connected' && state.status !== 'connecting')).toBe(false);
    expect(second.recovers[0]).toMatchObject({ epoch: 'e1' });
  });

  it('retries a used token with a new one', async () => {
    const gw = await gateway({ replica: 'replica-1', refusals: ['token_used'] });
    const room = client({ urls: [gw.url] }).join('standup');
    const seen = watch(room);

    await room.ready;
    expect(gw.handshakes).toEqual(['replica-1-token-1', 'replica-1-token-2']);
    expect(seen.states.some((state) => state.error?.code === 'token_used')).toBe(true);
  });

  it('stops for good when the site is not allowed to connect', async () => {
    const gw = await gateway({ replica: 'replica-1', refusals: ['origin_forbidden', 'origin_forbidden'] });
    const room = client({ urls: [gw.url] }).join('standup');

    await expect(room.ready).rejects.toMatchObject({ code: 'origin_forbidden' });
    expect(room.state).toMatchObject({ status: 'failed', error: { code: 'origin_forbidden' } });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(gw.handshakes).toHaveLength(1);
  });

  it('stays out of a room the app removed it from, and says so', async () => {
    const gw = await gateway({ replica: 'replica-1' });
    const room = client({ urls: [gw.url] }).join('standup');
    const seen = watch(room);
    const ended: unknown[] = [];
    room.on('session:ended', (payload) => ended.push(payload));
    await room.ready;

    const socket = gw.sockets()[0];
    socket?.emit('session:ended', { room: 'standup', reason: 'kicked' });
    socket?.disconnect(true);
    await seen.until((state) => state.status === 'failed', 'failed after the kick');
    expect(room.state.error).toMatchObject({ code: 'kicked', message: 'You were removed from this room.' });
    expect(ended).toEqual([{ room: 'standup', reason: 'kicked' }]);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(gw.handshakes).toHaveLength(1);
  });

  it("takes every RTC token from the app's backend when it mints them for its users", async () => {
    const gw = await gateway({ replica: 'replica-1' });
    const asked: unknown[] = [];
    // As a backend would: it mints with its service token (scope `mint`) and passes the answer on.
    const getRtcToken = async (request: { room: string; gateway: string }) => {
      asked.push(request);
      const response = await fetch(`${gw.url}/api/rtc/tokens`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: 'Bearer service-token' },
        body: JSON.stringify({ room: request.room, userId: 'patient-7' }),
      });
      return (await response.json()) as MintTokenResponse;
    };
    const switchboard = createSwitchboard({ urls: [gw.url], getRtcToken, backoff: { baseMs: 20, maxMs: 200 } });
    onCleanup(() => switchboard.close());
    const room = switchboard.join('consult-42');
    await room.ready;
    expect(asked).toEqual([{ room: 'consult-42', gateway: gw.url }]);
    expect(gw.mints.map((mint) => mint.accessToken)).toEqual(['service-token']);
    expect(() => createSwitchboard({ urls: [gw.url] })).toThrow(/getAccessToken/);
  });

  it('retries a handshake whose token Redis could not confirm in time, with a new token', async () => {
    const gw = await gateway({ replica: 'replica-1', refusals: ['unavailable'] });
    const room = client({ urls: [gw.url] }).join('standup');
    await room.ready;
    expect(gw.handshakes).toEqual(['replica-1-token-1', 'replica-1-token-2']);
  });

  it('pages a history read that the gateway cut at its byte limit', async () => {
    const log = Array.from({ length: 30 }, (_, i) => ({
      id: `e${i + 1}`,
      type: 'note',
      data: null,
      from: 'p9',
      ts: 1,
      seq: i + 1,
    }));
    const gw = await gateway({ replica: 'replica-1', log, historyPageMax: 7 });
    const room = client({ urls: [gw.url] }).join('standup');
    await room.ready;
    const page = await room.history({ after: 2, limit: 20 });
    expect(page.events.map((event) => event.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 3));
    expect(page.more).toBeUndefined();
  });

  it('asks the app for a new access token once when the gateway refuses the cached one', async () => {
    const gw = await gateway({ replica: 'replica-1', acceptAccessToken: (token) => token === 'fresh' });
    const getAccessToken = vi.fn(({ forceRefresh }: AccessTokenContext) => (forceRefresh ? 'fresh' : 'stale'));
    const room = client({ urls: [gw.url], getAccessToken }).join('standup');

    await room.ready;
    expect(getAccessToken.mock.calls.map(([context]) => context.forceRefresh)).toEqual([false, true]);

    const refused = client({ urls: [gw.url], getAccessToken: () => 'stale' }).join('standup');
    await expect(refused.ready).rejects.toMatchObject({ code: 'unauthorized' });
    expect(refused.state.status).toBe('failed');
  });

  it('waits at least as long as Retry-After when minting is rate limited', async () => {
    const gw = await gateway({
      replica: 'replica-1',
      mintFailures: [{ status: 429, code: 'rate_limited', retryAfter: '2' }],
    });
    const room = client({ urls: [gw.url] }).join('standup');
    const seen = watch(room);

    const limited = await seen.until((state) => state.error?.code === 'rate_limited', 'a rate_limited error');
    expect((limited.retryAt ?? 0) - Date.now()).toBeGreaterThan(1_500);
    expect(limited.status).toBe('connecting');
  });

  it('refreshes the session before it expires, with a new access token', async () => {
    const gw = await gateway({ replica: 'replica-1', sessionMs: 1_000, refreshedSessionMs: 3_600_000 });
    const getAccessToken = vi.fn((_context: AccessTokenContext) => 'access-token');
    const room = client({ urls: [gw.url], getAccessToken }).join('standup');
    const first = await room.ready;

    await vi.waitFor(() => {
      expect(gw.refreshes).toEqual(['replica-1-token-2']);
    });
    await vi.waitFor(() => {
      expect(room.session?.expiresAt).toBeGreaterThan(first.expiresAt + 60_000);
    });
    expect(getAccessToken).toHaveBeenLastCalledWith({ forceRefresh: true });
    expect(room.state.status).toBe('connected');
  });
});

describe('room positions: each event once, in order, across reconnects', () => {
  let ts = 0;
  const event = (seq: number): RoomEventFrame => ({
    room: 'standup',
    id: `e${seq}`,
    type: 'note',
    data: { seq },
    from: 'p',
    ts: ++ts,
    seq,
  });

  it('drops duplicates and puts events that arrive out of order back in order', async () => {
    const gw = await gateway({ replica: 'replica-1' });
    const room = client({ urls: [gw.url] }).join('standup');
    const received: number[] = [];
    room.on('room:event', (e) => received.push(e.seq));
    await room.ready;
    const [socket] = gw.sockets();
    socket?.emit('room:events', [event(1), event(2)]);
    socket?.emit('room:event', event(2));
    socket?.emit('room:event', event(4));
    socket?.emit('room:event', event(3));
    socket?.emit('room:events', [event(1), event(4), event(5)]);
    await vi.waitFor(() => {
      expect(received).toEqual([1, 2, 3, 4, 5]);
    });
    expect(room.position).toEqual({ epoch: 'e1', seq: 5 });
  });

  it('fills a live hole through `history` instead of reconnecting', async () => {
    const log = [1, 2, 3, 4, 5].map(event);
    const gw = await gateway({ replica: 'replica-1', log: log.slice(0, 1) });
    const room = client({ urls: [gw.url] }).join('standup');
    const received: number[] = [];
    room.on('room:event', (e) => received.push(e.seq));
    const session = await room.ready;
    expect(session.position).toEqual({ epoch: 'e1', seq: 1 });
    // 2 and 3 are in the history but were never sent live; 4 arrives ahead of them.
    log.slice(1).forEach((e) => gw.log.push(e));
    gw.sockets()[0]?.emit('room:event', event(4));
    await vi.waitFor(() => {
      expect(received).toEqual([2, 3, 4, 5]);
    });
    expect(gw.handshakes).toHaveLength(1);
    expect(room.peerId).toBe(session.peerId);
  });

  it('sends its position on every reconnect and receives exactly what it missed', async () => {
    const gw = await gateway({ replica: 'replica-1' });
    const room = client({ urls: [gw.url] }).join('standup');
    const received: number[] = [];
    const recoveries: RecoveryOutcome[] = [];
    room.on('room:event', (e) => received.push(e.seq));
    room.on('recovery', (outcome) => recoveries.push(outcome));
    await room.ready;
    const seen = watch(room);
    gw.log.push(event(1), event(2));
    gw.sockets()[0]?.emit('room:events', [event(1), event(2)]);
    await vi.waitFor(() => {
      expect(room.position).toEqual({ epoch: 'e1', seq: 2 });
    });
    // Three events happen while the client is away.
    gw.log.push(event(3), event(4), event(5));
    gw.sockets()[0]?.disconnect(true);
    await seen.until((state) => state.status === 'reconnecting', 'reconnecting');
    await seen.until((state) => state.status === 'connected' && state.attempt === 0 && seen.states.length > 3, 'back');
    await vi.waitFor(() => {
      expect(received).toEqual([1, 2, 3, 4, 5]);
    });
    expect(gw.recovers).toEqual([undefined, { epoch: 'e1', seq: 2 }]);
    expect(recoveries).toEqual([{ recovered: true, replayed: 3 }]);
  });

  it('reports a refused recovery so the app reloads, and starts from the new position', async () => {
    const gw = await gateway({ replica: 'replica-1', log: [1, 2].map(event) });
    const room = client({ urls: [gw.url] }).join('standup');
    const recoveries: RecoveryOutcome[] = [];
    room.on('recovery', (outcome) => recoveries.push(outcome));
    await room.ready;
    const [socket] = gw.sockets();
    // The room's history moved to another epoch while the client stays connected.
    socket?.emit('room:epoch', { room: 'standup', epoch: 'e9', seq: 7, reason: 'epoch_changed' });
    await vi.waitFor(() => {
      expect(recoveries).toEqual([{ recovered: false, replayed: 0, reason: 'epoch_changed' }]);
    });
    expect(room.position).toEqual({ epoch: 'e9', seq: 7 });
    socket?.disconnect(true);
    await vi.waitFor(() => {
      expect(recoveries).toHaveLength(2);
    });
    // The fake gateway knows only epoch e1: the reconnect's recovery is refused and reported.
    expect(gw.recovers[1]).toEqual({ epoch: 'e9', seq: 7 });
    expect(recoveries[1]).toEqual({ recovered: false, replayed: 0, reason: 'epoch_changed' });
    expect(room.position).toEqual({ epoch: 'e1', seq: 2 });
  });
});
