/**
 * The AsyncAPI document at /api/asyncapi.json, checked against the gateway that serves it:
 * @asyncapi/parser finds no error or warning in it, and every message it describes is
 * produced by real socket.io clients and a real gateway and fits its schema, while the
 * payloads the gateway refuses do not fit it either.
 */
import { DiagnosticSeverity, Parser } from '@asyncapi/parser';
import { io, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { LIMITS, type HistoryResponse, type MintTokenResponse, type ReadyResponse } from '@switchboard/contract';
import { documentValidator, isObject, type JsonObject } from '../../support/api-documents.js';
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
import { startTestGateway, type TestGateway } from '../../support/gateway.js';
import { waitFor } from '../../support/ports.js';
import { startRedisServer } from '../../support/redis-server.js';

describe('the AsyncAPI document', () => {
  let gw: TestGateway;
  let document: JsonObject;
  let messages: Record<string, JsonObject>;
  let check: (schema: unknown, value: unknown) => string[];
  let alice: ConnectedClient;
  let bob: ConnectedClient;
  const seen = new Set<string>();
  /** Everything the gateway sent to a recorded socket, in order. */
  const received: Array<{ event: string; payload: unknown }> = [];

  /** The key of the server-to-client message whose Socket.IO event is `event`. */
  const serverKey = (event: string): string => {
    const key = Object.keys(messages).find((name) => name.startsWith('server.') && messages[name]?.name === event);
    if (!key) throw new Error(`the document has no server message named ${event}`);
    return key;
  };
  /** What the document finds wrong with `payload` as the message `key`: nothing when it fits. */
  const fits = (key: string, payload: unknown): string[] => {
    const message = messages[key];
    if (!message) throw new Error(`the document has no message ${key}`);
    return check(message.payload, payload);
  };
  const expectFits = (key: string, payload: unknown): void => {
    expect(fits(key, payload), `${key}: ${JSON.stringify(payload).slice(0, 300)}`).toEqual([]);
    seen.add(key);
  };
  const record = (client: ConnectedClient): ConnectedClient => {
    expectFits(serverKey('session'), client.session);
    client.socket.onAny((event: string, payload: unknown) => {
      received.push({ event, payload });
    });
    return client;
  };
  /** Every recorded payload so far fits the message of its event. */
  const expectReceivedFit = (): void => {
    for (const { event, payload } of received.splice(0)) expectFits(serverKey(event), payload);
  };
  /** Untyped, so that payloads the contract forbids can be sent too. */
  const emit = (client: ConnectedClient, event: string, payload: unknown): Promise<unknown> =>
    (client.socket as unknown as Socket).timeout(5_000).emitWithAck(event, payload);
  /** Emits a client event and checks both the payload and its ack against the document. */
  const request = async (client: ConnectedClient, event: string, payload: unknown): Promise<unknown> => {
    const key = `client.${event.replaceAll(':', '.')}`;
    expectFits(key, payload);
    const ack = await emit(client, event, payload);
    expectFits(`${key}.ack`, ack);
    return ack;
  };
  const codeOf = (ack: unknown) => (isObject(ack) && isObject(ack.error) ? ack.error.code : undefined);
  /** Connects, expecting a refusal, and checks it against the document. */
  const expectRefused = async (token: string, code: string): Promise<void> => {
    const refusal = await connectWithToken(gw.url, token).catch((error: unknown) => error);
    expect(refusal).toBeInstanceOf(Error);
    const { message, data } = refusal as Error & { data?: unknown };
    expect(message).toBe(code);
    expectFits(serverKey('connect_error'), { message, data });
  };

  beforeAll(async () => {
    // Wide enough that three events published at once share a frame even on a busy machine.
    gw = await startTestGateway({ EVENT_COALESCE_MS: '200' });
    document = (await (await fetch(`${gw.url}/api/asyncapi.json`)).json()) as JsonObject;
    const components = isObject(document.components) ? document.components : {};
    messages = (isObject(components.messages) ? components.messages : {}) as Record<string, JsonObject>;
    check = documentValidator(isObject(components.schemas) ? components.schemas : {}, 'draft-07');
    alice = record(await joinRoom(gw.url, 'alice', 'lobby'));
    bob = record(await joinRoom(gw.url, 'bob', 'lobby'));
  });
  afterAll(async () => {
    alice.close();
    bob.close();
    await gw.close();
  });

  it('describes the handshake and its refusals', async () => {
    const access = await devLogin(gw.url, 'carol');
    const minted = await mintToken(gw.url, access, 'lobby');
    expectFits('client.handshake', { token: minted.token });
    const carol = await connectWithToken(gw.url, minted.token);
    carol.close();
    await expectRefused(minted.token, 'token_used');

    const revoked = await mintToken(gw.url, access, 'lobby');
    const revoke = await fetch(`${gw.url}/api/rtc/tokens/${revoked.jti}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${access}` },
    });
    expect(revoke.status).toBe(204);
    await expectRefused(revoked.token, 'token_revoked');
  });

  it('describes peers:joined: joins within one window, in one frame', async () => {
    const batch = nextEvent(alice.socket, 'peers:joined');
    const burst = await Promise.all(['dave', 'erin', 'fay'].map((user) => joinRoom(gw.url, user, 'lobby')));
    expect((await batch).length).toBeGreaterThanOrEqual(2);
    for (const client of burst) client.close();
    expectReceivedFit();
  });

  it('describes signal, its ack and its relay', async () => {
    const relayed = nextEvent(bob.socket, 'signal');
    const offer = { to: bob.session.peerId, kind: 'offer', data: { sdp: 'v=0' } };
    expect(await request(alice, 'signal', offer)).toEqual({ ok: true });
    expect(await relayed).toMatchObject({ from: alice.session.peerId, kind: 'offer' });
    expect(codeOf(await request(alice, 'signal', { to: 'nobody', kind: 'bye', data: null }))).toBe('not_in_room');

    const malformed = { to: bob.session.peerId, kind: 'shout', data: null };
    expect(fits('client.signal', malformed)).not.toEqual([]);
    const ack = await emit(alice, 'signal', malformed);
    expect(codeOf(ack)).toBe('invalid_payload');
    expectFits('client.signal.ack', ack);
    expectReceivedFit();
  });

  it('describes publish, its ack, room:event and room:events', async () => {
    const heard = nextEvent(bob.socket, 'room:event');
    const ack = await request(alice, 'publish', { type: 'note', data: { text: 'hi' } });
    expect((await heard).id).toBe((ack as { id: string }).id);

    const batch = nextEvent(bob.socket, 'room:events');
    const service = accessToken({ sub: 'backend', scope: 'publish read' });
    await Promise.all(
      [1, 2, 3].map((n) =>
        postJson(`${gw.url}/api/rooms/lobby/events`, { type: 'tick', data: n }, { authorization: `Bearer ${service}` }),
      ),
    );
    expect((await batch).length).toBeGreaterThan(1);

    const observer = await postJson(
      `${gw.url}/api/rtc/tokens`,
      { room: 'lobby', caps: [] },
      { authorization: `Bearer ${await devLogin(gw.url, 'observer')}` },
    );
    const readOnly = record(await connectWithToken(gw.url, (observer.body as MintTokenResponse).token));
    expect(codeOf(await request(readOnly, 'publish', { type: 'note' }))).toBe('forbidden');
    readOnly.close();
    expect(fits('client.publish', { type: 'a b' })).not.toEqual([]);
    expect(codeOf(await emit(alice, 'publish', { type: 'a b' }))).toBe('invalid_payload');
    expectReceivedFit();
  });

  it('describes recovery: auth.recover and session.recovery', async () => {
    const last = alice.events.at(-1);
    expect(last?.seq).toBeGreaterThan(1);
    const seen = { epoch: alice.session.position.epoch, seq: (last?.seq ?? 0) - 1 };
    const access = await devLogin(gw.url, 'erin');
    const minted = await mintToken(gw.url, access, 'lobby');
    expectFits('client.handshake', { token: minted.token, recover: seen });
    const back = record(await connectWithToken(gw.url, minted.token, {}, seen));
    expect(back.session.recovery).toEqual({ recovered: true, replayed: 1 });
    await vi.waitFor(() => expect(back.events).toEqual([last]));
    back.close();

    const elsewhere = { epoch: 'another-epoch', seq: 1 };
    const stranger = record(
      await connectWithToken(gw.url, (await mintToken(gw.url, access, 'lobby')).token, {}, elsewhere),
    );
    expect(stranger.session.recovery).toEqual({ recovered: false, replayed: 0, reason: 'epoch_changed' });
    stranger.close();
    expectReceivedFit();
  });

  it('describes history and its ack', async () => {
    const latest = (await request(alice, 'history', {})) as HistoryResponse;
    expect(latest.events.map((event) => event.seq)).toEqual(alice.events.map((event) => event.seq));
    const [first, second] = latest.events;
    expect(await request(alice, 'history', { after: first?.seq, limit: 1 })).toEqual({
      ok: true,
      epoch: latest.epoch,
      top: latest.top,
      events: [second],
    });
    expect(fits('client.history', { limit: 0 })).not.toEqual([]);
    expect(codeOf(await emit(alice, 'history', { limit: 0 }))).toBe('invalid_payload');
  });

  it('describes the acks of oversized and unknown events', async () => {
    const big = 'x'.repeat(LIMITS.eventBytes);
    expect(codeOf(await request(alice, 'publish', { type: 'note', data: big }))).toBe('payload_too_large');
    const offer = { to: bob.session.peerId, kind: 'offer', data: { sdp: big } };
    expect(codeOf(await request(alice, 'signal', offer))).toBe('payload_too_large');

    const unknown = await emit(alice, 'shout', { text: 'hi' });
    expect(codeOf(unknown)).toBe('unknown_event');
    expectFits('client.unknown.ack', unknown);
    expectReceivedFit();
  });

  it('describes peers and session:refresh with their acks', async () => {
    const { peers } = (await request(alice, 'peers', {})) as { peers: Array<{ userId: string }> };
    expect(peers.map((peer) => peer.userId).sort()).toEqual(['alice', 'bob']);
    expect(fits('client.peers', { all: true })).not.toEqual([]);

    const fresh = await mintToken(gw.url, await devLogin(gw.url, 'alice'), 'lobby');
    const refreshed = await request(alice, 'session:refresh', { token: fresh.token });
    expect(refreshed).toMatchObject({ ok: true });
    expect(codeOf(await request(alice, 'session:refresh', { token: fresh.token }))).toBe('token_used');
    expectReceivedFit();
  });

  it('describes session:ended and peer:left when a session expires', async () => {
    const shortLived = accessToken({ sub: 'dave' }, { expiresInSeconds: 2 });
    const dave = record(await connectWithToken(gw.url, (await mintToken(gw.url, shortLived, 'lobby')).token));
    const left = nextEvent(alice.socket, 'peer:left', (payload) => payload.peerId === dave.session.peerId);
    expect(await nextEvent(dave.socket, 'session:ended')).toEqual({ room: 'lobby', reason: 'session_expired' });
    expect((await left).reason).toBe('session_expired');
    dave.close();
    expectReceivedFit();
  });

  it('describes room:epoch, and a publish answered locally, when Redis goes away and comes back', async () => {
    const redis = await startRedisServer();
    const backed = await startTestGateway({ REDIS_URL: redis.url });
    let frank: ConnectedClient | undefined;
    try {
      frank = record(await joinRoom(backed.url, 'frank', 'lobby'));
      const shared = await request(frank, 'publish', { type: 'note' });
      expect(shared).toMatchObject({ ok: true, seq: 1 });
      expect(shared).not.toHaveProperty('local');

      await redis.kill();
      await waitFor('a degraded gateway', async () => {
        const ready = (await (await fetch(`${backed.url}/readyz`)).json()) as ReadyResponse;
        return ready.status === 'degraded' || undefined;
      });
      const forked = nextEvent(frank.socket, 'room:epoch');
      // Only this replica's members hear it, numbered in an epoch of the replica's own.
      const local = await request(frank, 'publish', { type: 'note' });
      expect(local).toMatchObject({ ok: true, seq: 2, local: true });
      const { epoch } = await forked;
      expect(epoch).not.toBe(frank.session.position.epoch);
      expect(await request(frank, 'history', {})).toMatchObject({ ok: true, epoch, top: 2 });

      // Redis is back, empty: the shared history this room counted in is gone.
      const rejoined = nextEvent(frank.socket, 'room:epoch');
      await redis.start();
      expect(await rejoined).toMatchObject({ seq: 0, reason: 'epoch_changed' });
      expectReceivedFit();
    } finally {
      frank?.close();
      await backed.close();
      await redis.stop();
    }
  });

  it('describes server:shutdown when the gateway drains', async () => {
    const notice = nextEvent(alice.socket, 'server:shutdown');
    await gw.close();
    expect((await notice).reconnectAfterMs).toBeGreaterThan(0);
    expectReceivedFit();
  });

  it('describes room:join, room:leave, paged peers and presence:count on a connection without a token', async () => {
    // A gateway of its own, where a room of two is already "large".
    const small = await startTestGateway({ ROOM_ANNOUNCE_MAX: '1', PRESENCE_COUNT_INTERVAL_MS: '50' });
    const open = (): Promise<Socket> =>
      new Promise((resolve, reject) => {
        const socket = io(small.url, { transports: ['websocket'], reconnection: false, forceNew: true });
        socket.once('connect', () => resolve(socket));
        socket.once('connect_error', reject);
      });
    const sockets = [await open(), await open()];
    try {
      const [one, two] = sockets as [Socket, Socket];
      one.onAny((event: string, payload: unknown) => received.push({ event, payload }));
      expectFits('client.handshake', {});
      const ask = async (socket: Socket, event: string, payload: unknown): Promise<unknown> => {
        const key = `client.${event.replaceAll(':', '.')}`;
        expectFits(key, payload);
        const ack: unknown = await socket.timeout(5_000).emitWithAck(event, payload);
        expectFits(`${key}.ack`, ack);
        return ack;
      };
      const tokenFor = async (user: string, room: string) =>
        (await mintToken(small.url, await devLogin(small.url, user), room)).token;
      expect(await ask(one, 'room:join', { token: await tokenFor('gil', 'hall') })).toMatchObject({
        ok: true,
        room: 'hall',
        peerCount: 1,
      });
      expect(await ask(one, 'room:join', { token: await tokenFor('gil', 'side') })).toMatchObject({ ok: true });
      expect(codeOf(await ask(one, 'room:join', { token: await tokenFor('hal', 'hall') }))).toBe('forbidden');
      const counted = new Promise<unknown>((resolve) => one.once('presence:count', resolve));
      await ask(two, 'room:join', { token: await tokenFor('hal', 'hall') });
      expect(await counted).toEqual({ room: 'hall', count: 2 });
      const first = await ask(one, 'peers', { room: 'hall', limit: 1 });
      expect(first).toMatchObject({ ok: true, peerCount: 2, peers: [{ userId: 'gil' }] });
      const cursor = (first as { cursor?: string }).cursor;
      expect(await ask(one, 'peers', { room: 'hall', cursor })).toMatchObject({ ok: true, peers: [{ userId: 'hal' }] });
      expect(codeOf(await ask(one, 'publish', { type: 'note' }))).toBe('invalid_payload');
      expect(await ask(one, 'room:leave', { room: 'side' })).toEqual({ ok: true });
      expect(codeOf(await ask(one, 'room:leave', { room: 'side' }))).toBe('not_in_room');
      expectReceivedFit();
    } finally {
      for (const socket of sockets) socket.close();
      await small.close();
    }
  });

  // Last among the tests that talk to the gateway: validation holds the event loop, which the
  // in-process gateway shares, for seconds. Keep-alive connections idle that long are closed
  // by the server unseen by fetch, and the next request on one fails with ECONNRESET.
  it('is valid AsyncAPI 3.0', async () => {
    expect(document.asyncapi).toBe('3.0.0');
    const diagnostics = await new Parser().validate(structuredClone(document) as never);
    // Spectral types `severity` from its own copy of @stoplight/types, so compare as numbers.
    const serious = new Set<number>([DiagnosticSeverity.Error, DiagnosticSeverity.Warning]);
    const problems = diagnostics.filter((diagnostic) => serious.has(diagnostic.severity));
    expect(problems.map((problem) => `${problem.path.join('.')}: ${problem.message}`)).toEqual([]);
  });

  it('had every message it describes produced above', () => {
    expect(Object.keys(messages).filter((key) => !seen.has(key))).toEqual([]);
  });
});
