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
  /** Runs of each, summed. */
  rounds: number;
  off: WebhookRunFigures;
  on: WebhookRunFigures;
  /** What the receiver had once the joins' events were in (before the replicas stopped), over every round on. */
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
  const { roomSize, receiverDelayMs, rounds } = config.webhooks;
  const receiver = await WebhookReceiver.start(receiverDelayMs);
  try {
    // Off and on alternate (off, on, on, off, …) and their rounds are summed: at a paced
    // 200 joins/s most of a replica's CPU is its steady background, which drifts with the
    // machine's load, and one pair of runs was seen to differ by a third on its own.
    const runs: Record<'off' | 'on', Run[]> = { off: [], on: [] };
    const deliveries: RunDelivery[] = [];
    for (let round = 0; round < 2 * rounds; round++) {
      const on = round % 4 === 1 || round % 4 === 2;
      const run = await measure(config, on ? receiver : undefined);
      runs[on ? 'on' : 'off'].push(run);
      if (run.delivery) deliveries.push(run.delivery);
      const figures = figuresOf([run]);
      progress(
        `  webhooks ${on ? 'on' : 'off'}: ${figures.cpuMicrosPerHandshake} µs CPU/handshake at ${figures.joinsPerSecond} joins/s` +
          (run.delivery ? `; ${run.delivery.received} of ${run.delivery.expected} events` : ''),
      );
    }
    const delivery = mergeDeliveries(deliveries);
    const off = figuresOf(runs.off);
    const on = figuresOf(runs.on);
    progress(
      `  webhooks, ${rounds} round(s) each: off ${off.cpuMicrosPerHandshake}, on ${on.cpuMicrosPerHandshake} µs CPU/handshake; ` +
        `${delivery.received} of ${delivery.expected} events (${JSON.stringify(delivery.byType)}), lag p50 ${delivery.lagP50Ms} / p99 ${delivery.lagP99Ms} ms`,
    );
    return { replicas: config.webhooks.replicas, roomSize, receiverDelayMs, rounds, off, on, delivery };
  } finally {
    await receiver.close();
  }
}

/** What one run measured, before it is summed with the other rounds. */
interface Run {
  joins: number;
  serverMicros: number;
  redisMicros: number;
  elapsedMs: number;
  latencies: Samples;
  failures: number;
  firstError: string | undefined;
  delivery?: Omit<WebhookDelivery, 'lagP50Ms' | 'lagP99Ms' | 'lagMaxMs'> & { lags: Samples };
}

function figuresOf(runs: Run[]): WebhookRunFigures {
  const sum = (pick: (run: Run) => number) => runs.reduce((total, run) => total + pick(run), 0);
  const joined = sum((run) => run.joins);
  const handshakes = Samples.merge(...runs.map((run) => run.latencies)).summary();
  const firstError = runs.find((run) => run.firstError)?.firstError;
  return {
    joins: joined,
    joinsPerSecond: round(
      (joined * 1000) /
        Math.max(
          1,
          sum((run) => run.elapsedMs),
        ),
      0,
    ),
    cpuMicrosPerHandshake: round(sum((run) => run.serverMicros) / Math.max(1, joined), 1),
    redisMicrosPerHandshake: round(sum((run) => run.redisMicros) / Math.max(1, joined), 1),
    handshakeP50Ms: round(handshakes.p50, 2),
    handshakeP99Ms: round(handshakes.p99, 2),
    failures: sum((run) => run.failures),
    ...(firstError ? { firstError } : {}),
  };
}

type RunDelivery = NonNullable<Run['delivery']>;

function mergeDeliveries(deliveries: RunDelivery[]): WebhookDelivery {
  if (deliveries.length === 0) throw new Error('webhooks on: no delivery figures');
  const byType: Record<string, number> = {};
  for (const delivery of deliveries)
    for (const [type, count] of Object.entries(delivery.byType)) byType[type] = (byType[type] ?? 0) + count;
  const sum = (pick: (delivery: RunDelivery) => number) => deliveries.reduce((total, d) => total + pick(d), 0);
  const lags = Samples.merge(...deliveries.map((delivery) => delivery.lags)).summary();
  return {
    received: sum((d) => d.received),
    expected: sum((d) => d.expected),
    repeats: sum((d) => d.repeats),
    byType,
    lagP50Ms: round(lags.p50, 1),
    lagP99Ms: round(lags.p99, 1),
    lagMaxMs: round(lags.max, 1),
  };
}

/**
 * One run, on a Redis of its own (presence left by earlier scenarios would be swept into
 * `member.left` webhooks); with a receiver, webhooks are on and the receiver holds what arrived.
 */
async function measure(config: BenchConfig, receiver: WebhookReceiver | undefined): Promise<Run> {
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
    const run: Run = {
      joins: joins - paced.failures,
      serverMicros: cpu.reduce((sum, value) => sum + value, 0),
      redisMicros,
      elapsedMs: paced.elapsedMs,
      latencies: paced.latencies,
      failures: paced.failures,
      firstError: paced.firstError,
    };
    if (!receiver) return run;
    return {
      ...run,
      delivery: {
        received: receiver.received,
        expected: joins - paced.failures + rooms,
        repeats: receiver.repeats,
        byType: Object.fromEntries(receiver.byType),
        // Copied: the receiver's samples are cleared for the next round.
        lags: Samples.merge(receiver.lags),
      },
    };
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
