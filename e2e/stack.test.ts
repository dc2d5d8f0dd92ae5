/**
 * The compose topology on loopback (scripts/stack.ts): Redis, two gateway replicas and
 * nginx running deploy/nginx/nginx.conf. One client on WebSocket and one on
 * long-polling meet in a room through the load balancer while held by different
 * replicas, which is what a browser behind the deployed balancer goes through.
 *
 * nginx hashes the client's full address, so each client connects from its own
 * loopback address (127.0.0.0/8 is all local) and the test picks two that land on
 * different replicas.
 */
import { spawnSync } from 'node:child_process';
import { Agent, request } from 'node:http';
import { fileURLToPath } from 'node:url';
import type { Ack, ReadyResponse, RoomEvent } from '@switchboard/contract';
import type { SocketOptions } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatSummary, QUICK, runLoadTest } from '../bench/loadtest.js';
import { stackBanner, startStack, type Stack } from '../scripts/stack.js';
import { joinRoom, postJson, type ConnectedClient } from '../support/client.js';

// socket.io-client cannot infer the ack type through `timeout()`; this is the contract's.
type PublishAck = Ack<{ id: string }>;

let stack: Stack | undefined;
const agents: Agent[] = [];
const clients: ConnectedClient[] = [];

beforeAll(async () => {
  stack = await startStack({ replicas: 2 });
});

afterAll(async () => {
  for (const client of clients) client.close();
  for (const agent of agents) agent.destroy();
  await stack?.close();
});

function running(): Stack {
  if (!stack) throw new Error('the stack did not start');
  return stack;
}

/** An HTTP agent whose connections leave from `localAddress`, so nginx sees that client address. */
function agentFrom(localAddress: string): Agent {
  const agent = new Agent({ localAddress });
  agents.push(agent);
  return agent;
}

/** GET `path` from `localAddress`, as a client on that address would. */
function getJson(url: string, agent: Agent): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as unknown });
        } catch (error) {
          reject(error instanceof Error ? error : new Error(String(error)));
        }
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** The first loopback address nginx routes to each replica, probing through `/readyz`. */
async function addressPerReplica(url: string, replicas: number): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  for (let host = 2; host < 255 && found.size < replicas; host++) {
    const address = `127.0.0.${host}`;
    const { status, body } = await getJson(`${url}/readyz`, agentFrom(address));
    expect(status).toBe(200);
    const ready = body as ReadyResponse;
    // Every replica shares Redis, or room events could not cross between them.
    expect(ready).toMatchObject({ status: 'ready', redis: 'connected', tokenStore: 'redis' });
    if (!found.has(ready.replica)) found.set(ready.replica, address);
  }
  return found;
}

async function join(
  url: string,
  userId: string,
  room: string,
  transport: 'websocket' | 'polling',
  localAddress: string,
): Promise<ConnectedClient> {
  // engine.io-client hands `agent` to Node's http and ws clients; its types only
  // describe the browser, where an agent is a user-agent string.
  const nodeOnly = { agent: agentFrom(localAddress) } as unknown as Partial<SocketOptions>;
  const client = await joinRoom(url, userId, room, {
    ...nodeOnly,
    transports: [transport],
    // What a browser on the demo page would send.
    extraHeaders: { origin: url },
  });
  clients.push(client);
  return client;
}

async function eventOfType(client: ConnectedClient, type: string, timeoutMs = 5_000): Promise<RoomEvent> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const event = client.events.find((candidate) => candidate.type === type);
    if (event) return event;
    if (Date.now() > deadline) {
      throw new Error(`no ${type} event reached ${client.session.userId} within ${timeoutMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('npm run stack: Redis, two replicas and nginx on loopback', () => {
  it('lets a WebSocket client and a long-polling client on different replicas talk in one room', async () => {
    const { url } = running();
    const addresses = await addressPerReplica(url, 2);
    expect(addresses.size, 'nginx spreads clients over both replicas').toBe(2);
    const [[replicaA, addressA], [replicaB, addressB]] = [...addresses] as [[string, string], [string, string]];

    const room = `deploy-e2e-${Date.now()}`;
    const alice = await join(url, 'alice', room, 'websocket', addressA);
    const bob = await join(url, 'bob', room, 'polling', addressB);

    expect(alice.session).toMatchObject({ room, userId: 'alice', replica: replicaA });
    expect(bob.session).toMatchObject({ room, userId: 'bob', replica: replicaB });
    expect(alice.socket.io.engine.transport.name).toBe('websocket');
    expect(bob.socket.io.engine.transport.name).toBe('polling');

    // Polling -> WebSocket: bob's POSTs and alice's frames cross replicas through Redis.
    const fromBob = (await bob.socket
      .timeout(5_000)
      .emitWithAck('publish', { type: 'chat', data: { text: 'hello over long-polling' } })) as PublishAck;
    expect(fromBob.ok).toBe(true);
    const atAlice = await eventOfType(alice, 'chat');
    expect(atAlice).toMatchObject({ data: { text: 'hello over long-polling' }, from: bob.session.peerId });

    // WebSocket -> polling: delivered on bob's held long-poll, which must reach the
    // replica holding his session on every request.
    const fromAlice = (await alice.socket
      .timeout(5_000)
      .emitWithAck('publish', { type: 'chat.reply', data: { text: 'hello over WebSocket' } })) as PublishAck;
    expect(fromAlice.ok).toBe(true);
    const atBob = await eventOfType(bob, 'chat.reply');
    expect(atBob).toMatchObject({ data: { text: 'hello over WebSocket' }, from: alice.session.peerId });

    // Still the same sessions: nothing was dropped and re-established on the way.
    expect(bob.socket.connected && alice.socket.connected).toBe(true);
    expect(bob.socket.io.engine.transport.name).toBe('polling');
  });

  it('prints a service token that publishes into a room through the load balancer, as the README shows', async () => {
    const { url } = running();
    const service = /export SERVICE=(\S+)/.exec(stackBanner(running()))?.[1];
    if (!service) throw new Error('the banner has no service token');
    const room = `stack-service-${Date.now()}`;
    const [address] = (await addressPerReplica(url, 1)).values();
    const listener = await join(url, 'listener', room, 'websocket', address ?? '127.0.0.2');
    const response = await postJson(
      `${url}/api/rooms/${room}/events`,
      { type: 'notice', data: { text: 'hello' } },
      { authorization: `Bearer ${service}` },
    );
    expect(response.status, JSON.stringify(response.body)).toBe(202);
    expect(await eventOfType(listener, 'notice')).toMatchObject({ data: { text: 'hello' }, from: 'service:ops' });
  });

  it('keeps metrics off the load balancer', async () => {
    const response = await fetch(`${running().url}/metrics`);
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ error: { code: 'not_found' } });
  });

  it('takes the load test in quick mode (npm run loadtest -- --quick) with zero loss', async () => {
    const { url } = running();
    // The backend's service token: it mints for the synthetic users and publishes.
    const service = running().accessToken({ sub: 'loadtest', scope: 'mint publish' });
    const lines: string[] = [];
    const summary = await runLoadTest({
      url,
      ...QUICK,
      token: service,
      devLogin: false,
      reconnect: false,
      progress: (line) => lines.push(line),
    });
    expect(summary.connected).toBe(QUICK.rooms * QUICK.members);
    expect(summary.publishErrors).toBe(0);
    expect(summary.published).toBe(QUICK.rate * QUICK.seconds);
    expect(summary.expected).toBe(summary.published * QUICK.members);
    expect(summary.lost).toBe(0);
    expect(summary.duplicates).toBe(0);
    expect(summary.deliveryMs.samples).toBe(summary.expected);
    expect(lines.some((line) => / s: \d+\/\d+ connected/.test(line))).toBe(true);
    expect(formatSummary(summary)).toMatch(/lost +0 \(0 %\)/);
  });
});

describe('npm run loadtest', () => {
  it('refuses to load a deployment that is not this machine without --yes', () => {
    const result = spawnSync(
      process.execPath,
      ['--import', 'tsx', 'bench/loadtest.ts', '--url', 'https://switchboard.example.com', '--quick'],
      { encoding: 'utf8', cwd: fileURLToPath(new URL('..', import.meta.url)) },
    );
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('https://switchboard.example.com is not this machine');
    expect(result.stderr).toContain('--yes');
  });
});
