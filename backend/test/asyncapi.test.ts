/**
 * The AsyncAPI document at /api/asyncapi.json, checked against the gateway that serves it:
 * @asyncapi/parser finds no error or warning in it, and every message it describes is
 * produced by real socket.io clients and a real gateway and fits its schema, while the
 * payloads the gateway refuses do not fit it either.
 */
import { DiagnosticSeverity, Parser } from '@asyncapi/parser';
import type { Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MintTokenResponse } from '@switchboard/contract';
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

  beforeAll(async () => {
    gw = await startTestGateway({ EVENT_COALESCE_MS: '50' });
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

  it('describes the handshake and its refusal', async () => {
    const minted = await mintToken(gw.url, await devLogin(gw.url, 'carol'), 'lobby');
    expectFits('client.handshake', { token: minted.token });
    const carol = await connectWithToken(gw.url, minted.token);
    carol.close();
    const refusal = await connectWithToken(gw.url, minted.token).catch((error: unknown) => error);
    expect(refusal).toBeInstanceOf(Error);
    const { message, data } = refusal as Error & { data?: unknown };
    expect(message).toBe('token_used');
    expectFits(serverKey('connect_error'), { message, data });
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
    const service = accessToken({ sub: 'backend', scope: 'publish' });
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
    expect(await nextEvent(dave.socket, 'session:ended')).toEqual({ reason: 'session_expired' });
    expect((await left).reason).toBe('session_expired');
    dave.close();
    expectReceivedFit();
  });

  it('describes server:shutdown when the gateway drains', async () => {
    const notice = nextEvent(alice.socket, 'server:shutdown');
    await gw.close();
    expect((await notice).reconnectAfterMs).toBeGreaterThan(0);
    expectReceivedFit();
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
