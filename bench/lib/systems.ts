import { createHmac } from 'node:crypto';
import { connect } from 'node:net';
import { performance } from 'node:perf_hooks';
import { startRedisServer, type RedisServerHandle } from '../../support/redis-server.js';
import { TEST_SECRETS } from '../../support/gateway-process.js';
import { JSON_HEADERS, openPool, runAll, type HttpConnection } from '../loadgen/http-client.js';
import { SocketClient } from '../loadgen/socket-client.js';
import { Samples } from '../loadgen/stats.js';
import {
  startBaseline,
  startFeatureEqual,
  startSwitchboard,
  track,
  type ServerProcess,
  type StartOptions,
} from './processes.js';

/** The two systems every comparative scenario runs: Switchboard and the seed-faithful baseline. */
export type SystemKind = 'switchboard' | 'baseline';
export const SYSTEMS: readonly SystemKind[] = ['baseline', 'switchboard'];
/**
 * Every server the bench starts: also the feature-equal baseline (bench/baseline/feature-equal.ts),
 * which the connections scenario measures beside the other two.
 */
export type ServerKind = SystemKind | 'featureEqual';

/** One HTTP request of the mint benchmark, pre-rendered. */
export interface HttpCall {
  path: string;
  headers: string;
  body: string;
  okStatus: number;
}

/** A Redis of its own for each system, so neither sees the other's traffic. */
export interface SystemRedis {
  readonly kind: ServerKind;
  readonly url: string;
  readonly pid: number;
  stop(): Promise<void>;
}

export async function startSystemRedis(kind: ServerKind): Promise<SystemRedis> {
  const server: RedisServerHandle = await startRedisServer();
  const stop = track(() => server.stop());
  try {
    return { kind, url: server.url, pid: await redisPid(server.port), stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Replicas of one system, started together. */
export interface System<Kind extends ServerKind = SystemKind> {
  readonly kind: Kind;
  readonly replicas: ServerProcess[];
  readonly redisPid: number;
  /** Server event after which a socket is usable (`session` carries the peers), if any. */
  readonly readyEvent: string | undefined;
  readonly mintCall: (user: string, room: string) => HttpCall;
  /** Stops replica `index` (SIGTERM, waits for the exit), then starts it again on its port, ready. */
  restart(index: number): Promise<void>;
  /** Starts one more replica. */
  addReplica(): Promise<void>;
  stop(): Promise<void>;
}

export interface SystemOptions {
  inspect?: boolean;
  /** Switchboard settings for every replica (the baselines have none). */
  env?: Record<string, string>;
}

const STARTERS: Record<ServerKind, (options: StartOptions) => Promise<ServerProcess>> = {
  switchboard: startSwitchboard,
  baseline: startBaseline,
  featureEqual: startFeatureEqual,
};
const MINT_CALLS: Record<ServerKind, (user: string, room: string) => HttpCall> = {
  switchboard: switchboardMint,
  baseline: baselineMint,
  featureEqual: featureEqualMint,
};

export async function startSystem<Kind extends ServerKind>(
  kind: Kind,
  redis: SystemRedis,
  replicas: number,
  options: SystemOptions = {},
): Promise<System<Kind>> {
  const start = STARTERS[kind];
  const startOptions = (i: number, port?: number): StartOptions => ({
    redisUrl: redis.url,
    keyPrefix: 'bench',
    name: `${kind}-${i}`,
    inspect: options.inspect ?? false,
    ...(options.env ? { env: options.env } : {}),
    ...(port === undefined ? {} : { port }),
  });
  // One replica after the other: several booting at once on a loaded machine miss their readiness deadline.
  const started: ServerProcess[] = [];
  try {
    for (let i = 0; i < replicas; i++) started.push(await start(startOptions(i)));
  } catch (error) {
    await Promise.all(started.map((process) => process.stop()));
    throw error;
  }
  return {
    kind,
    replicas: started,
    redisPid: redis.pid,
    readyEvent: kind === 'baseline' ? undefined : 'session',
    mintCall: MINT_CALLS[kind],
    async restart(index) {
      const replica = started[index];
      if (!replica) throw new Error(`${kind} has no replica ${index}`);
      await replica.stop();
      started[index] = await start(startOptions(index, replica.port));
    },
    async addReplica() {
      started.push(await start(startOptions(started.length)));
    },
    async stop() {
      await Promise.all(started.map((process) => process.stop()));
    },
  };
}

export interface SystemSpec {
  kind: SystemKind;
  redis: SystemRedis;
  replicas: number;
  options?: SystemOptions;
}

/**
 * Starts systems one after another (and each one's replicas one after the other), so that a
 * loaded machine boots one process at a time rather than all of them against their
 * readiness timeouts; if one fails, the ones already started are stopped.
 */
export async function startSystems(specs: SystemSpec[]): Promise<System[]> {
  const systems: System[] = [];
  try {
    for (const { kind, redis, replicas, options } of specs)
      systems.push(await startSystem(kind, redis, replicas, options));
    return systems;
  } catch (error) {
    await Promise.all(systems.map((system) => system.stop()));
    throw error;
  }
}

const accessTokens = new Map<string, string>();

/**
 * The room grants every bench user's access JWT carries (Switchboard runs ROOM_ACCESS=grants,
 * as in production): a few rooms of its own and team patterns, as an app would list them,
 * with a catch-all last, so each mint scans the whole claim before it matches.
 */
export const BENCH_GRANTS: Record<string, string[]> = {
  ...Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`consult-${i}`, ['publish']])),
  'team-*': ['publish'],
  'team-archive-*': [],
  '*': ['publish'],
};

/** An access JWT for `user`, signed as the app's login would (HS256, one hour). */
export function accessToken(user: string): string {
  let token = accessTokens.get(user);
  if (!token) {
    token = signAccessJwt({ sub: user, rooms: BENCH_GRANTS });
    accessTokens.set(user, token);
  }
  return token;
}

/** A backend's service JWT with scope `publish`, for `POST /api/rooms/:room/events`. */
export function serviceToken(): string {
  return signAccessJwt({ sub: 'bench-service', scope: 'publish' });
}

function signAccessJwt(claims: Record<string, unknown>): string {
  const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const unsigned = `${encode({ alg: 'HS256', typ: 'JWT' })}.${encode({ ...claims, iat: now, exp: now + 3600 })}`;
  const signature = createHmac('sha256', TEST_SECRETS.JWT_SECRET).update(unsigned).digest('base64url');
  return `${unsigned}.${signature}`;
}

function switchboardMint(user: string, room: string): HttpCall {
  return {
    path: '/api/rtc/tokens',
    headers: `Authorization: Bearer ${accessToken(user)}\r\n${JSON_HEADERS}`,
    body: JSON.stringify({ room }),
    okStatus: 201,
  };
}

function baselineMint(user: string, room: string): HttpCall {
  return { path: '/token', headers: JSON_HEADERS, body: JSON.stringify({ room, userId: user }), okStatus: 200 };
}

function featureEqualMint(user: string, room: string): HttpCall {
  return {
    path: '/token',
    headers: `Authorization: Bearer ${accessToken(user)}\r\n${JSON_HEADERS}`,
    body: JSON.stringify({ room }),
    okStatus: 200,
  };
}

/** The baseline's no-op JSON endpoint, same body as its mint. */
export function bareCall(user: string, room: string): HttpCall {
  return { path: '/bare', headers: JSON_HEADERS, body: JSON.stringify({ room, userId: user }), okStatus: 200 };
}

export async function mintOne(connection: HttpConnection, call: HttpCall): Promise<string> {
  const response = await connection.request('POST', call.path, call.headers, call.body);
  if (response.status !== call.okStatus) {
    throw new Error(`mint ${call.path} answered ${response.status}: ${response.body.toString()}`);
  }
  return (JSON.parse(response.body.toString()) as { token: string }).token;
}

/** Mints one token per (user, room), through `replica`, `concurrency` at a time. */
export async function mintMany(
  system: System<ServerKind>,
  replica: ServerProcess,
  requests: Array<{ user: string; room: string }>,
  concurrency = 16,
): Promise<string[]> {
  const pool = openPool(replica.host, replica.port, Math.min(concurrency, Math.max(1, requests.length)));
  try {
    return await runAll(pool, requests.length, (connection, i) => {
      const request = requests[i] as { user: string; room: string };
      return mintOne(connection, system.mintCall(request.user, request.room));
    });
  } finally {
    pool.close();
  }
}

export interface ConnectResult {
  /** One per token, in order; fewer when `signal` stopped the run early. */
  clients: SocketClient[];
  /** Handshake latencies (connect until usable), ms. */
  latencies: Samples;
  failures: number;
  firstError: string | undefined;
  elapsedMs: number;
}

export interface ConnectOptions {
  /** Every packet each socket receives from its ready event on (see SocketClientOptions). */
  onPacket?: (packet: Buffer) => void;
  /** Starts no further handshake once aborted; the ones under way finish. */
  signal?: AbortSignal;
  /** Connects to this namespace, ready on its CONNECT ack (the seed-faithful baseline's `/bare`). */
  namespace?: string;
}

/**
 * Opens one socket per token, to `targets[i]`, `concurrency` handshakes at a time.
 * A socket counts as connected once usable: after the CONNECT ack, or after the
 * system's ready event (Switchboard's `session`, which waits for presence).
 */
export async function connectMany(
  system: System<ServerKind>,
  targets: ServerProcess[],
  tokens: string[],
  concurrency: number,
  options: ConnectOptions = {},
): Promise<ConnectResult> {
  const clients = new Array<SocketClient>(tokens.length);
  const latencies = new Samples();
  let failures = 0;
  let firstError: string | undefined;
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(concurrency, tokens.length) }, async () => {
      while (next < tokens.length && !options.signal?.aborted) {
        const i = next++;
        const target = targets[i] as ServerProcess;
        const begun = performance.now();
        const client = new SocketClient({
          host: target.host,
          port: target.port,
          auth: { token: tokens[i] },
          ...(options.namespace ? { namespace: options.namespace } : {}),
          ...(system.readyEvent && !options.namespace ? { readyEvent: system.readyEvent } : {}),
          ...(options.onPacket ? { onPacket: options.onPacket } : {}),
        });
        clients[i] = client;
        try {
          await client.ready;
          latencies.push(performance.now() - begun);
        } catch (error) {
          failures++;
          firstError ??= error instanceof Error ? error.message : String(error);
        }
      }
    }),
  );
  return { clients: clients.slice(0, next), latencies, failures, firstError, elapsedMs: performance.now() - started };
}

/** The pid of a redis-server, from `INFO server`. */
function redisPid(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('redis INFO timed out'));
    }, 5_000);
    socket.on('connect', () => socket.write('INFO server\r\n'));
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const match = /process_id:(\d+)\r\n/.exec(text);
      if (match) {
        clearTimeout(timer);
        socket.destroy();
        resolve(Number(match[1]));
      }
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}
