import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import jwt from 'jsonwebtoken';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MintTokenResponse, RoomAuthorizerRequest, RoomAuthorizerResponse } from '@switchboard/contract';
import { accessToken, connectWithToken, mintToken, nextEvent, postJson, scrapeMetric } from '../../support/client.js';
import { startReplicas, TEST_SECRETS, type GatewayProcess } from '../../support/gateway-process.js';
import { startTestGateway, type TestGateway } from '../../support/gateway.js';
import { waitFor } from '../../support/ports.js';
import { startRedisServer, type RedisServerHandle } from '../../support/redis-server.js';

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const mint = (gw: { url: string }, token: string, body: object) =>
  postJson(`${gw.url}/api/rtc/tokens`, body, bearer(token));
const capsOf = (body: unknown) => (jwt.decode((body as MintTokenResponse).token) as { caps: string[] }).caps;
const messageOf = (body: unknown) => (body as { error: { message: string } }).error.message;

describe('ROOM_ACCESS=grants', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({ ROOM_ACCESS: 'grants', JWT_ROOMS_CLAIM: 'https://app.example/rooms' });
  });
  afterAll(() => gw.close());

  /** An access JWT with `grants` in the namespaced claim an identity provider would use. */
  const user = (grants: unknown) =>
    jwt.sign({ sub: 'u', 'https://app.example/rooms': grants }, TEST_SECRETS.JWT_SECRET, {
      algorithm: 'HS256',
      expiresIn: 300,
    });

  it('admits exact names and prefix patterns, the most specific match deciding the capabilities', async () => {
    const token = user({ 'team-*': ['publish'], 'team-archive*': [], 'consult-42': ['publish'], '*': [] });
    expect(capsOf((await mint(gw, token, { room: 'consult-42' })).body)).toEqual(['publish']);
    expect(capsOf((await mint(gw, token, { room: 'team-7' })).body)).toEqual(['publish']);
    expect(capsOf((await mint(gw, token, { room: 'team-archive-2019' })).body)).toEqual([]);
    // `*` alone matches every room: here read-only.
    expect(capsOf((await mint(gw, token, { room: 'lobby' })).body)).toEqual([]);
  });

  it('narrows capabilities to the grant, and refuses asking for more, saying what is missing', async () => {
    const token = user({ 'webinar-*': [] });
    const minted = await mint(gw, token, { room: 'webinar-1' });
    expect(minted.status).toBe(201);
    const member = await connectWithToken(gw.url, (minted.body as MintTokenResponse).token);
    try {
      expect(member.session.caps).toEqual([]);
      const ack: unknown = await member.socket.emitWithAck('publish', { type: 'question' });
      expect(ack).toMatchObject({ ok: false, error: { code: 'forbidden' } });
    } finally {
      member.close();
    }
    const more = await mint(gw, token, { room: 'webinar-1', caps: ['publish'] });
    expect(more.status).toBe(403);
    expect(messageOf(more.body)).toContain('not publish');
  });

  it('refuses a room no grant matches, and a claim that is not a grants object, naming the claim', async () => {
    const none = await mint(gw, user({ 'team-*': ['publish'] }), { room: 'consult-42' });
    expect(none.status).toBe(403);
    expect(messageOf(none.body)).toContain('"https://app.example/rooms" claim does not grant room "consult-42"');
    const malformed = await mint(gw, user(['consult-42']), { room: 'consult-42' });
    expect(malformed.status).toBe(403);
    expect(messageOf(malformed.body)).toContain('must map room names');
    const noList = await mint(gw, user({ 'consult-42': true }), { room: 'consult-42' });
    expect(noList.status).toBe(403);
    expect(messageOf(noList.body)).toContain('list of capabilities');
    expect((await mint(gw, accessToken({ sub: 'u', rooms: {} }), { room: 'consult-42' })).status).toBe(403);
  });

  it('lets a backend with scope "mint" mint for its user, and nobody else', async () => {
    const backend = accessToken({ sub: 'backend', scope: 'mint', rooms: {} });
    const minted = await mint(gw, backend, { room: 'consult-42', userId: 'patient-7', name: 'Pat', caps: [] });
    expect(minted.status).toBe(201);
    const member = await connectWithToken(gw.url, (minted.body as MintTokenResponse).token);
    try {
      expect(member.session).toMatchObject({ userId: 'patient-7', name: 'Pat', room: 'consult-42', caps: [] });
    } finally {
      member.close();
    }
    const publisher = accessToken({ sub: 'backend', scope: 'publish', rooms: {} });
    expect((await mint(gw, publisher, { room: 'consult-42', userId: 'patient-7' })).status).toBe(403);
  });

  it('checks the AI-voice room like a token mint', async () => {
    const voice = await startTestGateway({ ROOM_ACCESS: 'grants', OPENAI_API_KEY: 'sk-never-called' });
    try {
      const outsider = accessToken({ sub: 'u', rooms: { 'team-*': [] } });
      const refused = await postJson(`${voice.url}/api/rtc/upstream/openai`, { room: 'consult-42' }, bearer(outsider));
      expect(refused.status).toBe(403);
      expect(refused.body).toMatchObject({ error: { code: 'forbidden' } });
    } finally {
      await voice.close();
    }
  });
});

interface Authorizer {
  readonly url: string;
  readonly calls: Array<{ request: RoomAuthorizerRequest; signature: string | undefined; raw: string }>;
  answer: (request: RoomAuthorizerRequest) => {
    status: number;
    body?: RoomAuthorizerResponse | string;
    delayMs?: number;
  };
  close(): Promise<void>;
}

async function startAuthorizer(): Promise<Authorizer> {
  const read = (req: IncomingMessage) =>
    new Promise<string>((resolve) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => resolve(body));
    });
  const state: Authorizer = {
    url: '',
    calls: [],
    answer: () => ({ status: 200, body: { allow: true } }),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  const server: Server = createServer((req, res) => {
    void read(req).then(async (raw) => {
      const request = JSON.parse(raw) as RoomAuthorizerRequest;
      const signature = req.headers['switchboard-signature'];
      state.calls.push({ request, signature: Array.isArray(signature) ? signature[0] : signature, raw });
      const { status, body, delayMs } = state.answer(request);
      if (delayMs) await new Promise((resolve) => setTimeout(resolve, delayMs));
      if (res.destroyed) return;
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(typeof body === 'string' ? body : JSON.stringify(body ?? {}));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  Object.assign(state, { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/authorize` });
  server.closeAllConnections();
  return state;
}

describe('ROOM_ACCESS=authorizer', () => {
  const SECRET = 'authorizer-secret-0123456789abcdef0123456789';
  let authorizer: Authorizer;
  let gw: TestGateway;
  beforeAll(async () => {
    authorizer = await startAuthorizer();
    gw = await startTestGateway({
      ROOM_ACCESS: 'authorizer',
      ROOM_AUTHORIZER_URL: authorizer.url,
      ROOM_AUTHORIZER_SECRET: SECRET,
      ROOM_AUTHORIZER_TIMEOUT_MS: '300',
      ROOM_AUTHORIZER_CACHE_SECONDS: '30',
    });
  });
  afterAll(async () => {
    await gw.close();
    await authorizer.close();
  });

  const callsFor = (room: string) => authorizer.calls.filter((call) => call.request.room === room).length;

  it('asks the app, signed, and follows its decision: allow with caps, deny, each cached', async () => {
    authorizer.answer = ({ room, userId }) =>
      room === 'consult-42' && userId === 'doctor'
        ? { status: 200, body: { allow: true, caps: ['publish'] } }
        : room === 'consult-42' && userId === 'patient'
          ? { status: 200, body: { allow: true, caps: [], ttlSeconds: 60 } }
          : { status: 200, body: { allow: false } };
    const doctor = accessToken({ sub: 'doctor', rooms: {}, name: 'Dr. Who' });
    const patient = accessToken({ sub: 'patient', rooms: {} });
    expect(capsOf((await mint(gw, doctor, { room: 'consult-42' })).body)).toEqual(['publish']);
    expect(capsOf((await mint(gw, patient, { room: 'consult-42' })).body)).toEqual([]);
    const denied = await mint(gw, accessToken({ sub: 'stranger', rooms: {} }), { room: 'consult-42' });
    expect(denied.status).toBe(403);
    expect(messageOf(denied.body)).toContain('authorizer');

    const first = authorizer.calls.find((call) => call.request.userId === 'doctor');
    expect(first?.request).toMatchObject({ userId: 'doctor', room: 'consult-42', caps: ['publish'] });
    expect(first?.request.claims).toMatchObject({ sub: 'doctor', name: 'Dr. Who' });
    // The signature covers the timestamp and the exact body, with the shared secret.
    const [t, v1] = (first?.signature ?? '').split(',').map((part) => part.split('=')[1]);
    expect(v1).toBe(createHmac('sha256', SECRET).update(`${t}.${first?.raw}`).digest('hex'));
    expect(Math.abs(Number(t) - Date.now() / 1000)).toBeLessThan(30);

    const before = callsFor('consult-42');
    for (let i = 0; i < 3; i++) {
      await mint(gw, doctor, { room: 'consult-42' });
      // The patient's read-only answer is the app's whole answer: reused for mints without caps.
      expect(capsOf((await mint(gw, patient, { room: 'consult-42' })).body)).toEqual([]);
      await mint(gw, accessToken({ sub: 'stranger', rooms: {} }), { room: 'consult-42' });
    }
    expect(callsFor('consult-42')).toBe(before);
    expect(await scrapeMetric(gw.url, 'switchboard_room_access_total', { source: 'cache', result: 'allow' })).toBe(6);
    // Asking for more than a cached answer covered asks again.
    expect((await mint(gw, patient, { room: 'consult-42', caps: ['publish'] })).status).toBe(403);
    expect(callsFor('consult-42')).toBe(before + 1);
  });

  it('uses a matching grant in the access JWT without calling', async () => {
    const token = accessToken({ sub: 'granted', rooms: { 'lobby-*': ['publish'] } });
    expect((await mint(gw, token, { room: 'lobby-1' })).status).toBe(201);
    expect(callsFor('lobby-1')).toBe(0);
  });

  it('fails closed with 503 authorizer_unavailable within its timeout when slow or failing', async () => {
    const user = accessToken({ sub: 'waiting', rooms: {} });
    authorizer.answer = () => ({ status: 200, body: { allow: true }, delayMs: 2_000 });
    const started = Date.now();
    const slow = await mint(gw, user, { room: 'slow-room' });
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(slow.status).toBe(503);
    expect(slow.body).toMatchObject({ error: { code: 'authorizer_unavailable' } });
    expect(Number(slow.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);

    for (const answer of [
      { status: 500, body: 'oops' },
      { status: 200, body: '{"allow":"yes"}' },
      { status: 404, body: 'not here' },
    ]) {
      authorizer.answer = () => answer;
      const refused = await mint(gw, user, { room: `failing-${answer.status}-${answer.body.length}` });
      expect(refused.status).toBe(503);
      expect(refused.body).toMatchObject({ error: { code: 'authorizer_unavailable' } });
    }
    // An outage is not cached: the next answer decides.
    authorizer.answer = () => ({ status: 200, body: { allow: true } });
    expect((await mint(gw, user, { room: 'slow-room' })).status).toBe(201);
  });
});

describe('kicks and withdrawn grants across replicas', () => {
  let redis: RedisServerHandle;
  let a: GatewayProcess;
  let b: GatewayProcess;
  beforeAll(async () => {
    redis = await startRedisServer();
    const env = { REDIS_URL: redis.url };
    [a, b] = await startReplicas(env, ['a', 'b']);
  });
  afterAll(async () => {
    try {
      await Promise.all([a.stop(), b.stop()]);
    } finally {
      // Also when the gateways never started.
      await redis.stop();
    }
  });

  it('ends every connection of the user in the room on every replica, and refuses the tokens minted before', async () => {
    const mallory = accessToken({ sub: 'mallory' });
    const onA = await connectWithToken(a.url, (await mintToken(a.url, mallory, 'town-hall')).token);
    const onB = await connectWithToken(b.url, (await mintToken(b.url, mallory, 'town-hall')).token);
    const elsewhere = await connectWithToken(b.url, (await mintToken(b.url, mallory, 'other-room')).token);
    const bystander = await connectWithToken(
      a.url,
      (await mintToken(a.url, accessToken({ sub: 'bob' }), 'town-hall')).token,
    );
    const spare = await mintToken(b.url, mallory, 'town-hall');
    try {
      const endedA = nextEvent(onA.socket, 'session:ended');
      const endedB = nextEvent(onB.socket, 'session:ended');
      const left = nextEvent(bystander.socket, 'peer:left', (payload) => payload.peerId === onB.session.peerId);
      const moderator = accessToken({ sub: 'moderator', scope: 'kick' });
      const kicked = await fetch(`${a.url}/api/rooms/town-hall/members/mallory`, {
        method: 'DELETE',
        headers: bearer(moderator),
      });
      expect(kicked.status).toBe(204);
      expect(await endedA).toEqual({ room: 'town-hall', reason: 'kicked' });
      expect(await endedB).toEqual({ room: 'town-hall', reason: 'kicked' });
      expect(await left).toEqual({ room: 'town-hall', peerId: onB.session.peerId, reason: 'kicked' });
      await waitFor('both kicked sockets closed', () => (!onA.socket.connected && !onB.socket.connected) || undefined);
      expect(elsewhere.socket.connected).toBe(true);
      expect(bystander.socket.connected).toBe(true);
      // A token minted before the kick is refused on either replica.
      await expect(connectWithToken(a.url, spare.token)).rejects.toThrow('token_revoked');
      // Letting the user back in is the app's decision: a token minted later works.
      await new Promise((resolve) => setTimeout(resolve, 1_100));
      const back = await connectWithToken(b.url, (await mintToken(b.url, mallory, 'town-hall')).token);
      back.close();
    } finally {
      for (const client of [onA, onB, elsewhere, bystander]) client.close();
    }
  });

  it('ends a session at its expiry once the grant is withdrawn: the refresh cannot be minted', async () => {
    const granted = accessToken({ sub: 'carol', rooms: { 'team-1': ['publish'] } }, { expiresInSeconds: 3 });
    const member = await connectWithToken(a.url, (await mintToken(a.url, granted, 'team-1')).token);
    try {
      // The app removes the grant: Carol's next access JWT no longer lists the room.
      const withdrawn = accessToken({ sub: 'carol', rooms: { 'team-2': ['publish'] } }, { expiresInSeconds: 600 });
      const refresh = await mint(a, withdrawn, { room: 'team-1' });
      expect(refresh.status).toBe(403);
      // A token for another room cannot stand in for the refresh either.
      const other = await mintToken(a.url, withdrawn, 'team-2');
      const ack: unknown = await member.socket.emitWithAck('session:refresh', { token: other.token });
      expect(ack).toMatchObject({ ok: false, error: { code: 'forbidden' } });
      expect(await nextEvent(member.socket, 'session:ended')).toEqual({ room: 'team-1', reason: 'session_expired' });
    } finally {
      member.close();
    }
  });
});
