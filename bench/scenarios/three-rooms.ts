import { setTimeout as sleep } from 'node:timers/promises';
import type { BenchConfig } from '../lib/config.js';
import { CpuMeter, type ServerProcess } from '../lib/processes.js';
import { connectMany, mintMany, startSystem, type System, type SystemRedis } from '../lib/systems.js';
import type { SocketClient } from '../loadgen/socket-client.js';
import { round } from '../loadgen/stats.js';
import { waitForIdle } from './join-cost.js';

export interface ThreeRoomsFigures {
  sockets: number;
  /** Users in all three of their rooms. */
  users: number;
  /** CPU time of the replica from the first handshake until every user is in its three rooms, per user. */
  cpuMicrosPerUser: number;
  redisMicrosPerUser: number;
  /** (heap after − heap before) / users, both after forced full GCs. */
  heapBytesPerUser: number;
  /** Handshakes or `room:join`s refused or lost. */
  failures: number;
  firstError?: string;
}

export interface ThreeRoomsResult {
  users: number;
  roomSize: number;
  /** The old behaviour: one socket per room, a handshake each. */
  threeSockets: ThreeRoomsFigures;
  /** One socket per user: the handshake joins the first room, `room:join` the other two. */
  oneSocket: ThreeRoomsFigures;
}

/** The user's three rooms (a lobby, a call, a feed), each of `roomSize` members, mixed differently. */
function roomsOf(user: number, users: number, roomSize: number): [string, string, string] {
  const groups = Math.max(1, Math.floor(users / roomSize));
  return [
    `lobby-${Math.floor(user / roomSize)}`,
    `call-${user % groups}`,
    // 7 is coprime with the bench's user counts, so this is another grouping of them.
    `feed-${Math.floor(((user * 7) % users) / roomSize)}`,
  ];
}

/**
 * `users` users in three rooms each on one Switchboard replica, twice on fresh replicas:
 * three sockets per user (the old behaviour, the baseline here), then one socket per user
 * that joins its second and third room with `room:join`. Server CPU from the first handshake
 * until every user is in, and heap per user once the sockets have settled.
 */
export async function runThreeRooms(
  redis: SystemRedis,
  config: BenchConfig,
  progress: (line: string) => void,
): Promise<ThreeRoomsResult> {
  const { users, roomSize } = config.threeRooms;
  const threeSockets = await measure(redis, config, 'three');
  progress(
    `  three sockets per user: ${threeSockets.cpuMicrosPerUser} µs CPU/user, ${threeSockets.heapBytesPerUser} heap bytes/user`,
  );
  const oneSocket = await measure(redis, config, 'one');
  progress(
    `  one socket per user: ${oneSocket.cpuMicrosPerUser} µs CPU/user, ${oneSocket.heapBytesPerUser} heap bytes/user`,
  );
  return { users, roomSize, threeSockets, oneSocket };
}

async function measure(redis: SystemRedis, config: BenchConfig, mode: 'one' | 'three'): Promise<ThreeRoomsFigures> {
  const { users, roomSize, concurrency, settleMs } = config.threeRooms;
  const system = await startSystem('switchboard', redis, 1, { inspect: true });
  const server = system.replicas[0] as ServerProcess;
  const clients: SocketClient[] = [];
  try {
    const inspector = await server.inspector();
    await warmUp(system, config);
    const tag = `three-${mode}-${Date.now().toString(36)}`;
    const requests = Array.from({ length: users }, (_, user) =>
      roomsOf(user, users, roomSize).map((room) => ({ user: `${tag}-${user}`, room: `${tag}-${room}` })),
    ).flat();
    const tokens = await mintMany(system, server, requests);
    const heapBefore = await inspector.heapUsedAfterGc();
    const meter = new CpuMeter([server.pid, system.redisPid]);
    let failures: number;
    let firstError: string | undefined;
    if (mode === 'three') {
      const result = await connectMany(
        system,
        tokens.map(() => server),
        tokens,
        concurrency,
      );
      clients.push(...result.clients);
      failures = result.failures;
      firstError = result.firstError;
    } else {
      const first = tokens.filter((_, i) => i % 3 === 0);
      const result = await connectMany(
        system,
        first.map(() => server),
        first,
        concurrency,
      );
      clients.push(...result.clients);
      const joins = await joinRooms(
        result.clients,
        (user) => [tokens[user * 3 + 1] as string, tokens[user * 3 + 2] as string],
        concurrency,
      );
      failures = result.failures + joins.failures;
      firstError = result.firstError ?? joins.firstError;
    }
    const [serverMicros = 0, redisMicros = 0] = meter.read();
    await sleep(settleMs);
    const heapAfter = await inspector.heapUsedAfterGc();
    return {
      sockets: clients.length,
      users,
      cpuMicrosPerUser: round(serverMicros / users, 1),
      redisMicrosPerUser: round(redisMicros / users, 1),
      heapBytesPerUser: round((heapAfter - heapBefore) / users, 0),
      failures,
      ...(firstError ? { firstError } : {}),
    };
  } finally {
    for (const client of clients) client.close();
    await system.stop();
  }
}

/** Each client joins its further rooms with `room:join`, one after the other; `concurrency` clients at a time. */
async function joinRooms(
  clients: SocketClient[],
  tokensOf: (index: number) => string[],
  concurrency: number,
): Promise<{ failures: number; firstError: string | undefined }> {
  let failures = 0;
  let firstError: string | undefined;
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, clients.length) }, async () => {
      while (next < clients.length) {
        const index = next++;
        const client = clients[index] as SocketClient;
        for (const token of tokensOf(index)) {
          try {
            const answer = (await client.request('room:join', { token })) as {
              ok?: boolean;
              error?: { code?: string };
            };
            if (answer.ok !== true) throw new Error(`room:join refused: ${answer.error?.code ?? 'no code'}`);
          } catch (error) {
            failures++;
            firstError ??= error instanceof Error ? error.message : String(error);
          }
        }
      }
    }),
  );
  return { failures, firstError };
}

/**
 * Runs the handshake and `room:join` once on the replica so that the measured users run
 * on optimized code. The old behaviour measured first gets its `room:join` warmed too:
 * both modes start equally warm.
 */
async function warmUp(system: System, config: BenchConfig): Promise<void> {
  const { warmupUsers, roomSize, concurrency } = config.threeRooms;
  const server = system.replicas[0] as ServerProcess;
  const requests = Array.from({ length: warmupUsers }, (_, i) =>
    ['a', 'b'].map((room) => ({ user: `warm-${i}`, room: `warm-${room}-${Math.floor(i / roomSize)}` })),
  ).flat();
  const tokens = await mintMany(system, server, requests);
  const first = tokens.filter((_, i) => i % 2 === 0);
  const warm = await connectMany(
    system,
    first.map(() => server),
    first,
    concurrency,
  );
  await joinRooms(warm.clients, (user) => [tokens[user * 2 + 1] as string], concurrency);
  for (const client of warm.clients) client.close();
  await waitForIdle(system);
}
