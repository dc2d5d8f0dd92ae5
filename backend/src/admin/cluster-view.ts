import {
  ADMIN_LIMITS,
  type AdminOverview,
  type AdminRedis,
  type AdminRoom,
  type AdminSeries,
} from '@switchboard/contract';
import type { Logger } from '../observability/logger.js';
import { redisStatus, type RedisConnection } from '../redis/connection.js';
import { redisKeys } from '../redis/keys.js';
import type { ReplicaReport, Sampler } from './sampler.js';

export interface ClusterViewOptions {
  sampler: Sampler;
  redis: RedisConnection | undefined;
  keyPrefix: string;
  replica: string;
  logger: Logger;
  /** How often this replica's report is written to Redis. */
  reportMs?: number;
}

export interface ClusterView {
  /** Every replica that reported recently, merged; answered from a one-second cache. */
  overview(): Promise<AdminOverview>;
  close(): Promise<void>;
}

/** A replica silent for this long is left out (it stopped, or lost Redis). */
const STALE_MS = 10_000;
/** The whole hash disappears when no replica writes it any more. */
const REPORTS_TTL_MS = 60_000;
/** How far behind now the series end, so that each of their seconds has every replica's count. */
const SETTLED_MS = 2_000;
/** However many tabs poll, the overview is built at most this often. */
const CACHE_MS = 1_000;

function isReport(value: unknown): value is ReplicaReport {
  return typeof value === 'object' && value !== null && typeof (value as ReplicaReport).id === 'string';
}

/** Adds `list` into `into`, aligned on the second each starts at. */
function addSeries(into: number[], intoStart: number, list: number[], start: number): void {
  const offset = Math.round((start - intoStart) / 1000);
  list.forEach((value, i) => {
    const at = offset + i;
    if (at >= 0 && at < into.length) into[at] = (into[at] ?? 0) + value;
  });
}

export function mergeReports(reports: ReplicaReport[], now: number, replica: string, redis: AdminRedis): AdminOverview {
  const seconds = ADMIN_LIMITS.seriesSeconds;
  // Replicas report every two seconds: the last seconds are not in every report yet.
  const end = Math.floor(now / 1000) * 1000 - SETTLED_MS;
  const start = end - (seconds - 1) * 1000;
  const zeros = () => new Array<number>(seconds).fill(0);
  const series: AdminSeries = {
    t: Array.from({ length: seconds }, (_, i) => start + i * 1000),
    publishes: zeros(),
    deliveries: zeros(),
    recoveries: zeros(),
    refusals: {},
    slowConsumerDisconnects: zeros(),
  };
  const rooms = new Map<string, AdminRoom>();
  for (const report of reports) {
    // A report's last second is the one before it was written.
    const reportStart = report.series.start;
    addSeries(series.publishes, start, report.series.publishes, reportStart);
    addSeries(series.deliveries, start, report.series.deliveries, reportStart);
    addSeries(series.recoveries, start, report.series.recoveries, reportStart);
    addSeries(series.slowConsumerDisconnects, start, report.series.slowConsumerDisconnects, reportStart);
    for (const [code, list] of Object.entries(report.series.refusals))
      addSeries((series.refusals[code] ??= zeros()), start, list, reportStart);
    for (const { room, members, eventRate } of report.busiest) {
      const entry = rooms.get(room) ?? { room, members: 0, replicas: [], eventRate: 0 };
      entry.members += members;
      entry.replicas.push(report.id);
      // Every replica in the room sees every event: the rate is the room's, not a share.
      entry.eventRate = Math.max(entry.eventRate, eventRate);
      rooms.set(room, entry);
    }
  }
  return {
    generatedAt: now,
    replica,
    redis,
    replicas: reports
      .map(({ busiest: _busiest, series: _series, ...rest }) => rest)
      .sort((a, b) => a.id.localeCompare(b.id)),
    rooms: [...rooms.values()]
      .sort((a, b) => b.members - a.members || b.eventRate - a.eventRate || a.room.localeCompare(b.room))
      .slice(0, ADMIN_LIMITS.rooms),
    series,
  };
}

/**
 * Each replica writes its report into one Redis hash every two seconds; whichever
 * replica answers the dashboard reads the hash and merges. In memory mode there is
 * one replica, so its own report is the whole view.
 */
export function createClusterView(options: ClusterViewOptions): ClusterView {
  const { sampler, redis, replica } = options;
  const key = redisKeys(options.keyPrefix).adminReports;
  const log = options.logger.child({ component: 'admin' });
  let cached: { at: number; overview: Promise<AdminOverview> } | undefined;
  let writing: Promise<void> | undefined;

  const redisState = (): AdminRedis => ({
    topology: redis?.topology ?? 'disabled',
    status: redisStatus(redis),
  });

  const write = async (): Promise<void> => {
    if (!redis?.isReady()) return;
    const report = JSON.stringify(sampler.report());
    await redis.run('admin report', async (client) => {
      await client.hSet(key, replica, report);
      await client.pExpire(key, REPORTS_TTL_MS);
    });
  };
  const timer =
    redis &&
    setInterval(() => {
      // Best effort: while Redis is away the dashboard shows the replica it talks to.
      writing ??= write()
        .catch(() => undefined)
        .finally(() => (writing = undefined));
    }, options.reportMs ?? 2_000);
  if (timer) timer.unref();

  const read = async (): Promise<ReplicaReport[]> => {
    const own = sampler.report();
    if (!redis?.isReady()) return [own];
    const now = Date.now();
    const stored = await redis
      .run('admin overview', (client) => client.hGetAll(key))
      .catch((error: unknown) => {
        log.debug({ err: error instanceof Error ? error.message : String(error) }, 'admin reports unreadable');
        return {};
      });
    const reports = [own];
    const stale: string[] = [];
    for (const [id, text] of Object.entries(stored)) {
      if (id === replica) continue;
      let report: unknown;
      try {
        report = JSON.parse(text);
      } catch {
        report = undefined;
      }
      if (isReport(report) && now - report.seenAt < STALE_MS) reports.push(report);
      else stale.push(id);
    }
    if (stale.length > 0) redis.run('admin prune', (client) => client.hDel(key, stale)).catch(() => undefined);
    return reports;
  };

  return {
    overview() {
      const now = Date.now();
      if (!cached || now - cached.at >= CACHE_MS) {
        cached = { at: now, overview: read().then((reports) => mergeReports(reports, now, replica, redisState())) };
      }
      return cached.overview;
    },
    async close() {
      if (timer) clearInterval(timer);
      await writing;
      // Gone from the dashboard at once, rather than after STALE_MS.
      if (redis?.isReady())
        await redis.run('admin leave', (client) => client.hDel(key, replica)).catch(() => undefined);
    },
  };
}
