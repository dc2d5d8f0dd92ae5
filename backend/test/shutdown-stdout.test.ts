import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startGatewayProcess } from '../../support/gateway-process.js';

const SHUTDOWN_TIMEOUT_MS = 3_000;
const dir = mkdtempSync(join(tmpdir(), 'switchboard-stdout-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * A pipe that is full and that nobody reads: a paused `| less`, a stalled log collector.
 * Returns the fd to give the gateway as stdout (blocking or not) and a close for the rest.
 */
function stalledPipe(name: string, blocking: boolean): { stdout: number; close(): void } {
  const path = join(dir, name);
  execFileSync('mkfifo', [path]);
  // Read-write, so opening never waits for a reader; this end is never read from.
  const filler = openSync(path, constants.O_RDWR | constants.O_NONBLOCK);
  try {
    for (;;) writeSync(filler, Buffer.alloc(4096, 'x'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
  }
  const stdout = blocking ? openSync(path, constants.O_WRONLY) : filler;
  return {
    stdout,
    close() {
      if (stdout !== filler) closeSync(stdout);
      closeSync(filler);
    },
  };
}

async function exitAfterSigterm(stdout: number | undefined, onStarted?: (pid: number) => void) {
  const gateway = await startGatewayProcess({
    stdout,
    env: { LOG_LEVEL: 'info', SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS) },
  });
  onStarted?.(gateway.pid);
  const started = Date.now();
  const code = await Promise.race([
    gateway.stop('SIGTERM'),
    new Promise<string>((resolve) => setTimeout(() => resolve('still running'), SHUTDOWN_TIMEOUT_MS + 2_000)),
  ]);
  const tookMs = Date.now() - started;
  if (code === 'still running') await gateway.stop('SIGKILL');
  return { code, tookMs };
}

// Before the fix the process closed its port on SIGTERM and then hung in pino's exit-time
// flush, retrying EAGAIN on the full pipe until somebody read it (minutes, or forever).
describe('a gateway whose stdout stops taking its logs', () => {
  it.each([
    ['a non-blocking', false],
    ['a blocking', true],
  ])('exits within SHUTDOWN_TIMEOUT_MS when stdout is %s pipe nobody reads', async (_kind, blocking) => {
    const pipe = stalledPipe(blocking ? 'blocking' : 'nonblocking', blocking);
    try {
      const { code, tookMs } = await exitAfterSigterm(pipe.stdout);
      expect(code).toBe(0);
      expect(tookMs).toBeLessThan(SHUTDOWN_TIMEOUT_MS);
    } finally {
      pipe.close();
    }
  });

  it('exits within SHUTDOWN_TIMEOUT_MS when the reader of stdout has gone (| head)', async () => {
    const path = join(dir, 'closed');
    execFileSync('mkfifo', [path]);
    const reader = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    const writer = openSync(path, constants.O_WRONLY);
    try {
      // The reader closes as soon as the gateway is up: every later line meets EPIPE.
      const { code, tookMs } = await exitAfterSigterm(writer, () => closeSync(reader));
      expect(code).toBe(0);
      expect(tookMs).toBeLessThan(SHUTDOWN_TIMEOUT_MS);
    } finally {
      closeSync(writer);
    }
  });
});
