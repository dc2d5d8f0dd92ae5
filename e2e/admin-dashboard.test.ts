/**
 * The operations dashboard in real headless Chromium, against two gateway replicas on a
 * private Redis: an operator signs in with a service token (scope `admin`), sees both
 * replicas and the busy room, opens it, publishes a notice a member on the other replica
 * receives, and kicks a member who then leaves. The screenshot is the README's.
 */
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_NOTICE_EVENT, type RoomEvent } from '@switchboard/contract';
import { launchChromium } from '../support/chromium.js';
import { accessToken, joinRoom, type ConnectedClient } from '../support/client.js';
import { startGatewayProcess, type GatewayProcess } from '../support/gateway-process.js';
import { waitFor } from '../support/ports.js';
import { startRedisServer, type RedisServerHandle } from '../support/redis-server.js';

const ARTIFACTS = fileURLToPath(new URL('../test-artifacts/', import.meta.url));
const BUSY = `ops-busy-${Date.now().toString(36)}`;
const QUIET = `${BUSY}-quiet`;

let redis: RedisServerHandle | undefined;
let replicas: GatewayProcess[] = [];
let browser: Browser | undefined;
let page: Page;
const members: ConnectedClient[] = [];
let chatter: NodeJS.Timeout | undefined;
const pageLog: string[] = [];

function replica(index: 0 | 1): GatewayProcess {
  const found = replicas[index];
  if (!found) throw new Error('gateways did not start');
  return found;
}

beforeAll(async () => {
  redis = await startRedisServer();
  const env = { REDIS_URL: redis.url, ADMIN_ENABLED: 'true', LOG_LEVEL: 'info' };
  replicas = await Promise.all([
    startGatewayProcess({ env, replica: 'replica-a' }),
    startGatewayProcess({ env, replica: 'replica-b' }),
  ]);
  const [a, b] = [replica(0), replica(1)];
  members.push(
    await joinRoom(a.url, 'carol', BUSY),
    await joinRoom(b.url, 'dave', BUSY),
    await joinRoom(a.url, 'erin', BUSY),
    await joinRoom(b.url, 'frank', QUIET),
  );
  // Some traffic, so the rates and charts have something to show.
  let n = 0;
  chatter = setInterval(() => {
    members[0]?.socket.emit('publish', { type: 'chat', data: { n: (n += 1) } }, () => undefined);
  }, 200);
  browser = await launchChromium();
  const context = await browser.newContext({ viewport: { width: 1440, height: 1000 } });
  page = await context.newPage();
  page.on('console', (message) => pageLog.push(`[${message.type()}] ${message.text()}`));
  page.on('pageerror', (error) => pageLog.push(`[pageerror] ${error.message}`));
}, 60_000);

afterAll(async () => {
  clearInterval(chatter);
  for (const member of members) member.close();
  await browser?.close();
  await Promise.all(replicas.map((gateway) => gateway.stop()));
  await redis?.stop();
});

describe('the operations dashboard', () => {
  it('refuses a token without scope admin, saying which scope it needs', async () => {
    await page.goto(`${replica(0).url}/admin/`);
    await page.getByTestId('token-input').fill(accessToken({ sub: 'someone' }));
    await page.getByTestId('signin-button').click();
    await expect
      .poll(() => page.getByTestId('signin-error').textContent(), { timeout: 5_000 })
      .toContain('scope "admin"');
  });

  it('signs in and shows both replicas and the busy room within 5 s', async () => {
    await page.getByTestId('token-input').fill(accessToken({ sub: 'ops-alice', scope: 'admin' }));
    await page.getByTestId('signin-button').click();
    const started = Date.now();
    await page.locator('[data-testid="replica-row"][data-replica="replica-b"]').waitFor({ timeout: 5_000 });
    await page.locator('[data-testid="replica-row"][data-replica="replica-a"]').waitFor({ timeout: 5_000 });
    const busy = page.locator(`[data-testid="room-row"][data-room="${BUSY}"]`);
    await busy.waitFor({ timeout: Math.max(100, 5_000 - (Date.now() - started)) });
    await expect.poll(() => busy.getByTestId('room-members').textContent(), { timeout: 3_000 }).toBe('3');
    // Busiest first; the search box narrows the list.
    expect(await page.getByTestId('room-row').first().getAttribute('data-room')).toBe(BUSY);
    await page.getByTestId('room-search').fill('quiet');
    await expect.poll(() => page.getByTestId('room-row').count()).toBe(1);
    await page.getByTestId('room-search').fill('');
  });

  it("opens the room and lists its members with their replicas, and the room's recent events", async () => {
    await page.locator(`[data-testid="room-row"][data-room="${BUSY}"]`).click();
    await expect.poll(() => page.getByTestId('member-row').count(), { timeout: 5_000 }).toBe(3);
    const dave = page.locator('[data-testid="member-row"][data-user="dave"]');
    expect(await dave.textContent()).toContain('replica-b');
    await expect.poll(() => page.getByTestId('event-row').count(), { timeout: 5_000 }).toBeGreaterThan(0);
  });

  it('publishes a notice that a member on the other replica receives', async () => {
    const dave = members[1];
    if (!dave) throw new Error('dave did not join');
    const received = new Promise<RoomEvent>((resolve) => {
      const look = (event: RoomEvent) => {
        if (event.type === ADMIN_NOTICE_EVENT) resolve(event);
      };
      dave.socket.on('room:event', look);
      dave.socket.on('room:events', (batch) => batch.forEach(look));
    });
    await page.getByTestId('notice-input').fill('Maintenance at 18:00 UTC');
    await page.getByTestId('notice-send').click();
    const notice = await received;
    expect(notice.data).toEqual({ text: 'Maintenance at 18:00 UTC' });
    expect(notice.from).toBe('admin:ops-alice');
  });

  it('kicks a member on the other replica, who is disconnected and leaves the room', async () => {
    const dave = members[1];
    if (!dave) throw new Error('dave did not join');
    const gone = new Promise<string>((resolve) => dave.socket.once('disconnect', resolve));
    await page.locator('[data-testid="member-row"][data-user="dave"]').getByTestId('kick-button').click();
    expect(await gone).toBe('io server disconnect');
    await expect
      .poll(() => page.locator('[data-testid="member-row"][data-user="dave"]').count(), { timeout: 10_000 })
      .toBe(0);
    await expect.poll(() => page.getByTestId('member-row').count()).toBe(2);
    // Audited by the replica that took the action, with the admin's sub.
    await waitFor(
      'audit line',
      () =>
        /"audit":true.*"action":"kick".*"admin":"ops-alice".*"userId":"dave"/.test(replica(0).output()) || undefined,
    );
    expect(replica(0).output()).toMatch(/"audit":true.*"action":"notice".*"admin":"ops-alice"/);
  });

  it('leaves a screenshot for the README', async () => {
    // A moment of traffic on the charts.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: `${ARTIFACTS}admin-dashboard.png`, fullPage: true });
    expect(pageLog.filter((line) => line.startsWith('[pageerror]'))).toEqual([]);
  });
});
