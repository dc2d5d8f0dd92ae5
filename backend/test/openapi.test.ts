/**
 * The OpenAPI document at /api/openapi.json, checked against the gateway that serves it:
 * it is valid OpenAPI 3.1, every route the app serves is in it, and every documented
 * answer of every route, errors included, is produced for real and fits the document.
 * The gateway under test serves AI voice too, against a local stand-in for the provider.
 */
import { generateKeyPairSync } from 'node:crypto';
import { compileErrors, validate } from '@readme/openapi-parser';
import express from 'express';
import jwt from 'jsonwebtoken';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type {
  DevLoginResponse,
  HistoryResponse,
  MintTokenResponse,
  UpstreamSessionResponse,
} from '@switchboard/contract';
import { documentValidator, isObject, resolvePointer, type JsonObject } from '../../support/api-documents.js';
import { accessToken, joinRoom, type ConnectedClient } from '../../support/client.js';
import { startFakeOpenAi, type FakeOpenAi } from '../../support/fake-openai.js';
import { startTestGateway, type TestGateway } from '../../support/gateway.js';
import { freePort } from '../../support/ports.js';

interface Route {
  methods: Record<string, boolean | undefined>;
}

// Every route an app registers goes through Router#route, Express's own and any mounted
// router's alike; the spy only records them, and the gateways run unchanged.
const routerPrototype = express.Router.prototype as { route(path: string): Route };
const registered = vi.spyOn(routerPrototype, 'route');

/** Express `/api/rooms/:room/peers` as OpenAPI `/api/rooms/{room}/peers`. */
/** `:name` parameters become `{name}`; an escaped `\\:` is a literal colon (`events:batch`). */
const openApiPath = (path: string) => path.replace(/(?<!\\):(\w+)/g, '{$1}').replace(/\\:/g, ':');

const OPENAI_API_KEY = 'sk-test-openapi-0123456789abcdefghijklmnop';

describe('the OpenAPI document', () => {
  let provider: FakeOpenAi;
  let gw: TestGateway;
  let document: JsonObject;
  let member: ConnectedClient;
  let check: (schema: unknown, value: unknown) => string[];
  const answered = new Set<string>();

  beforeAll(async () => {
    provider = await startFakeOpenAi(OPENAI_API_KEY);
    gw = await startTestGateway({
      MINT_RATE_PER_MINUTE: '3',
      OPENAI_API_KEY,
      OPENAI_BASE_URL: provider.baseUrl,
      UPSTREAM_SESSIONS_PER_USER: '1',
    });
    document = (await (await fetch(`${gw.url}/api/openapi.json`)).json()) as JsonObject;
    const components = isObject(document.components) ? document.components : {};
    check = documentValidator(isObject(components.schemas) ? components.schemas : {}, '2020-12');
    member = await joinRoom(gw.url, 'member', 'lobby');
  });
  afterAll(async () => {
    member.close();
    await gw.close();
    await provider.close();
    registered.mockRestore();
  });

  /** Fails unless the document lists this answer, its body fits, and its required headers are there. */
  async function expectDocumented(method: string, path: string, response: Response): Promise<unknown> {
    const where = `${method.toUpperCase()} ${path} ${response.status}`;
    const operation = resolvePointer(document, `#/paths/${path.replaceAll('/', '~1')}/${method}`);
    if (!isObject(operation) || !isObject(operation.responses)) throw new Error(`${where}: no such operation`);
    const documented = operation.responses[String(response.status)];
    if (!isObject(documented)) throw new Error(`${where}: the document lists no such answer`);
    answered.add(where);

    const text = await response.text();
    const type = response.headers.get('content-type')?.split(';')[0]?.trim() ?? '';
    let body: unknown = text;
    if (!isObject(documented.content)) {
      expect(text, `${where} has no body`).toBe('');
    } else {
      const media = documented.content[type];
      if (!isObject(media)) throw new Error(`${where}: ${type} is not a documented content type`);
      if (type === 'application/json') body = JSON.parse(text);
      expect(check(media.schema, body), `${where}: ${text.slice(0, 300)}`).toEqual([]);
    }
    for (const [name, header] of Object.entries(isObject(documented.headers) ? documented.headers : {})) {
      const spec = isObject(header) && typeof header.$ref === 'string' ? resolvePointer(document, header.$ref) : header;
      if (!isObject(spec) || spec.required !== true) continue;
      const value = response.headers.get(name);
      expect(value, `${where}: header ${name}`).not.toBeNull();
      expect(check(spec.schema, Number.isNaN(Number(value)) ? value : Number(value)), `${where}: ${name}`).toEqual([]);
    }
    return body;
  }

  interface Call {
    token?: string;
    /** JSON, or the raw text of a body that is not. */
    body?: unknown;
    /** @default 'application/json' with a body */
    contentType?: string;
    /** @default the gateway under test */
    on?: TestGateway;
  }

  async function call(
    method: string,
    path: string,
    url: string,
    { token, body, contentType = 'application/json', on = gw }: Call = {},
  ): Promise<unknown> {
    const response = await fetch(`${on.url}${url}`, {
      method: method.toUpperCase(),
      headers: {
        ...(body === undefined ? {} : { 'content-type': contentType }),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    return expectDocumented(method, path, response);
  }

  const user = (sub: string) => accessToken({ sub });
  const service = accessToken({ sub: 'backend', scope: 'publish read' });
  const oversized = { room: 'lobby', type: 'x', padding: 'x'.repeat(70 * 1024) };
  const errorOf = (body: unknown) => (isObject(body) && isObject(body.error) ? body.error : {});
  const codeOf = (body: unknown) => errorOf(body).code;
  /** A JSON route refuses a body of another type, and says what to send. */
  const expectNotJson = async (method: string, path: string, url: string, token?: string) => {
    const refused = errorOf(await call(method, path, url, { token, body: 'room=lobby', contentType: 'text/plain' }));
    expect(refused).toEqual({
      code: 'invalid_request',
      message: 'send a JSON body with "Content-Type: application/json", not "text/plain"',
    });
  };

  it('describes every route the app serves, and no route it does not', () => {
    const served = registered.mock.calls.flatMap(([path], index) => {
      const route = registered.mock.results[index]?.value as Route;
      return Object.keys(route.methods).map((method) => `${method.toUpperCase()} ${openApiPath(path)}`);
    });
    const paths = isObject(document.paths) ? document.paths : {};
    const described = Object.entries(paths).flatMap(([path, operations]) =>
      Object.keys(isObject(operations) ? operations : {}).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(served.filter((route) => route.includes(' /api/'))).not.toEqual([]);
    expect([...new Set(served)].filter((route) => !described.includes(route))).toEqual([]);
    expect(described.filter((route) => !served.includes(route))).toEqual([]);
  });

  it('GET /healthz, /readyz, /metrics and both API documents', async () => {
    expect(await call('get', '/healthz', '/healthz')).toEqual({ status: 'ok' });
    expect(await call('get', '/readyz', '/readyz')).toMatchObject({ status: 'ready', connections: 1 });
    expect(await call('get', '/metrics', '/metrics')).toContain('switchboard_connected_sockets 1');
    expect(await call('get', '/api/openapi.json', '/api/openapi.json')).toEqual(document);
    expect(await call('get', '/api/asyncapi.json', '/api/asyncapi.json')).toMatchObject({ asyncapi: '3.0.0' });
  });

  it('POST /api/dev/login', async () => {
    const path = '/api/dev/login';
    const login = (await call('post', path, path, { body: { userId: 'alice', name: 'Alice' } })) as DevLoginResponse;
    expect(jwt.decode(login.accessToken)).toMatchObject({ sub: 'alice', name: 'Alice' });
    expect(codeOf(await call('post', path, path, { body: { userId: 'a b' } }))).toBe('invalid_request');
    expect(codeOf(await call('post', path, path, { body: '{"userId":' }))).toBe('invalid_request');
    await expectNotJson('post', path, path);
    expect(codeOf(await call('post', path, path, { body: { userId: 'x'.repeat(70 * 1024) } }))).toBe(
      'payload_too_large',
    );
  });

  it('POST /api/rtc/tokens', async () => {
    const path = '/api/rtc/tokens';
    const minted = (await call('post', path, path, {
      token: user('alice'),
      body: { room: 'lobby' },
    })) as MintTokenResponse;
    expect(minted.room).toBe('lobby');
    expect(codeOf(await call('post', path, path, { token: user('alice'), body: { room: 'a b' } }))).toBe(
      'invalid_request',
    );
    expect(codeOf(await call('post', path, path, { token: user('alice'), body: '{"room":' }))).toBe('invalid_request');
    await expectNotJson('post', path, path, user('alice'));
    expect(codeOf(await call('post', path, path, { body: { room: 'lobby' } }))).toBe('unauthorized');
    expect(codeOf(await call('post', path, path, { token: user('alice'), body: oversized }))).toBe('payload_too_large');
    const codes: unknown[] = [];
    for (let attempt = 0; attempt < 4; attempt++) {
      codes.push(codeOf(await call('post', path, path, { token: user('hasty'), body: { room: 'lobby' } })));
    }
    expect(codes).toEqual([undefined, undefined, undefined, 'rate_limited']);
    const ungranted = accessToken({ sub: 'stranger', rooms: { 'own-*': [] } });
    expect(codeOf(await call('post', path, path, { token: ungranted, body: { room: 'lobby' } }))).toBe('forbidden');
    expect(
      codeOf(await call('post', path, path, { token: ungranted, body: { room: 'own-1', caps: ['publish'] } })),
    ).toBe('forbidden');
    // A backend mints for its user with scope `mint`; without it, `userId` is refused.
    const minter = accessToken({ sub: 'backend', scope: 'mint', rooms: {} });
    const forBob = (await call('post', path, path, {
      token: minter,
      body: { room: 'consult-9', userId: 'bob', name: 'Bob' },
    })) as MintTokenResponse;
    expect(jwt.decode(forBob.token)).toMatchObject({ sub: 'bob', name: 'Bob', room: 'consult-9', caps: ['publish'] });
    expect(codeOf(await call('post', path, path, { token: user('eve'), body: { room: 'lobby', userId: 'bob' } }))).toBe(
      'forbidden',
    );
  });

  it('DELETE /api/rooms/{room}/members/{userId}', async () => {
    const path = '/api/rooms/{room}/members/{userId}';
    const kicker = accessToken({ sub: 'moderator', scope: 'kick' });
    expect(await call('delete', path, '/api/rooms/lobby/members/nobody', { token: kicker })).toBe('');
    expect(codeOf(await call('delete', path, '/api/rooms/a%20b/members/x', { token: kicker }))).toBe('invalid_request');
    expect(codeOf(await call('delete', path, '/api/rooms/lobby/members/x'))).toBe('unauthorized');
    expect(codeOf(await call('delete', path, '/api/rooms/lobby/members/x', { token: service }))).toBe('forbidden');
  });

  it('DELETE /api/rtc/tokens/{jti}', async () => {
    const path = '/api/rtc/tokens/{jti}';
    const minted = await fetch(`${gw.url}/api/rtc/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${user('bob')}` },
      body: JSON.stringify({ room: 'lobby' }),
    });
    const { jti, token } = (await minted.json()) as MintTokenResponse;
    expect(jwt.decode(token)).toMatchObject({ jti });
    expect(await call('delete', path, `/api/rtc/tokens/${jti}`, { token: user('bob') })).toBe('');
    expect(codeOf(await call('delete', path, `/api/rtc/tokens/${jti}`, { token: user('bob') }))).toBe('not_found');
    expect(codeOf(await call('delete', path, `/api/rtc/tokens/${jti}`))).toBe('unauthorized');
  });

  it('POST /api/rooms/{room}/events', async () => {
    const path = '/api/rooms/{room}/events';
    const url = '/api/rooms/lobby/events';
    const { id } = (await call('post', path, url, { token: service, body: { type: 'note', data: { n: 1 } } })) as {
      id: string;
    };
    await vi.waitFor(() => expect(member.events.map((event) => event.id)).toContain(id));
    expect(codeOf(await call('post', path, url, { token: service, body: { type: 'a b' } }))).toBe('invalid_request');
    expect(codeOf(await call('post', path, '/api/rooms/a%20b/events', { token: service, body: { type: 'x' } }))).toBe(
      'invalid_request',
    );
    await expectNotJson('post', path, url, service);
    expect(codeOf(await call('post', path, url, { body: { type: 'note' } }))).toBe('unauthorized');
    expect(codeOf(await call('post', path, url, { token: user('alice'), body: { type: 'note' } }))).toBe('forbidden');
    expect(codeOf(await call('post', path, url, { token: service, body: oversized }))).toBe('payload_too_large');
  });

  it('GET /api/rooms, GET /api/rooms/{room}', async () => {
    const list = (await call('get', '/api/rooms', '/api/rooms?limit=10', { token: service })) as {
      rooms: Array<{ room: string; members: number }>;
    };
    expect(list.rooms).toContainEqual(expect.objectContaining({ room: 'lobby', members: 1 }));
    expect(codeOf(await call('get', '/api/rooms', '/api/rooms?cursor=%7B', { token: service }))).toBe(
      'invalid_request',
    );
    expect(codeOf(await call('get', '/api/rooms', '/api/rooms'))).toBe('unauthorized');
    expect(codeOf(await call('get', '/api/rooms', '/api/rooms', { token: user('member') }))).toBe('forbidden');
    const path = '/api/rooms/{room}';
    expect(await call('get', path, '/api/rooms/lobby', { token: service })).toMatchObject({
      room: 'lobby',
      members: 1,
    });
    expect(codeOf(await call('get', path, '/api/rooms/a%20b', { token: service }))).toBe('invalid_request');
    expect(codeOf(await call('get', path, '/api/rooms/lobby'))).toBe('unauthorized');
    expect(codeOf(await call('get', path, '/api/rooms/lobby', { token: user('member') }))).toBe('forbidden');
  });

  it('POST /api/rooms/events:batch', async () => {
    const path = '/api/rooms/events:batch';
    const answer = (await call('post', path, path, {
      token: service,
      body: { events: [{ room: 'lobby', type: 'note' }, { room: 'lobby' }] },
    })) as { results: Array<{ ok: boolean }> };
    expect(answer.results.map((result) => result.ok)).toEqual([true, false]);
    expect(codeOf(await call('post', path, path, { token: service, body: { events: [] } }))).toBe('invalid_request');
    await expectNotJson('post', path, path, service);
    expect(codeOf(await call('post', path, path, { body: { events: [{ room: 'lobby', type: 'x' }] } }))).toBe(
      'unauthorized',
    );
    expect(
      codeOf(
        await call('post', path, path, { token: user('alice'), body: { events: [{ room: 'lobby', type: 'x' }] } }),
      ),
    ).toBe('forbidden');
    expect(codeOf(await call('post', path, path, { token: service, body: { events: [oversized] } }))).toBe(
      'payload_too_large',
    );
  });

  it('GET /api/rooms/{room}/peers', async () => {
    const path = '/api/rooms/{room}/peers';
    const { peers } = (await call('get', path, '/api/rooms/lobby/peers', { token: service })) as {
      peers: Array<{ userId: string }>;
    };
    expect(peers.map((peer) => peer.userId)).toEqual(['member']);
    expect(await call('get', path, '/api/rooms/lobby/peers', { token: user('member') })).toEqual({ peers });
    expect(codeOf(await call('get', path, '/api/rooms/a%20b/peers', { token: service }))).toBe('invalid_request');
    expect(codeOf(await call('get', path, '/api/rooms/lobby/peers'))).toBe('unauthorized');
    expect(codeOf(await call('get', path, '/api/rooms/lobby/peers', { token: user('stranger') }))).toBe('forbidden');
  });

  it('GET /api/rooms/{room}/events', async () => {
    const path = '/api/rooms/{room}/events';
    for (const n of [1, 2]) await member.socket.emitWithAck('publish', { type: 'note', data: n });
    const latest = (await call('get', path, '/api/rooms/lobby/events', { token: user('member') })) as HistoryResponse;
    const [older, newer] = latest.events.slice(-2);
    expect(newer?.seq).toBe(latest.top);
    const page = await call('get', path, `/api/rooms/lobby/events?after=${older?.seq ?? 0}&limit=1`, {
      token: service,
    });
    expect(page).toEqual({ epoch: latest.epoch, top: latest.top, events: [newer] });
    for (const query of ['?limit=0', '?after=first', '?since=1']) {
      expect(codeOf(await call('get', path, `/api/rooms/lobby/events${query}`, { token: service }))).toBe(
        'invalid_request',
      );
    }
    expect(codeOf(await call('get', path, '/api/rooms/a%20b/events', { token: service }))).toBe('invalid_request');
    expect(codeOf(await call('get', path, '/api/rooms/lobby/events'))).toBe('unauthorized');
    expect(codeOf(await call('get', path, '/api/rooms/lobby/events', { token: user('stranger') }))).toBe('forbidden');
  });

  it('GET /api/rtc/upstream/openai', async () => {
    const path = '/api/rtc/upstream/openai';
    expect(await call('get', path, path)).toEqual({
      provider: 'openai',
      models: ['gpt-realtime'],
      voices: ['marin', 'cedar'],
      callsUrl: `${provider.baseUrl}/realtime/calls`,
    });
  });

  it('POST /api/rtc/upstream/openai', async () => {
    const path = '/api/rtc/upstream/openai';
    const minted = (await call('post', path, path, {
      token: user('caller'),
      body: { room: 'lobby', voice: 'cedar' },
    })) as UpstreamSessionResponse;
    expect(minted).toMatchObject({ value: provider.minted.at(-1), model: 'gpt-realtime', voice: 'cedar' });
    // No body at all: the defaults.
    expect(await call('post', path, path, { token: user('terse') })).toMatchObject({ voice: 'marin' });
    for (const body of [{ voice: 'darth' }, { room: 'a b' }, { session: {} }, '{"voice":']) {
      expect(codeOf(await call('post', path, path, { token: user('picky'), body }))).toBe('invalid_request');
    }
    expect(codeOf(await call('post', path, path, { body: {} }))).toBe('unauthorized');
    expect(codeOf(await call('post', path, path, { token: user('picky'), body: oversized }))).toBe('payload_too_large');
    const outsider = accessToken({ sub: 'outsider', rooms: {} });
    expect(codeOf(await call('post', path, path, { token: outsider, body: { room: 'lobby' } }))).toBe('forbidden');
    // UPSTREAM_SESSIONS_PER_USER is 1, and the caller holds one.
    expect(codeOf(await call('post', path, path, { token: user('caller') }))).toBe('rate_limited');
    try {
      provider.behave({ kind: 'status', status: 429, retryAfter: '17' });
      expect(codeOf(await call('post', path, path, { token: user('throttled') }))).toBe('rate_limited');
      provider.behave({ kind: 'status', status: 500 });
      expect(codeOf(await call('post', path, path, { token: user('unlucky') }))).toBe('upstream_unavailable');
    } finally {
      provider.behave({ kind: 'ok' });
    }
  });

  it('DELETE /api/rtc/upstream/{id}', async () => {
    const path = '/api/rtc/upstream/{id}';
    const minted = await fetch(`${gw.url}/api/rtc/upstream/openai`, {
      method: 'POST',
      headers: { authorization: `Bearer ${user('leaver')}` },
    });
    const { id } = (await minted.json()) as UpstreamSessionResponse;
    expect(await call('delete', path, `/api/rtc/upstream/${id}`, { token: user('leaver') })).toBe('');
    expect(codeOf(await call('delete', path, `/api/rtc/upstream/${id}`, { token: user('leaver') }))).toBe('not_found');
    expect(codeOf(await call('delete', path, `/api/rtc/upstream/${id}`))).toBe('unauthorized');
  });

  it('every bearer route while the identity provider is unreachable, and dev login without JWT_SECRET', async () => {
    const keyless = await startTestGateway({
      JWT_SECRET: undefined,
      JWT_JWKS_URL: `http://127.0.0.1:${await freePort()}/.well-known/jwks.json`,
      OPENAI_API_KEY,
      OPENAI_BASE_URL: provider.baseUrl,
    });
    try {
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const token = jwt.sign({ sub: 'ada' }, privateKey, { algorithm: 'ES256', keyid: 'k1', expiresIn: 300 });
      const paths = isObject(document.paths) ? document.paths : {};
      const bearer = Object.entries(paths).flatMap(([path, operations]) =>
        Object.entries(isObject(operations) ? operations : {})
          .filter(([, operation]) => isObject(operation) && Array.isArray(operation.security))
          .filter(([, operation]) => (operation as { security: unknown[] }).security.length > 0)
          .map(([method]) => [method, path] as const),
      );
      expect(bearer.length).toBeGreaterThan(5);
      for (const [method, path] of bearer) {
        const url = path.replaceAll(/\{\w+\}/g, 'lobby');
        expect(codeOf(await call(method, path, url, { token, on: keyless })), `${method} ${path}`).toBe(
          'identity_unavailable',
        );
      }
      const login = '/api/dev/login';
      expect(codeOf(await call('post', login, login, { body: { userId: 'alice' }, on: keyless }))).toBe('not_found');
    } finally {
      await keyless.close();
    }
  });

  it('a gateway without OPENAI_API_KEY, with Redis unreachable, and draining', async () => {
    const degraded = await startTestGateway({ REDIS_URL: `redis://127.0.0.1:${await freePort()}` });
    const on = degraded;
    let client: ConnectedClient | undefined;
    try {
      const voice = '/api/rtc/upstream/openai';
      expect(await call('get', voice, voice, { on })).toBe('');
      expect(codeOf(await call('post', voice, voice, { token: user('alice'), on }))).toBe('not_found');

      // Only this replica's members can be reached, under an epoch of its own.
      const published = await call('post', '/api/rooms/{room}/events', '/api/rooms/lobby/events', {
        token: service,
        body: { type: 'note' },
        on,
      });
      expect(published).toMatchObject({ seq: 1, local: true });
      const history = '/api/rooms/{room}/events';
      expect(codeOf(await call('get', history, '/api/rooms/elsewhere/events', { token: service, on }))).toBe(
        'unavailable',
      );

      // With a socket to notify, the drain holds for a moment before the server closes.
      client = await joinRoom(degraded.url, 'leaving', 'lobby');
      const closed = degraded.close();
      expect(await call('get', '/readyz', '/readyz', { on })).toMatchObject({ status: 'draining' });
      client.close();
      await closed;
    } finally {
      client?.close();
      await degraded.close();
    }
  });

  // Last among the tests that talk to the gateway: validation holds the event loop, which the
  // in-process gateway shares, for seconds. Keep-alive connections idle that long are closed
  // by the server unseen by fetch, and the next request on one fails with ECONNRESET.
  it('is valid OpenAPI 3.1', async () => {
    expect(document.openapi).toMatch(/^3\.1\./);
    const result = await validate(structuredClone(document) as unknown as Parameters<typeof validate>[0]);
    expect(result.valid, result.valid ? '' : compileErrors(result)).toBe(true);
    expect(result.warnings).toEqual([]);
  });

  it('had every documented answer produced above, except 500', () => {
    const paths = isObject(document.paths) ? document.paths : {};
    const documented = Object.entries(paths).flatMap(([path, operations]) =>
      Object.entries(isObject(operations) ? operations : {}).flatMap(([method, operation]) =>
        Object.keys(isObject(operation) && isObject(operation.responses) ? operation.responses : {})
          .filter((status) => status !== '500')
          .map((status) => `${method.toUpperCase()} ${path} ${status}`),
      ),
    );
    expect(documented.filter((answer) => !answered.has(answer))).toEqual([]);
  });
});
