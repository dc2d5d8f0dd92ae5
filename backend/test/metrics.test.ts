import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectWithToken, devLogin, joinRoom, mintToken, scrapeMetric } from '../../support/client.js';
import { startTestGateway, type TestGateway } from '../../support/gateway.js';
import { waitFor } from '../../support/ports.js';
import { startRedisServer, type RedisServerHandle } from '../../support/redis-server.js';

describe('/metrics', () => {
  let redis: RedisServerHandle;
  let gw: TestGateway;
  beforeAll(async () => {
    redis = await startRedisServer();
    gw = await startTestGateway({ REDIS_URL: redis.url });
    await waitFor('redis up', async () => (await scrapeMetric(gw.url, 'switchboard_redis_up')) === 1 || undefined);
  });
  afterAll(async () => {
    await gw.close();
    await redis.stop();
  });

  const metric = (name: string, labels?: Record<string, string>) => scrapeMetric(gw.url, name, labels);

  it('counts mints, redemptions, handshakes by outcome and connected sockets', async () => {
    const before = {
      minted: await metric('switchboard_tokens_minted_total', { store: 'redis' }),
      redeemed: await metric('switchboard_tokens_redeemed_total', { store: 'redis' }),
      ok: await metric('switchboard_handshakes_total', { outcome: 'ok' }),
      used: await metric('switchboard_handshakes_total', { outcome: 'token_used' }),
      missing: await metric('switchboard_handshakes_total', { outcome: 'token_missing' }),
    };
    const minted = await mintToken(gw.url, await devLogin(gw.url, 'metered'), 'metrics');
    const client = await connectWithToken(gw.url, minted.token);
    await expect(connectWithToken(gw.url, minted.token)).rejects.toThrow('token_used');
    await expect(connectWithToken(gw.url, '')).rejects.toThrow('token_missing');

    expect(await metric('switchboard_tokens_minted_total', { store: 'redis' })).toBe(before.minted + 1);
    expect(await metric('switchboard_tokens_redeemed_total', { store: 'redis' })).toBe(before.redeemed + 1);
    expect(await metric('switchboard_handshakes_total', { outcome: 'ok' })).toBe(before.ok + 1);
    expect(await metric('switchboard_handshakes_total', { outcome: 'token_used' })).toBe(before.used + 1);
    expect(await metric('switchboard_handshakes_total', { outcome: 'token_missing' })).toBe(before.missing + 1);
    expect(await metric('switchboard_connected_sockets')).toBe(1);
    expect(await metric('switchboard_handshake_duration_seconds_count')).toBeGreaterThanOrEqual(3);
    expect(await metric('switchboard_mint_duration_seconds_count')).toBeGreaterThanOrEqual(1);
    client.close();
    await waitFor('socket gone', async () => (await metric('switchboard_connected_sockets')) === 0 || undefined);
  });

  it('counts events in, room events out, deliveries and frames', async () => {
    const a = await joinRoom(gw.url, 'm-a', 'metrics-room');
    const b = await joinRoom(gw.url, 'm-b', 'metrics-room');
    const deliveriesBefore = await metric('switchboard_deliveries_total');
    await a.socket.emitWithAck('publish', { type: 't', data: 1 });
    await a.socket.emitWithAck('publish', 'bad' as never);
    await waitFor('delivered', () => (b.events.length === 1 ? true : undefined));
    expect(await metric('switchboard_events_in_total', { event: 'publish', result: 'ok' })).toBe(1);
    expect(await metric('switchboard_events_in_total', { event: 'publish', result: 'invalid_payload' })).toBe(1);
    expect(await metric('switchboard_deliveries_total')).toBe(deliveriesBefore + 2);
    expect(await metric('switchboard_rooms')).toBeGreaterThanOrEqual(1);
    expect(await metric('nodejs_eventloop_lag_seconds')).toBeGreaterThanOrEqual(0);
    a.close();
    b.close();
  });

  it('reports Redis going down, the fallback map and events published locally', async () => {
    const member = await joinRoom(gw.url, 'outage-member', 'outage');
    await redis.kill();
    await waitFor('redis down', async () => (await metric('switchboard_redis_up')) === 0 || undefined);
    await mintToken(gw.url, await devLogin(gw.url, 'during-outage'), 'outage');
    expect(await metric('switchboard_tokens_minted_total', { store: 'memory' })).toBeGreaterThanOrEqual(1);
    expect(await metric('switchboard_token_fallback_entries')).toBeGreaterThanOrEqual(1);
    const ack = (await member.socket.emitWithAck('publish', { type: 'during', data: null })) as { local?: true };
    expect(ack.local).toBe(true);
    expect(await metric('switchboard_local_publishes_total')).toBe(1);
    expect(await metric('switchboard_room_epoch_moves_total', { reason: 'none' })).toBe(1);
    const text = await (await fetch(`${gw.url}/metrics`)).text();
    // Bounded cardinality: no room or user ever becomes a label.
    expect(text).not.toMatch(/outage-member|during-outage|room="/);
    member.close();
    await redis.start();
  });
});
