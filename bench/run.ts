/**
 * `npm run bench [-- --quick] [-- --out <dir>] [-- --chart <file>]`
 * `npm run bench -- --circuit`: only the silent-Redis scenario (publishes with the circuit open).
 * One scenario alone, printing its table and goals (build first; add --quick for small sizes):
 * `--handshakes` connections with the feature-equal baseline, `--join-cost` join cost by room
 * size, `--three-rooms` three rooms per user, `--idempotent` publishes with idempotency keys,
 * `--webhooks` lifecycle webhooks on against off.
 *
 * Measures Switchboard against a hand-written Socket.IO + @socket.io/redis-adapter
 * baseline, side by side in one run on one machine: token mint, room fan-out,
 * connections (handshake rate, server CPU per handshake, heap per socket; also against a
 * feature-equal baseline with signed single-use tokens, Redis presence, `session` with the
 * peers and `peer:joined`), cross-replica latency, publish latency with and without room
 * history, a replica with no member in a busy room, a rolling restart, and (Switchboard
 * only) Redis memory of a full room history, join cost by room size (10, 1,000, 10,000),
 * three rooms per user on one socket against three, publish latency and fan-out with
 * idempotency keys, and handshake cost and outbox lag with webhooks on. Each system gets
 * its own redis-server on a free port; every process and socket the bench opens is closed
 * before it exits.
 *
 * Writes `<out>/latest.json` (out: bench/results, or a temp dir with --quick) and
 * the fan-out latency chart (docs/bench-fanout-latency.svg, or <out>/ with --quick).
 * --quick is the CI smoke run: small sizes, and it fails only when a scenario
 * produced no figures. The goals are judged, not enforced.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, release, tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { FULL, QUICK, type BenchConfig } from './lib/config.js';
import { REPO_ROOT, stopEverything } from './lib/processes.js';
import { startSystemRedis, SYSTEMS, type ServerKind, type SystemRedis } from './lib/systems.js';
import { fanoutLatencyChart } from './report/chart.js';
import {
  evaluateGoals,
  goalTable,
  handshakeCpuGoal,
  headline,
  idempotentPublishGoals,
  idempotentPublishTable,
  joinCostGoals,
  joinCostTable,
  renderTables,
  threeRoomsGoals,
  threeRoomsTable,
  webhooksGoals,
  webhooksTable,
  type BenchResults,
  type Figures,
  type Goal,
} from './report/table.js';
import { runCircuit } from './scenarios/circuit.js';
import { runConnections, type ConnectionsResult } from './scenarios/connections.js';
import { runIdempotentPublish } from './scenarios/idempotent-publish.js';
import { runJoinCost } from './scenarios/join-cost.js';
import { runThreeRooms } from './scenarios/three-rooms.js';
import { runWebhooks } from './scenarios/webhooks.js';
import { runMint } from './scenarios/mint.js';
import { runRooms } from './scenarios/rooms.js';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    out: { type: 'string' },
    chart: { type: 'string' },
    circuit: { type: 'boolean', default: false },
    handshakes: { type: 'boolean', default: false },
    'join-cost': { type: 'boolean', default: false },
    'three-rooms': { type: 'boolean', default: false },
    idempotent: { type: 'boolean', default: false },
    webhooks: { type: 'boolean', default: false },
  },
});

const log = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

/** Every numeric figure must be a finite number, and each scenario must have moved traffic. */
function missingFigures(figures: Figures): string[] {
  const problems: string[] = [];
  const walk = (value: unknown, path: string): void => {
    if (typeof value === 'number') {
      if (!Number.isFinite(value)) problems.push(`${path} is ${value}`);
    } else if (Array.isArray(value)) value.forEach((item, i) => walk(item, `${path}[${i}]`));
    else if (typeof value === 'object' && value !== null) {
      for (const [key, item] of Object.entries(value)) walk(item, `${path}.${key}`);
    }
  };
  walk(figures, 'figures');
  for (const kind of SYSTEMS) {
    if (!(figures.mint[kind].requestsPerSecond > 0)) problems.push(`mint.${kind} made no requests`);
    if (!(figures.connections[kind].sockets > 0)) problems.push(`connections.${kind} connected nothing`);
    if (!(figures.connections[kind].heapBytesPerSocket > 0)) problems.push(`connections.${kind} has no heap figure`);
    for (const point of figures.fanout.points) {
      if (!(point[kind].deliveriesPerSecond > 0)) problems.push(`fanout.${kind}@${point[kind].rate} delivered nothing`);
    }
    if (!(figures.latency[kind].samples > 0)) problems.push(`latency.${kind} has no samples`);
    if (!(figures.idleReplica[kind].deliveriesPerSecond > 0)) problems.push(`idleReplica.${kind} delivered nothing`);
    if (!(figures.rollingRestart[kind].published > 0)) problems.push(`rollingRestart.${kind} published nothing`);
  }
  for (const variant of ['baseline', 'historyOn', 'historyOff'] as const) {
    const measured = figures.publishLatency[variant];
    if (!(measured.ackSamples > 0 && measured.deliverySamples > 0))
      problems.push(`publishLatency.${variant} has no samples`);
  }
  if (figures.idleReplica.switchboard.idleRoomChannelBytesPerSecond === undefined) {
    problems.push('idleReplica.switchboard has no room-channel figure');
  }
  if (!(figures.historyMemory.bytesPerRoom > 0)) problems.push('historyMemory measured nothing');
  if (!(figures.circuit.samples > 0)) problems.push('circuit has no samples');
  if (!(figures.mint.bare.requestsPerSecond > 0)) problems.push('mint.bare made no requests');
  if (!(figures.connections.featureEqual.sockets > 0)) problems.push('connections.featureEqual connected nothing');
  if (!(figures.connections.socketIoFloor.sockets > 0)) problems.push('connections.socketIoFloor connected nothing');
  for (const fill of ['small', 'large', 'smallOnTwo', 'huge'] as const) {
    if (!(figures.joinCost[fill].joined > 0)) problems.push(`joinCost.${fill} joined nothing`);
  }
  for (const mode of ['oneSocket', 'threeSockets'] as const) {
    if (!(figures.threeRooms[mode].sockets > 0)) problems.push(`threeRooms.${mode} connected nothing`);
  }
  for (const variant of ['withKeys', 'withoutKeys'] as const) {
    if (!figures.idempotentPublish[variant].rounds.every((round) => round.ackSamples > 0))
      problems.push(`idempotentPublish.${variant} has no samples`);
  }
  if (!(figures.idempotentPublish.fanout.withKeys.deliveriesPerSecond > 0))
    problems.push('idempotentPublish.fanout delivered nothing');
  for (const variant of ['on', 'off'] as const) {
    if (!(figures.webhooks[variant].joins > 0)) problems.push(`webhooks.${variant} joined nothing`);
  }
  if (figures.fanout.points.length === 0) problems.push('fanout has no points');
  return problems;
}

/** `--circuit`: the silent-Redis scenario alone, three times (its figures move with the machine's load). */
async function circuitOnly(config: BenchConfig): Promise<number> {
  const redis = await startSystemRedis('switchboard');
  try {
    for (let run = 1; run <= 3; run++) {
      const c = await runCircuit(redis, config);
      log(
        `run ${run}: circuit open after ${c.detectedMs} ms (REDIS_UNRESPONSIVE_AFTER_MS=${c.unresponsiveAfterMs}); ` +
          `${c.samples} publishes each: Redis answering p50 / p99 ${c.connectedP50Ms} / ${c.connectedP99Ms} ms, ` +
          `circuit open ${c.openP50Ms} / ${c.openP99Ms} ms (${c.openShared} shared); ` +
          `/healthz ${c.healthP50Ms} / ${c.healthP99Ms} ms`,
      );
    }
  } finally {
    await redis.stop();
  }
  return 0;
}

function logConnections(connections: ConnectionsResult): void {
  for (const kind of ['baseline', 'featureEqual', 'switchboard', 'socketIoFloor'] as const) {
    const c = connections[kind];
    log(
      `  ${kind}: ${c.handshakesPerSecond} handshakes/s, ${c.cpuMicrosPerHandshake} µs server CPU/handshake, ` +
        `${c.heapBytesPerSocket} heap bytes/socket, ${c.failures} failures`,
    );
  }
}

/** What a scenario run alone prints after its progress lines: its table, and the goals it judges. */
interface Report {
  lines: string[];
  goals: Goal[];
}

/** A scenario that runs alone with its flag, on Redis servers of the kinds it names. */
interface Piece {
  kinds: ServerKind[];
  run(redis: Record<ServerKind, SystemRedis>, config: BenchConfig): Promise<Report>;
}

const PIECES = {
  handshakes: {
    kinds: ['baseline', 'featureEqual', 'switchboard'],
    async run(redis, config) {
      const connections = await runConnections(redis, config);
      logConnections(connections);
      return { lines: [], goals: [handshakeCpuGoal(connections)] };
    },
  },
  'join-cost': {
    kinds: ['switchboard'],
    async run(redis, config) {
      const joinCost = await runJoinCost(redis.switchboard, config, log);
      return { lines: joinCostTable(joinCost), goals: joinCostGoals(joinCost) };
    },
  },
  'three-rooms': {
    kinds: ['switchboard'],
    async run(redis, config) {
      const threeRooms = await runThreeRooms(redis.switchboard, config, log);
      return { lines: threeRoomsTable(threeRooms), goals: threeRoomsGoals(threeRooms) };
    },
  },
  idempotent: {
    kinds: ['baseline', 'switchboard'],
    async run(redis, config) {
      const result = await runIdempotentPublish(redis, config, log);
      return { lines: idempotentPublishTable(result), goals: idempotentPublishGoals(result) };
    },
  },
  webhooks: {
    kinds: [],
    async run(_redis, config) {
      const webhooks = await runWebhooks(config, log);
      return { lines: webhooksTable(webhooks), goals: webhooksGoals(webhooks) };
    },
  },
} satisfies Record<string, Piece>;

async function pieceOnly(name: keyof typeof PIECES, config: BenchConfig): Promise<number> {
  const piece: Piece = PIECES[name];
  const redis: Partial<Record<ServerKind, SystemRedis>> = {};
  let report: Report;
  try {
    for (const kind of piece.kinds) redis[kind] = await startSystemRedis(kind);
    report = await piece.run(redis as Record<ServerKind, SystemRedis>, config);
  } finally {
    await Promise.all(Object.values(redis).map((server) => server.stop()));
  }
  log('');
  if (report.lines.length > 0) log(`${report.lines.join('\n')}\n`);
  log(goalTable(report.goals).join('\n'));
  return 0;
}

async function main(): Promise<number> {
  const config = args.quick ? QUICK : FULL;
  if (args.circuit) return circuitOnly(config);
  const only = (Object.keys(PIECES) as Array<keyof typeof PIECES>).find((name) => args[name]);
  if (only && !existsSync(join(REPO_ROOT, 'backend/dist/main.js'))) {
    throw new Error('backend/dist/main.js is missing: run `npm run build` first');
  }
  if (only) return pieceOnly(only, config);
  if (!existsSync(join(REPO_ROOT, 'backend/dist/main.js'))) {
    throw new Error('backend/dist/main.js is missing: run `npm run build` first (npm run bench does)');
  }
  const started = Date.now();
  const outDir = resolve(
    args.out ?? (args.quick ? await mkdtemp(join(tmpdir(), 'switchboard-bench-')) : join(REPO_ROOT, 'bench/results')),
  );
  const chartPath = resolve(
    args.chart ??
      (args.quick ? join(outDir, 'bench-fanout-latency.svg') : join(REPO_ROOT, 'docs/bench-fanout-latency.svg')),
  );
  const machine = {
    cores: availableParallelism(),
    cpu: cpus()[0]?.model.trim() ?? 'unknown',
    node: process.version,
    kernel: release(),
  };
  log(
    `switchboard bench (${args.quick ? 'quick' : 'full'}): ${machine.cores} cores, ${machine.cpu}, node ${machine.node}`,
  );

  const redis: Partial<Record<ServerKind, SystemRedis>> = {};
  let figures: Figures;
  try {
    for (const kind of [...SYSTEMS, 'featureEqual'] as const) redis[kind] = await startSystemRedis(kind);
    const redisByKind = redis as Record<ServerKind, SystemRedis>;
    log('token mint…');
    const mint = await runMint(redisByKind, config);
    log(
      `  mint: baseline ${mint.baseline.requestsPerSecond}/s, switchboard ${mint.switchboard.requestsPerSecond}/s ` +
        `(open: ${mint.switchboardOpen.requestsPerSecond}/s; one grant check ${mint.grantCheckMicros} µs), ` +
        `bare express ${mint.bare.requestsPerSecond}/s`,
    );
    log('publishes with the Redis circuit open…');
    const circuit = await runCircuit(redisByKind.switchboard, config);
    log(
      `  circuit: open after ${circuit.detectedMs} ms; publish p50 / p99 ${circuit.openP50Ms} / ${circuit.openP99Ms} ms ` +
        `(Redis answering: ${circuit.connectedP50Ms} / ${circuit.connectedP99Ms} ms)`,
    );
    log('connections…');
    const connections = await runConnections(redisByKind, config);
    logConnections(connections);
    log('join cost by room size…');
    const joinCost = await runJoinCost(redisByKind.switchboard, config, log);
    log('rooms: fan-out, cross-replica latency, publish latency, history memory, idle replica, rolling restart…');
    const rooms = await runRooms(redisByKind, config, log);
    log('three rooms per user…');
    const threeRooms = await runThreeRooms(redisByKind.switchboard, config, log);
    log('idempotent publish…');
    const idempotentPublish = await runIdempotentPublish(redisByKind, config, log, headline(rooms.fanout).baseline);
    log('webhooks…');
    const webhooks = await runWebhooks(config, log);
    figures = { mint, circuit, connections, joinCost, ...rooms, threeRooms, idempotentPublish, webhooks };
  } finally {
    await Promise.all(Object.values(redis).map((server) => server.stop()));
  }

  const goals = evaluateGoals(figures);
  const command = `npm run bench${args.quick ? ' -- --quick' : ''}`;
  const results: BenchResults = {
    meta: {
      date: new Date(started).toISOString(),
      command,
      quick: config.quick,
      durationSeconds: Math.round((Date.now() - started) / 1000),
      machine,
    },
    config,
    figures,
    goals,
  };
  await mkdir(outDir, { recursive: true });
  const jsonPath = join(outDir, 'latest.json');
  await writeFile(jsonPath, `${JSON.stringify(results, null, 2)}\n`);
  const subtitle = `${results.meta.date.slice(0, 10)} · ${machine.cores} cores, ${machine.cpu} · node ${machine.node} · ${command}`;
  await mkdir(resolve(chartPath, '..'), { recursive: true });
  await writeFile(chartPath, fanoutLatencyChart(figures.fanout, subtitle));

  log('');
  log(renderTables(figures, goals));
  log('');
  log(`results: ${relative(process.cwd(), jsonPath) || jsonPath}`);
  log(`chart:   ${relative(process.cwd(), chartPath) || chartPath}`);
  log(`took ${results.meta.durationSeconds} s`);

  const problems = missingFigures(figures);
  if (problems.length > 0) {
    log(`\nscenarios without figures:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
    return 1;
  }
  return 0;
}

// A closed pipe (`npm run bench | head`) must not end the run before its cleanup.
process.stdout.on('error', () => undefined);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`\n${signal}: stopping every process the bench started`);
    void stopEverything().finally(() => process.exit(130));
  });
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  },
);
