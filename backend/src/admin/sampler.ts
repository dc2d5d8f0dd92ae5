import { monitorEventLoopDelay } from 'node:perf_hooks';
import { ADMIN_LIMITS, type AdminReplica, type AdminReplicaStatus } from '@switchboard/contract';
import type { Metrics } from '../observability/metrics.js';
import type { LocalRoom } from '../realtime/rooms-api.js';

export type { LocalRoom } from '../realtime/rooms-api.js';

/** What one replica tells the others about itself: its row of the dashboard, and the raw material of the rest. */
export interface ReplicaReport extends AdminReplica {
  /** The busiest local rooms, with events per second over the last 10 s. */
  busiest: Array<{ room: string; members: number; eventRate: number }>;
  /** Per-second counts, oldest first, ending at `seenAt`'s second. */
  series: {
    start: number;
    publishes: number[];
    deliveries: number[];
    recoveries: number[];
    refusals: Record<string, number[]>;
    slowConsumerDisconnects: number[];
  };
}

export interface SamplerOptions {
  replica: string;
  metrics: Metrics;
  status: () => AdminReplicaStatus;
  connections: () => number;
  localRooms: () => LocalRoom[];
  /** Test seam; one sample per second otherwise. */
  intervalMs?: number;
}

export interface Sampler {
  report(): ReplicaReport;
  close(): void;
}

const RATE_WINDOW_SECONDS = 10;
/** The delay monitor's timer period, which every value it records includes. */
const LOOP_RESOLUTION_MS = 20;
const lagOf = (nanoseconds: number) => Math.max(0, (nanoseconds || 0) / 1e6 - LOOP_RESOLUTION_MS);

type Totals = {
  publishes: number;
  deliveries: number;
  recoveries: number;
  slow: number;
  refusals: Map<string, number>;
};

/**
 * Once a second, reads the counters this replica already keeps and turns them into
 * per-second series for the last minute, plus CPU, memory and event-loop lag. Cheap by
 * construction: a handful of counter reads and one pass over the local rooms a second.
 */
export function createSampler(options: SamplerOptions): Sampler {
  const { metrics } = options;
  const seconds = ADMIN_LIMITS.seriesSeconds;
  const loop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  loop.enable();
  let lag = { mean: 0, p99: 0 };
  let cpuPercent = 0;
  let lastCpu = process.cpuUsage();
  let lastAt = performance.now();
  let previous: Totals | undefined;
  let start = Math.floor(Date.now() / 1000) * 1000;
  const series = {
    publishes: [] as number[],
    deliveries: [] as number[],
    recoveries: [] as number[],
    slowConsumerDisconnects: [] as number[],
    refusals: new Map<string, number[]>(),
  };
  /** Each room's seq at each of the last RATE_WINDOW_SECONDS samples, oldest first. */
  const seqs: Array<Map<string, number>> = [];
  let rooms: LocalRoom[] = [];
  let sampling: Promise<void> | undefined;

  const sum = async (metric: { get(): Promise<{ values: Array<{ value: number; labels: object }> }> }) => {
    const { values } = await metric.get();
    return values;
  };
  const totals = async (): Promise<Totals> => {
    const refusals = new Map<string, number>();
    const add = (code: string, value: number) => refusals.set(code, (refusals.get(code) ?? 0) + value);
    for (const { value, labels } of await sum(metrics.handshakes)) {
      const outcome = (labels as { outcome?: string }).outcome;
      if (outcome && outcome !== 'ok') add(outcome, value);
    }
    let publishes = 0;
    for (const { value, labels } of await sum(metrics.eventsIn)) {
      const { event, result } = labels as { event?: string; result?: string };
      if (result && result !== 'ok') add(result, value);
      else if (event === 'publish' || event === 'http_publish') publishes += value;
    }
    let recoveries = 0;
    for (const { value, labels } of await sum(metrics.recoveries))
      if ((labels as { outcome?: string }).outcome === 'recovered') recoveries += value;
    const deliveries = (await sum(metrics.deliveries)).reduce((total, { value }) => total + value, 0);
    const slow = (await sum(metrics.slowConsumers)).reduce((total, { value }) => total + value, 0);
    return { publishes, deliveries, recoveries, slow, refusals };
  };

  const push = (list: number[], value: number) => {
    list.push(value);
    if (list.length > seconds) list.shift();
  };

  const sample = async (): Promise<void> => {
    const now = performance.now();
    const cpu = process.cpuUsage(lastCpu);
    cpuPercent = ((cpu.user + cpu.system) / 1000 / Math.max(1, now - lastAt)) * 100;
    lastCpu = process.cpuUsage();
    lastAt = now;
    lag = { mean: lagOf(loop.mean), p99: lagOf(loop.percentile(99)) };
    loop.reset();

    const current = await totals();
    if (previous) {
      push(series.publishes, current.publishes - previous.publishes);
      push(series.deliveries, current.deliveries - previous.deliveries);
      push(series.recoveries, current.recoveries - previous.recoveries);
      push(series.slowConsumerDisconnects, current.slow - previous.slow);
      const codes = new Set([...current.refusals.keys(), ...series.refusals.keys()]);
      for (const code of codes) {
        const list = series.refusals.get(code) ?? new Array<number>(series.publishes.length - 1).fill(0);
        push(list, (current.refusals.get(code) ?? 0) - (previous.refusals.get(code) ?? 0));
        // A code quiet for the whole window is dropped, so the set of codes stays small.
        if (list.every((value) => value === 0)) series.refusals.delete(code);
        else series.refusals.set(code, list);
      }
      start = Math.floor(Date.now() / 1000) * 1000 - (series.publishes.length - 1) * 1000;
    }
    previous = current;

    rooms = options.localRooms();
    seqs.push(new Map(rooms.map(({ room, seq }) => [room, seq])));
    if (seqs.length > RATE_WINDOW_SECONDS + 1) seqs.shift();
  };

  const timer = setInterval(() => {
    sampling ??= sample()
      .catch(() => undefined)
      .finally(() => (sampling = undefined));
  }, options.intervalMs ?? 1000);
  timer.unref();

  const rateOf = (room: string, seq: number): number => {
    const oldest = seqs.find((sampled) => sampled.has(room));
    const then = oldest?.get(room);
    const span = oldest ? seqs.length - 1 - seqs.indexOf(oldest) : 0;
    return then === undefined || span === 0 ? 0 : Math.max(0, seq - then) / span;
  };

  return {
    report() {
      const busiest = rooms
        .map(({ room, members, seq }) => ({ room, members, eventRate: rateOf(room, seq) }))
        .sort((a, b) => b.members - a.members || b.eventRate - a.eventRate)
        .slice(0, ADMIN_LIMITS.rooms);
      const memory = process.memoryUsage();
      return {
        id: options.replica,
        status: options.status(),
        connections: options.connections(),
        rooms: rooms.length,
        loopLagMs: lag,
        cpuPercent,
        rssBytes: memory.rss,
        heapUsedBytes: memory.heapUsed,
        uptimeSeconds: Math.round(process.uptime()),
        seenAt: Date.now(),
        busiest,
        series: {
          start,
          publishes: [...series.publishes],
          deliveries: [...series.deliveries],
          recoveries: [...series.recoveries],
          slowConsumerDisconnects: [...series.slowConsumerDisconnects],
          refusals: Object.fromEntries([...series.refusals].map(([code, list]) => [code, [...list]])),
        },
      };
    },
    close() {
      clearInterval(timer);
      loop.disable();
    },
  };
}
