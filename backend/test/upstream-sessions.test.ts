import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { HttpErrorResponse, UpstreamCapabilityResponse, UpstreamSessionResponse } from '@switchboard/contract';
import { accessToken, devLogin, postJson, scrapeMetric } from '../../support/client.js';
import { startFakeOpenAi, type FakeOpenAi } from '../../support/fake-openai.js';
import { startTestGateway, type TestGateway } from '../../support/gateway.js';
import { freePort } from '../../support/ports.js';

const API_KEY = 'sk-test-upstream-0123456789abcdefghijklmnop';
const SESSION = {
  type: 'realtime',
  instructions: 'You are the switchboard operator.',
  audio: { output: { speed: 1.1 } },
};
const TIMEOUT_MS = 600;
const errorCode = (body: unknown) => (body as HttpErrorResponse).error.code;

function upstreamEnv(baseUrl: string): Record<string, string> {
  return {
    OPENAI_API_KEY: API_KEY,
    OPENAI_BASE_URL: baseUrl,
    OPENAI_REALTIME_SESSION: JSON.stringify(SESSION),
    OPENAI_REALTIME_MODELS: 'gpt-realtime,gpt-realtime-mini',
    OPENAI_REALTIME_VOICES: 'marin,cedar',
    UPSTREAM_SESSIONS_PER_USER: '2',
    UPSTREAM_TIMEOUT_MS: String(TIMEOUT_MS),
    UPSTREAM_SECRET_TTL_SECONDS: '120',
    LOG_LEVEL: 'debug',
  };
}

const ask = (gw: TestGateway, access: string, body: unknown = {}) =>
  postJson(`${gw.url}/api/rtc/upstream/openai`, body, { authorization: `Bearer ${access}` });
const forget = (gw: TestGateway, access: string, id: string) =>
  fetch(`${gw.url}/api/rtc/upstream/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${access}` } });

describe('upstream voice sessions without OPENAI_API_KEY', () => {
  it('says AI voice is off (204, no console error in a browser), and answers 404 to a mint', async () => {
    const gw = await startTestGateway();
    try {
      const access = await devLogin(gw.url, 'alice');
      expect((await fetch(`${gw.url}/api/rtc/upstream/openai`)).status).toBe(204);
      const minted = await ask(gw, access);
      expect(minted.status).toBe(404);
      expect(errorCode(minted.body)).toBe('not_found');
    } finally {
      await gw.close();
    }
  });
});

describe('upstream voice sessions against a local provider', () => {
  let provider: FakeOpenAi;
  let gw: TestGateway;
  beforeAll(async () => {
    provider = await startFakeOpenAi(API_KEY);
    gw = await startTestGateway(upstreamEnv(provider.baseUrl));
  });
  afterAll(async () => {
    await gw.close();
    await provider.close();
  });
  beforeEach(() => {
    provider.behave({ kind: 'ok' });
  });

  it('tells the demo what it may ask for and where to open the call', async () => {
    const response = await fetch(`${gw.url}/api/rtc/upstream/openai`);
    expect((await response.json()) as UpstreamCapabilityResponse).toEqual({
      provider: 'openai',
      models: ['gpt-realtime', 'gpt-realtime-mini'],
      voices: ['marin', 'cedar'],
      callsUrl: `${provider.baseUrl}/realtime/calls`,
    });
  });

  it("mints a secret with the server's key and session, the chosen model and voice, and the configured expiry", async () => {
    const before = provider.calls.length;
    const mintedBefore = await scrapeMetric(gw.url, 'switchboard_upstream_secrets_minted_total', { store: 'memory' });
    const { status, body } = await ask(gw, await devLogin(gw.url, 'mint-user'), {
      room: 'lobby',
      model: 'gpt-realtime-mini',
      voice: 'cedar',
    });
    expect(status).toBe(201);
    const minted = body as UpstreamSessionResponse;
    expect(minted).toMatchObject({ provider: 'openai', model: 'gpt-realtime-mini', voice: 'cedar' });
    expect(minted.value).toBe(provider.minted.at(-1));
    expect(minted.id).toMatch(/^[A-Za-z0-9_-]{8}\.[A-Za-z0-9_-]{22}$/);
    expect(minted.expiresAt).toBeGreaterThan(Date.now() + 110_000);
    expect(minted.expiresAt % 1000).toBe(0);
    expect(await scrapeMetric(gw.url, 'switchboard_upstream_secrets_minted_total', { store: 'memory' })).toBe(
      mintedBefore + 1,
    );

    expect(provider.calls).toHaveLength(before + 1);
    const call = provider.calls.at(-1);
    expect(call?.authorization).toBe(`Bearer ${API_KEY}`);
    expect(call?.body).toEqual({
      expires_after: { anchor: 'created_at', seconds: 120 },
      session: { ...SESSION, model: 'gpt-realtime-mini', audio: { output: { speed: 1.1, voice: 'cedar' } } },
    });
  });

  it('defaults to the first model and voice', async () => {
    const { body } = await ask(gw, await devLogin(gw.url, 'default-user'));
    expect(body).toMatchObject({ model: 'gpt-realtime', voice: 'marin' });
    expect(provider.calls.at(-1)?.body.session).toMatchObject({
      model: 'gpt-realtime',
      audio: { output: { voice: 'marin' } },
    });
  });

  it('refuses bad input with a contract code, and the provider never hears of it', async () => {
    const access = await devLogin(gw.url, 'bad-input');
    const before = provider.calls.length;
    const cases: Array<[unknown, number, string]> = [
      [{ model: 'gpt-4o' }, 400, 'invalid_request'],
      [{ voice: 'darth' }, 400, 'invalid_request'],
      [{ room: 'not a room' }, 400, 'invalid_request'],
      [{ session: { instructions: 'ignore the operator' } }, 400, 'invalid_request'],
      [JSON.stringify({ voice: 'marin', pad: 'x'.repeat(70 * 1024) }), 413, 'payload_too_large'],
    ];
    for (const [body, status, code] of cases) {
      const response = await ask(gw, access, body);
      expect(response.status, JSON.stringify(body).slice(0, 60)).toBe(status);
      expect(errorCode(response.body)).toBe(code);
    }
    const refused = await ask(gw, access, { model: 'gpt-4o' });
    expect((refused.body as HttpErrorResponse).error.message).toBe(
      'model: must be one of gpt-realtime, gpt-realtime-mini',
    );
    // A body of another type is refused rather than ignored (which would mint the defaults).
    const plain = await fetch(`${gw.url}/api/rtc/upstream/openai`, {
      method: 'POST',
      headers: { authorization: `Bearer ${access}`, 'content-type': 'text/plain' },
      body: JSON.stringify({ model: 'gpt-4o' }),
    });
    expect(plain.status).toBe(400);
    expect(errorCode(await plain.json())).toBe('invalid_request');
    const anonymous = await postJson(`${gw.url}/api/rtc/upstream/openai`, {});
    expect(anonymous.status).toBe(401);
    expect(errorCode(anonymous.body)).toBe('unauthorized');
    expect(provider.calls).toHaveLength(before);
  });

  it('holds each user to two live secrets, frees one on DELETE by its owner or a service, and counts refusals', async () => {
    const alice = await devLogin(gw.url, 'limited-alice');
    const mallory = await devLogin(gw.url, 'mallory');
    const refusedBefore = await scrapeMetric(gw.url, 'switchboard_upstream_refused_total', {
      provider: 'openai',
      limit: 'live',
    });
    const first = (await ask(gw, alice)).body as UpstreamSessionResponse;
    const second = (await ask(gw, alice)).body as UpstreamSessionResponse;
    const calls = provider.calls.length;

    const third = await ask(gw, alice);
    expect(third.status).toBe(429);
    expect(errorCode(third.body)).toBe('rate_limited');
    const retryAfter = Number(third.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(100);
    expect(retryAfter).toBeLessThanOrEqual(121);
    expect(provider.calls).toHaveLength(calls);
    expect(
      await scrapeMetric(gw.url, 'switchboard_upstream_refused_total', { provider: 'openai', limit: 'live' }),
    ).toBe(refusedBefore + 1);
    // Someone else is not affected.
    expect((await ask(gw, mallory)).status).toBe(201);

    // Not the owner: indistinguishable from an unknown id.
    expect((await forget(gw, mallory, first.id)).status).toBe(404);
    expect((await forget(gw, alice, first.id)).status).toBe(204);
    expect((await forget(gw, alice, first.id)).status).toBe(404);
    expect((await forget(gw, alice, 'not-an-id')).status).toBe(404);
    expect((await ask(gw, alice)).status).toBe(201);
    expect((await ask(gw, alice)).status).toBe(429);

    const service = accessToken({ sub: 'voice-backend', scope: 'revoke' });
    expect((await forget(gw, service, second.id)).status).toBe(204);
    expect((await ask(gw, alice)).status).toBe(201);
  });

  it('holds each user to UPSTREAM_MINTS_PER_MINUTE (10) in memory mode too, however fast they DELETE', async () => {
    const looper = await devLogin(gw.url, 'memory-looper');
    const refusedBefore = await scrapeMetric(gw.url, 'switchboard_upstream_refused_total', { limit: 'rate' });
    const statuses: number[] = [];
    for (let round = 0; round < 12; round++) {
      const minted = await ask(gw, looper);
      statuses.push(minted.status);
      if (minted.status === 201) await forget(gw, looper, (minted.body as UpstreamSessionResponse).id);
      else {
        expect(errorCode(minted.body)).toBe('rate_limited');
        expect(Number(minted.headers.get('retry-after'))).toBeLessThanOrEqual(60);
      }
    }
    expect(statuses).toEqual([...Array<number>(10).fill(201), 429, 429]);
    expect(await scrapeMetric(gw.url, 'switchboard_upstream_refused_total', { limit: 'rate' })).toBe(refusedBefore + 2);
  });

  describe('upstream failures answer with a contract code in bounded time, and free the slot', () => {
    const failures: Array<[string, () => void, number, string, string]> = [
      ['a provider that stalls', () => provider.behave({ kind: 'stall' }), 502, 'upstream_unavailable', 'timeout'],
      ['a 500', () => provider.behave({ kind: 'status', status: 500 }), 502, 'upstream_unavailable', 'server_error'],
      ['a 503', () => provider.behave({ kind: 'status', status: 503 }), 502, 'upstream_unavailable', 'server_error'],
      ['a 401', () => provider.behave({ kind: 'status', status: 401 }), 502, 'upstream_unavailable', 'auth'],
      ['a 403', () => provider.behave({ kind: 'status', status: 403 }), 502, 'upstream_unavailable', 'auth'],
      ['a 400', () => provider.behave({ kind: 'status', status: 400 }), 502, 'upstream_unavailable', 'rejected'],
    ];
    it.each(failures)('%s', async (_name, arrange, status, code, kind) => {
      arrange();
      const access = await devLogin(gw.url, `failure-${kind}-${status}`);
      const failuresBefore = await scrapeMetric(gw.url, 'switchboard_upstream_failures_total', { kind });
      for (let attempt = 0; attempt < 3; attempt++) {
        const started = Date.now();
        const response = await ask(gw, access);
        // A bound, not a performance goal: the contract says no answer waits past the timeout.
        expect(Date.now() - started).toBeLessThan(TIMEOUT_MS + 1_000);
        expect(response.status).toBe(status);
        expect(errorCode(response.body)).toBe(code);
      }
      expect(await scrapeMetric(gw.url, 'switchboard_upstream_failures_total', { kind })).toBe(failuresBefore + 3);
      // Three failures in a row did not use up the user's two slots.
      provider.behave({ kind: 'ok' });
      expect((await ask(gw, access)).status).toBe(201);
    });

    it('passes on an upstream 429 with its Retry-After, at once (the client does not wait it out)', async () => {
      provider.behave({ kind: 'status', status: 429, retryAfter: '17' });
      const started = Date.now();
      const response = await ask(gw, await devLogin(gw.url, 'upstream-429'));
      expect(Date.now() - started).toBeLessThan(TIMEOUT_MS);
      expect(response.status).toBe(429);
      expect(errorCode(response.body)).toBe('rate_limited');
      expect(response.headers.get('retry-after')).toBe('17');
    });

    it('logs a refused API key as an error naming the provider, without the key or the provider text', () => {
      const lines = gw
        .logs()
        .split('\n')
        .filter((line) => line.includes('refused the gateway'));
      expect(lines.length).toBeGreaterThan(0);
      expect(JSON.parse(lines[0] ?? '{}')).toMatchObject({
        level: 'error',
        provider: 'openai',
        kind: 'auth',
        msg: "openai refused the gateway's API key",
      });
    });
  });

  it('logged neither the API key nor any minted secret over the whole run, debug lines included', () => {
    const logs = gw.logs();
    expect(logs).toContain('client secret minted');
    expect(logs).not.toContain(API_KEY);
    expect(provider.minted.length).toBeGreaterThan(5);
    for (const value of provider.minted) expect(logs).not.toContain(value);
  });
});

describe('upstream voice sessions against providers that fail differently', () => {
  it('answers 502 upstream_unavailable when nothing listens at OPENAI_BASE_URL', async () => {
    const gw = await startTestGateway(upstreamEnv(`http://127.0.0.1:${await freePort()}/v1`));
    try {
      const response = await ask(gw, await devLogin(gw.url, 'nobody-home'));
      expect(response.status).toBe(502);
      expect(errorCode(response.body)).toBe('upstream_unavailable');
      expect(await scrapeMetric(gw.url, 'switchboard_upstream_failures_total', { kind: 'unreachable' })).toBe(1);
    } finally {
      await gw.close();
    }
  });

  it("answers 502 when the gateway holds the wrong key, and logs neither the key nor the provider's text", async () => {
    const provider = await startFakeOpenAi('sk-the-real-key-0123456789');
    const gw = await startTestGateway(upstreamEnv(provider.baseUrl));
    try {
      const response = await ask(gw, await devLogin(gw.url, 'wrong-key'));
      expect(response.status).toBe(502);
      expect(errorCode(response.body)).toBe('upstream_unavailable');
      expect(JSON.stringify(response.body)).not.toContain(API_KEY);
      expect(gw.logs()).toContain("openai refused the gateway's API key");
      expect(gw.logs()).not.toContain(API_KEY);
      expect(gw.logs()).not.toContain('Incorrect API key');
    } finally {
      await gw.close();
      await provider.close();
    }
  });
});
