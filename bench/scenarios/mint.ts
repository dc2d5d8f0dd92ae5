import { performance } from 'node:perf_hooks';
import type { BenchConfig } from '../lib/config.js';
import { CpuMeter, type ServerProcess } from '../lib/processes.js';
import { grantFor } from '../../backend/src/auth/room-access.js';
import {
  BENCH_GRANTS,
  bareCall,
  startSystem,
  type HttpCall,
  type System,
  type SystemKind,
  type SystemRedis,
} from '../lib/systems.js';
import { openPool } from '../loadgen/http-client.js';
import { round, Samples } from '../loadgen/stats.js';

export interface HttpFigures {
  requests: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** Answers other than the expected status, and failed requests. */
  errors: number;
  /** Server CPU time per request. */
  cpuMicrosPerRequest: number;
}

export interface MintResult {
  concurrency: number;
  /** Switchboard's mint: access JWT, room grants, rate limit, Redis pipeline, signed RTC token. */
  switchboard: HttpFigures;
  /** The same with ROOM_ACCESS=open: no grant checked. */
  switchboardOpen: HttpFigures;
  /** In-process cost of one grant check against the bench users' claim (BENCH_GRANTS), in µs. */
  grantCheckMicros: number;
  /** The baseline's mint: `SET EX 60` of a random UUID. */
  baseline: HttpFigures;
  /** A no-op Express JSON endpoint on the baseline: the cost of the HTTP stack alone. */
  bare: HttpFigures;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Closed-loop load: `concurrency` connections, each sending its next request when the last answered. */
export async function measureHttp(
  server: ServerProcess,
  calls: HttpCall[],
  { concurrency, warmupMs, durationMs }: { concurrency: number; warmupMs: number; durationMs: number },
): Promise<HttpFigures> {
  const pool = openPool(server.host, server.port, concurrency);
  const latencies = new Samples();
  let stop = false;
  let recording = false;
  let errors = 0;
  let next = 0;
  const loops = pool.connections.map(async (connection) => {
    while (!stop) {
      const call = calls[next++ % calls.length] as HttpCall;
      const started = performance.now();
      try {
        const response = await connection.request('POST', call.path, call.headers, call.body);
        if (response.status !== call.okStatus) errors++;
        else if (recording) latencies.push(performance.now() - started);
      } catch {
        errors++;
        return;
      }
    }
  });
  try {
    await sleep(warmupMs);
    const meter = new CpuMeter([server.pid]);
    const started = performance.now();
    recording = true;
    await sleep(durationMs);
    recording = false;
    const elapsedMs = performance.now() - started;
    const [cpu = 0] = meter.read();
    stop = true;
    await Promise.all(loops);
    const summary = latencies.summary();
    return {
      requests: summary.samples,
      requestsPerSecond: round((summary.samples * 1000) / elapsedMs, 0),
      p50Ms: round(summary.p50, 3),
      p99Ms: round(summary.p99, 3),
      errors,
      cpuMicrosPerRequest: round(cpu / Math.max(1, summary.samples), 1),
    };
  } finally {
    stop = true;
    pool.close();
  }
}

/** Token mint throughput: Switchboard's mint, the baseline's mint and a bare Express endpoint. */
export async function runMint(redis: Record<SystemKind, SystemRedis>, config: BenchConfig): Promise<MintResult> {
  const { users, ...load } = config.mint;
  const [baseline, switchboard, open] = await Promise.all([
    startSystem('baseline', redis.baseline, 1),
    startSystem('switchboard', redis.switchboard, 1),
    startSystem('switchboard', redis.switchboard, 1, { env: { ROOM_ACCESS: 'open' } }),
  ]);
  try {
    const calls = (system: System, make = system.mintCall) =>
      Array.from({ length: users }, (_, i) => make(`mint-user-${i}`, `mint-room-${i % 100}`));
    const baselineServer = baseline.replicas[0] as ServerProcess;
    const switchboardServer = switchboard.replicas[0] as ServerProcess;
    const bare = await measureHttp(baselineServer, calls(baseline, bareCall), load);
    const baselineMint = await measureHttp(baselineServer, calls(baseline), load);
    const switchboardMint = await measureHttp(switchboardServer, calls(switchboard), load);
    const switchboardOpen = await measureHttp(open.replicas[0] as ServerProcess, calls(open), load);
    return {
      concurrency: load.concurrency,
      switchboard: switchboardMint,
      switchboardOpen,
      grantCheckMicros: grantCheckMicros(),
      baseline: baselineMint,
      bare,
    };
  } finally {
    await Promise.all([baseline.stop(), switchboard.stop(), open.stop()]);
  }
}

/** The grant lookup alone, as the gateway runs it at each mint (the claim is already parsed). */
function grantCheckMicros(): number {
  const rooms = Array.from({ length: 100 }, (_, i) => `mint-room-${i}`);
  const runs = 200_000;
  for (let i = 0; i < 10_000; i++) grantFor(BENCH_GRANTS, 'rooms', rooms[i % 100] as string);
  const started = performance.now();
  for (let i = 0; i < runs; i++) grantFor(BENCH_GRANTS, 'rooms', rooms[i % 100] as string);
  return round(((performance.now() - started) * 1000) / runs, 3);
}
