import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BenchConfig } from '../lib/config.js';
import { CpuMeter, type ServerProcess } from '../lib/processes.js';
import { connectMany, mintMany, startSystem, startSystemRedis, type System } from '../lib/systems.js';
import { atRate } from '../loadgen/room-load.js';
import { SocketClient } from '../loadgen/socket-client.js';
import { round, Samples } from '../loadgen/stats.js';
import { WebhookReceiver } from '../loadgen/webhook-receiver.js';

export interface WebhookRunFigures {
  joins: number;
  /** Handshakes per second actually reached. */
  joinsPerSecond: number;
  /**
   * CPU time of the replicas per handshake: from the first handshake until the last
   * `session` (webhooks off) or until the receiver had every event of the joins (on).
   */
  cpuMicrosPerHandshake: number;
  redisMicrosPerHandshake: number;
  handshakeP50Ms: number;
  handshakeP99Ms: number;
  failures: number;
  firstError?: string;
}

export interface WebhookDelivery {
  /** Distinct events of the joins the receiver got (`member.joined` per join, `room.occupied` per room). */
  received: number;
  expected: number;
  /** Deliveries of an event the receiver already had. */
  repeats: number;
  /** Distinct events received, by type (`member.left` by reason). */
  byType: Record<string, number>;
  /** From the event's `ts` to its arrival at the receiver. */
  lagP50Ms: number;
  lagP99Ms: number;
  lagMaxMs: number;
}

export interface WebhooksResult {
  replicas: number;
  roomSize: number;
  receiverDelayMs: number;
  off: WebhookRunFigures;
  on: WebhookRunFigures;
  /** What the receiver had once the joins' events were in (before the replicas stopped). */
  delivery: WebhookDelivery;
}

const WEBHOOK_SECRET = 'bench-webhook-secret-0123456789abcdef0123456789';

/**
 * `replicas` Switchboard replicas (three in the full run, two in --quick), first with
 * webhooks off, then on (fresh replicas each time), handshakes paced at `joinsPerSecond`
 * into rooms of `roomSize` round-robin over the replicas. With webhooks on every join makes
 * `member.joined` (and each room's first, `room.occupied`), POSTed to a receiver in the
 * bench that answers after `receiverDelayMs`.
 */
export async function runWebhooks(config: BenchConfig, progress: (line: string) => void): Promise<WebhooksResult> {
  const { roomSize, receiverDelayMs } = config.webhooks;
  const receiver = await WebhookReceiver.start(receiverDelayMs);
  try {
    const { figures: off } = await measure(config, undefined);
    progress(`  webhooks off: ${off.cpuMicrosPerHandshake} µs CPU/handshake at ${off.joinsPerSecond} joins/s`);
    const { figures: on, delivery } = await measure(config, receiver);
    if (!delivery) throw new Error('webhooks on: no delivery figures');
    progress(
      `  webhooks on: ${on.cpuMicrosPerHandshake} µs CPU/handshake at ${on.joinsPerSecond} joins/s; ` +
        `${delivery.received} of ${delivery.expected} events (${JSON.stringify(delivery.byType)}), lag p50 ${delivery.lagP50Ms} / p99 ${delivery.lagP99Ms} ms`,
    );
    return { replicas: config.webhooks.replicas, roomSize, receiverDelayMs, off, on, delivery };
  } finally {
    await receiver.close();
  }
}

/**
 * One run, on a Redis of its own (presence left by earlier scenarios would be swept into
 * `member.left` webhooks); with a receiver, webhooks are on and the receiver holds what arrived.
 */
async function measure(
  config: BenchConfig,
  receiver: WebhookReceiver | undefined,
): Promise<{ figures: WebhookRunFigures; delivery?: WebhookDelivery }> {
  const { joinsPerSecond, durationMs, roomSize, warmupJoins, replicas: replicaCount } = config.webhooks;
  const env: Record<string, string> = receiver ? { WEBHOOK_URLS: receiver.url, WEBHOOK_SECRET } : {};
  const redis = await startSystemRedis('switchboard');
  const clients: SocketClient[] = [];
  const tag = `hooks-${receiver ? 'on' : 'off'}`;
  let system: System | undefined;
  try {
    system = await startSystem('switchboard', redis, replicaCount, { env });
    const { replicas } = system;
    // Warm every replica's handshake (and webhook) path; these members stay, so no leave lands in the window.
    const warmTokens = await mintMany(
      system,
      system.replicas[0] as ServerProcess,
      Array.from({ length: warmupJoins }, (_, i) => ({ user: `${tag}-warm-${i}`, room: `${tag}-warm-${i}` })),
    );
    const warm = await connectMany(
      system,
      warmTokens.map((_, i) => replicas[i % replicaCount] as ServerProcess),
      warmTokens,
      16,
    );
    clients.push(...warm.clients);
    if (receiver) await waitForDeliveries(receiver, () => false, 2_000);

    const joins = Math.round((joinsPerSecond * durationMs) / 1000);
    const tokens = await mintMany(
      system,
      system.replicas[0] as ServerProcess,
      Array.from({ length: joins }, (_, i) => ({ user: `${tag}-${i}`, room: `${tag}-${Math.floor(i / roomSize)}` })),
    );
    const rooms = Math.ceil(joins / roomSize);
    receiver?.reset();
    const meter = new CpuMeter([...system.replicas.map((replica) => replica.pid), system.redisPid]);
    const paced = await pacedJoins(system, tokens, joinsPerSecond);
    clients.push(...paced.clients);
    if (receiver) await waitForDeliveries(receiver, () => receiver.received >= joins + rooms, 30_000);
    const cpu = meter.read();
    const redisMicros = cpu.pop() ?? 0;
    const serverMicros = cpu.reduce((sum, value) => sum + value, 0);
    const joined = joins - paced.failures;
    const handshakes = paced.latencies.summary();
    const figures: WebhookRunFigures = {
      joins: joined,
      joinsPerSecond: round((joined * 1000) / paced.elapsedMs, 0),
      cpuMicrosPerHandshake: round(serverMicros / Math.max(1, joined), 1),
      redisMicrosPerHandshake: round(redisMicros / Math.max(1, joined), 1),
      handshakeP50Ms: round(handshakes.p50, 2),
      handshakeP99Ms: round(handshakes.p99, 2),
      failures: paced.failures,
      ...(paced.firstError ? { firstError: paced.firstError } : {}),
    };
    if (!receiver) return { figures };
    const lag = receiver.lags.summary();
    const delivery: WebhookDelivery = {
      received: receiver.received,
      expected: joins - paced.failures + rooms,
      repeats: receiver.repeats,
      byType: Object.fromEntries(receiver.byType),
      lagP50Ms: round(lag.p50, 1),
      lagP99Ms: round(lag.p99, 1),
      lagMaxMs: round(lag.max, 1),
    };
    return { figures, delivery };
  } finally {
    for (const client of clients) client.close();
    await system?.stop();
    await redis.stop();
  }
}

/** Starts one handshake every 1/rate s (open loop), round-robin over the replicas; waits for every `session`. */
async function pacedJoins(
  system: System,
  tokens: string[],
  rate: number,
): Promise<{
  clients: SocketClient[];
  latencies: Samples;
  failures: number;
  firstError: string | undefined;
  elapsedMs: number;
}> {
  const clients: SocketClient[] = [];
  const latencies = new Samples();
  const waits: Array<Promise<void>> = [];
  let failures = 0;
  let firstError: string | undefined;
  const started = performance.now();
  await atRate(rate, (tokens.length * 1000) / rate, () => {
    const i = clients.length;
    const target = system.replicas[i % system.replicas.length] as ServerProcess;
    const begun = performance.now();
    const client = new SocketClient({
      host: target.host,
      port: target.port,
      auth: { token: tokens[i] },
      readyEvent: 'session',
    });
    clients.push(client);
    waits.push(
      client.ready.then(
        () => {
          latencies.push(performance.now() - begun);
        },
        (error: unknown) => {
          failures++;
          firstError ??= error instanceof Error ? error.message : String(error);
        },
      ),
    );
  });
  await Promise.all(waits);
  return { clients, latencies, failures, firstError, elapsedMs: performance.now() - started };
}

/** Waits until `done`, or until the receiver got nothing for 1 s, at most `capMs`. */
async function waitForDeliveries(receiver: WebhookReceiver, done: () => boolean, capMs: number): Promise<void> {
  const giveUpAt = performance.now() + capMs;
  const quiet = () => performance.now() - receiver.lastArrivalAt > 1_000;
  while (!done() && performance.now() < giveUpAt) {
    await sleep(50);
    if (!done() && quiet() && performance.now() - (giveUpAt - capMs) > 1_000) return;
  }
}
