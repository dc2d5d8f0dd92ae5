import type { BenchConfig } from '../lib/config.js';
import { CpuMeter, type ServerProcess } from '../lib/processes.js';
import { connectMany, mintMany, startSystem, type ServerKind, type SystemRedis } from '../lib/systems.js';
import type { SocketClient } from '../loadgen/socket-client.js';
import { round } from '../loadgen/stats.js';

export interface ConnectionFigures {
  sockets: number;
  /** Handshakes completed per second, token redemption included. */
  handshakesPerSecond: number;
  handshakeP50Ms: number;
  handshakeP99Ms: number;
  /** CPU time of the replica, and of its Redis, while the sockets connected, per socket. */
  cpuMicrosPerHandshake: number;
  redisMicrosPerHandshake: number;
  /** (heap after − heap before) / sockets, both read after forced full GCs. */
  heapBytesPerSocket: number;
  heapBeforeBytes: number;
  heapAfterBytes: number;
  failures: number;
  firstError?: string;
}

export type ConnectionsResult = Record<ServerKind, ConnectionFigures> & {
  /**
   * Socket.IO's own handshake: the seed-faithful server's `/bare` namespace, with no
   * middleware, no token and nothing on connect. No server on Socket.IO costs less.
   */
  socketIoFloor: ConnectionFigures;
  concurrency: number;
  roomSize: number;
};

/** Measured one after the other, in this order. */
const KINDS: readonly ServerKind[] = ['baseline', 'featureEqual', 'switchboard'];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `namespace`: connect there without tokens (the Socket.IO floor) rather than to `/` with minted ones. */
async function measure(
  kind: ServerKind,
  redis: SystemRedis,
  config: BenchConfig,
  namespace?: string,
): Promise<ConnectionFigures> {
  const { sockets, concurrency, roomSize, warmupSockets, settleMs } = config.connections;
  const system = await startSystem(kind, redis, 1, { inspect: true });
  const server = system.replicas[0] as ServerProcess;
  const mint = (specs: Array<{ user: string; room: string }>): Promise<string[]> =>
    namespace ? Promise.resolve(specs.map(() => '')) : mintMany(system, server, specs);
  const connectOptions = namespace ? { namespace } : {};
  const targets = Array.from({ length: sockets }, () => server);
  const clients: SocketClient[] = [];
  try {
    const inspector = await server.inspector();
    // Warm the handshake path so that the measured sockets run on optimized code.
    const warmTokens = await mint(
      Array.from({ length: warmupSockets }, (_, i) => ({
        user: `warm-${i}`,
        room: `warm-${Math.floor(i / roomSize)}`,
      })),
    );
    const warm = await connectMany(system, targets, warmTokens, concurrency, connectOptions);
    for (const client of warm.clients) client.close();
    await sleep(500);

    const tokens = await mint(
      Array.from({ length: sockets }, (_, i) => ({ user: `conn-${i}`, room: `conn-${Math.floor(i / roomSize)}` })),
    );
    const heapBefore = await inspector.heapUsedAfterGc();
    const meter = new CpuMeter([server.pid, system.redisPid]);
    const result = await connectMany(system, targets, tokens, concurrency, connectOptions);
    const [serverMicros = 0, redisMicros = 0] = meter.read();
    clients.push(...result.clients);
    // Let per-socket work that follows the handshake (presence, heartbeats) settle.
    await sleep(settleMs);
    const heapAfter = await inspector.heapUsedAfterGc();
    const connected = sockets - result.failures;
    const summary = result.latencies.summary();
    return {
      sockets: connected,
      handshakesPerSecond: round((connected * 1000) / result.elapsedMs, 0),
      handshakeP50Ms: round(summary.p50, 2),
      handshakeP99Ms: round(summary.p99, 2),
      cpuMicrosPerHandshake: round(serverMicros / Math.max(1, connected), 1),
      redisMicrosPerHandshake: round(redisMicros / Math.max(1, connected), 1),
      heapBytesPerSocket: round((heapAfter - heapBefore) / Math.max(1, connected), 0),
      heapBeforeBytes: heapBefore,
      heapAfterBytes: heapAfter,
      failures: result.failures,
      ...(result.firstError ? { firstError: result.firstError } : {}),
    };
  } finally {
    for (const client of clients) client.close();
    await system.stop();
  }
}

/**
 * Handshake rate with token redemption, server CPU per handshake, and heap per connected
 * socket, one system at a time: the seed-faithful baseline, the feature-equal one, Switchboard,
 * then Socket.IO alone (the floor under all three).
 */
export async function runConnections(
  redis: Record<ServerKind, SystemRedis>,
  config: BenchConfig,
): Promise<ConnectionsResult> {
  const figures: Partial<Record<ServerKind, ConnectionFigures>> = {};
  for (const kind of KINDS) figures[kind] = await measure(kind, redis[kind], config);
  const socketIoFloor = await measure('baseline', redis.baseline, config, '/bare');
  return {
    socketIoFloor,
    concurrency: config.connections.concurrency,
    roomSize: config.connections.roomSize,
    ...(figures as Record<ServerKind, ConnectionFigures>),
  };
}
