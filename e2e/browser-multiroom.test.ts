/**
 * Many rooms on one connection, in the demo in real headless Chromium against a real
 * gateway and Redis: a person's call room and the lobby share one WebSocket, each room
 * shows only its own events, and when the test cuts that WebSocket one reconnect brings
 * both rooms back with what they missed.
 */
import type { Browser, Page, WebSocketRoute } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReadyResponse } from '@switchboard/contract';
import { launchChromium, openLoggedPage } from '../support/chromium.js';
import { holdableMints } from '../support/held-mints.js';
import { accessToken, postJson } from '../support/client.js';
import { startGatewayProcess, type GatewayProcess } from '../support/gateway-process.js';
import { waitFor } from '../support/ports.js';
import { startRedisServer, type RedisServerHandle } from '../support/redis-server.js';

const SUFFIX = Date.now().toString(36);
const ROOM = `multiroom-call-${SUFFIX}`;
const OTHER_ROOM = `multiroom-other-${SUFFIX}`;
const LOBBY = `multiroom-lobby-${SUFFIX}`;
const WAIT_MS = 20_000;

interface Person {
  page: Page;
  log: string[];
  /** WebSockets the page opened, and how many of them are open now. */
  sockets: { opened: number; open: number };
  /** Closes the page's WebSocket as a network drop would; token mints wait for the returned release. */
  drop(): Promise<() => void>;
}

let redis: RedisServerHandle | undefined;
let gateway: GatewayProcess | undefined;
let browser: Browser | undefined;
let ada: Person;

function gw(): GatewayProcess {
  if (!gateway) throw new Error('gateway did not start');
  return gateway;
}

async function open(name: string, room: string): Promise<Person> {
  const { page, log } = await openLoggedPage(browser);
  const sockets = { opened: 0, open: 0 };
  let current: { page: WebSocketRoute; server: WebSocketRoute } | undefined;
  // Every WebSocket the page opens passes through here, so the test counts them and can cut one.
  await page.routeWebSocket(/\/socket\.io\//, (route) => {
    sockets.opened++;
    sockets.open++;
    current = { page: route, server: route.connectToServer() };
    route.onClose(() => {
      sockets.open--;
    });
  });
  const mints = await holdableMints(page);
  const query = new URLSearchParams({ gateways: gw().url, room, lobby: LOBBY, name, autojoin: '1' });
  await page.goto(`${gw().url}/?${query.toString()}`);
  return {
    page,
    log,
    sockets,
    async drop() {
      const release = mints.hold();
      // Both ends at once, so the gateway too sees the connection go (as after a reset, not a timeout).
      await Promise.all([
        current?.page.close({ code: 4000, reason: 'the test cut the connection' }),
        current?.server.close({ code: 4000, reason: 'the test cut the connection' }),
      ]);
      return release;
    },
  };
}

/** What the person sees of both rooms. */
async function view(person: Person) {
  return person.page.evaluate(() => {
    const texts = (selector: string) =>
      [...document.querySelectorAll<HTMLElement>(selector)].map((item) => item.textContent.trim());
    const lobby = document.querySelector<HTMLElement>('[data-testid="lobby-panel"]');
    return {
      call: document.querySelector<HTMLElement>('[data-testid="connection-badge"]')?.dataset.status,
      lobby: lobby?.dataset.status,
      lobbyRecovered: lobby?.dataset.recovered,
      lobbyReplayed: lobby?.dataset.replayed,
      lobbyCount: document.querySelector('[data-testid="lobby-count"]')?.textContent.trim(),
      lobbyItems: texts('[data-testid="lobby-item"]'),
      events: texts('[data-testid="event-item"] .entry-text'),
      recoveries: texts('[data-testid="recovery-notice"]'),
    };
  });
}

/** Polls what the person sees until `check` holds; on timeout says what was seen instead. */
function waitUntil(
  person: Person,
  what: string,
  check: (seen: Awaited<ReturnType<typeof view>>) => boolean,
): Promise<Awaited<ReturnType<typeof view>>> {
  return waitFor(
    what,
    async () => {
      const seen = await view(person);
      if (check(seen)) return seen;
      throw new Error(`saw ${JSON.stringify(seen)}\npage log:\n${person.log.slice(-40).join('\n')}`);
    },
    { timeoutMs: WAIT_MS, intervalMs: 100 },
  );
}

/** Publishes over the HTTP API, as a backend would. */
async function publishNote(room: string, text: string): Promise<void> {
  const service = accessToken({ sub: 'notifier', scope: 'publish' });
  const response = await postJson(
    `${gw().url}/api/rooms/${room}/events`,
    { type: 'note', data: { text } },
    { authorization: `Bearer ${service}` },
  );
  expect(response.status).toBe(202);
}

/** The gateway's own count of its open Socket.IO connections. */
async function gatewayConnections(): Promise<number> {
  const response = await fetch(`${gw().url}/readyz`);
  return ((await response.json()) as ReadyResponse).connections;
}

async function expectConnections(count: number): Promise<void> {
  await expect.poll(gatewayConnections, { timeout: WAIT_MS }).toBe(count);
}

beforeAll(async () => {
  redis = await startRedisServer();
  gateway = await startGatewayProcess({ env: { REDIS_URL: redis.url } });
  browser = await launchChromium();
  ada = await open('Ada', ROOM);
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await gateway?.stop();
  await redis?.stop();
}, 30_000);

describe('two rooms on one connection in Chromium', () => {
  it('joins the call room and the lobby over one WebSocket', async () => {
    const seen = await waitUntil(
      ada,
      'both rooms connected and Ada’s arrival in the lobby',
      (s) => s.call === 'connected' && s.lobby === 'connected' && s.lobbyItems.includes(`Ada joined ${ROOM}`),
    );
    expect(seen.lobbyCount).toBe('1');
    expect(ada.sockets).toEqual({ opened: 1, open: 1 });
    await expectConnections(1);
  });

  it('shows each room’s events in that room only', async () => {
    const grace = await open('Grace', OTHER_ROOM);
    await waitUntil(
      ada,
      'Grace in the lobby',
      (s) => s.lobbyCount === '2' && s.lobbyItems.includes(`Grace joined ${OTHER_ROOM}`),
    );
    // Two people, two rooms each, two connections.
    expect(grace.sockets).toEqual({ opened: 1, open: 1 });
    await expectConnections(2);

    await publishNote(ROOM, 'For the call only');
    await publishNote(LOBBY, 'For the whole lobby');
    const seen = await waitUntil(
      ada,
      'both notes',
      (s) => s.events.includes('For the call only') && s.lobbyItems.includes('For the whole lobby'),
    );
    expect(seen.events).toEqual(['For the call only']);
    expect(seen.lobbyItems).not.toContain('For the call only');
    // Grace is in the lobby but not in Ada's call.
    const graceSees = await waitUntil(grace, 'the lobby note', (s) => s.lobbyItems.includes('For the whole lobby'));
    expect(graceSees.events).toEqual([]);
    await grace.page.context().close();
    await waitUntil(ada, 'Grace gone from the lobby', (s) => s.lobbyCount === '1');
  });

  it('recovers both rooms with one reconnect after the connection is cut', async () => {
    const release = await ada.drop();
    await waitUntil(ada, 'both rooms reconnecting', (s) => s.call !== 'connected' && s.lobby !== 'connected');
    await publishNote(ROOM, 'Missed in the call 1');
    await publishNote(ROOM, 'Missed in the call 2');
    await publishNote(LOBBY, 'Missed in the lobby 1');
    await publishNote(LOBBY, 'Missed in the lobby 2');
    await publishNote(LOBBY, 'Missed in the lobby 3');
    release();

    const seen = await waitUntil(
      ada,
      'both rooms back with what they missed',
      (s) => s.call === 'connected' && s.lobby === 'connected' && s.lobbyReplayed === '3' && s.recoveries.length > 0,
    );
    expect(seen.recoveries).toEqual(['Reconnected · 2 missed events recovered']);
    expect(seen.lobbyRecovered).toBe('true');
    expect(seen.events).toEqual(['For the call only', 'Missed in the call 1', 'Missed in the call 2']);
    expect(seen.lobbyItems.slice(-3)).toEqual([
      'Missed in the lobby 1',
      'Missed in the lobby 2',
      'Missed in the lobby 3',
    ]);
    // One new WebSocket carried both rooms back.
    expect(ada.sockets).toEqual({ opened: 2, open: 1 });
    await expectConnections(1);

    await publishNote(LOBBY, 'Live again');
    await waitUntil(ada, 'a live lobby note', (s) => s.lobbyItems.at(-1) === 'Live again');
    expect((await view(ada)).lobbyItems.filter((text) => text.startsWith('Missed in the lobby'))).toHaveLength(3);
  });
});
