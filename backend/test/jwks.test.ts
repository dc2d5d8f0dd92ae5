import jwt from 'jsonwebtoken';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { HttpErrorResponse } from '@switchboard/contract';
import { connectWithToken, postJson } from '../../support/client.js';
import { startTestGateway, type TestGateway } from '../../support/gateway.js';
import { startJwksServer, type JwksServer } from '../../support/jwks-server.js';
import { freePort } from '../../support/ports.js';

/**
 * Access JWTs verified against an identity provider's JWKS: a real HTTP endpoint on
 * loopback whose keys the tests rotate, take down, slow down and break.
 */

const errorOf = (body: unknown) => (body as HttpErrorResponse).error;

/** A gateway that trusts only `jwksUrl` (no JWT_SECRET), with `env` on top. */
function jwksGateway(jwksUrl: string, env: Record<string, string> = {}): Promise<TestGateway> {
  return startTestGateway({ JWT_SECRET: undefined, JWT_JWKS_URL: jwksUrl, ...env });
}

function mint(gw: TestGateway, token: string) {
  return postJson(`${gw.url}/api/rtc/tokens`, { room: 'lobby' }, { authorization: `Bearer ${token}` });
}

function publish(gw: TestGateway, token: string) {
  return postJson(`${gw.url}/api/rooms/lobby/events`, { type: 'notice' }, { authorization: `Bearer ${token}` });
}

/** A key the endpoint never published, as a token from a rotated-away or foreign key. */
const unpublishedKey = (idp: JwksServer) => idp.addKey('ES256', { published: false });

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const open: Array<{ close(): Promise<void> }> = [];
async function track<T extends { close(): Promise<void> }>(resource: Promise<T>): Promise<T> {
  const value = await resource;
  open.push(value);
  return value;
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((resource) => resource.close()));
});

describe('identity provider keys (JWT_JWKS_URL)', () => {
  let idp: JwksServer;
  let gw: TestGateway;
  let rsa: string;
  let ec: string;
  beforeAll(async () => {
    idp = await startJwksServer();
    rsa = await idp.addKey('RS256');
    ec = await idp.addKey('ES256');
    gw = await jwksGateway(idp.url, { JWT_ISSUER: 'https://idp.example', JWT_AUDIENCE: 'switchboard' });
  });
  afterAll(async () => {
    await gw.close();
    await idp.close();
  });

  const claims = { iss: 'https://idp.example', aud: 'switchboard' };

  it('admits RS256 and ES256 tokens, picking the key by kid, and the session carries their claims', async () => {
    for (const kid of [rsa, ec]) {
      const token = await idp.sign(kid, { ...claims, sub: `user-${kid}`, name: 'Ada' });
      const response = await mint(gw, token);
      expect(response.status, JSON.stringify(response.body)).toBe(201);
      const client = await connectWithToken(gw.url, (response.body as { token: string }).token);
      expect(client.session).toMatchObject({ userId: `user-${kid}`, name: 'Ada', room: 'lobby' });
      client.close();
    }
  });

  it('refuses what the key set does not vouch for with 401 unauthorized', async () => {
    const hs256 = jwt.sign({ ...claims, sub: 'mallory' }, 'a-guessed-shared-secret-0123456789', { expiresIn: 60 });
    const cases: Array<[string, string, RegExp]> = [
      ['an HS256 token', hs256, /not valid/],
      [
        'an unpublished key',
        await idp.sign(await unpublishedKey(idp), { ...claims, sub: 'mallory' }),
        /does not publish/,
      ],
      [
        'an expired token',
        await idp.sign(rsa, { ...claims, sub: 'ada', exp: Math.floor(Date.now() / 1000) - 10 }),
        /expired/,
      ],
      ['another issuer', await idp.sign(rsa, { ...claims, iss: 'https://evil.example', sub: 'ada' }), /not valid/],
      ['another audience', await idp.sign(ec, { ...claims, aud: 'someone-else', sub: 'ada' }), /not valid/],
      ['no subject', await idp.sign(ec, claims), /subject/],
    ];
    for (const [what, token, message] of cases) {
      const response = await mint(gw, token);
      expect(response.status, what).toBe(401);
      expect(errorOf(response.body).code, what).toBe('unauthorized');
      expect(errorOf(response.body).message, what).toMatch(message);
    }
  });
});

describe('JWT_SCOPE_CLAIM', () => {
  it("reads service scopes from an array claim such as Okta's scp, and ignores scope then", async () => {
    const idp = await track(startJwksServer());
    const kid = await idp.addKey('RS256');
    const gw = await track(jwksGateway(idp.url, { JWT_SCOPE_CLAIM: 'scp' }));

    const service = await idp.sign(kid, { sub: 'reporting-backend', scp: ['read', 'publish'] });
    expect((await publish(gw, service)).status).toBe(202);
    const peers = await fetch(`${gw.url}/api/rooms/lobby/peers`, { headers: { authorization: `Bearer ${service}` } });
    expect(peers.status).toBe(200);

    const wrongClaim = await idp.sign(kid, { sub: 'reporting-backend', scope: 'publish' });
    const refused = await publish(gw, wrongClaim);
    expect(refused.status).toBe(403);
    expect(errorOf(refused.body).code).toBe('forbidden');
  });

  it('reads a space-separated string too, with any whitespace between scopes', async () => {
    const idp = await track(startJwksServer());
    const kid = await idp.addKey('ES256');
    const gw = await track(jwksGateway(idp.url));
    expect((await publish(gw, await idp.sign(kid, { sub: 'ops', scope: 'read\tpublish  admin' }))).status).toBe(202);
    expect((await publish(gw, await idp.sign(kid, { sub: 'ops', scope: 'publisher' }))).status).toBe(403);
  });

  it("grants nothing for an identity provider's own scopes, and matches namespaced ones with JWT_SCOPE_PREFIX", async () => {
    const idp = await track(startJwksServer());
    const kid = await idp.addKey('RS256');
    const gw = await track(jwksGateway(idp.url, { JWT_SCOPE_PREFIX: 'switchboard:' }));
    const user = await idp.sign(kid, { sub: 'patient-7', scope: 'openid profile email' });
    const read = await fetch(`${gw.url}/api/rooms/consult-42/events`, { headers: { authorization: `Bearer ${user}` } });
    expect(read.status).toBe(403);
    expect((await publish(gw, user)).status).toBe(403);
    // Unprefixed names do not count once the gateway's scopes are namespaced.
    expect((await publish(gw, await idp.sign(kid, { sub: 'ops', scope: 'publish' }))).status).toBe(403);
    expect((await publish(gw, await idp.sign(kid, { sub: 'ops', scope: 'openid switchboard:publish' }))).status).toBe(
      202,
    );
  });
});

describe('key rotation', () => {
  it('picks up a newly published kid and refuses a removed one', async () => {
    const idp = await track(startJwksServer());
    const first = await idp.addKey('RS256');
    const gw = await track(jwksGateway(idp.url, { JWT_JWKS_COOLDOWN_SECONDS: '0' }));
    expect((await mint(gw, await idp.sign(first, { sub: 'ada' }))).status).toBe(201);
    const oldToken = await idp.sign(first, { sub: 'ada' });

    // The provider rotates: a new key signs from now on, the old one is withdrawn.
    const second = await idp.addKey('ES256');
    idp.removeKey(first);
    expect((await mint(gw, await idp.sign(second, { sub: 'ada' }))).status).toBe(201);
    const refused = await mint(gw, oldToken);
    expect(refused.status).toBe(401);
    expect(errorOf(refused.body).code).toBe('unauthorized');
  });

  it('refetches on an unknown kid at most once per cooldown, however many arrive', async () => {
    const idp = await track(startJwksServer());
    const first = await idp.addKey('RS256');
    const fresh = await idp.addKey('ES256', { published: false });
    const unknown = await Promise.all(Array.from({ length: 5 }, () => unpublishedKey(idp)));
    const tokens = await Promise.all([fresh, ...unknown].map((kid) => idp.sign(kid, { sub: 'x' })));
    const gw = await track(jwksGateway(idp.url, { JWT_JWKS_COOLDOWN_SECONDS: '1' }));
    expect((await mint(gw, await idp.sign(first, { sub: 'ada' }))).status).toBe(201);
    expect(idp.fetches()).toBe(1);

    // Within the cooldown, unknown kids (a flood of forged ones, or a key published a
    // moment ago) are refused from the cache without asking the endpoint.
    idp.publishKey(fresh);
    const early = await Promise.all(tokens.map((token) => mint(gw, token)));
    expect(early.map((response) => response.status)).toEqual([401, 401, 401, 401, 401, 401]);
    expect(idp.fetches()).toBe(1);

    await sleep(1100);
    const later = await Promise.all(tokens.map((token) => mint(gw, token)));
    expect(later.map((response) => response.status)).toEqual([201, 401, 401, 401, 401, 401]);
    expect(idp.fetches()).toBe(2);
  });
});

describe('an identity provider that fails', () => {
  const expectUnavailable = (response: Awaited<ReturnType<typeof mint>>) => {
    expect(response.status).toBe(503);
    expect(errorOf(response.body).code).toBe('identity_unavailable');
    expect(errorOf(response.body).message).toMatch(/identity provider/);
    expect(Number(response.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  };

  it('answers 503 identity_unavailable with Retry-After when nothing listens, and logs why', async () => {
    const idp = await track(startJwksServer());
    const kid = await idp.addKey('RS256');
    const gw = await track(jwksGateway(`http://127.0.0.1:${await freePort()}/keys?tenant=t-secret`));
    expectUnavailable(await mint(gw, await idp.sign(kid, { sub: 'ada' })));
    const warning = gw
      .logs()
      .split('\n')
      .find((line) => line.includes('identity provider keys cannot be fetched'));
    expect(warning).toMatch(/ECONNREFUSED/);
    expect(gw.logs()).not.toContain('t-secret');
  });

  it.each([
    ['a 500', 'error'],
    ['a body that is not a key set', 'garbage'],
  ] as const)('answers 503 identity_unavailable for %s', async (_what, mode) => {
    const idp = await track(startJwksServer());
    const kid = await idp.addKey('ES256');
    idp.setMode(mode);
    const gw = await track(jwksGateway(idp.url));
    expectUnavailable(await mint(gw, await idp.sign(kid, { sub: 'ada' })));
  });

  it('gives up on an endpoint that never answers after JWT_JWKS_TIMEOUT_MS, and waits out the cooldown before asking again', async () => {
    const idp = await track(startJwksServer());
    const kid = await idp.addKey('RS256');
    idp.setMode('hang');
    const gw = await track(jwksGateway(idp.url, { JWT_JWKS_TIMEOUT_MS: '300', JWT_JWKS_COOLDOWN_SECONDS: '60' }));
    const token = await idp.sign(kid, { sub: 'ada' });
    const first = await mint(gw, token);
    expectUnavailable(first);
    const second = await mint(gw, token);
    expectUnavailable(second);
    expect(Number(second.headers.get('retry-after'))).toBeGreaterThan(50);
    expect(idp.fetches()).toBe(1);
  });

  it('keeps admitting tokens signed by keys fetched before, refuses unseen keys with 503, and recovers', async () => {
    const idp = await track(startJwksServer());
    const known = await idp.addKey('RS256');
    const gw = await track(jwksGateway(idp.url, { JWT_JWKS_CACHE_SECONDS: '1', JWT_JWKS_COOLDOWN_SECONDS: '0' }));
    expect((await mint(gw, await idp.sign(known, { sub: 'ada' }))).status).toBe(201);

    idp.setMode('error');
    const rotated = await idp.addKey('ES256');
    await sleep(1100); // the cached set is now stale, and refetching it fails
    expect((await mint(gw, await idp.sign(known, { sub: 'ada' }))).status).toBe(201);
    // A key the gateway has not seen may be legitimate: "try later", not "sign in again".
    expectUnavailable(await mint(gw, await idp.sign(rotated, { sub: 'ada' })));

    idp.setMode('ok');
    expect((await mint(gw, await idp.sign(rotated, { sub: 'ada' }))).status).toBe(201);
    expect(gw.logs()).toContain('identity provider keys fetched again');
  });
});
