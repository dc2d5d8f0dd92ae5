import { performance } from 'node:perf_hooks';
import type { BenchConfig } from '../lib/config.js';
import { CpuMeter, type ServerProcess } from '../lib/processes.js';
import {
  connectMany,
  mintMany,
  startSystem,
  SYSTEMS,
  type System,
  type SystemKind,
  type SystemRedis,
} from '../lib/systems.js';
import { RoomLoad, type Member } from '../loadgen/room-load.js';
import { round, Samples } from '../loadgen/stats.js';

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

interface RoomPlan {
  room: string;
  members: number;
  sampledPerReplica: number;
  publishersPerReplica: number;
  /** Only replica 0 publishes (to time the crossing); otherwise both do. */
  publishFromFirstReplicaOnly: boolean;
}

/** Mints and connects a room's members, alternating replicas; the last ones publish. */
async function openRoom(system: System, plan: RoomPlan): Promise<RoomLoad> {
  const replicas = system.replicas;
  const requests = Array.from({ length: plan.members }, (_, i) => ({ user: `${plan.room}-${i}`, room: plan.room }));
  const tokens = await mintMany(system, replicas[0] as ServerProcess, requests);
  const targets = requests.map((_, i) => replicas[i % replicas.length] as ServerProcess);
  // Modest concurrency: every join is announced to the members already there.
  const result = await connectMany(system, targets, tokens, 16);
  if (result.failures > 0) {
    for (const client of result.clients) client.close();
    throw new Error(
      `${system.kind}: ${result.failures} of ${plan.members} sockets failed to join: ${result.firstError ?? ''}`,
    );
  }
  const members: Member[] = result.clients.map((client, i) => ({
    client,
    replica: i % replicas.length,
    sampled: Math.floor(i / replicas.length) < plan.sampledPerReplica,
  }));
  const publishers = members
    .slice()
    .reverse()
    .filter((member) => !plan.publishFromFirstReplicaOnly || member.replica === 0)
    .slice(0, plan.publishersPerReplica * (plan.publishFromFirstReplicaOnly ? 1 : replicas.length));
  // Let the join announcements finish before anything is measured.
  await sleep(1_000);
  return new RoomLoad(members, publishers);
}

async function fanoutPoint(system: System, load: RoomLoad, rate: number, config: BenchConfig): Promise<FanoutFigures> {
  const { warmupMs, durationMs } = config.fanout;
  const members = load.members.length;
  load.resetTotals();
  const publishing = load.publish(rate, warmupMs + durationMs);
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

/** Fan-out and cross-replica latency share the same replicas (two per system). */
export async function runRooms(
  redis: Record<SystemKind, SystemRedis>,
  config: BenchConfig,
  progress: (line: string) => void,
): Promise<{ fanout: FanoutResult; latency: LatencyResult }> {
  const systems = await Promise.all(SYSTEMS.map((kind) => startSystem(kind, redis[kind], 2)));
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
    await Promise.all(systems.map((system) => system.stop()));
  }
}
