import { WebSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Ack } from '@switchboard/contract';
import { devLogin, joinRoom, mintToken, scrapeMetric, type ConnectedClient } from '../../support/client.js';
import { startGatewayProcess, type GatewayProcess } from '../../support/gateway-process.js';
import { startRedisServer, type RedisServerHandle } from '../../support/redis-server.js';

// Deterministic, so a failure can be replayed.
function rng(seed: number) {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

function nested(depth: number): unknown {
  let value: unknown = 'bottom';
  for (let i = 0; i < depth; i++) value = i % 2 ? [value] : { k: value };
  return value;
}

/** Payloads no client → server event accepts. */
function hostilePayloads(random: () => number): unknown[] {
  const pick = <T>(items: T[]): T => items[Math.floor(random() * items.length)] as T;
  const huge = 'x'.repeat(60_000);
  const pollution = JSON.parse(
    '{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}',
  ) as object;
  return [
    undefined,
    null,
    42,
    'string',
    true,
    [],
    [1, 2, 3],
    {},
    { to: 42, kind: 'offer', data: {} },
    { to: 'peer', kind: 'shout', data: {} },
    { to: 'peer', kind: 'offer' },
    { to: huge, kind: 'offer', data: {} },
    { type: huge, data: 1 },
    { type: '', data: 1 },
    { type: 'ok', data: nested(2_000) },
    { to: 'peer', kind: 'offer', data: nested(50) },
    { type: 'ok', data: Array.from({ length: 5_000 }, (_, i) => i) },
    { token: 42 },
    { token: '' },
    { token: huge },
    pollution,
    { ...pollution, type: 'ok' },
    { type: 'ok', data: 1, extra: 'field' },
    { type: pick(['a b', '\u0000', '<script>']), data: 1 },
    { to: 'peer', kind: 'offer', data: { n: Number.NaN } },
  ];
}

describe('fuzzing the socket protocol', () => {
  let redis: RedisServerHandle;
  let gateway: GatewayProcess;
  beforeAll(async () => {
    redis = await startRedisServer();
    gateway = await startGatewayProcess({
      env: {
        REDIS_URL: redis.url,
        LOG_LEVEL: 'info',
        SOCKET_EVENTS_PER_SECOND: '100000',
        MINT_RATE_PER_MINUTE: '100000',
      },
    });
  });
  afterAll(async () => {
    await gateway.stop('SIGKILL');
    await redis.stop();
  });

  async function fuzzRound(seed: number): Promise<Map<string, number>> {
    const random = rng(seed);
    const codes = new Map<string, number>();
    const events = ['signal', 'publish', 'session:refresh', 'peers'] as const;
    for (const event of events) {
      // Fresh socket per event: a socket that keeps offending is cut off, by design.
      const client = await joinRoom(gateway.url, `fuzzer-${seed}-${event}`, 'fuzz');
      for (const payload of hostilePayloads(random)) {
        if (
          event === 'peers' &&
          (payload === undefined ||
            payload === null ||
            (typeof payload === 'object' && Object.keys(payload).length === 0))
        ) {
          continue;
        }
        const ack = (await client.socket.timeout(5_000).emitWithAck(event as 'peers', payload as never)) as Ack;
        const code = ack.ok ? 'ok' : ack.error.code;
        codes.set(code, (codes.get(code) ?? 0) + 1);
        if (!ack.ok) expect(ack.error.message.length).toBeGreaterThan(0);
      }
      expect(client.socket.connected).toBe(true);
      client.close();
    }
    return codes;
  }

  it('answers every hostile payload with an error ack, never crashing, and memory stays flat', async () => {
    const first = await fuzzRound(1);
    expect(first.get('ok') ?? 0).toBe(0);
    expect(first.get('invalid_payload')).toBeGreaterThan(80);
    const heapAfterFirst = await scrapeMetric(gateway.url, 'nodejs_heap_size_used_bytes');
    for (let seed = 2; seed <= 6; seed++) await fuzzRound(seed);
    const heapAfterMore = await scrapeMetric(gateway.url, 'nodejs_heap_size_used_bytes');
    // Five more rounds must not leave anything behind (GC noise stays well under this).
    expect(heapAfterMore - heapAfterFirst).toBeLessThan(24 * 1024 * 1024);
    expect((await fetch(`${gateway.url}/healthz`)).status).toBe(200);
  });

  it('cuts off a socket that keeps offending, but not on its first offence', async () => {
    const client = await joinRoom(gateway.url, 'repeat-offender', 'fuzz');
    const first = (await client.socket.emitWithAck('publish', 1 as never)) as Ack;
    expect(first).toMatchObject({ ok: false, error: { code: 'invalid_payload' } });
    expect(client.socket.connected).toBe(true);
    const gone = new Promise<string>((resolve) => client.socket.once('disconnect', resolve));
    for (let i = 0; i < 150 && client.socket.connected; i++) client.socket.emit('publish', 1 as never, () => undefined);
    expect(await gone).toBe('io server disconnect');
  });

  it('survives raw malformed Socket.IO packets over a plain WebSocket', async () => {
    const wsUrl = `${gateway.url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket`;
    const token = (await mintToken(gateway.url, await devLogin(gateway.url, 'raw'), 'fuzz')).token;
    const garbage = [
      '42[',
      '42["signal",',
      '42{"not":"an array"}',
      '4299999999999999999999["peers",{}]',
      '43abc',
      '451-["publish",{"_placeholder":true,"num":99}]',
      '42["publish",{"type":"x","data":' + '['.repeat(5_000) + ']'.repeat(5_000) + '}]',
      '9',
      '',
      '\u0000\u0001\u0002',
      '2probe'.repeat(1_000),
      '40{"token":' + '"'.repeat(100) + '}',
    ];
    for (const packet of garbage) {
      await new Promise<void>((resolve) => {
        const ws = new WebSocket(wsUrl);
        const done = () => {
          ws.terminate();
          resolve();
        };
        const timer = setTimeout(done, 300);
        ws.on('message', (data: Buffer) => {
          const text = data.toString();
          if (text.startsWith('0')) ws.send(`40${JSON.stringify({ token })}`);
          else if (text.startsWith('40')) {
            ws.send(packet);
            ws.send(Buffer.from([0xff, 0x00, 0x13, 0x37]));
          }
        });
        ws.on('close', () => {
          clearTimeout(timer);
          done();
        });
        ws.on('error', () => undefined);
      });
    }
    expect((await fetch(`${gateway.url}/healthz`)).status).toBe(200);
    // A well-behaved client is unaffected.
    const client: ConnectedClient = await joinRoom(gateway.url, 'after-raw', 'fuzz');
    expect(await client.socket.emitWithAck('publish', { type: 'still', data: 'fine' })).toMatchObject({ ok: true });
    client.close();
    expect(gateway.output()).not.toMatch(/unhandled|uncaught/i);
  });
});
