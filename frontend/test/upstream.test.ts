import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { devLogin } from '../../support/client.js';
import { startFakeOpenAi, type FakeOpenAi } from '../../support/fake-openai.js';
import { startTestGateway, type TestGateway } from '../../support/gateway.js';
import { freePort } from '../../support/ports.js';
import { SwitchboardError, createSwitchboard, type Switchboard } from '../src/sdk/index.js';

const API_KEY = 'sk-test-sdk-0123456789abcdefghijklmnopqrstuv';

/** What a call rejected with, for assertions on its code. */
async function rejection(promise: Promise<unknown>): Promise<SwitchboardError> {
  const error: unknown = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  if (!(error instanceof SwitchboardError)) throw new Error(`expected a SwitchboardError, got ${String(error)}`);
  return error;
}

describe('switchboard.upstream against a real gateway and a local provider', () => {
  let provider: FakeOpenAi;
  let gw: TestGateway;
  let plain: TestGateway;
  const tokens: Array<{ forceRefresh: boolean }> = [];
  let switchboard: Switchboard;

  beforeAll(async () => {
    provider = await startFakeOpenAi(API_KEY);
    [gw, plain] = await Promise.all([
      startTestGateway({
        OPENAI_API_KEY: API_KEY,
        OPENAI_BASE_URL: provider.baseUrl,
        OPENAI_REALTIME_VOICES: 'marin,cedar',
        UPSTREAM_SESSIONS_PER_USER: '1',
      }),
      startTestGateway(),
    ]);
    const access = await devLogin(gw.url, 'sdk-user');
    switchboard = createSwitchboard({
      url: gw.url,
      getAccessToken: (context) => {
        tokens.push(context);
        // The first token the SDK is handed has expired, as a cached one might have.
        return tokens.length === 1 ? 'expired.access.token' : access;
      },
    });
  });
  afterAll(async () => {
    switchboard.close();
    await Promise.all([gw.close(), plain.close()]);
    await provider.close();
  });

  it('gets a provider secret with one call, retrying once with a fresh access token', async () => {
    const secret = await switchboard.upstream.openai({ voice: 'cedar' });
    expect(secret).toEqual({
      id: expect.stringMatching(/^[A-Za-z0-9_-]{8}\./) as string,
      value: provider.minted.at(-1),
      expiresAt: expect.any(Number) as number,
      model: 'gpt-realtime',
      voice: 'cedar',
    });
    expect(secret.expiresAt).toBeGreaterThan(Date.now());
    expect(tokens).toEqual([{ forceRefresh: false }, { forceRefresh: true }]);

    const refused = await rejection(switchboard.upstream.openai());
    expect(refused.code).toBe('rate_limited');
    expect(refused.status).toBe(429);
    expect(refused.retryAfterMs).toBeGreaterThan(0);

    await switchboard.upstream.forget(secret.id);
    const next = await switchboard.upstream.openai();
    expect(next.voice).toBe('marin');
    await switchboard.upstream.forget(next.id);
  });

  it('rejects with the contract code: a voice not allowed, a failing provider, a gateway without a key', async () => {
    expect((await rejection(switchboard.upstream.openai({ voice: 'darth' }))).code).toBe('invalid_request');

    provider.behave({ kind: 'status', status: 500 });
    const failed = await rejection(switchboard.upstream.openai());
    expect([failed.code, failed.status]).toEqual(['upstream_unavailable', 502]);
    provider.behave({ kind: 'ok' });

    const keyless = createSwitchboard({ url: plain.url, getAccessToken: () => devLogin(plain.url, 'x') });
    expect(await keyless.upstream.capability()).toBeUndefined();
    expect((await rejection(keyless.upstream.openai())).code).toBe('not_found');
  });

  it('reports what the gateway offers, and moves past a gateway that cannot be reached', async () => {
    const failover = createSwitchboard({
      urls: [`http://127.0.0.1:${await freePort()}`, gw.url],
      getAccessToken: () => devLogin(gw.url, 'failover-user'),
    });
    expect(await failover.upstream.capability()).toEqual({
      provider: 'openai',
      models: ['gpt-realtime'],
      voices: ['marin', 'cedar'],
      callsUrl: `${provider.baseUrl}/realtime/calls`,
    });
    expect((await failover.upstream.openai()).model).toBe('gpt-realtime');
  });
});
