import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { joinRoom, scrapeMetric, type ConnectedClient } from '../../support/client.js';
import { startGatewayProcess, type GatewayProcess } from '../../support/gateway-process.js';
import { waitFor } from '../../support/ports.js';
import { startRedisServer, type RedisServerHandle } from '../../support/redis-server.js';

/** Bytes the process has read through read(2) and friends so far: sockets included. */
async function bytesRead(pid: number): Promise<number> {
  const io = await readFile(`/proc/${pid}/io`, 'utf8');
  return Number(/^rchar: (\d+)$/m.exec(io)?.[1] ?? Number.NaN);
}

const PUBLISHERS = 20;
/** 20 publishers × 50 events/s (the per-socket rate limit) = 1000 events/s into one room. */
const PER_SECOND = 50;
const SECONDS = 3;
const PAYLOAD = 'x'.repeat(200);

describe.each(['redis', 'redis-sharded'] as const)('room-scoped traffic (SOCKETIO_ADAPTER=%s)', (adapter) => {
  let redis: RedisServerHandle;
  let replicas: GatewayProcess[];
  const clients: ConnectedClient[] = [];

  beforeAll(async () => {
    redis = await startRedisServer();
    const env = { REDIS_URL: redis.url, SOCKETIO_ADAPTER: adapter, SOCKET_EVENTS_PER_SECOND: String(PER_SECOND) };
    replicas = await Promise.all(
      ['busy-1', 'busy-2', 'elsewhere'].map((replica) => startGatewayProcess({ env, replica })),
    );
  });
  afterAll(async () => {
    for (const client of clients) client.close();
    // Also when a replica did not start: the Redis server must not outlive the test.
    await Promise.all((replicas ?? []).map((replica) => replica.stop('SIGKILL')));
    await redis?.stop();
  });

  it('reads almost nothing of a busy room on a replica with no member there', async () => {
    const [busy1, busy2, elsewhere] = replicas as [GatewayProcess, GatewayProcess, GatewayProcess];
    const publishers: ConnectedClient[] = [];
    for (let i = 0; i < PUBLISHERS; i++) publishers.push(await joinRoom((i % 2 ? busy2 : busy1).url, `p${i}`, 'busy'));
    const quiet = await joinRoom(elsewhere.url, 'q', 'quiet');
    clients.push(...publishers, quiet);
    await new Promise((resolve) => setTimeout(resolve, 500));

    const channelBytes = (replica: GatewayProcess) => scrapeMetric(replica.url, 'switchboard_room_channel_bytes_total');
    const before = {
      read: await bytesRead(elsewhere.pid),
      idle: await channelBytes(elsewhere),
      busy: await channelBytes(busy1),
    };
    let sent = 0;
    const started = Date.now();
    await Promise.all(
      publishers.map(async (publisher) => {
        for (let second = 0; second < SECONDS; second++) {
          const tick = Date.now();
          await Promise.all(
            Array.from({ length: PER_SECOND }, () =>
              publisher.socket.emitWithAck('publish', { type: 'load', data: PAYLOAD }).then(() => sent++),
            ),
          );
          await new Promise((resolve) => setTimeout(resolve, Math.max(0, 1_000 - (Date.now() - tick))));
        }
      }),
    );
    const elapsed = (Date.now() - started) / 1000;
    await waitFor(
      'the busy replica got the last events',
      async () => (await channelBytes(busy1)) - before.busy >= sent * PAYLOAD.length || undefined,
    );
    const payloadVolume = sent * PAYLOAD.length;
    const after = { read: await bytesRead(elsewhere.pid), idle: await channelBytes(elsewhere) };
    const readByIdle = after.read - before.read;
    // Context for the figures: the run reached about 1000 events/s into the room.
    expect(sent / elapsed).toBeGreaterThan(500);
    expect(after.idle - before.idle).toBe(0);
    expect(readByIdle / payloadVolume).toBeLessThan(0.05);
    console.log(
      `${adapter}: ${sent} events (${Math.round(sent / elapsed)}/s), ${payloadVolume} payload bytes; ` +
        `the replica without members read ${readByIdle} bytes in all (${((100 * readByIdle) / payloadVolume).toFixed(2)} %)`,
    );
  }, 60_000);
});
