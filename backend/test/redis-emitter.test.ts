import { Emitter } from '@socket.io/redis-emitter';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { socketIoRoom, type RoomEvent } from '@switchboard/contract';
import { joinRoom } from '../../support/client.js';
import { startGatewayProcess, type GatewayProcess } from '../../support/gateway-process.js';
import { waitFor } from '../../support/ports.js';
import { startRedisServer, type RedisServerHandle } from '../../support/redis-server.js';

// Backends that already hold a Redis connection can publish without going through HTTP.
describe('@socket.io/redis-emitter', () => {
  let redis: RedisServerHandle;
  let gateway: GatewayProcess;
  beforeAll(async () => {
    redis = await startRedisServer();
    gateway = await startGatewayProcess({ env: { REDIS_URL: redis.url, REDIS_KEY_PREFIX: 'app1' } });
  });
  afterAll(async () => {
    await gateway.stop('SIGKILL');
    await redis.stop();
  });

  it('publishes room:event into a room of the classic adapter (key "<prefix>:socket.io")', async () => {
    const member = await joinRoom(gateway.url, 'listener', 'emitted');
    const outsider = await joinRoom(gateway.url, 'outsider', 'elsewhere');
    const client = createClient({ url: redis.url });
    client.on('error', () => undefined);
    await client.connect();
    try {
      const emitter = new Emitter(client, { key: 'app1:socket.io' });
      // Events emitted around the gateway have no seq: they skip the room's history.
      const event: Omit<RoomEvent, 'seq'> = {
        id: 'ext-1',
        type: 'billing',
        data: { paid: true },
        from: 'service:billing',
        ts: Date.now(),
      };
      await waitFor('event through the emitter', () => {
        emitter.to(socketIoRoom('emitted')).emit('room:event', event);
        return member.events.some((e) => e.id === 'ext-1') || undefined;
      });
      expect(member.events.find((e) => e.id === 'ext-1')).toEqual(event);
      expect(outsider.events).toEqual([]);
    } finally {
      member.close();
      outsider.close();
      await client.close();
    }
  });
});
