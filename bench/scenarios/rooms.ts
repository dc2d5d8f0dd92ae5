import { performance } from 'node:perf_hooks';
import type { BenchConfig } from '../lib/config.js';
import { openRoom } from '../lib/open-room.js';
import { CpuMeter } from '../lib/processes.js';
import { startSystems, type System, type SystemKind, type SystemRedis } from '../lib/systems.js';
import type { PublishOptions, RoomLoad } from '../loadgen/room-load.js';
import { round, Samples } from '../loadgen/stats.js';
import { measureHistoryMemory, type HistoryMemoryResult } from './history-memory.js';
import { runPublishLatency, type PublishLatencyResult } from './publish-latency.js';
import { runReplicaScenarios, type IdleReplicaResult, type RollingRestartResult } from './replicas.js';

export interface FanoutFigures {
  rate: number;
  /** Deliveries (one event to one socket) per second, in the measurement window. */
  deliveriesPerSecond: number;
  /** rate × members: what full delivery would be. */
  expectedPerSecond: number;
  /** WebSocket frames per second carrying room events (a batch is one frame). */
  framesPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** CPU time of all replicas together per delivery. */
  cpuMicrosPerDelivery: number;
  /** Cores the replicas, Redis and the load generator kept busy during the window. */
  serverCores: number;
  redisCores: number;
  loadgenCores: number;
  /** Deliveries still missing once the room went quiet after the run. */
  lost: number;
}

export interface FanoutResult {
  members: number;
  replicas: number;
  headlineRate: number;
  points: Array<Record<SystemKind, FanoutFigures>>;
}

export interface LatencyFigures {
  rate: number;
  members: number;
  crossP50Ms: number;
  crossP99Ms: number;
  sameP50Ms: number;
  sameP99Ms: number;
  samples: number;
  lost: number;
}

export type LatencyResult = Record<SystemKind, LatencyFigures>;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function fanoutPoint(
  system: System,
  load: RoomLoad,
  rate: number,
  config: BenchConfig,
  publishOptions: PublishOptions = {},
): Promise<FanoutFigures> {
  const { warmupMs, durationMs } = config.fanout;
  const members = load.members.length;
  load.resetTotals();
  const publishing = load.publish(rate, warmupMs + durationMs, publishOptions);
  await sleep(warmupMs);
  const pids = system.replicas.map((replica) => replica.pid);
  const meter = new CpuMeter([...pids, system.redisPid]);
  const loadgenBefore = process.cpuUsage();
  const started = performance.now();
  load.startRecording();
  await publishing;
  load.stopRecording();
  const elapsedMs = performance.now() - started;
  const cpu = meter.read();
  const loadgen = process.cpuUsage(loadgenBefore);
  const lost = await load.drain(load.published * members);
  const serverMicros = cpu.slice(0, pids.length).reduce((sum, value) => sum + value, 0);
  const redisMicros = cpu[pids.length] ?? 0;
  // Fan-out publishers sit on both replicas, so both kinds of sample count.
  const latency = Samples.merge(load.sameReplica, load.crossReplica).summary();
  const perSecond = (count: number) => (count * 1000) / elapsedMs;
  return {
    rate,
    deliveriesPerSecond: round(perSecond(load.deliveries), 0),
    expectedPerSecond: rate * members,
    framesPerSecond: round(perSecond(load.frames), 0),
    p50Ms: round(latency.p50, 2),
    p99Ms: round(latency.p99, 2),
    maxMs: round(latency.max, 2),
    cpuMicrosPerDelivery: round(serverMicros / Math.max(1, load.deliveries), 3),
    serverCores: round(serverMicros / 1000 / elapsedMs, 2),
    redisCores: round(redisMicros / 1000 / elapsedMs, 2),
    loadgenCores: round((loadgen.user + loadgen.system) / 1000 / elapsedMs, 2),
    lost,
  };
}

/**
 * Every room scenario, on shared replicas: fan-out, cross-replica latency, publish latency
 * and history memory on two per system (publish latency without history on a third pair,
 * with ROOM_HISTORY_SIZE=0), then, with a third replica each, the idle replica and the
 * rolling restart.
 */
export async function runRooms(
  redis: Record<SystemKind, SystemRedis>,
  config: BenchConfig,
  progress: (line: string) => void,
): Promise<RoomsResult> {
  const history = (size: number) => ({ env: { ROOM_HISTORY_SIZE: String(size) } });
  const all = await startSystems([
    { kind: 'baseline', redis: redis.baseline, replicas: 2 },
    { kind: 'switchboard', redis: redis.switchboard, replicas: 2, options: history(config.publishLatency.historySize) },
    { kind: 'switchboard', redis: redis.switchboard, replicas: 2, options: history(0) },
  ]);
  const [baseline, switchboard, historyOff] = all as [System, System, System];
  try {
    const { fanout, latency } = await measureFanoutAndLatency([baseline, switchboard], config, progress);
    const publishLatency = await runPublishLatency({ baseline, historyOn: switchboard, historyOff }, config, progress);
    await historyOff.stop();
    const historyMemory = await measureHistoryMemory(switchboard, redis.switchboard, config);
    progress(`  history memory: ${historyMemory.bytesPerRoom} bytes per room of ${historyMemory.eventsKept} events`);
    for (const system of [baseline, switchboard]) await system.addReplica();
    const replicas = await runReplicaScenarios({ baseline, switchboard }, config, progress);
    return { fanout, latency, publishLatency, historyMemory, ...replicas };
  } finally {
    await Promise.all(all.map((system) => system.stop()));
  }
}

export interface RoomsResult {
  fanout: FanoutResult;
  latency: LatencyResult;
  publishLatency: PublishLatencyResult;
  historyMemory: HistoryMemoryResult;
  idleReplica: IdleReplicaResult;
  rollingRestart: RollingRestartResult;
}

async function measureFanoutAndLatency(
  systems: System[],
  config: BenchConfig,
  progress: (line: string) => void,
): Promise<{ fanout: FanoutResult; latency: LatencyResult }> {
  const rooms: RoomLoad[] = [];
  try {
    const fanoutRooms = new Map<SystemKind, RoomLoad>();
    for (const system of systems) {
      const room = await openRoom(system, {
        room: 'fanout',
        members: config.fanout.members,
        sampledPerReplica: config.fanout.sampledPerReplica,
        publishersPerReplica: config.fanout.publishersPerReplica,
        publishFromFirstReplicaOnly: false,
      });
      rooms.push(room);
      fanoutRooms.set(system.kind, room);
    }
    const points: FanoutResult['points'] = [];
    for (const rate of config.fanout.rates) {
      const point: Partial<Record<SystemKind, FanoutFigures>> = {};
      for (const system of systems) {
        const figures = await fanoutPoint(system, fanoutRooms.get(system.kind) as RoomLoad, rate, config);
        point[system.kind] = figures;
        progress(
          `  fan-out ${system.kind} @ ${rate} msg/s: ${figures.deliveriesPerSecond} deliveries/s, ` +
            `p50 ${figures.p50Ms} ms, p99 ${figures.p99Ms} ms, ${figures.cpuMicrosPerDelivery} µs CPU/delivery`,
        );
        await sleep(500);
      }
      points.push(point as Record<SystemKind, FanoutFigures>);
    }

    const latency: Partial<LatencyResult> = {};
    for (const system of systems) {
      const { members, rate, warmupMs, durationMs } = config.latency;
      const room = await openRoom(system, {
        room: 'latency',
        members,
        sampledPerReplica: members,
        publishersPerReplica: 1,
        publishFromFirstReplicaOnly: true,
      });
      rooms.push(room);
      const publishing = room.publish(rate, warmupMs + durationMs);
      await sleep(warmupMs);
      room.startRecording();
      await publishing;
      room.stopRecording();
      const lost = await room.drain(room.published * members);
      const cross = room.crossReplica.summary();
      const same = room.sameReplica.summary();
      latency[system.kind] = {
        rate,
        members,
        crossP50Ms: round(cross.p50, 2),
        crossP99Ms: round(cross.p99, 2),
        sameP50Ms: round(same.p50, 2),
        sameP99Ms: round(same.p99, 2),
        samples: cross.samples + same.samples,
        lost,
      };
      progress(
        `  latency ${system.kind}: cross-replica p50 ${cross.p50.toFixed(2)} ms, p99 ${cross.p99.toFixed(2)} ms`,
      );
    }
    return {
      fanout: {
        members: config.fanout.members,
        replicas: 2,
        headlineRate: config.fanout.headlineRate,
        points,
      },
      latency: latency as LatencyResult,
    };
  } finally {
    for (const room of rooms) room.close();
  }
}
