import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { joinRoom } from '../../support/client.js';
import { startTestGateway } from '../../support/gateway.js';
import { TEST_SECRETS } from '../../support/gateway-process.js';
import { waitFor } from '../../support/ports.js';
import { startRedisServer } from '../../support/redis-server.js';

const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));

/** Each log line as parsed JSON, and how often it names a component. */
function lines(logs: string): Array<{ raw: string; entry: Record<string, unknown>; components: number }> {
  return logs
    .split('\n')
    .filter(Boolean)
    .map((raw) => ({
      raw,
      entry: JSON.parse(raw) as Record<string, unknown>,
      components: raw.match(/"component":/g)?.length ?? 0,
    }));
}

describe('log lines', () => {
  it('say "adapter":"memory" in memory mode, never redis', async () => {
    const gw = await startTestGateway({ SOCKETIO_ADAPTER: 'redis-sharded' });
    await gw.close();
    const listening = lines(gw.logs()).find(({ entry }) => entry.msg === 'gateway listening');
    expect(listening?.entry).toMatchObject({ redis: 'disabled', adapter: 'memory' });
  });

  it('name their component once, in every part, through a Redis outage', async () => {
    const redis = await startRedisServer();
    const gw = await startTestGateway({ REDIS_URL: redis.url, LOG_LEVEL: 'debug' });
    try {
      await waitFor('redis ready', async () => {
        const ready = (await (await fetch(`${gw.url}/readyz`)).json()) as { redis: string };
        return ready.redis === 'connected' || undefined;
      });
      const client = await joinRoom(gw.url, 'logger', 'logged-room');
      await redis.kill();
      // Publishing during the outage goes local, and leaving makes presence complain.
      await client.socket.emitWithAck('publish', { type: 'note', data: null });
      client.close();
      await waitFor('a presence warning', () => gw.logs().includes('"component":"presence"') || undefined);
    } finally {
      await gw.close();
      await redis.stop();
    }
    const logged = lines(gw.logs());
    expect(logged.filter(({ components }) => components > 1).map(({ raw }) => raw)).toEqual([]);
    const components = new Set(logged.map(({ entry }) => entry.component));
    expect([...components]).toEqual(expect.arrayContaining(['redis', 'presence']));
  });
});

/** `script` gives the gateway a pseudo-terminal as stdout, as a developer's shell would. */
const SCRIPT = spawnSync('script', ['--version']).status === 0;

describe.skipIf(!SCRIPT)('log format on a terminal', () => {
  if (!SCRIPT) console.warn('skipping: util-linux `script` is missing, so no pseudo-terminal can be made');

  /** Runs the gateway on a pseudo-terminal until it has logged that it listens; returns what it printed. */
  async function outputOnTerminal(nodeEnv: string): Promise<string> {
    const env = { PATH: process.env.PATH ?? '', NODE_ENV: nodeEnv, PORT: '0', REPLICA_ID: 'tty', ...TEST_SECRETS };
    const child = spawn(
      'script',
      ['-qefc', `${JSON.stringify(process.execPath)} ${JSON.stringify(MAIN)}`, '/dev/null'],
      {
        env,
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      await waitFor('gateway listening', () => output.includes('gateway listening') || undefined);
    } finally {
      // Ctrl+C on the terminal: the gateway drains and exits, and `script` with it.
      child.stdin.write('\x03');
      await exited;
    }
    return output;
  }

  it('is human-readable outside production', async () => {
    const output = await outputOnTerminal('development');
    expect(output).toMatch(/INFO.*gateway listening/);
    expect(output).not.toContain('"msg":"gateway listening"');
  });

  it('stays JSON in production', async () => {
    const output = await outputOnTerminal('production');
    expect(output).toContain('"msg":"gateway listening"');
  });
});
