/**
 * The demo in Chromium when a room's numbering moves while the person stays connected
 * (`room:epoch`: a failover lost writes, or the room's history was lost): they are told
 * once and clearly, and Reload shows the room as it is now.
 */
import type { Browser, Page } from 'playwright-core';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, openLoggedPage } from '../support/chromium.js';
import { accessToken, postJson } from '../support/client.js';
import { startGatewayProcess, type GatewayProcess } from '../support/gateway-process.js';
import { startRedisServer, type RedisServerHandle } from '../support/redis-server.js';

const ROOM = `e2e-epoch-${Date.now().toString(36)}`;
const WAIT_MS = 20_000;

let redis: RedisServerHandle | undefined;
let gateway: GatewayProcess | undefined;
let browser: Browser | undefined;
let page: Page;
let pageLog: string[] = [];

async function publishNote(text: string): Promise<void> {
  if (!gateway) throw new Error('gateway did not start');
  const service = accessToken({ sub: 'standup-bot', scope: 'publish' });
  const response = await postJson(
    `${gateway.url}/api/rooms/${ROOM}/events`,
    { type: 'note', data: { text } },
    { authorization: `Bearer ${service}` },
  );
  expect(response.status).toBe(202);
}

const eventLog = () => page.getByTestId('event-log');
const eventTexts = () => eventLog().locator('[data-testid="event-item"] .entry-text').allTextContents();

async function expectInLog(text: string): Promise<void> {
  try {
    await eventLog().getByText(text).waitFor({ state: 'visible', timeout: WAIT_MS });
  } catch (error) {
    throw new Error(`"${text}" never appeared\npage log:\n${pageLog.slice(-30).join('\n')}`, { cause: error });
  }
}

beforeAll(async () => {
  redis = await startRedisServer();
  gateway = await startGatewayProcess({ env: { REDIS_URL: redis.url } });
  browser = await launchChromium();
  const opened = await openLoggedPage(browser);
  page = opened.page;
  pageLog = opened.log;
  const query = new URLSearchParams({ gateways: gateway.url, room: ROOM, name: 'Dana', autojoin: '1' });
  await page.goto(`${gateway.url}/?${query.toString()}`);
}, 30_000);

afterAll(async () => {
  await browser?.close();
  await gateway?.stop();
  await redis?.stop();
}, 30_000);

describe('demo in Chromium: the room history moves under a connected person', () => {
  it('says once that activity is missing, and Reload shows the room as it is now', async () => {
    await publishNote('before the loss');
    await expectInLog('before the loss');

    // The room's history is gone from Redis, as after a failover that lost it: the next
    // event is numbered in a new epoch, which the gateway announces with `room:epoch`.
    const client = createClient({ url: redis?.url });
    client.on('error', () => undefined);
    await client.connect();
    await client.del([`history:{${ROOM}}`, `history:{${ROOM}}:log`]);
    client.destroy();
    await publishNote('after the loss');
    await publishNote('later still');
    await expectInLog('later still');

    const notices = page.getByTestId('recovery-notice');
    await notices.first().waitFor({ state: 'visible', timeout: WAIT_MS });
    expect(await notices.count()).toBe(1);
    expect(await notices.first().getAttribute('data-recovered')).toBe('false');
    const text = await notices.first().textContent();
    expect(text).toContain('Some room activity is missing');
    expect(text).toContain('the server lost part of the room’s history');
    // It does not claim a reconnect that never happened.
    expect(text).not.toContain('Reconnected');

    await page.getByTestId('reload-activity').click();
    await expectInLog('later still');
    expect(await eventTexts()).toEqual(['after the loss', 'later still']);
    expect(await notices.count()).toBe(0);
  });
});
