import { Emitter } from '@socket.io/redis-emitter';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { socketIoEmitterKey, socketIoRoom, type RoomEvent } from '@switchboard/contract';
import { joinRoom } from '../../support/client.js';
import { startGatewayProcess, type GatewayProcess } from '../../support/gateway-process.js';
import { waitFor } from '../../support/ports.js';
import { startRedisServer, type RedisServerHandle } from '../../support/redis-server.js';

// Backends that already hold a Redis connection can publish without going through HTTP.
// Each case follows the README's recipe literally, for one REDIS_KEY_PREFIX.
describe('@socket.io/redis-emitter, as the README shows it', () => {
  let redis: RedisServerHandle;
  const gateways = new Map<string, GatewayProcess>();
  beforeAll(async () => {
    redis = await startRedisServer();
    for (const prefix of ['', 'app1']) {
      gateways.set(prefix, await startGatewayProcess({ env: { REDIS_URL: redis.url, REDIS_KEY_PREFIX: prefix } }));
    }
  });
  afterAll(async () => {
    await Promise.all([...gateways.values()].map((gateway) => gateway.stop('SIGKILL')));
    await redis.stop();
  });

  it.each([
    ['the default empty REDIS_KEY_PREFIX (key "socket.io")', '', 'socket.io'],
    ['REDIS_KEY_PREFIX=app1 (key "app1:socket.io")', 'app1', 'app1:socket.io'],
  ])('publishes room:event into a room with %s', async (_name, prefix, key) => {
    const gateway = gateways.get(prefix);
    if (!gateway) throw new Error('gateway did not start');
    expect(socketIoEmitterKey(prefix)).toBe(key);
    const room = `emitted-${prefix || 'default'}`;
    const member = await joinRoom(gateway.url, 'listener', room);
    const outsider = await joinRoom(gateway.url, 'outsider', 'elsewhere');
    const client = createClient({ url: redis.url });
    client.on('error', () => undefined);
    await client.connect();
    try {
      // The README's line, with REDIS_KEY_PREFIX as the gateway has it.
      const emitter = new Emitter(client, { key: socketIoEmitterKey(prefix) });
      // Events emitted around the gateway have no seq: they skip the room's history.
      const event: Omit<RoomEvent, 'seq'> = {
        id: `ext-${room}`,
        type: 'billing',
        data: { paid: true },
        from: 'service:billing',
        ts: Date.now(),
      };
      await waitFor('event through the emitter', () => {
        emitter.to(socketIoRoom(room)).emit('room:event', event);
        return member.events.some((e) => e.id === event.id) || undefined;
      });
      expect(member.events.find((e) => e.id === event.id)).toEqual(event);
      expect(outsider.events).toEqual([]);
    } finally {
      member.close();
      outsider.close();
      await client.close();
    }
  });
});
