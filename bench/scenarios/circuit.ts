import { performance } from 'node:perf_hooks';
import { accessToken } from '../../support/client.js';
import { waitFor } from '../../support/ports.js';
import { startFreezableProxy } from '../../support/tcp-proxy.js';
import type { BenchConfig } from '../lib/config.js';
import { startSwitchboard } from '../lib/processes.js';
import type { SystemRedis } from '../lib/systems.js';
import { HttpConnection, JSON_HEADERS } from '../loadgen/http-client.js';
import { round, Samples } from '../loadgen/stats.js';

export interface CircuitResult {
  unresponsiveAfterMs: number;
  /** From the link going silent to `/readyz` saying `unresponsive`. */
  detectedMs: number;
  /** HTTP publish, request to 202, one at a time: Redis answering, then the circuit open. */
  connectedP50Ms: number;
  connectedP99Ms: number;
  openP50Ms: number;
  openP99Ms: number;
  samples: number;
  /** `GET /healthz` on the same connection meanwhile: the floor this machine sets (scheduling, GC). */
  healthP50Ms: number;
  healthP99Ms: number;
  /** Publishes answered with a shared seq while the circuit was open (must be 0). */
  openShared: number;
}

/**
 * One Switchboard replica reaching Redis through a proxy that can go silent (nothing
 * forwarded, nothing reset): how fast a publish is answered once the circuit is open,
 * next to the same publish while Redis answers.
 */
export async function runCircuit(redis: SystemRedis, config: BenchConfig): Promise<CircuitResult> {
  const { publishes, unresponsiveAfterMs } = config.circuit;
  const proxy = await startFreezableProxy({ port: Number(new URL(redis.url).port) });
  const gateway = await startSwitchboard({
    redisUrl: `redis://127.0.0.1:${proxy.port}`,
    keyPrefix: 'bench-circuit',
    name: 'circuit',
    inspect: false,
    env: { REDIS_UNRESPONSIVE_AFTER_MS: String(unresponsiveAfterMs) },
  });
  const base = `http://${gateway.host}:${gateway.port}`;
  // The lean keep-alive client: node's fetch would add more than the gateway takes.
  const connection = new HttpConnection(gateway.host, gateway.port);
  const headers = `${JSON_HEADERS}Authorization: Bearer ${accessToken({ sub: 'bench-backend', scope: 'publish' })}\r\n`;
  const body = JSON.stringify({ type: 'tick', data: { n: 1 } });
  const redisStatus = async () => ((await (await fetch(`${base}/readyz`)).json()) as { redis: string }).redis;
  const health = new Samples();
  const measure = async (count: number): Promise<{ samples: Samples; shared: number }> => {
    const samples = new Samples();
    let shared = 0;
    for (let i = 0; i < count; i++) {
      const asked = performance.now();
      await connection.request('GET', '/healthz', '');
      health.push(performance.now() - asked);
      const started = performance.now();
      const response = await connection.request('POST', '/api/rooms/circuit/events', headers, body);
      samples.push(performance.now() - started);
      if (response.status !== 202) throw new Error(`publish answered ${response.status}`);
      if (!(JSON.parse(response.body.toString()) as { local?: boolean }).local) shared++;
    }
    return { samples, shared };
  };
  try {
    await waitFor('the gateway connected', async () => (await redisStatus()) === 'connected' || undefined);
    await measure(Math.min(100, publishes));
    const connected = (await measure(publishes)).samples.summary();
    const silentAt = performance.now();
    proxy.freeze();
    await waitFor('the circuit open', async () => (await redisStatus()) === 'unresponsive' || undefined, {
      timeoutMs: unresponsiveAfterMs + 5_000,
      intervalMs: 10,
    });
    const detectedMs = performance.now() - silentAt;
    const open = await measure(publishes);
    const openFigures = open.samples.summary();
    const floor = health.summary();
    proxy.thaw();
    await waitFor('the circuit closed', async () => (await redisStatus()) === 'connected' || undefined);
    return {
      unresponsiveAfterMs,
      detectedMs: round(detectedMs, 0),
      connectedP50Ms: round(connected.p50, 2),
      connectedP99Ms: round(connected.p99, 2),
      openP50Ms: round(openFigures.p50, 2),
      openP99Ms: round(openFigures.p99, 2),
      samples: openFigures.samples,
      healthP50Ms: round(floor.p50, 2),
      healthP99Ms: round(floor.p99, 2),
      openShared: open.shared,
    };
  } finally {
    connection.close();
    proxy.thaw();
    await gateway.stop();
    await proxy.close();
  }
}
