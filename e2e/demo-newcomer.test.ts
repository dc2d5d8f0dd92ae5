/**
 * The demo as a newcomer first meets it, in real headless Chromium on a phone-sized
 * screen: the header fits 390 px, comings and goings show in the room activity, the media
 * buttons say what they do, nothing is logged as an error (no AI-voice 404 without a key),
 * and a gateway with the dev login off says so instead of "sign-in refused".
 */
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../support/chromium.js';
import { startGatewayProcess, type GatewayProcess } from '../support/gateway-process.js';

const PHONE = { width: 390, height: 844 };
const ROOM = `a-rather-long-room-name-for-a-phone-${Date.now().toString(36)}`;

let gateway: GatewayProcess | undefined;
let noLogin: GatewayProcess | undefined;
let browser: Browser | undefined;
const contexts: BrowserContext[] = [];

async function open(url: string, name: string): Promise<{ page: Page; errors: string[] }> {
  if (!browser) throw new Error('browser did not start');
  const context = await browser.newContext({ viewport: PHONE });
  contexts.push(context);
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  page.on('pageerror', (error) => errors.push(error.message));
  const query = new URLSearchParams({ gateways: url, room: ROOM, name, autojoin: '1' });
  await page.goto(`${url}/?${query.toString()}`);
  return { page, errors };
}

beforeAll(async () => {
  [gateway, noLogin] = await Promise.all([startGatewayProcess(), startGatewayProcess({ env: { DEV_LOGIN: 'false' } })]);
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  for (const context of contexts) await context.close();
  await browser?.close();
  await Promise.all([gateway?.stop(), noLogin?.stop()]);
});

describe('the demo on a 390 px screen', () => {
  it('fits the header, logs joins and leaves, labels media buttons by action, and logs no error', async () => {
    if (!gateway) throw new Error('gateway did not start');
    const ada = await open(gateway.url, 'Ada');
    await ada.page.getByTestId('call-view').waitFor();
    await expect.poll(() => ada.page.getByTestId('connection-badge').getAttribute('data-status')).toBe('connected');

    const widths = await ada.page.evaluate(() => {
      const bar = document.querySelector('.topbar');
      return {
        page: document.documentElement.scrollWidth,
        bar: bar?.scrollWidth ?? 0,
        barBox: bar?.clientWidth ?? 0,
      };
    });
    expect(widths.page).toBeLessThanOrEqual(PHONE.width);
    expect(widths.bar).toBeLessThanOrEqual(widths.barBox);

    const grace = await open(gateway.url, 'Grace');
    await grace.page.getByTestId('call-view').waitFor();
    const activity = ada.page.getByTestId('event-log').getByTestId('log-notice');
    await expect.poll(() => activity.allTextContents(), { timeout: 10_000 }).toContain('Grace joined');
    await grace.page.close();
    await expect.poll(() => activity.allTextContents(), { timeout: 15_000 }).toContain('Grace left');

    // Fake devices: both tracks are on, so each button offers to turn its track off.
    await expect.poll(() => ada.page.getByTestId('mic-button').textContent()).toBe('Mute');
    expect(await ada.page.getByTestId('camera-button').textContent()).toBe('Stop video');
    await ada.page.getByTestId('mic-button').click();
    expect(await ada.page.getByTestId('mic-button').textContent()).toBe('Unmute');

    expect([...ada.errors, ...grace.errors]).toEqual([]);
  });

  it('says the dev login is off, instead of a generic refusal', async () => {
    if (!noLogin) throw new Error('gateway did not start');
    const { page } = await open(noLogin.url, 'Linus');
    const error = page.getByTestId('join-error');
    await expect.poll(() => error.textContent(), { timeout: 10_000 }).toContain('DEV_LOGIN=false');
    expect(await error.textContent()).toContain('npm run stack');
  });
});
