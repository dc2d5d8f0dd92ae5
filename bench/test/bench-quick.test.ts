import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { BenchResults } from '../report/table.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Runs the bench's smoke mode as CI does, and checks that every scenario produced figures. */
describe('npm run bench -- --quick', () => {
  let out: string | undefined;
  let child: ChildProcess | undefined;
  afterAll(async () => {
    // A run cut short by the timeout stops every process it started (bench/run.ts on SIGTERM).
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    }
    if (out) await rm(out, { recursive: true, force: true });
  }, 30_000);

  it('measures every scenario on both systems and writes the results and the chart', async () => {
    expect(existsSync(join(ROOT, 'backend/dist/main.js')), 'run `npm run build` first').toBe(true);
    out = await mkdtemp(join(tmpdir(), 'switchboard-bench-test-'));
    const run = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--quick', '--out', out], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = run;
    let output = '';
    run.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    run.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => run.once('exit', resolve));
    expect(code, output).toBe(0);

    const results = JSON.parse(await readFile(join(out, 'latest.json'), 'utf8')) as BenchResults;
    const {
      mint,
      connections,
      fanout,
      latency,
      publishLatency,
      idleReplica,
      rollingRestart,
      historyMemory,
      joinCost,
      threeRooms,
      idempotentPublish,
      webhooks,
    } = results.figures;
    for (const kind of ['baseline', 'switchboard'] as const) {
      expect(mint[kind].requestsPerSecond).toBeGreaterThan(0);
      expect(Number.isFinite(mint[kind].p99Ms)).toBe(true);
      expect(connections[kind].handshakesPerSecond).toBeGreaterThan(0);
      expect(connections[kind].heapBytesPerSocket).toBeGreaterThan(0);
      expect(connections[kind].failures).toBe(0);
      for (const point of fanout.points) {
        expect(point[kind].deliveriesPerSecond).toBeGreaterThan(0);
        expect(Number.isFinite(point[kind].p99Ms)).toBe(true);
        expect(Number.isFinite(point[kind].cpuMicrosPerDelivery)).toBe(true);
      }
      expect(Number.isFinite(latency[kind].crossP99Ms)).toBe(true);
      // The busy room was busy, and the replicas that serve it did the work.
      expect(idleReplica[kind].deliveriesPerSecond).toBeGreaterThan(0);
      expect(idleReplica[kind].busyCpuMicrosPerSecond).toBeGreaterThan(0);
      expect(Number.isFinite(idleReplica[kind].idleReadBytesPerSecond)).toBe(true);
      // The restart moved members: they reconnected by themselves, and events were acknowledged.
      expect(rollingRestart[kind].published).toBeGreaterThan(0);
      expect(rollingRestart[kind].reconnects).toBeGreaterThan(0);
      expect(Number.isFinite(rollingRestart[kind].lost)).toBe(true);
    }
    for (const variant of [publishLatency.baseline, publishLatency.historyOn, publishLatency.historyOff]) {
      expect(variant.ackSamples).toBeGreaterThan(0);
      expect(variant.deliverySamples).toBeGreaterThan(0);
      expect(Number.isFinite(variant.ackP99Ms) && Number.isFinite(variant.deliveryP99Ms)).toBe(true);
      expect(variant.publishErrors).toBe(0);
    }
    expect(Number.isFinite(idleReplica.switchboard.idleRoomChannelBytesPerSecond)).toBe(true);
    // Every room's history filled up to ROOM_HISTORY_SIZE, and costs more than its events' bytes.
    expect(historyMemory.eventsKept).toBe(publishLatency.historySize);
    expect(historyMemory.bytesPerRoom).toBeGreaterThan(historyMemory.eventsKept * historyMemory.eventBytes);
    // Switchboard members de-duplicate by seq: nothing reaches the app twice.
    expect(rollingRestart.switchboard.duplicated).toBe(0);
    expect(mint.bare.requestsPerSecond).toBeGreaterThan(0);
    expect(fanout.points.length).toBeGreaterThan(1);
    // The feature-equal baseline answered every handshake with a session, and every server's CPU was read.
    expect(connections.featureEqual.failures).toBe(0);
    for (const kind of ['baseline', 'featureEqual', 'switchboard'] as const)
      expect(connections[kind].cpuMicrosPerHandshake).toBeGreaterThan(0);
    // Every fill let its members in and cost CPU; the large rooms are one room each.
    for (const fill of [joinCost.small, joinCost.large, joinCost.smallOnTwo, joinCost.huge]) {
      expect(fill.complete, JSON.stringify(fill)).toBe(true);
      expect(fill.cpuMicrosPerJoin).toBeGreaterThan(0);
    }
    expect([joinCost.large.rooms, joinCost.huge.rooms, joinCost.huge.replicas]).toEqual([1, 1, 2]);
    // One socket per user carries all three rooms: a third of the sockets, every room:join answered.
    expect(threeRooms.oneSocket.sockets * 3).toBe(threeRooms.threeSockets.sockets);
    expect(threeRooms.oneSocket.failures, threeRooms.oneSocket.firstError).toBe(0);
    expect(threeRooms.oneSocket.heapBytesPerUser).toBeGreaterThan(0);
    // Keyed publishes were answered (a refused key would be a publish error), and fan-out with keys delivered.
    expect(idempotentPublish.withKeys.publishErrors).toBe(0);
    expect(idempotentPublish.withKeys.rounds[0]?.ackSamples).toBeGreaterThan(0);
    expect(idempotentPublish.fanout.withKeys.deliveriesPerSecond).toBeGreaterThan(0);
    // With webhooks on, the receiver got the joins' events, each once, and their lag was timed.
    expect(webhooks.on.joins).toBeGreaterThan(0);
    expect(webhooks.delivery.received).toBe(webhooks.delivery.expected);
    expect(webhooks.delivery.byType['member.joined']).toBe(webhooks.on.joins);
    expect(Number.isFinite(webhooks.delivery.lagP99Ms)).toBe(true);
    expect(results.goals.map((goal) => goal.name)).toHaveLength(18);
    const chart = await readFile(join(out, 'bench-fanout-latency.svg'), 'utf8');
    expect(chart).toMatch(/^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    expect(chart).toContain('<polyline');
  }, 300_000);
});
