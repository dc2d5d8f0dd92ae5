/**
 * The demo call app in real headless Chromium, across two gateway replicas sharing a
 * real Redis: two people on different replicas call each other, chat over the data
 * channel, see events published over HTTP, and survive the loss of a replica. A third
 * person, in a room of her own, loses her connection at the test's command and is told
 * what came back.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Browser, Page, WebSocketRoute } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, openLoggedPage } from '../support/chromium.js';
import { holdableMints } from '../support/held-mints.js';
import { accessToken, postJson } from '../support/client.js';
import { startGatewayProcess, type GatewayProcess } from '../support/gateway-process.js';
import { startRedisServer, type RedisServerHandle } from '../support/redis-server.js';

const ARTIFACTS = fileURLToPath(new URL('../test-artifacts/', import.meta.url));
const ROOM = `e2e-call-${Date.now().toString(36)}`;
const ACTIVITY_ROOM = `${ROOM}-activity`;
const WAIT_MS = 20_000;
/** Recovery refuses a gap longer than this (RECOVERY_MAX_EVENTS). */
const RECOVERY_MAX_EVENTS = 10;

interface Person {
  name: string;
  page: Page;
  /** What the page logged, shown when a wait times out. */
  log: string[];
}

/** A person whose connection the test can cut, and whose next connection it can hold back. */
interface Unreliable extends Person {
  /** Closes the page's WebSocket as a network drop would; the next token mint waits for the returned release. */
  drop(): Promise<() => void>;
}

interface PeerView {
  peerId: string | undefined;
  name: string | undefined;
  connection: string | undefined;
  chat: string | undefined;
}

let redis: RedisServerHandle | undefined;
let replicaA: GatewayProcess | undefined;
let replicaB: GatewayProcess | undefined;
let browser: Browser | undefined;
let alice: Person;
let bob: Person;

function gateways(): [GatewayProcess, GatewayProcess] {
  if (!replicaA || !replicaB) throw new Error('gateways did not start');
  return [replicaA, replicaB];
}

const newPage = () => openLoggedPage(browser);

async function goToRoom(page: Page, name: string, room: string, gatewayUrls: string[]): Promise<void> {
  const query = new URLSearchParams({ gateways: gatewayUrls.join(','), room, name, autojoin: '1' });
  await page.goto(`${gatewayUrls[0]}/?${query.toString()}`);
}

async function open(name: string, first: GatewayProcess, second: GatewayProcess): Promise<Person> {
  const { page, log } = await newPage();
  await goToRoom(page, name, ROOM, [first.url, second.url]);
  return { name, page, log };
}

async function openUnreliable(name: string, room: string, gateway: GatewayProcess): Promise<Unreliable> {
  const { page, log } = await newPage();
  let socket: WebSocketRoute | undefined;
  // Relayed through Playwright so the test can cut it; the page still speaks to the real gateway.
  await page.routeWebSocket(/\/socket\.io\//, (route) => {
    socket = route;
    route.connectToServer();
  });
  const mints = await holdableMints(page);
  await goToRoom(page, name, room, [gateway.url]);
  return {
    name,
    page,
    log,
    async drop() {
      const release = mints.hold();
      await socket?.close({ code: 4000, reason: 'the test cut the connection' });
      return release;
    },
  };
}

/** Publishes over the HTTP API, as a backend would. */
async function publishNote(gateway: GatewayProcess, room: string, text: string): Promise<void> {
  const service = accessToken({ sub: 'standup-bot', scope: 'publish' });
  const response = await postJson(
    `${gateway.url}/api/rooms/${room}/events`,
    { type: 'note', data: { text } },
    { authorization: `Bearer ${service}` },
  );
  expect(response.status).toBe(202);
}

/** The event log's entries, oldest first, as the person reads them. */
async function eventTexts(person: Person): Promise<string[]> {
  return person.page.getByTestId('event-log').locator('[data-testid="event-item"] .entry-text').allTextContents();
}

/** What a person sees: the badge, and each peer in the list with its call state. */
async function view(person: Person) {
  return person.page.evaluate(() => {
    const badge = document.querySelector<HTMLElement>('[data-testid="connection-badge"]');
    const peers = [...document.querySelectorAll<HTMLElement>('[data-testid="peer-item"]')].map((item): PeerView => ({
      peerId: item.dataset.peerId,
      name: item.dataset.name,
      connection: item.dataset.connection,
      chat: item.dataset.chat,
    }));
    return {
      status: badge?.dataset.status,
      replica: badge?.dataset.replica,
      badgeText: badge?.textContent.trim(),
      peerId: badge?.dataset.peerId,
      peers,
    };
  });
}

/** Polls what the person sees until `check` holds; on timeout says what was seen instead. */
async function waitUntil(
  person: Person,
  what: string,
  check: (seen: Awaited<ReturnType<typeof view>>) => boolean,
): Promise<Awaited<ReturnType<typeof view>>> {
  const deadline = Date.now() + WAIT_MS;
  let seen = await view(person);
  while (!check(seen)) {
    if (Date.now() > deadline) {
      throw new Error(
        `${person.name}: timed out after ${WAIT_MS} ms waiting for ${what}\nsaw: ${JSON.stringify(seen)}\n` +
          `page log:\n${person.log.slice(-40).join('\n')}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
    seen = await view(person);
  }
  return seen;
}

const inCallWith = (name: string) => (seen: Awaited<ReturnType<typeof view>>) =>
  seen.peers.some((peer) => peer.name === name && peer.connection === 'connected' && peer.chat === 'open');

async function sendChat(person: Person, text: string): Promise<void> {
  await person.page.getByTestId('chat-input').fill(text);
  await person.page.getByTestId('chat-input').press('Enter');
}

async function expectInLog(person: Person, log: 'chat-log' | 'event-log', text: string): Promise<void> {
  await person.page.getByTestId(log).getByText(text).waitFor({ state: 'visible', timeout: WAIT_MS });
}

beforeAll(async () => {
  redis = await startRedisServer();
  // A short presence TTL: the surviving replica announces a killed replica's peers as gone sooner.
  const env = { REDIS_URL: redis.url, PRESENCE_TTL_SECONDS: '3', RECOVERY_MAX_EVENTS: String(RECOVERY_MAX_EVENTS) };
  [replicaA, replicaB] = await Promise.all([
    startGatewayProcess({ env, replica: 'replica-a' }),
    startGatewayProcess({ env, replica: 'replica-b' }),
  ]);
  browser = await launchChromium();
  const [a, b] = gateways();
  [alice, bob] = await Promise.all([open('Alice', a, b), open('Bob', b, a)]);
}, 30_000);

afterAll(async () => {
  await browser?.close();
  await Promise.all([replicaA?.stop(), replicaB?.stop()]);
  await redis?.stop();
}, 30_000);

describe('demo call app in Chromium across two replicas', () => {
  it('connects two people on different replicas into a call, with chat both ways', async () => {
    const [a, b] = gateways();
    const aliceSees = await waitUntil(alice, 'a call with Bob', inCallWith('Bob'));
    const bobSees = await waitUntil(bob, 'a call with Alice', inCallWith('Alice'));
    expect(aliceSees.replica).toBe(a.replica);
    expect(aliceSees.badgeText).toContain(a.replica);
    expect(bobSees.replica).toBe(b.replica);
    expect(bobSees.peers.map((peer) => peer.peerId)).toEqual([aliceSees.peerId]);
    await expect(alice.page.getByTestId('call-state').textContent()).resolves.toContain('In call with Bob');

    await sendChat(alice, 'Hi Bob, can you hear me?');
    await expectInLog(bob, 'chat-log', 'Hi Bob, can you hear me?');
    await sendChat(bob, 'Loud and clear, Alice!');
    await expectInLog(alice, 'chat-log', 'Loud and clear, Alice!');
  });

  it('shows an event published over the HTTP API in both event logs', async () => {
    const [a] = gateways();
    const service = accessToken({ sub: 'standup-bot', scope: 'publish' });
    const response = await postJson(
      `${a.url}/api/rooms/${ROOM}/events`,
      { type: 'announcement', data: { text: 'Standup starts in one minute' } },
      { authorization: `Bearer ${service}` },
    );
    expect(response.status).toBe(202);
    await expectInLog(alice, 'event-log', 'Standup starts in one minute');
    await expectInLog(bob, 'event-log', 'Standup starts in one minute');

    // Posted from the page, through the socket, to everyone in the room.
    await bob.page.getByTestId('event-input').fill('Running two minutes late');
    await bob.page.getByTestId('event-input').press('Enter');
    await expectInLog(alice, 'event-log', 'Running two minutes late');
  });

  it('writes a screenshot of the call in progress', async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    const bobInList = alice.page.getByTestId('peer-item').filter({ hasText: 'Bob' });
    await bobInList.waitFor({ state: 'visible', timeout: WAIT_MS });
    await expect(bobInList.textContent()).resolves.toContain('In call');
    await alice.page.screenshot({ path: `${ARTIFACTS}demo-call.png` });
    expect(existsSync(`${ARTIFACTS}demo-call.png`)).toBe(true);
  });

  it('says clearly, naming the missing grant, when the app does not let the person into a room', async () => {
    // The demo's stand-in login grants the room it joins, except private ones (ROOM_ACCESS=grants here).
    const [a, b] = gateways();
    const { page } = await newPage();
    try {
      await goToRoom(page, 'Eve', 'private-consult', [a.url, b.url]);
      const error = page.locator('#join-error');
      await error.waitFor({ state: 'visible', timeout: WAIT_MS });
      await expect(error.textContent()).resolves.toMatch(
        /^This room is not open to you: .*"rooms" claim does not grant room "private-consult"/,
      );
    } finally {
      await page.context().close();
    }
  });

  it('shows the room’s recent activity again after a page reload', async () => {
    await bob.page.reload();
    await waitUntil(bob, 'a call with Alice after the reload', inCallWith('Alice'));
    await expectInLog(bob, 'event-log', 'Running two minutes late');
    expect(await eventTexts(bob)).toEqual(['Standup starts in one minute', 'Running two minutes late']);
    await expect(bob.page.getByTestId('earlier-notice').textContent()).resolves.toBe('Earlier in this room');
  });

  it('reconnects the call through the other replica when Alice’s replica is killed', async () => {
    const [a, b] = gateways();
    const before = await view(alice);
    await a.stop('SIGKILL');

    const after = await waitUntil(
      alice,
      `a new session on ${b.replica} and a call with Bob`,
      (seen) => seen.status === 'connected' && seen.replica === b.replica && inCallWith('Bob')(seen),
    );
    expect(after.peerId).not.toBe(before.peerId);
    const bobSees = await waitUntil(
      bob,
      'a call with Alice under her new peer id, and her old one gone',
      (seen) =>
        seen.peers.length === 1 &&
        seen.peers[0]?.peerId === after.peerId &&
        seen.peers[0]?.connection === 'connected' &&
        seen.peers[0]?.chat === 'open',
    );
    expect(bobSees.peers[0]?.name).toBe('Alice');

    await sendChat(alice, 'Back again after the blip');
    await expectInLog(bob, 'chat-log', 'Back again after the blip');
    await sendChat(bob, 'Welcome back');
    await expectInLog(alice, 'chat-log', 'Welcome back');
  }, 45_000);
});

describe('room activity across a lost connection', () => {
  let carol: Unreliable;
  const texts = (from: number, to: number) =>
    Array.from({ length: to - from + 1 }, (_, i) => `Update ${String(from + i)}`);

  beforeAll(async () => {
    const [, b] = gateways();
    carol = await openUnreliable('Carol', ACTIVITY_ROOM, b);
    await waitUntil(carol, 'a session', (seen) => seen.status === 'connected');
    for (const text of texts(1, 2)) await publishNote(b, ACTIVITY_ROOM, text);
    await expectInLog(carol, 'event-log', 'Update 2');
  });

  it('tells the person how many events came back after a reconnect, and shows each once', async () => {
    const [, b] = gateways();
    const release = await carol.drop();
    await waitUntil(carol, 'the dropped connection', (seen) => seen.status !== 'connected');
    for (const text of texts(3, 5)) await publishNote(b, ACTIVITY_ROOM, text);
    release();

    const notice = carol.page.getByTestId('recovery-notice').nth(0);
    await notice.waitFor({ state: 'visible', timeout: WAIT_MS });
    await expect(notice.textContent()).resolves.toBe('Reconnected · 3 missed events recovered');
    await expect(notice.getAttribute('data-replayed')).resolves.toBe('3');
    await publishNote(b, ACTIVITY_ROOM, 'Update 6');
    await expectInLog(carol, 'event-log', 'Update 6');
    expect(await eventTexts(carol)).toEqual(texts(1, 6));
  });

  it('asks the person to reload when too much was missed, and the reload shows the latest', async () => {
    const [, b] = gateways();
    const release = await carol.drop();
    await waitUntil(carol, 'the dropped connection', (seen) => seen.status !== 'connected');
    const missed = texts(7, 7 + RECOVERY_MAX_EVENTS);
    for (const text of missed) await publishNote(b, ACTIVITY_ROOM, text);
    release();

    const notice = carol.page.getByTestId('recovery-notice').nth(1);
    await notice.waitFor({ state: 'visible', timeout: WAIT_MS });
    await expect(notice.getAttribute('data-recovered')).resolves.toBe('false');
    await expect(notice.textContent()).resolves.toContain('too much happened while you were away');
    // Nothing of the gap was shown: the log stops where the connection did.
    expect(await eventTexts(carol)).toEqual(texts(1, 6));

    mkdirSync(ARTIFACTS, { recursive: true });
    await carol.page.screenshot({ path: `${ARTIFACTS}demo-recovery-refused.png` });
    await carol.page.getByTestId('reload-activity').click();
    await expectInLog(carol, 'event-log', missed.at(-1) ?? '');
    expect(await eventTexts(carol)).toEqual(texts(1, 7 + RECOVERY_MAX_EVENTS));
  });
});
