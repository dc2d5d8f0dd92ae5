import { createClient, createCluster } from 'redis';
import { startRedisCluster, type RedisClusterHandle } from './redis-cluster.js';
import { startRedisSentinel, SENTINEL_MASTER, type RedisSentinelHandle } from './redis-sentinel.js';
import { startRedisServer } from './redis-server.js';

export type TopologyKind = 'standalone' | 'cluster' | 'sentinel';

/** A Redis deployment a test runs gateways against, whatever its shape. */
export interface TestTopology {
  readonly kind: TopologyKind;
  /** What a gateway needs to reach it (REDIS_URL, REDIS_CLUSTER_URLS or REDIS_SENTINEL_*). */
  readonly env: Record<string, string>;
  /** Runs `command` against every master (one on a single server or Sentinel), e.g. to look at keys. */
  onMasters<T>(command: (client: ReturnType<typeof createClient>) => Promise<T>): Promise<T[]>;
  /** Runs `command` with a client that routes like the gateway's (a cluster client on a Cluster). */
  withClient<T>(
    command: (client: ReturnType<typeof createClient> | ReturnType<typeof createCluster>) => Promise<T>,
  ): Promise<T>;
  /** The servers, for tests that kill or reshard them. */
  readonly cluster?: RedisClusterHandle;
  readonly sentinel?: RedisSentinelHandle;
  stop(): Promise<void>;
}

/** Connects `client`, runs `command` with it, and closes it whatever happened. */
async function using<C extends ReturnType<typeof createClient> | ReturnType<typeof createCluster>, T>(
  client: C,
  command: (client: C) => Promise<T>,
): Promise<T> {
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await command(client);
  } finally {
    await client.close();
  }
}

const onPort = <T>(port: number, command: (client: ReturnType<typeof createClient>) => Promise<T>): Promise<T> =>
  using(createClient({ socket: { host: '127.0.0.1', port, reconnectStrategy: false } }), command);

export async function startTopology(kind: TopologyKind): Promise<TestTopology> {
  if (kind === 'cluster') {
    const cluster = await startRedisCluster();
    return {
      kind,
      cluster,
      env: { REDIS_CLUSTER_URLS: cluster.urls.join(',') },
      onMasters: (command) => Promise.all(cluster.nodes.map((node) => onPort(node.port, command))),
      withClient: (command) => using(createCluster({ rootNodes: cluster.urls.map((url) => ({ url })) }), command),
      stop: () => cluster.stop(),
    };
  }
  if (kind === 'sentinel') {
    const sentinel = await startRedisSentinel();
    const master = () => sentinel.currentMaster();
    return {
      kind,
      sentinel,
      env: { REDIS_SENTINEL_URLS: sentinel.urls.join(','), REDIS_SENTINEL_MASTER: SENTINEL_MASTER },
      onMasters: async (command) => [await onPort(await master(), command)],
      withClient: async (command) => onPort(await master(), command),
      stop: () => sentinel.stop(),
    };
  }
  const server = await startRedisServer();
  return {
    kind,
    env: { REDIS_URL: server.url },
    onMasters: async (command) => [await onPort(server.port, command)],
    withClient: (command) => onPort(server.port, command),
    stop: () => server.stop(),
  };
}
