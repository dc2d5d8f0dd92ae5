/**
 * The demo's "Talk to the assistant" button in headless Chromium. It appears only on a
 * gateway that holds a provider key, and a click follows the provider's WebRTC flow up
 * to the provider: a client secret from the gateway, then the browser's SDP offer POSTed
 * to the calls endpoint with that secret as Bearer. The local provider has no media
 * server behind it (and there is no internet here), so the call itself ends in `failed`,
 * which the page must show.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../support/chromium.js';
import { startFakeOpenAi, type FakeOpenAi } from '../support/fake-openai.js';
import { startGatewayProcess, type GatewayProcess } from '../support/gateway-process.js';

const API_KEY = 'sk-test-e2e-assistant-0123456789abcdefghijkl';
const WAIT_MS = 20_000;

let provider: FakeOpenAi | undefined;
let withKey: GatewayProcess | undefined;
let withoutKey: GatewayProcess | undefined;
let browser: Browser | undefined;

/** A page that joined a room, once the gateway has answered whether it offers an assistant. */
async function joinedPage(gateway: GatewayProcess, name: string): Promise<Page> {
  if (!browser) throw new Error('browser did not start');
  const page = await (await browser.newContext()).newPage();
  const capability = page.waitForResponse((response) => response.url().endsWith('/api/rtc/upstream/openai'), {
    timeout: WAIT_MS,
  });
  const query = new URLSearchParams({ room: 'assistant-e2e', name, autojoin: '1' });
  await page.goto(`${gateway.url}/?${query.toString()}`);
  await page
    .locator('[data-testid="connection-badge"][data-status="connected"]')
    .waitFor({ state: 'visible', timeout: WAIT_MS });
  await capability;
  return page;
}

beforeAll(async () => {
  provider = await startFakeOpenAi(API_KEY);
  [withKey, withoutKey] = await Promise.all([
    startGatewayProcess({
      env: { OPENAI_API_KEY: API_KEY, OPENAI_BASE_URL: provider.baseUrl, LOG_LEVEL: 'debug' },
      replica: 'with-key',
    }),
    startGatewayProcess({ replica: 'without-key' }),
  ]);
  browser = await launchChromium();
}, 30_000);

afterAll(async () => {
  await browser?.close();
  await Promise.all([withKey?.stop(), withoutKey?.stop()]);
  await provider?.close();
}, 30_000);

describe('demo voice assistant in Chromium', () => {
  it('has no assistant button on a gateway without OPENAI_API_KEY', async () => {
    if (!withoutKey) throw new Error('gateway did not start');
    const page = await joinedPage(withoutKey, 'Nokey');
    // The page reads that 404 a few tasks later; a button it wrongly added would be there by now.
    await page.evaluate(() => new Promise((resolve) => setTimeout(resolve, 200)));
    expect(await page.getByTestId('assistant-button').count()).toBe(0);
    expect(await page.getByTestId('assistant-state').count()).toBe(0);
  });

  it("offers the assistant with a key, and opens the provider's WebRTC flow with the minted secret", async () => {
    if (!withKey || !provider) throw new Error('gateway did not start');
    const page = await joinedPage(withKey, 'Voicey');
    const button = page.getByTestId('assistant-button');
    await button.waitFor({ state: 'visible', timeout: WAIT_MS });
    expect(await button.textContent()).toBe('Talk to the assistant');

    await button.click();
    const state = page.locator('[data-testid="assistant-state"][data-state="failed"]');
    await state.waitFor({ state: 'visible', timeout: WAIT_MS });
    expect(await state.textContent()).toBe('The provider refused the call (HTTP 503).');
    expect(await button.textContent()).toBe('Talk to the assistant');

    expect(provider.calls).toHaveLength(1);
    expect(provider.sdpOffers).toHaveLength(1);
    const [offer] = provider.sdpOffers;
    expect(offer?.authorization).toBe(`Bearer ${provider.minted[0] ?? 'none'}`);
    expect(offer?.contentType).toBe('application/sdp');
    expect(offer?.sdp).toMatch(/^v=0\r\n/);
    expect(offer?.sdp).toContain('m=audio');
    // The data channel for the provider's session events.
    expect(offer?.sdp).toContain('m=application');

    expect(withKey.output()).not.toContain(API_KEY);
    expect(withKey.output()).not.toContain(provider.minted[0] ?? 'none');
  });
});
