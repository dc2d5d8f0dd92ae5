import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Ack } from '@switchboard/contract';
import { accessToken, connectWithToken, devLogin, joinRoom, mintToken, nextEvent } from '../../support/client.js';
import { startTestGateway, type TestGateway } from '../../support/gateway.js';
import { startGatewayProcess } from '../../support/gateway-process.js';
import { startRedisServer } from '../../support/redis-server.js';

describe('session lifetime', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway();
  });
  afterAll(() => gw.close());

  it('ends a session when the access JWT behind it expires, with a reason', async () => {
    const shortLived = accessToken({ sub: 'brief' }, { expiresInSeconds: 2 });
    const minted = await mintToken(gw.url, shortLived, 'expiring');
    const client = await connectWithToken(gw.url, minted.token);
    expect(client.session.expiresAt).toBeLessThanOrEqual(Date.now() + 2_000);
    const ended = nextEvent(client.socket, 'session:ended', undefined, 6_000);
    const disconnected = new Promise<string>((resolve) => client.socket.once('disconnect', resolve));
    expect(await ended).toEqual({ room: 'expiring', reason: 'session_expired' });
    expect(await disconnected).toBe('io server disconnect');
  });

  it('keeps a refreshed session alive past the first expiry, and refuses a token for another room', async () => {
    const shortLived = accessToken({ sub: 'renewer' }, { expiresInSeconds: 2 });
    const client = await connectWithToken(gw.url, (await mintToken(gw.url, shortLived, 'renewing')).token);
    const longLived = accessToken({ sub: 'renewer' }, { expiresInSeconds: 600 });

    const wrongRoom = (await client.socket.emitWithAck('session:refresh', {
      token: (await mintToken(gw.url, longLived, 'elsewhere')).token,
    })) as Ack;
    expect(wrongRoom).toMatchObject({ ok: false, error: { code: 'forbidden' } });

    const fresh = await mintToken(gw.url, longLived, 'renewing');
    const ack = (await client.socket.emitWithAck('session:refresh', { token: fresh.token })) as Ack<{
      expiresAt: number;
    }>;
    expect(ack.ok).toBe(true);
    expect(ack.ok && ack.expiresAt).toBeGreaterThan(Date.now() + 500_000);
    // The refresh token is single use like any other.
    const reuse = (await client.socket.emitWithAck('session:refresh', { token: fresh.token })) as Ack;
    expect(reuse).toMatchObject({ ok: false, error: { code: 'token_used' } });

    await new Promise((resolve) => setTimeout(resolve, 3_500));
    expect(client.socket.connected).toBe(true);
    client.close();
  });

  it('caps connections per user with rate_limited', async () => {
    const capped = await startTestGateway({ MAX_CONNECTIONS_PER_USER: '2' });
    try {
      const access = await devLogin(capped.url, 'greedy');
      const open = [];
      for (let i = 0; i < 2; i++)
        open.push(await connectWithToken(capped.url, (await mintToken(capped.url, access, 'r')).token));
      await expect(connectWithToken(capped.url, (await mintToken(capped.url, access, 'r')).token)).rejects.toThrow(
        'rate_limited',
      );
      for (const client of open) client.close();
    } finally {
      await capped.close();
    }
  });

  it('refuses a WebSocket handshake from a foreign origin with origin_forbidden', async () => {
    const strict = await startTestGateway({ CORS_ORIGINS: 'https://app.example' });
    try {
      const token = (await mintToken(strict.url, await devLogin(strict.url, 'o'), 'r')).token;
      const { io } = await import('socket.io-client');
      const refuse = (origin: string) =>
        new Promise<string>((resolve) => {
          const socket = io(strict.url, {
            auth: { token },
            transports: ['websocket'],
            reconnection: false,
            forceNew: true,
            extraHeaders: { origin },
          });
          socket.on('connect_error', (error) => {
            socket.close();
            resolve(error.message);
          });
          socket.on('session', () => {
            socket.close();
            resolve('connected');
          });
        });
      expect(await refuse('https://evil.example')).toBe('origin_forbidden');
      expect(await refuse('https://app.example')).toBe('connected');
    } finally {
      await strict.close();
    }
  });
});

describe('graceful shutdown on SIGTERM', () => {
  it('reports draining, tells clients to reconnect, refuses new handshakes and exits 0 in budget', async () => {
    const redis = await startRedisServer();
    const gateway = await startGatewayProcess({
      env: { REDIS_URL: redis.url, SHUTDOWN_TIMEOUT_MS: '5000', LOG_LEVEL: 'info' },
    });
    try {
      const client = await joinRoom(gateway.url, 'leaver', 'closing');
      const spare = await mintToken(gateway.url, await devLogin(gateway.url, 'late'), 'closing');
      const statuses = new Set<number>();
      let polling = true;
      const poller = (async () => {
        while (polling) {
          try {
            statuses.add((await fetch(`${gateway.url}/readyz`)).status);
          } catch {
            return;
          }
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      })();
      const notice = nextEvent(client.socket, 'server:shutdown');
      const started = Date.now();
      const exited = gateway.stop('SIGTERM');
      const shutdown = await notice;
      expect(shutdown.reconnectAfterMs).toBeGreaterThan(0);
      expect(shutdown.reconnectAfterMs).toBeLessThanOrEqual(2_000);
      // The replica is still up while it drains, but admits nobody new.
      const late = await connectWithToken(gateway.url, spare.token).then(
        (c) => {
          c.close();
          return 'connected';
        },
        (error: unknown) => (error as Error).message,
      );
      expect(late).toBe('server_draining');
      expect(await exited).toBe(0);
      expect(Date.now() - started).toBeLessThan(5_000);
      polling = false;
      await poller;
      expect(statuses).toContain(503);
      expect(gateway.output()).toMatch(/"msg":"draining"/);
      expect(gateway.output()).toMatch(/"msg":"gateway closed"/);
    } finally {
      await gateway.stop('SIGKILL');
      await redis.stop();
    }
  });
});
