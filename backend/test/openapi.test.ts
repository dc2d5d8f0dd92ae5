/**
 * The OpenAPI document at /api/openapi.json, checked against the gateway that serves it:
 * it is valid OpenAPI 3.1, every route the app serves is in it, and every documented
 * answer of every route, errors included, is produced for real and fits the document.
 */
import { compileErrors, validate } from '@readme/openapi-parser';
import express from 'express';
import jwt from 'jsonwebtoken';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { DevLoginResponse, MintTokenResponse } from '@switchboard/contract';
import { documentValidator, isObject, resolvePointer, type JsonObject } from '../../support/api-documents.js';
import { accessToken, joinRoom, type ConnectedClient } from '../../support/client.js';
import { startTestGateway, type TestGateway } from '../../support/gateway.js';

interface Route {
  methods: Record<string, boolean | undefined>;
}

// Every route an app registers goes through Router#route, Express's own and any mounted
// router's alike; the spy only records them, and the gateways run unchanged.
const routerPrototype = express.Router.prototype as { route(path: string): Route };
const registered = vi.spyOn(routerPrototype, 'route');

/** Express `/api/rooms/:room/peers` as OpenAPI `/api/rooms/{room}/peers`. */
const openApiPath = (path: string) => path.replace(/:(\w+)/g, '{$1}');

describe('the OpenAPI document', () => {
  let gw: TestGateway;
  let document: JsonObject;
  let member: ConnectedClient;
  let check: (schema: unknown, value: unknown) => string[];
  const answered = new Set<string>();

  beforeAll(async () => {
    gw = await startTestGateway({ MINT_RATE_PER_MINUTE: '3' });
    document = (await (await fetch(`${gw.url}/api/openapi.json`)).json()) as JsonObject;
    const components = isObject(document.components) ? document.components : {};
    check = documentValidator(isObject(components.schemas) ? components.schemas : {}, '2020-12');
    member = await joinRoom(gw.url, 'member', 'lobby');
  });
  afterAll(async () => {
    member.close();
    await gw.close();
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
  }

  async function call(method: string, path: string, url: string, { token, body }: Call = {}): Promise<unknown> {
    const response = await fetch(`${gw.url}${url}`, {
      method: method.toUpperCase(),
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    return expectDocumented(method, path, response);
  }

  const user = (sub: string) => accessToken({ sub });
  const service = accessToken({ sub: 'backend', scope: 'publish' });
  const oversized = { room: 'lobby', type: 'x', padding: 'x'.repeat(70 * 1024) };
  const codeOf = (body: unknown) => (isObject(body) && isObject(body.error) ? body.error.code : undefined);

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
    expect(codeOf(await call('post', path, path, { body: { userId: 'x'.repeat(70 * 1024) } }))).toBe(
      'payload_too_large',
    );
  });

  it('POST /api/dev/login when dev login is off', async () => {
    const off = await startTestGateway({ DEV_LOGIN: 'false' });
    try {
      const response = await fetch(`${off.url}/api/dev/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ userId: 'alice' }),
      });
      expect(codeOf(await expectDocumented('post', '/api/dev/login', response))).toBe('not_found');
    } finally {
      await off.close();
    }
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
    expect(codeOf(await call('post', path, path, { body: { room: 'lobby' } }))).toBe('unauthorized');
    expect(codeOf(await call('post', path, path, { token: user('alice'), body: oversized }))).toBe('payload_too_large');
    const codes: unknown[] = [];
    for (let attempt = 0; attempt < 4; attempt++) {
      codes.push(codeOf(await call('post', path, path, { token: user('hasty'), body: { room: 'lobby' } })));
    }
    expect(codes).toEqual([undefined, undefined, undefined, 'rate_limited']);
  });

  it('DELETE /api/rtc/tokens/{jti}', async () => {
    const path = '/api/rtc/tokens/{jti}';
    const minted = await fetch(`${gw.url}/api/rtc/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${user('bob')}` },
      body: JSON.stringify({ room: 'lobby' }),
    });
    const { jti } = jwt.decode(((await minted.json()) as MintTokenResponse).token) as { jti: string };
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
    expect(codeOf(await call('post', path, url, { body: { type: 'note' } }))).toBe('unauthorized');
    expect(codeOf(await call('post', path, url, { token: user('alice'), body: { type: 'note' } }))).toBe('forbidden');
    expect(codeOf(await call('post', path, url, { token: service, body: oversized }))).toBe('payload_too_large');
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

  it('GET /readyz while draining', async () => {
    const draining = await startTestGateway();
    // With a socket to notify, the drain holds for a moment before the server closes.
    const client = await joinRoom(draining.url, 'leaving', 'lobby');
    const closed = draining.close();
    try {
      const response = await fetch(`${draining.url}/readyz`);
      expect(await expectDocumented('get', '/readyz', response)).toMatchObject({ status: 'draining' });
    } finally {
      client.close();
      await closed;
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
