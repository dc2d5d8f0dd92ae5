import { createHmac, generateKeyPairSync } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HttpErrorResponse, MintTokenResponse, ReadyResponse } from '@switchboard/contract';
import { ALL_ROOMS, accessToken, connectWithToken, devLogin, mintToken, postJson } from '../../support/client.js';
import { startTestGateway, type TestGateway } from '../../support/gateway.js';

const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
const errorCode = (body: unknown) => (body as HttpErrorResponse).error.code;

function mint(gw: TestGateway, token: string, body: unknown = { room: 'lobby' }) {
  return postJson(`${gw.url}/api/rtc/tokens`, body, { authorization: `Bearer ${token}` });
}

describe('HTTP API in memory mode', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({
      MINT_RATE_PER_MINUTE: '5',
      STUN_URLS: 'stun:stun.example.org:3478',
      TURN_URLS: 'turn:turn.example.org:3478?transport=udp',
      TURN_SECRET: 'turn-shared-secret',
      JWT_AUDIENCE: 'switchboard-test',
      JWT_ISSUER: 'https://auth.example',
    });
  });
  afterAll(() => gw.close());

  const userToken = (sub: string, extra: jwt.SignOptions = {}) =>
    jwt.sign({ sub, rooms: ALL_ROOMS }, 'test-access-secret-0123456789abcdef0123456789', {
      algorithm: 'HS256',
      expiresIn: 300,
      audience: 'switchboard-test',
      issuer: 'https://auth.example',
      ...extra,
    });

  it('answers health and readiness with the contract shapes', async () => {
    expect(await (await fetch(`${gw.url}/healthz`)).json()).toEqual({ status: 'ok' });
    const ready = (await (await fetch(`${gw.url}/readyz`)).json()) as ReadyResponse;
    expect(ready).toEqual({
      status: 'ready',
      redis: 'disabled',
      tokenStore: 'memory',
      replica: 'in-process',
      connections: 0,
    });
  });

  it('mints a 60 s token with ICE servers, including time-limited TURN credentials', async () => {
    const before = Date.now();
    const { status, body } = await mint(gw, userToken('alice'), { room: 'lobby' });
    expect(status).toBe(201);
    const minted = body as MintTokenResponse;
    expect(minted.room).toBe('lobby');
    expect(minted.ttlSeconds).toBe(60);
    expect(minted.expiresAt).toBeGreaterThanOrEqual(before + 59_000);
    expect(minted.expiresAt).toBeLessThanOrEqual(Date.now() + 60_000);
    const claims = jwt.decode(minted.token) as Record<string, unknown>;
    expect(claims).toMatchObject({ sub: 'alice', room: 'lobby', caps: ['publish'] });
    expect(Object.keys(claims)).toEqual(expect.arrayContaining(['jti', 'iat', 'exp']));
    expect(minted.iceServers[0]).toEqual({ urls: ['stun:stun.example.org:3478'] });
    const turn = minted.iceServers[1];
    expect(turn?.username).toMatch(/^\d+:alice$/);
    const expected = createHmac('sha1', 'turn-shared-secret')
      .update(turn?.username ?? '')
      .digest('base64');
    expect(turn?.credential).toBe(expected);
    expect(Number(turn?.username?.split(':')[0])).toBeGreaterThan(Date.now() / 1000);
  });

  it('honours caps and rejects invalid rooms and fields with invalid_request', async () => {
    const { body } = await mint(gw, userToken('carol'), { room: 'r', caps: [] });
    expect((jwt.decode((body as MintTokenResponse).token) as { caps: string[] }).caps).toEqual([]);
    for (const bad of [{ room: '' }, { room: 'a b' }, { room: 'x'.repeat(129) }, { room: 'r', caps: ['admin'] }, {}]) {
      const response = await mint(gw, userToken('carol'), bad);
      expect(response.status).toBe(400);
      expect(errorCode(response.body)).toBe('invalid_request');
    }
  });

  it('rate-limits minting per user with 429 and Retry-After', async () => {
    const token = userToken('rate-limited-user');
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 7; i++) {
      const response = await mint(gw, token);
      statuses.push(response.status);
      if (response.status === 429) {
        retryAfter = response.headers.get('retry-after');
        expect(errorCode(response.body)).toBe('rate_limited');
      }
    }
    expect(statuses).toEqual([201, 201, 201, 201, 201, 429, 429]);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
    expect(Number(retryAfter)).toBeLessThanOrEqual(60);
    // Someone else is not affected.
    expect((await mint(gw, userToken('someone-else'))).status).toBe(201);
  });

  describe('refuses attacks on the access JWT with 401 unauthorized and stays up', () => {
    const cases: Array<[string, () => string]> = [
      ['forged signature', () => jwt.sign({ sub: 'mallory' }, 'not-the-secret-not-the-secret-123', { expiresIn: 60 })],
      ['alg none', () => `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: 'mallory', exp: 9e9 })}.`],
      ['expired', () => userToken('alice', { expiresIn: -10 })],
      ['wrong audience', () => userToken('alice', { audience: 'someone-else' })],
      ['wrong issuer', () => userToken('alice', { issuer: 'https://evil.example' })],
      [
        'no expiry',
        () =>
          jwt.sign(
            { sub: 'alice', aud: 'switchboard-test', iss: 'https://auth.example' },
            'test-access-secret-0123456789abcdef0123456789',
          ),
      ],
      ['garbage', () => 'not.a.jwt'],
    ];
    it.each(cases)('%s', async (_name, token) => {
      const response = await mint(gw, token());
      expect(response.status).toBe(401);
      expect(errorCode(response.body)).toBe('unauthorized');
    });

    it('malformed Authorization headers', async () => {
      for (const header of ['', 'Bearer', 'Basic abc', 'Bearer a b', 'bearer']) {
        const response = await postJson(`${gw.url}/api/rtc/tokens`, { room: 'x' }, { authorization: header });
        expect(response.status).toBe(401);
        expect(errorCode(response.body)).toBe('unauthorized');
      }
    });
  });

  it('answers oversized and malformed bodies with JSON errors, never HTML', async () => {
    const big = await mint(gw, userToken('alice'), JSON.stringify({ room: 'x', pad: 'y'.repeat(70 * 1024) }));
    expect(big.status).toBe(413);
    expect(errorCode(big.body)).toBe('payload_too_large');
    const broken = await mint(gw, userToken('alice'), '{"room":');
    expect(broken.status).toBe(400);
    expect(errorCode(broken.body)).toBe('invalid_request');
    const missing = await fetch(`${gw.url}/no/such/path`);
    expect(missing.headers.get('content-type')).toMatch(/application\/json/);
    expect(errorCode(await missing.json())).toBe('not_found');
    expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
  });

  it('tells a client that sends no JSON to send JSON, on every JSON route', async () => {
    const service = jwt.sign({ sub: 'ops', scope: 'publish' }, 'test-access-secret-0123456789abcdef0123456789', {
      expiresIn: 300,
      audience: 'switchboard-test',
      issuer: 'https://auth.example',
    });
    const routes = [
      ['/api/rtc/tokens', userToken('alice')],
      ['/api/rooms/lobby/events', service],
      ['/api/dev/login', undefined],
    ] as const;
    for (const [path, token] of routes) {
      for (const [type, body] of [
        ['text/plain', '{"room":"lobby"}'],
        ['application/x-www-form-urlencoded', 'room=lobby'],
        [undefined, undefined],
      ] as const) {
        const response = await fetch(`${gw.url}${path}`, {
          method: 'POST',
          headers: {
            ...(token ? { authorization: `Bearer ${token}` } : {}),
            ...(type ? { 'content-type': type } : {}),
          },
          ...(body === undefined ? {} : { body: new Blob([body]) }),
        });
        expect(response.status, `${path} ${type ?? 'no body'}`).toBe(400);
        const { error } = (await response.json()) as HttpErrorResponse;
        expect(error.code).toBe('invalid_request');
        expect(error.message).toBe(
          `send a JSON body with "Content-Type: application/json"${type ? `, not "${type}"` : ''}`,
        );
      }
    }
  });

  it('sends security headers and CORS', async () => {
    const response = await fetch(`${gw.url}/healthz`, { headers: { origin: 'https://app.example' } });
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    expect(response.headers.get('access-control-allow-origin')).toBe('*');
    expect(response.headers.get('x-powered-by')).toBeNull();
    const preflight = await fetch(`${gw.url}/api/rtc/tokens`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-headers')).toMatch(/Authorization/);
  });

  it('revokes a token for its owner only; a revoked token is refused as token_revoked', async () => {
    const minted = (await mint(gw, userToken('owner'))).body as MintTokenResponse;
    const { jti } = minted;
    const other = await fetch(`${gw.url}/api/rtc/tokens/${jti}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${userToken('intruder')}` },
    });
    expect(other.status).toBe(404);
    const own = await fetch(`${gw.url}/api/rtc/tokens/${jti}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${userToken('owner')}` },
    });
    expect(own.status).toBe(204);
    const again = await fetch(`${gw.url}/api/rtc/tokens/${jti}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${userToken('owner')}` },
    });
    expect(again.status).toBe(404);
    await expect(connectWithToken(gw.url, minted.token)).rejects.toThrow('token_revoked');
  });

  it('never logs tokens, secrets or Authorization headers', () => {
    const logs = gw.logs();
    expect(logs).not.toContain('test-access-secret');
    expect(logs).not.toContain('turn-shared-secret');
    expect(logs).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}/);
  });
});

describe('RTC tokens in memory mode', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    // Whole-second expiry: a 2 s token lives between 1 and 2 s.
    gw = await startTestGateway({ RTC_TOKEN_TTL_SECONDS: '2' });
  });
  afterAll(() => gw.close());

  it('mints, redeems once, refuses the second use', async () => {
    const minted = await mintToken(gw.url, await devLogin(gw.url, 'memo'), 'room-1');
    const client = await connectWithToken(gw.url, minted.token);
    expect(client.session).toMatchObject({ userId: 'memo', room: 'room-1', replica: 'in-process', peers: [] });
    client.close();
    await expect(connectWithToken(gw.url, minted.token)).rejects.toThrow('token_used');
  });

  it('refuses an expired token with token_expired', async () => {
    const minted = await mintToken(gw.url, await devLogin(gw.url, 'late'), 'room-1');
    await new Promise((resolve) => setTimeout(resolve, 2_100));
    await expect(connectWithToken(gw.url, minted.token)).rejects.toThrow('token_expired');
  });

  it('refuses handshakes with a missing, forged or foreign token', async () => {
    await expect(connectWithToken(gw.url, '')).rejects.toThrow('token_missing');
    const forged = jwt.sign({ sub: 'x', room: 'r', caps: [], jti: 'j', sexp: 9e9, name: 'x' }, 'wrong', {
      audience: 'switchboard:rtc',
      expiresIn: 60,
    });
    await expect(connectWithToken(gw.url, forged)).rejects.toThrow('token_invalid');
    // An access JWT is not an RTC token, even though both are JWTs.
    await expect(connectWithToken(gw.url, accessToken({ sub: 'x' }))).rejects.toThrow('token_invalid');
  });
});

describe('RS256 access tokens', () => {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const publicPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({ JWT_SECRET: undefined, JWT_PUBLIC_KEY: publicPem });
  });
  afterAll(() => gw.close());

  it('accepts RS256 and refuses an HS256 token signed with the public key (algorithm confusion)', async () => {
    const good = jwt.sign({ sub: 'rsa-user', rooms: ALL_ROOMS }, privateKey, { algorithm: 'RS256', expiresIn: 60 });
    expect((await mint(gw, good)).status).toBe(201);
    const confused = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub: 'mallory', exp: Math.floor(Date.now() / 1000) + 60 })}`;
    const signature = createHmac('sha256', publicPem).update(confused).digest('base64url');
    const response = await mint(gw, `${confused}.${signature}`);
    expect(response.status).toBe(401);
    expect(errorCode(response.body)).toBe('unauthorized');
  });

  it('has dev login switched off (it needs a shared secret)', async () => {
    const response = await postJson(`${gw.url}/api/dev/login`, { userId: 'x' });
    expect(response.status).toBe(404);
    expect(errorCode(response.body)).toBe('not_found');
  });
});
