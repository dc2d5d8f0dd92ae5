import { spawn } from 'node:child_process';
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
  afterAll(async () => {
    if (out) await rm(out, { recursive: true, force: true });
  });

  it('measures every scenario on both systems and writes the results and the chart', async () => {
    expect(existsSync(join(ROOT, 'backend/dist/main.js')), 'run `npm run build` first').toBe(true);
    out = await mkdtemp(join(tmpdir(), 'switchboard-bench-test-'));
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--quick', '--out', out], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code, output).toBe(0);

    const results = JSON.parse(await readFile(join(out, 'latest.json'), 'utf8')) as BenchResults;
    const { mint, connections, fanout, latency } = results.figures;
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
    }
    expect(mint.bare.requestsPerSecond).toBeGreaterThan(0);
    expect(fanout.points.length).toBeGreaterThan(1);
    expect(results.goals.map((goal) => goal.name)).toHaveLength(5);
    const chart = await readFile(join(out, 'bench-fanout-latency.svg'), 'utf8');
    expect(chart).toMatch(/^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    expect(chart).toContain('<polyline');
  }, 120_000);
});
