import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from 'redis';
import { waitFor } from './ports.js';
import { startRedisServer, type RedisServerHandle } from './redis-server.js';

export interface RedisClusterHandle {
  /** The masters, in the order they were created. */
  readonly nodes: RedisServerHandle[];
  /** Seed URLs, as REDIS_CLUSTER_URLS takes them. */
  readonly urls: string[];
  /** Waits until every node reports `cluster_state:ok`. */
  waitHealthy(): Promise<void>;
  stop(): Promise<void>;
}

/** Runs a command to its end; resolves with what it printed (stdout and stderr). */
export function run(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', reject);
    // 'close', not 'exit': only then has all of the output been read.
    child.once('close', (code) => {
      if (code === 0) resolve(output);
      else reject(new Error(`${command} ${args.join(' ')} exited ${code}:\n${output}`));
    });
  });
}

async function clusterInfo(port: number): Promise<string> {
  const client = createClient({ socket: { port, host: '127.0.0.1', reconnectStrategy: false } });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return await client.sendCommand(['CLUSTER', 'INFO']);
  } finally {
    if (client.isOpen) client.destroy();
  }
}

/**
 * A real Redis Cluster of `masters` nodes (no replicas) on free ports, each in a
 * directory of its own with an append-only file, so that a node killed and started
 * again comes back with its keys and its slots, as a node of a real deployment does.
 */
export async function startRedisCluster({ masters = 3 } = {}): Promise<RedisClusterHandle> {
  const dir = await mkdtemp(join(tmpdir(), 'switchboard-cluster-'));
  const nodes: RedisServerHandle[] = [];
  const stop = async () => {
    await Promise.all(nodes.map((node) => node.stop()));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < masters; i++) {
      nodes.push(
        await startRedisServer({
          args: (port) => [
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            join(dir, `nodes-${port}.conf`),
            '--cluster-node-timeout',
            '2000',
            '--dir',
            dir,
            '--appendonly',
            'yes',
            '--appendfilename',
            `appendonly-${port}.aof`,
            '--appenddirname',
            `aof-${port}`,
            '--appendfsync',
            'always',
          ],
        }),
      );
    }
    await run('redis-cli', [
      '--cluster',
      'create',
      ...nodes.map((node) => `127.0.0.1:${node.port}`),
      '--cluster-replicas',
      '0',
      '--cluster-yes',
    ]);
    const handle: RedisClusterHandle = {
      nodes,
      urls: nodes.map((node) => node.url),
      async waitHealthy() {
        for (const node of nodes) {
          await waitFor(
            `cluster node ${node.port} ok`,
            async () => (await clusterInfo(node.port)).includes('cluster_state:ok') || undefined,
            { timeoutMs: 20_000 },
          );
        }
      },
      stop,
    };
    await handle.waitHealthy();
    return handle;
  } catch (error) {
    await stop();
    throw error;
  }
}
