import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { io } from 'socket.io-client';
import { LIMITS, type HttpErrorResponse, type UpstreamSessionResponse } from '@switchboard/contract';
import { accessToken, devLogin, postJson, scrapeMetric, type TestSocket } from '../support/client.js';
import { startFakeOpenAi, type FakeOpenAi } from '../support/fake-openai.js';
import { startGatewayProcess, startReplicas, type GatewayProcess } from '../support/gateway-process.js';
import { startNginx, type NginxHandle } from '../support/nginx.js';
import { freePort } from '../support/ports.js';
import { startRedisServer, type RedisServerHandle } from '../support/redis-server.js';

// Attacks on the abuse limits of the deployment, each against real processes: it
// succeeded before the limit existed, and must be refused now.

const API_KEY = 'sk-test-attacks-abcdefghijklmnopqrstuvwxyz0123';

describe('attack: mint → DELETE → mint loops on the AI-voice route, across two replicas', () => {
  let redis: RedisServerHandle;
  let provider: FakeOpenAi;
  let a: GatewayProcess;
  let b: GatewayProcess;

  beforeAll(async () => {
    redis = await startRedisServer();
    provider = await startFakeOpenAi(API_KEY);
    // UPSTREAM_MINTS_PER_MINUTE is left at its default (10): the attack meets what ships.
    const env = { REDIS_URL: redis.url, OPENAI_API_KEY: API_KEY, OPENAI_BASE_URL: provider.baseUrl };
    [a, b] = await startReplicas(env, ['attack-a', 'attack-b']);
  });
  afterAll(async () => {
    await Promise.all([a.stop(), b.stop()]);
    await provider.close();
    await redis.stop();
  });

  const mint = (url: string, access: string) =>
    postJson(`${url}/api/rtc/upstream/openai`, {}, { authorization: `Bearer ${access}` });
  const forget = (url: string, access: string, id: string) =>
    fetch(`${url}/api/rtc/upstream/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${access}` } });

  /** Mints on `here` and deletes on `there` as fast as it can; returns the mint statuses and refusals. */
  async function loop(here: string, there: string, access: string, rounds: number) {
    const statuses: number[] = [];
    const refusals: Array<{ retryAfter: number; body: HttpErrorResponse }> = [];
    for (let round = 0; round < rounds; round++) {
      const minted = await mint(here, access);
      statuses.push(minted.status);
      if (minted.status === 201) {
        expect((await forget(there, access, (minted.body as UpstreamSessionResponse).id)).status).toBe(204);
      } else {
        refusals.push({
          retryAfter: Number(minted.headers.get('retry-after')),
          body: minted.body as HttpErrorResponse,
        });
      }
    }
    return { statuses, refusals };
  }

  it('stops at UPSTREAM_MINTS_PER_MINUTE provider secrets per user, whichever replica is asked', async () => {
    const access = await devLogin(a.url, 'voice-attacker');
    const callsBefore = provider.calls.length;
    // Two loops at once, one per replica, each deleting through the other: every secret
    // is live only for a moment, so the live-session cap never stops them.
    const [fromA, fromB] = await Promise.all([loop(a.url, b.url, access, 15), loop(b.url, a.url, access, 15)]);
    const statuses = [...fromA.statuses, ...fromB.statuses];
    expect(statuses.filter((status) => status === 201)).toHaveLength(10);
    expect(statuses.filter((status) => status === 429)).toHaveLength(20);
    // The operator's key paid for exactly ten secrets.
    expect(provider.calls.length - callsBefore).toBe(10);
    for (const { retryAfter, body } of [...fromA.refusals, ...fromB.refusals]) {
      expect(body.error.code).toBe('rate_limited');
      expect(body.error.message).toMatch(/per minute/);
      expect(retryAfter).toBeGreaterThan(0);
      expect(retryAfter).toBeLessThanOrEqual(60);
    }

    // Still refused on both replicas; another user is not affected.
    for (const url of [a.url, b.url]) expect((await mint(url, access)).status).toBe(429);
    const bystander = await devLogin(b.url, 'voice-bystander');
    expect((await mint(a.url, bystander)).status).toBe(201);
  });

  it("lets an identity provider's own scopes delete nobody else's voice record, nor free their slot", async () => {
    const owner = await devLogin(a.url, 'voice-owner');
    const minted = await mint(a.url, owner);
    expect(minted.status).toBe(201);
    const { id } = minted.body as UpstreamSessionResponse;
    const idpUser = accessToken({ sub: 'curious', scope: 'openid profile email' });
    expect((await forget(b.url, idpUser, id)).status).toBe(404);
    // A backend with scope `revoke` may.
    expect((await forget(b.url, accessToken({ sub: 'voice-backend', scope: 'revoke' }), id)).status).toBe(204);
  });
});

/** GET with the path sent exactly as given: fetch() would resolve `..` and `.` first. */
function rawGet(url: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/`, { path, method: 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Prometheus text always has these; nothing else the gateway serves does. */
const isMetrics = (body: string) => body.includes('# HELP switchboard_') || body.includes('# TYPE ');

describe('attack: /metrics through the load balancer, spelled the way Express still routes it', () => {
  let gateway: GatewayProcess;
  let nginx: NginxHandle;

  beforeAll(async () => {
    // The worst case: a replica serving /metrics on its public port (METRICS_PORT unset),
    // so nginx is all that stands between the internet and the metrics.
    gateway = await startGatewayProcess({ env: { METRICS_PORT: '0' } });
    nginx = await startNginx({ upstreams: [`127.0.0.1:${gateway.port}`] });
  });
  afterAll(async () => {
    await nginx.stop();
    await gateway.stop();
  });

  const variants = [
    '/metrics',
    '/Metrics',
    '/METRICS',
    '/metrics/',
    '/Metrics/',
    '/metrics?x=1',
    '/METRICS?x',
    '/metrics/?format=text',
    '//metrics',
    '/./metrics',
    '/socket.io/../metrics',
    '/%6Detrics',
    '/%4D%45TRICS/',
    '/metrics;x',
    '/metrics.txt',
  ];

  it('the gateway itself answers several of these spellings with its metrics', async () => {
    for (const path of ['/metrics', '/Metrics', '/METRICS?x', '/metrics/']) {
      const direct = await rawGet(gateway.url, path);
      expect(isMetrics(direct.body), `${path} straight to the gateway`).toBe(true);
    }
  });

  it.each(variants)('nginx refuses %s with 404 and never shows a metric', async (path) => {
    const response = await rawGet(nginx.url, path);
    expect(response.status).toBe(404);
    expect(isMetrics(response.body)).toBe(false);
    expect(JSON.parse(response.body)).toMatchObject({ error: { code: 'not_found' } });
  });

  it('still proxies everything else, including paths that merely contain "metrics"', async () => {
    expect((await rawGet(nginx.url, '/healthz')).status).toBe(200);
    const other = await rawGet(nginx.url, '/api/metrics');
    expect(isMetrics(other.body)).toBe(false);
    expect(other.body).not.toContain('metrics are not served through the load balancer');
  });
});

describe('METRICS_PORT, as compose and Kubernetes set it', () => {
  it('serves /metrics only on that port, in no spelling on the public one', async () => {
    const metricsPort = await freePort();
    const gateway = await startGatewayProcess({ env: { METRICS_PORT: String(metricsPort) } });
    try {
      for (const path of ['/metrics', '/Metrics', '/metrics/']) {
        expect(isMetrics((await rawGet(gateway.url, path)).body), `${path} on the public port`).toBe(false);
      }
      expect(isMetrics((await rawGet(`http://127.0.0.1:${metricsPort}`, '/metrics')).body)).toBe(true);
    } finally {
      await gateway.stop();
    }
  });
});

describe('attack: connections without a token that never join a room', () => {
  it(
    'are closed after the roomless limit, so nobody holds sockets open for free',
    async () => {
      const gateway = await startGatewayProcess({ env: {} });
      const sockets: TestSocket[] = [];
      try {
        const opened = Date.now();
        for (let i = 0; i < 20; i++) {
          const socket: TestSocket = io(gateway.url, { transports: ['websocket'], reconnection: false });
          sockets.push(socket);
        }
        await Promise.all(
          sockets.map((socket) => new Promise<void>((resolve) => socket.once('connect', () => resolve()))),
        );
        expect(await scrapeMetric(gateway.url, 'switchboard_connected_sockets')).toBe(20);
        const closedAt = await Promise.all(
          sockets.map(
            (socket) => new Promise<number>((resolve) => socket.once('disconnect', () => resolve(Date.now()))),
          ),
        );
        // Closed by the gateway at the limit (a little later on a loaded machine), not before.
        for (const at of closedAt) expect(at - opened).toBeGreaterThanOrEqual(LIMITS.roomlessConnectionMs - 100);
        expect(await scrapeMetric(gateway.url, 'switchboard_connected_sockets')).toBe(0);
      } finally {
        for (const socket of sockets) socket.close();
        await gateway.stop();
      }
    },
    LIMITS.roomlessConnectionMs + 20_000,
  );
});
