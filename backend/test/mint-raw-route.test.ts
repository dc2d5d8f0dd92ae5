import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accessToken } from '../../support/client.js';
import { startTestGateway, type TestGateway } from '../../support/gateway.js';
import { freePort } from '../../support/ports.js';

/** One request over a fresh connection, as raw bytes, so headers can be compared exactly. */
function exchange(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1' });
    let response = '';
    socket.on('connect', () => socket.write(request));
    socket.on('data', (chunk: Buffer) => (response += chunk.toString('latin1')));
    socket.on('end', () => {
      resolve(response);
    });
    socket.on('error', reject);
  });
}

/** The same request to the raw route and, through a trailing slash, to Express. */
function bothRoutes(port: number, headers: string, body: string): Promise<[string, string]> {
  const request = (path: string) =>
    `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n${headers}` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  return Promise.all([exchange(port, request('/api/rtc/tokens')), exchange(port, request('/api/rtc/tokens/'))]);
}

/** Drops what legitimately differs between two answers: the date, and the token and its length. */
const comparable = (response: string) =>
  response
    .replace(/^Date: .*\r\n/m, '')
    .replace(/"token":"[^"]+"/, '"token":"<token>"')
    .replace(/"jti":"[^"]+"/, '"jti":"<jti>"')
    .replace(/"expiresAt":\d+/, '"expiresAt":0')
    .replace(/Content-Length: \d+/, 'Content-Length: <n>');

/**
 * `POST /api/rtc/tokens` is answered by a raw node:http route when the request is
 * plain, and by Express otherwise (a trailing slash is enough). Both must answer
 * byte for byte alike.
 */
describe('the raw mint route', () => {
  let gw: TestGateway;
  let port: number;
  beforeAll(async () => {
    gw = await startTestGateway({ CORS_ORIGINS: 'https://app.example' });
    port = gw.gateway.port;
  });
  afterAll(() => gw.close());

  const token = accessToken({ sub: 'raw-route-user' });
  const json = 'Content-Type: application/json\r\n';
  const cases: Array<[string, string, string]> = [
    ['a valid mint', `Authorization: Bearer ${token}\r\n${json}`, '{"room":"r1"}'],
    [
      'an allowed origin, charset given',
      `Origin: https://app.example\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json; charset=utf-8\r\n`,
      '{"room":"r1","caps":[]}',
    ],
    ['a foreign origin', `Origin: https://evil.example\r\nAuthorization: Bearer ${token}\r\n${json}`, '{"room":"r1"}'],
    ['no credentials', json, '{"room":"r1"}'],
    ['a forged access token', `Authorization: Bearer a.b.c\r\n${json}`, '{"room":"r1"}'],
    ['broken JSON', `Authorization: Bearer ${token}\r\n${json}`, '{"room":'],
    ['an empty body', `Authorization: Bearer ${token}\r\n${json}`, ''],
    ['a bare number', `Authorization: Bearer ${token}\r\n${json}`, '42'],
    ['a byte order mark', `Authorization: Bearer ${token}\r\n${json}`, '\uFEFF{"room":"r1"}'],
    ['a bad room', `Authorization: Bearer ${token}\r\n${json}`, '{"room":"a b"}'],
    ['an unknown field', `Authorization: Bearer ${token}\r\n${json}`, '{"room":"r1","x":1}'],
    ['an array', `Authorization: Bearer ${token}\r\n${json}`, '[]'],
  ];

  it.each(cases)('answers %s exactly as the Express route does', async (_name, headers, body) => {
    const [raw, express] = await bothRoutes(port, headers, body);
    expect(raw).toMatch(/^HTTP\/1\.1 \d{3} /);
    expect(comparable(raw)).toBe(comparable(express));
  });
});

describe('the raw mint route, verifying with an identity provider that is down', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({
      JWT_SECRET: undefined,
      JWT_JWKS_URL: `http://127.0.0.1:${await freePort()}/jwks.json`,
      JWT_JWKS_COOLDOWN_SECONDS: '0',
    });
  });
  afterAll(() => gw.close());

  it('answers 503 identity_unavailable with Retry-After exactly as the Express route does', async () => {
    const header = { alg: 'RS256', kid: 'k1' };
    const token = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.e30.c2ln`;
    const [raw, express] = await bothRoutes(
      gw.gateway.port,
      `Authorization: Bearer ${token}\r\nContent-Type: application/json\r\n`,
      '{"room":"r1"}',
    );
    expect(raw).toMatch(/^HTTP\/1\.1 503 [^]*\r\nRetry-After: 1\r\n[^]*"identity_unavailable"/);
    expect(comparable(raw)).toBe(comparable(express));
  });
});
