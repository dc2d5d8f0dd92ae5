import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from 'redis';
import { waitFor } from './ports.js';
import { startRedisServer, type RedisServerHandle } from './redis-server.js';

export const SENTINEL_MASTER = 'switchboard';

export interface RedisSentinelHandle {
  readonly master: RedisServerHandle;
  readonly replica: RedisServerHandle;
  readonly sentinel: RedisServerHandle;
  /** REDIS_SENTINEL_URLS */
  readonly urls: string[];
  /** The address the sentinel names as master now. */
  currentMaster(): Promise<number>;
  stop(): Promise<void>;
}

async function ask(port: number, args: string[]): Promise<unknown> {
  const client = createClient({ socket: { port, host: '127.0.0.1', reconnectStrategy: false } });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return await client.sendCommand(args);
  } finally {
    if (client.isOpen) client.destroy();
  }
}

/**
 * A real Sentinel deployment: a master, a replica (`--replicaof`) and one sentinel
 * (quorum 1) that declares the master down after 1 s and fails over, as the manuals
 * describe, in about 5 s on this kind of machine.
 */
export async function startRedisSentinel(): Promise<RedisSentinelHandle> {
  const dir = await mkdtemp(join(tmpdir(), 'switchboard-sentinel-'));
  const servers: RedisServerHandle[] = [];
  const stop = async () => {
    await Promise.all(servers.map((server) => server.stop()));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const master = await startRedisServer();
    servers.push(master);
    const replica = await startRedisServer({ args: () => ['--replicaof', '127.0.0.1', String(master.port)] });
    servers.push(replica);
    await waitFor(
      'replica in sync',
      async () =>
        String(await ask(replica.port, ['INFO', 'replication'])).includes('master_link_status:up') || undefined,
    );
    const sentinel = await startRedisServer({
      sentinelConfig: async (port) => {
        // Sentinel rewrites its config file, so it must be a writable file of its own.
        const file = join(dir, `sentinel-${port}.conf`);
        await writeFile(
          file,
          [
            `sentinel monitor ${SENTINEL_MASTER} 127.0.0.1 ${master.port} 1`,
            `sentinel down-after-milliseconds ${SENTINEL_MASTER} 1000`,
            `sentinel failover-timeout ${SENTINEL_MASTER} 3000`,
            `sentinel parallel-syncs ${SENTINEL_MASTER} 1`,
            '',
          ].join('\n'),
        );
        return file;
      },
    });
    servers.push(sentinel);
    const currentMaster = async () => {
      const reply = await ask(sentinel.port, ['SENTINEL', 'get-master-addr-by-name', SENTINEL_MASTER]);
      return Number((reply as string[])[1]);
    };
    // The sentinel knows the replica once it has asked the master about it.
    await waitFor(
      'sentinel sees the replica',
      async () => {
        const replicas = (await ask(sentinel.port, ['SENTINEL', 'replicas', SENTINEL_MASTER])) as unknown[];
        return replicas.length === 1 || undefined;
      },
      { timeoutMs: 20_000 },
    );
    return { master, replica, sentinel, urls: [sentinel.url], currentMaster, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
