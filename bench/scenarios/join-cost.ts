import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BenchConfig } from '../lib/config.js';
import { CpuMeter, cpuMicros, type ServerProcess } from '../lib/processes.js';
import { connectMany, mintMany, startSystem, type System, type SystemRedis } from '../lib/systems.js';
import { round } from '../loadgen/stats.js';

export interface JoinCostFigures {
  replicas: number;
  roomSize: number;
  rooms: number;
  /** Members that got their `session`. */
  joined: number;
  /** Every member joined before `fillTimeoutMs`. */
  complete: boolean;
  /** From the first handshake to the last `session`. */
  fillMs: number;
  /**
   * CPU time of every replica from the first handshake until 100–200 ms after the last
   * packet any member received (the announcements of the last joins included), per join.
   */
  cpuMicrosPerJoin: number;
  redisMicrosPerJoin: number;
  handshakeP50Ms: number;
  handshakeP99Ms: number;
  failures: number;
  firstError?: string;
}

export interface JoinCostResult {
  concurrency: number;
  /** Rooms of `smallRoom` on one replica: the reference for `large`. */
  small: JoinCostFigures;
  /** One room of `largeRoom` on one replica. */
  large: JoinCostFigures;
  /** Rooms of `smallRoom` on two replicas: the reference for `huge`. */
  smallOnTwo: JoinCostFigures;
  /** One room of `hugeRoom` on two replicas. */
  huge: JoinCostFigures;
}

interface Fill {
  label: string;
  roomSize: number;
  members: number;
  replicas: number;
}

/**
 * Server CPU per join by room size, Switchboard only. One system of two replicas; each
 * fill opens its members (alternating over the fill's replicas, `concurrency` handshakes at
 * a time) into fresh rooms, meters every replica from the first handshake until the room
 * is quiet, then closes them and waits for the replicas to go idle before the next fill.
 */
export async function runJoinCost(
  redis: SystemRedis,
  config: BenchConfig,
  progress: (line: string) => void,
): Promise<JoinCostResult> {
  const { smallRoom, smallSockets, largeRoom, hugeRoom, concurrency } = config.joinCost;
  const system = await startSystem('switchboard', redis, 2);
  try {
    await warmUp(system, config);
    const run = async (fill: Fill): Promise<JoinCostFigures> => {
      const figures = await measureFill(system, fill, config);
      progress(
        `  ${fill.label}: ${figures.joined} joins in ${figures.rooms} room(s) of ${fill.roomSize} on ${fill.replicas} replica(s), ` +
          `${figures.cpuMicrosPerJoin} µs CPU/join, filled in ${figures.fillMs} ms` +
          (figures.complete ? '' : ` (INCOMPLETE: stopped after ${config.joinCost.fillTimeoutMs} ms)`),
      );
      return figures;
    };
    const small = await run({ label: 'small', roomSize: smallRoom, members: smallSockets, replicas: 1 });
    const large = await run({ label: 'large', roomSize: largeRoom, members: largeRoom, replicas: 1 });
    const smallOnTwo = await run({ label: 'smallOnTwo', roomSize: smallRoom, members: smallSockets, replicas: 2 });
    const huge = await run({ label: 'huge', roomSize: hugeRoom, members: hugeRoom, replicas: 2 });
    return { concurrency, small, large, smallOnTwo, huge };
  } finally {
    await system.stop();
  }
}

/** Runs the handshake and join paths of both replicas once, so that the fills measure optimized code. */
async function warmUp(system: System, config: BenchConfig): Promise<void> {
  const { warmupSockets, smallRoom, concurrency } = config.joinCost;
  const requests = Array.from({ length: warmupSockets }, (_, i) => ({
    user: `warm-${i}`,
    room: `warm-${Math.floor(i / smallRoom)}`,
  }));
  const tokens = await mintMany(system, system.replicas[0] as ServerProcess, requests);
  const targets = requests.map((_, i) => system.replicas[i % system.replicas.length] as ServerProcess);
  const warm = await connectMany(system, targets, tokens, concurrency);
  for (const client of warm.clients) client.close();
  await waitForIdle(system);
}

let fillCount = 0;

async function measureFill(system: System, fill: Fill, config: BenchConfig): Promise<JoinCostFigures> {
  const { concurrency, fillTimeoutMs, quietMs } = config.joinCost;
  const on = system.replicas.slice(0, fill.replicas);
  const tag = `join-${++fillCount}-${fill.label}`;
  const requests = Array.from({ length: fill.members }, (_, i) => ({
    user: `${tag}-${i}`,
    room: `${tag}-${Math.floor(i / fill.roomSize)}`,
  }));
  const tokens = await mintMany(system, on[0] as ServerProcess, requests);
  const targets = requests.map((_, i) => on[i % on.length] as ServerProcess);
  let lastPacketAt = performance.now();
  const timeout = AbortSignal.timeout(fillTimeoutMs);
  const meter = new CpuMeter([...system.replicas.map((replica) => replica.pid), system.redisPid]);
  const result = await connectMany(system, targets, tokens, concurrency, {
    onPacket: () => {
      lastPacketAt = performance.now();
    },
    signal: timeout,
  });
  try {
    // Readings every 100 ms; the one just after the last packet ends the window, not the quiet wait.
    const readings: Array<{ at: number; cpu: number[] }> = [];
    const quietBy = performance.now() + 60_000;
    while (performance.now() - lastPacketAt < quietMs && performance.now() < quietBy) {
      await sleep(100);
      readings.push({ at: performance.now(), cpu: meter.read() });
    }
    const cpu = (readings.find((reading) => reading.at >= lastPacketAt + 100) ?? readings.at(-1))?.cpu ?? meter.read();
    const redisMicros = cpu.pop() ?? 0;
    const serverMicros = cpu.reduce((sum, value) => sum + value, 0);
    const joined = result.clients.length - result.failures;
    const summary = result.latencies.summary();
    return {
      replicas: fill.replicas,
      roomSize: fill.roomSize,
      rooms: Math.ceil(fill.members / fill.roomSize),
      joined,
      complete: joined === fill.members,
      fillMs: round(result.elapsedMs, 0),
      cpuMicrosPerJoin: round(serverMicros / Math.max(1, joined), 1),
      redisMicrosPerJoin: round(redisMicros / Math.max(1, joined), 1),
      handshakeP50Ms: round(summary.p50, 2),
      handshakeP99Ms: round(summary.p99, 2),
      failures: result.failures,
      ...(result.firstError ? { firstError: result.firstError } : {}),
    };
  } finally {
    for (const client of result.clients) client.close();
    await waitForIdle(system);
  }
}

/**
 * Waits until the replicas together use under 5 % of a core over half a second (the
 * leaves of the last fill handled), at most 60 s.
 */
export async function waitForIdle(system: System): Promise<void> {
  const pids = system.replicas.map((replica) => replica.pid);
  const total = () => pids.reduce((sum, pid) => sum + cpuMicros(pid), 0);
  const giveUpAt = performance.now() + 60_000;
  for (;;) {
    const before = total();
    await sleep(500);
    if ((total() - before) / 500_000 < 0.05 || performance.now() > giveUpAt) return;
  }
}
