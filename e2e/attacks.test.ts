import { readFileSync } from 'node:fs';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Ack, HistoryResponse, PublishEventResponse, RoomEvent } from '@switchboard/contract';
import {
  accessToken,
  connectWithToken,
  mintToken,
  postJson,
  scrapeMetric,
  type ConnectedClient,
  type TestSocket,
} from '../support/client.js';
import { startGatewayProcess, startReplicas, type GatewayProcess } from '../support/gateway-process.js';
import { waitFor } from '../support/ports.js';
import { startRedisServer, type RedisServerHandle } from '../support/redis-server.js';

/**
 * Each test here performs an attack found in a security review, against real gateway
 * processes in production mode on a real Redis, and asserts that it is refused.
 */

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const production = { NODE_ENV: 'production', LOG_LEVEL: 'warn', CORS_ORIGINS: 'https://app.example' };

function rssMegabytes(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match?.[1] ?? 0) / 1024;
}

/** A socket that stops reading: frames for it pile up in the gateway, as behind a dead client. */
function stopReading(socket: TestSocket): void {
  const transport = socket.io.engine.transport as unknown as { ws?: { _socket?: { pause(): void } } };
  const tcp = transport.ws?._socket;
  if (!tcp) throw new Error('expected a websocket transport');
  tcp.pause();
}

function emitWithAck<T extends object>(socket: TestSocket, event: string, payload: unknown): Promise<Ack<T>> {
  return (socket.timeout(5_000) as unknown as { emitWithAck(e: string, p: unknown): Promise<Ack<T>> }).emitWithAck(
    event,
    payload,
  );
}

describe('attacks on a production deployment (two replicas, one Redis)', () => {
  let redis: RedisServerHandle;
  let a: GatewayProcess;
  let b: GatewayProcess;
  const opened: ConnectedClient[] = [];
  const track = (client: ConnectedClient) => {
    opened.push(client);
    return client;
  };

  beforeAll(async () => {
    redis = await startRedisServer({ args: () => ['--enable-debug-command', 'yes'] });
    const env = { ...production, REDIS_URL: redis.url };
    [a, b] = await startReplicas(env, ['a', 'b']);
  });
  afterAll(async () => {
    for (const client of opened) client.close();
    try {
      await Promise.all([a.stop(), b.stop()]);
    } finally {
      // Also when the gateways never started.
      await redis.stop();
    }
  });

  it('refuses a signed-in user a token for a room the app did not grant, naming the claim', async () => {
    const stranger = accessToken({ sub: 'stranger', rooms: { 'own-room': ['publish'] } });
    const refused = await postJson(`${a.url}/api/rtc/tokens`, { room: 'consult-42' }, bearer(stranger));
    expect(refused.status).toBe(403);
    const error = (refused.body as { error: { code: string; message: string } }).error;
    expect(error.code).toBe('forbidden');
    expect(error.message).toContain('"rooms" claim');
    const noClaim = accessToken({ sub: 'nobody', rooms: undefined });
    expect((await postJson(`${a.url}/api/rtc/tokens`, { room: 'consult-42' }, bearer(noClaim))).status).toBe(403);
    expect((await postJson(`${a.url}/api/rtc/tokens`, { room: 'own-room' }, bearer(stranger))).status).toBe(201);
  });

  it('gives an "openid profile" token nothing: no history, presence, revocation or publishing', async () => {
    const patient = accessToken({ sub: 'patient', rooms: { 'consult-42': ['publish'] } });
    const member = track(await connectWithToken(a.url, (await mintToken(a.url, patient, 'consult-42')).token));
    const ack = await emitWithAck<PublishEventResponse>(member.socket, 'publish', { type: 'note', data: 'private' });
    expect(ack.ok).toBe(true);

    const idpUser = accessToken({ sub: 'curious', scope: 'openid profile email', rooms: {} });
    for (const path of ['/api/rooms/consult-42/events', '/api/rooms/consult-42/peers']) {
      const response = await fetch(`${b.url}${path}`, { headers: bearer(idpUser) });
      expect(response.status).toBe(403);
    }
    const publish = await postJson(`${b.url}/api/rooms/consult-42/events`, { type: 'spoof' }, bearer(idpUser));
    expect(publish.status).toBe(403);
    const minted = await mintToken(a.url, patient, 'consult-42');
    const revoke = await fetch(`${b.url}/api/rtc/tokens/${minted.jti}`, { method: 'DELETE', headers: bearer(idpUser) });
    expect(revoke.status).toBe(404);
    // The token the patient still holds works.
    track(await connectWithToken(b.url, minted.token));
  });

  it("never delivers a room named after another member's socket id to that member", async () => {
    const victim = track(
      await connectWithToken(a.url, (await mintToken(a.url, accessToken({ sub: 'victim' }), 'clinic')).token),
    );
    const room = victim.session.peerId;
    const attacker = track(
      await connectWithToken(a.url, (await mintToken(a.url, accessToken({ sub: 'attacker' }), room)).token),
    );
    const publish = await emitWithAck<PublishEventResponse>(attacker.socket, 'publish', {
      type: 'fake',
      data: { seq: 1 },
    });
    expect(publish.ok).toBe(true);
    const service = accessToken({ sub: 'backend', scope: 'publish' });
    expect((await postJson(`${a.url}/api/rooms/${room}/events`, { type: 'fake' }, bearer(service))).status).toBe(202);
    // The attacker's own room got both; the victim, in "clinic", neither.
    await waitFor('the attacker sees its events', () => attacker.events.length >= 2 || undefined);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(victim.events).toEqual([]);
  });

  it('keeps a replica alive against history requests from a socket that never reads', async () => {
    const spammer = accessToken({ sub: 'spammer', rooms: { 'spam-*': ['publish'] } });
    const writer = track(await connectWithToken(a.url, (await mintToken(a.url, spammer, 'spam-1')).token));
    const big = 'x'.repeat(60_000);
    for (let i = 0; i < 40; i++) {
      const ack = await emitWithAck<PublishEventResponse>(writer.socket, 'publish', { type: 'blob', data: big });
      expect(ack.ok).toBe(true);
    }
    // Replies are cut at HISTORY_REPLY_MAX_BYTES, and say so.
    const page = await emitWithAck<HistoryResponse>(writer.socket, 'history', {});
    expect(page.ok && page.more).toBe(true);
    expect(page.ok && page.events.length).toBeLessThan(10);

    const reader = track(await connectWithToken(a.url, (await mintToken(a.url, spammer, 'spam-1')).token));
    const slowBefore = await scrapeMetric(a.url, 'switchboard_slow_consumer_disconnects_total');
    const rssBefore = rssMegabytes(a.pid);
    stopReading(reader.socket);
    const closed = new Promise<void>((resolve) => reader.socket.io.engine.once('close', () => resolve()));
    // ~20 bytes each, each answer up to 256 KiB (it was ~2.4 MB, unbounded). Once the
    // backlog passes half of SOCKET_MAX_BUFFERED_BYTES they are refused, and a socket that
    // keeps asking is cut as a slow consumer.
    // Paced under the event rate limit, so that it is the backlog that stops it.
    for (let i = 0; i < 24; i++) {
      for (let j = 0; j < 10; j++) reader.socket.emit('history', {}, () => undefined);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    await waitFor(
      'the slow consumer is cut off',
      async () => (await scrapeMetric(a.url, 'switchboard_slow_consumer_disconnects_total')) > slowBefore || undefined,
      { timeoutMs: 30_000 },
    );
    expect(rssMegabytes(a.pid) - rssBefore).toBeLessThan(100);
    reader.socket.io.engine.transport.close();
    await closed;
    // The replica still serves.
    expect((await fetch(`${a.url}/healthz`)).status).toBe(200);
  }, 90_000);

  it('cuts off a stalled member of a busy room instead of buffering the room for it', async () => {
    const user = accessToken({ sub: 'busy', rooms: { 'busy-*': ['publish'] } });
    const stalled = track(await connectWithToken(b.url, (await mintToken(b.url, user, 'busy-1')).token));
    const live = track(await connectWithToken(b.url, (await mintToken(b.url, user, 'busy-1')).token));
    const slowBefore = await scrapeMetric(b.url, 'switchboard_slow_consumer_disconnects_total');
    stopReading(stalled.socket);
    // More than kernel buffers and SOCKET_MAX_BUFFERED_BYTES (4 MiB) together can hold.
    const service = bearer(accessToken({ sub: 'feed', scope: 'publish' }));
    const big = { type: 'frame', data: 'y'.repeat(60_000) };
    for (let i = 0; i < 50; i++) {
      await Promise.all(Array.from({ length: 8 }, () => postJson(`${a.url}/api/rooms/busy-1/events`, big, service)));
    }
    await waitFor(
      'the stalled member is cut off',
      async () => (await scrapeMetric(b.url, 'switchboard_slow_consumer_disconnects_total')) > slowBefore || undefined,
      { timeoutMs: 30_000 },
    );
    // The member that reads still gets the room, in order.
    await waitFor('the live member got the burst', () => live.events.length >= 400 || undefined, { timeoutMs: 30_000 });
    const seqs = live.events.map((event: RoomEvent) => event.seq);
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
  }, 90_000);

  it('charges refused publishes against the rate limit, and disconnects a socket that keeps sending them', async () => {
    const reader = accessToken({ sub: 'read-only', rooms: { 'webinar-*': [] } });
    const minted = await mintToken(a.url, reader, 'webinar-1');
    const member = track(await connectWithToken(a.url, minted.token));
    expect(member.session.caps).toEqual([]);
    const codes = await Promise.all(
      Array.from({ length: 150 }, () =>
        emitWithAck(member.socket, 'publish', { type: 'spam' }).then(
          (ack) => (ack.ok ? 'ok' : ack.error.code),
          () => 'no answer',
        ),
      ),
    );
    expect(codes).toContain('forbidden');
    expect(codes).toContain('rate_limited');
    expect(codes).not.toContain('ok');
  });

  it('refuses a redemption that Redis could not confirm in time instead of trusting the signature', async () => {
    const user = accessToken({ sub: 'replayer', rooms: { 'single-*': ['publish'] } });
    const minted = await mintToken(a.url, user, 'single-1');
    const admin = createClient({ url: redis.url });
    admin.on('error', () => undefined);
    await admin.connect();
    try {
      // Redis stays connected but answers nothing for 1.2 s: the redemption times out (500 ms).
      const sleeping = admin.sendCommand(['DEBUG', 'SLEEP', '1.2']);
      await new Promise((resolve) => setTimeout(resolve, 50));
      await expect(connectWithToken(a.url, minted.token)).rejects.toThrow('unavailable');
      await sleeping;
    } finally {
      await admin.close();
    }
    // The redemption reached Redis after its deadline and was refused there (a late
    // command never applies: docs/architecture.md, "Partitions and late commands"), so the
    // refused handshake spent nothing: exactly one later use wins, on either replica.
    track(await connectWithToken(b.url, minted.token));
    await expect(connectWithToken(b.url, minted.token)).rejects.toThrow(/token_used|token_revoked/);
    await expect(connectWithToken(a.url, minted.token)).rejects.toThrow(/token_used|token_revoked/);
  });
});

describe('attacks on a single replica', () => {
  const gateways: GatewayProcess[] = [];
  afterAll(async () => {
    await Promise.all(gateways.map((gateway) => gateway.stop()));
  });

  it('treats an unset NODE_ENV as production: no dev login, no CORS for strangers', async () => {
    const gateway = await startGatewayProcess({ env: { NODE_ENV: undefined, ROOM_ACCESS: undefined } });
    gateways.push(gateway);
    const login = await postJson(`${gateway.url}/api/dev/login`, { userId: 'eve' });
    expect(login.status).toBe(404);
    const preflight = await fetch(`${gateway.url}/api/rtc/tokens`, {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
    });
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
    // And room access defaults to grants.
    const open = await postJson(
      `${gateway.url}/api/rtc/tokens`,
      { room: 'x' },
      bearer(accessToken({ sub: 'u', rooms: {} })),
    );
    expect(open.status).toBe(403);
  });

  it('never forgets a used token in memory mode: a full map refuses mints instead', async () => {
    const gateway = await startGatewayProcess({
      env: { ...production, MEMORY_TOKEN_CAP: '100', MINT_RATE_PER_MINUTE: '10000' },
    });
    gateways.push(gateway);
    const user = accessToken({ sub: 'hoarder' });
    const first = await mintToken(gateway.url, user, 'memo');
    const client = await connectWithToken(gateway.url, first.token);
    client.close();
    const statuses: number[] = [];
    for (let i = 0; i < 120; i++) {
      statuses.push((await postJson(`${gateway.url}/api/rtc/tokens`, { room: 'memo' }, bearer(user))).status);
    }
    expect(statuses.filter((status) => status === 201)).toHaveLength(99);
    expect(statuses.at(-1)).toBe(503);
    await expect(connectWithToken(gateway.url, first.token)).rejects.toThrow('token_used');
  });
});
