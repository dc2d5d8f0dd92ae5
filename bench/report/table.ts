import type { BenchConfig } from '../lib/config.js';
import type { CircuitResult } from '../scenarios/circuit.js';
import type { ConnectionsResult } from '../scenarios/connections.js';
import type { HistoryMemoryResult } from '../scenarios/history-memory.js';
import type { IdempotentPublishResult } from '../scenarios/idempotent-publish.js';
import type { JoinCostFigures, JoinCostResult } from '../scenarios/join-cost.js';
import type { ThreeRoomsResult } from '../scenarios/three-rooms.js';
import type { WebhooksResult } from '../scenarios/webhooks.js';
import type { MintResult } from '../scenarios/mint.js';
import type { PublishLatencyFigures, PublishLatencyResult } from '../scenarios/publish-latency.js';
import type { IdleReplicaResult, RollingRestartResult } from '../scenarios/replicas.js';
import type { RollingRestartFigures } from '../scenarios/rolling-restart.js';
import type { FanoutFigures, FanoutResult, LatencyResult } from '../scenarios/rooms.js';
import type { SystemKind } from '../lib/systems.js';

export interface Goal {
  name: string;
  /** What was required, in words. */
  target: string;
  /** What was measured, in words. */
  actual: string;
  met: boolean;
}

export interface Figures {
  mint: MintResult;
  circuit: CircuitResult;
  connections: ConnectionsResult;
  fanout: FanoutResult;
  latency: LatencyResult;
  publishLatency: PublishLatencyResult;
  idleReplica: IdleReplicaResult;
  rollingRestart: RollingRestartResult;
  historyMemory: HistoryMemoryResult;
  joinCost: JoinCostResult;
  threeRooms: ThreeRoomsResult;
  idempotentPublish: IdempotentPublishResult;
  webhooks: WebhooksResult;
}

/** The JSON file a run writes (`bench/results/latest.json`). */
export interface BenchResults {
  meta: {
    date: string;
    command: string;
    quick: boolean;
    durationSeconds: number;
    machine: { cores: number; cpu: string; node: string; kernel: string };
  };
  config: BenchConfig;
  figures: Figures;
  goals: Goal[];
}

const num = (value: number, digits = 0): string =>
  Number.isFinite(value) ? value.toLocaleString('en-US', { maximumFractionDigits: digits }) : 'n/a';
const ratio = (switchboard: number, baseline: number): string =>
  Number.isFinite(switchboard) && Number.isFinite(baseline) && baseline !== 0
    ? `${(switchboard / baseline).toFixed(2)}×`
    : 'n/a';

export function headline(fanout: FanoutResult): Record<SystemKind, FanoutFigures> {
  const point =
    fanout.points.find((candidate) => candidate.baseline.rate === fanout.headlineRate) ?? fanout.points.at(-1);
  if (!point) throw new Error('the fan-out scenario produced no points');
  return point;
}

/** Server CPU per handshake against the feature-equal baseline (the goal), and against the seed-faithful one. */
export function handshakeCpuGoal(connections: ConnectionsResult): Goal {
  const sb = connections.switchboard.cpuMicrosPerHandshake;
  const featureEqual = connections.featureEqual.cpuMicrosPerHandshake;
  const seed = connections.baseline.cpuMicrosPerHandshake;
  const floor = connections.socketIoFloor.cpuMicrosPerHandshake;
  return {
    name: `server CPU per handshake @ ${connections.switchboard.sockets} sockets in rooms of ${connections.roomSize}`,
    target: '≤ 0.5× the feature-equal baseline',
    actual:
      `${ratio(sb, featureEqual)} (${num(sb)} vs ${num(featureEqual)} µs); ` +
      `${ratio(sb, seed)} the seed-faithful baseline (${num(seed)} µs); ` +
      `Socket.IO's own handshake ${num(floor)} µs = ${ratio(floor, featureEqual)} the feature-equal baseline`,
    met: sb <= 0.5 * featureEqual,
  };
}

/** Join CPU in the large room (one replica) and the huge one (two) against rooms of 10 on as many replicas. */
export function joinCostGoals(joinCost: JoinCostResult): Goal[] {
  const goal = (room: JoinCostFigures, reference: JoinCostFigures): Goal => {
    const share = room.cpuMicrosPerJoin / reference.cpuMicrosPerJoin;
    const replicas = room.replicas === 1 ? 'one replica' : `${room.replicas} replicas`;
    return {
      name: `server CPU per join in a room of ${num(room.roomSize)} (${replicas})`,
      target: `≤ 1.5× rooms of ${reference.roomSize}, every member in`,
      actual:
        `${ratio(room.cpuMicrosPerJoin, reference.cpuMicrosPerJoin)} (${num(room.cpuMicrosPerJoin)} vs ${num(reference.cpuMicrosPerJoin)} µs); ` +
        `${num(room.joined)} of ${num(room.roomSize)} in, filled in ${num(room.fillMs / 1000, 1)} s`,
      met: share <= 1.5 && room.complete && room.failures === 0,
    };
  };
  return [goal(joinCost.large, joinCost.small), goal(joinCost.huge, joinCost.smallOnTwo)];
}

/** One socket per user in three rooms against three sockets per user (the old behaviour). */
export function threeRoomsGoals({ users, oneSocket, threeSockets }: ThreeRoomsResult): Goal[] {
  const cpu = oneSocket.cpuMicrosPerUser / threeSockets.cpuMicrosPerUser;
  const heap = oneSocket.heapBytesPerUser / threeSockets.heapBytesPerUser;
  const failures = oneSocket.failures + threeSockets.failures;
  const failed =
    failures === 0 ? '' : `; ${num(failures)} joins failed (${oneSocket.firstError ?? threeSockets.firstError ?? ''})`;
  return [
    {
      name: `server CPU for ${num(users)} users in 3 rooms each, one socket per user`,
      target: '≤ 0.6× three sockets per user',
      actual: `${ratio(oneSocket.cpuMicrosPerUser, threeSockets.cpuMicrosPerUser)} (${num(oneSocket.cpuMicrosPerUser)} vs ${num(threeSockets.cpuMicrosPerUser)} µs per user)${failed}`,
      met: cpu <= 0.6 && failures === 0,
    },
    {
      name: `heap for ${num(users)} users in 3 rooms each, one socket per user`,
      target: '≤ 0.5× three sockets per user',
      actual: `${ratio(oneSocket.heapBytesPerUser, threeSockets.heapBytesPerUser)} (${num(oneSocket.heapBytesPerUser)} vs ${num(threeSockets.heapBytesPerUser)} bytes per user)${failed}`,
      met: heap <= 0.5 && failures === 0,
    },
  ];
}

/** Publish ack latency with idempotency keys against without, and fan-out CPU with keys against the baseline. */
export function idempotentPublishGoals({ withKeys, withoutKeys, fanout }: IdempotentPublishResult): Goal[] {
  const p50 = withKeys.ackP50Ms / withoutKeys.ackP50Ms;
  const p99 = withKeys.ackP99Ms / withoutKeys.ackP99Ms;
  const cpu = fanout.withKeys.cpuMicrosPerDelivery / fanout.baseline.cpuMicrosPerDelivery;
  // A variant that lost deliveries or publishes ran saturated: its latency says nothing about keys.
  const errors = withKeys.publishErrors + withKeys.lost + withoutKeys.publishErrors + withoutKeys.lost;
  return [
    {
      name: 'publish ack p50 / p99 with idempotency keys',
      target: 'at most 10 % above publishing without them, nothing refused or lost in either',
      actual:
        `${ratio(withKeys.ackP50Ms, withoutKeys.ackP50Ms)} / ${ratio(withKeys.ackP99Ms, withoutKeys.ackP99Ms)} ` +
        `(${num(withKeys.ackP50Ms, 2)} / ${num(withKeys.ackP99Ms, 2)} vs ${num(withoutKeys.ackP50Ms, 2)} / ${num(withoutKeys.ackP99Ms, 2)} ms)` +
        `; errors / lost with keys ${num(withKeys.publishErrors)} / ${num(withKeys.lost)}, ` +
        `without ${num(withoutKeys.publishErrors)} / ${num(withoutKeys.lost)}`,
      met: p50 <= 1.1 && p99 <= 1.1 && errors === 0,
    },
    {
      name: `fan-out CPU per delivery with idempotency keys @ ${fanout.rate} msg/s`,
      target: '≤ 0.5× baseline, nothing lost',
      actual: `${cpu.toFixed(2)}× (${fanout.withKeys.cpuMicrosPerDelivery} vs ${fanout.baseline.cpuMicrosPerDelivery} µs), ${num(fanout.withKeys.lost)} lost`,
      met: cpu <= 0.5 && fanout.withKeys.lost === 0,
    },
  ];
}

/** Handshake CPU with webhooks on against off, and how far the outbox lags behind. */
export function webhooksGoals({ on, off, delivery, replicas }: WebhooksResult): Goal[] {
  const rise = on.cpuMicrosPerHandshake / off.cpuMicrosPerHandshake - 1;
  const missing = delivery.expected - delivery.received;
  return [
    {
      name: `handshake CPU with webhooks on @ ${num(on.joinsPerSecond)} joins/s over ${replicas} replicas`,
      target: '≤ 10 % above webhooks off',
      actual: `${rise >= 0 ? '+' : ''}${(rise * 100).toFixed(1)} % (${num(on.cpuMicrosPerHandshake)} vs ${num(off.cpuMicrosPerHandshake)} µs)`,
      met: rise <= 0.1 && on.failures === 0 && off.failures === 0,
    },
    {
      name: 'webhook outbox lag, receiver answering in 20 ms',
      target: 'p99 < 1 s, every event delivered',
      actual: `p99 ${num(delivery.lagP99Ms)} ms (p50 ${num(delivery.lagP50Ms)}, max ${num(delivery.lagMaxMs)}); ${num(delivery.received)} of ${num(delivery.expected)} events`,
      met: delivery.lagP99Ms < 1000 && missing <= 0,
    },
  ];
}

export function evaluateGoals(figures: Figures): Goal[] {
  const { mint, connections, fanout, publishLatency, rollingRestart, idleReplica } = figures;
  const handshakeRatio = connections.switchboard.handshakesPerSecond / connections.baseline.handshakesPerSecond;
  // The baseline's idle replica reads the busy room's whole traffic: the yardstick for "its payload volume".
  const idleShare =
    idleReplica.switchboard.idleReadBytesPerSecond / Math.max(1, idleReplica.baseline.idleReadBytesPerSecond);
  const top = headline(fanout);
  const cpuRatio = top.switchboard.cpuMicrosPerDelivery / top.baseline.cpuMicrosPerDelivery;
  const lost =
    fanout.points.reduce((sum, point) => sum + point.switchboard.lost, 0) +
    figures.latency.switchboard.lost +
    publishLatency.historyOn.lost +
    publishLatency.historyOff.lost +
    figures.idleReplica.switchboard.lost;
  const failures =
    connections.switchboard.failures +
    mint.switchboard.errors +
    publishLatency.historyOn.publishErrors +
    publishLatency.historyOff.publishErrors;
  const restart = rollingRestart.switchboard;
  const { circuit } = figures;
  return [
    {
      name: `fan-out CPU per delivery @ ${top.baseline.rate} msg/s`,
      target: '≤ 0.5× baseline',
      actual: `${cpuRatio.toFixed(2)}× (${top.switchboard.cpuMicrosPerDelivery} vs ${top.baseline.cpuMicrosPerDelivery} µs)`,
      met: cpuRatio <= 0.5,
    },
    {
      name: `fan-out p99 latency @ ${top.baseline.rate} msg/s`,
      target: '≤ baseline',
      actual: `${top.switchboard.p99Ms} vs ${top.baseline.p99Ms} ms`,
      met: top.switchboard.p99Ms <= top.baseline.p99Ms,
    },
    {
      name: `heap per connected socket @ ${connections.switchboard.sockets} sockets`,
      target: '≤ baseline',
      actual: `${num(connections.switchboard.heapBytesPerSocket)} vs ${num(connections.baseline.heapBytesPerSocket)} bytes`,
      met: connections.switchboard.heapBytesPerSocket <= connections.baseline.heapBytesPerSocket,
    },
    {
      name: `handshakes/s with token redemption @ ${connections.switchboard.sockets} sockets`,
      target: '≥ 1.0× baseline',
      actual: `${handshakeRatio.toFixed(2)}× (${num(connections.switchboard.handshakesPerSecond)} vs ${num(connections.baseline.handshakesPerSecond)}/s)`,
      met: handshakeRatio >= 1,
    },
    {
      name: 'bytes read by a replica with no member in a busy room',
      target: '< 5 % of what the baseline replica reads',
      actual: `${(idleShare * 100).toFixed(2)} % (${num(idleReplica.switchboard.idleReadBytesPerSecond)} vs ${num(idleReplica.baseline.idleReadBytesPerSecond)} B/s)`,
      met: idleShare < 0.05,
    },
    {
      name: 'publish answer with the Redis circuit open',
      target: '≤ 5 ms p99, all `local: true`',
      actual: `${circuit.openP99Ms} ms p99 (p50 ${circuit.openP50Ms}), ${circuit.openShared} shared of ${circuit.samples}`,
      met: circuit.openP99Ms <= 5 && circuit.openShared === 0,
    },
    {
      name: 'mint throughput',
      target: '≥ baseline mint',
      actual: `${num(mint.switchboard.requestsPerSecond)} vs ${num(mint.baseline.requestsPerSecond)} req/s`,
      met: mint.switchboard.requestsPerSecond >= mint.baseline.requestsPerSecond,
    },
    {
      name: 'correctness under load',
      target: 'no lost deliveries, failed handshakes, mint or publish errors',
      actual: `${lost} lost, ${failures} failed`,
      met: lost === 0 && failures === 0,
    },
    {
      name: `rolling restart of ${rollingRestart.restarts} of ${rollingRestart.replicas} replicas @ ${rollingRestart.rate} msg/s`,
      target: '0 lost and 0 duplicated deliveries',
      actual:
        `${num(restart.lost)} lost, ${num(restart.duplicated)} duplicated of ${num(restart.expectedDeliveries)} ` +
        `(baseline: ${num(rollingRestart.baseline.lost)} lost, ${num(rollingRestart.baseline.duplicated)} duplicated)`,
      met: restart.lost === 0 && restart.duplicated === 0 && restart.published > 0,
    },
    handshakeCpuGoal(connections),
    ...joinCostGoals(figures.joinCost),
    ...threeRoomsGoals(figures.threeRooms),
    ...idempotentPublishGoals(figures.idempotentPublish),
    ...webhooksGoals(figures.webhooks),
  ];
}

const pair = (a: number, b: number, digits: number): string => `${num(a, digits)} / ${num(b, digits)}`;
/** Refused recoveries and their reasons, e.g. `3 (too_many 3)`. */
const refusals = ({ recoveryRefused }: RollingRestartFigures): string => {
  const reasons = Object.entries(recoveryRefused);
  const total = reasons.reduce((sum, [, n]) => sum + n, 0);
  return total === 0 ? '0' : `${num(total)} (${reasons.map(([reason, n]) => `${reason} ${num(n)}`).join(', ')})`;
};

/** The results as Markdown tables (pasted into docs/performance.md). */
export function renderTables(figures: Figures, goals: Goal[]): string {
  const { mint, connections, fanout, latency, publishLatency: pub, idleReplica: idle, rollingRestart: rr } = figures;
  const memory = figures.historyMemory;
  const fe = connections.featureEqual;
  const top = headline(fanout);
  const latencyRows = (label: string, sb: PublishLatencyFigures): string[] => [
    `| ${label} | ack p50 / p99 ms | ${pair(pub.baseline.ackP50Ms, pub.baseline.ackP99Ms, 2)} | ${pair(sb.ackP50Ms, sb.ackP99Ms, 2)} | ${ratio(sb.ackP50Ms, pub.baseline.ackP50Ms)} / ${ratio(sb.ackP99Ms, pub.baseline.ackP99Ms)} |`,
    `| | delivery p50 / p99 ms | ${pair(pub.baseline.deliveryP50Ms, pub.baseline.deliveryP99Ms, 2)} | ${pair(sb.deliveryP50Ms, sb.deliveryP99Ms, 2)} | ${ratio(sb.deliveryP50Ms, pub.baseline.deliveryP50Ms)} / ${ratio(sb.deliveryP99Ms, pub.baseline.deliveryP99Ms)} |`,
  ];
  const lines: string[] = [];
  lines.push(
    '| scenario | metric | baseline | Switchboard | Switchboard / baseline |',
    '|---|---|---:|---:|---:|',
    `| token mint (${mint.concurrency} in flight) | requests/s | ${num(mint.baseline.requestsPerSecond)} | ${num(mint.switchboard.requestsPerSecond)} | ${ratio(mint.switchboard.requestsPerSecond, mint.baseline.requestsPerSecond)} |`,
    `| | p50 / p99 ms | ${num(mint.baseline.p50Ms, 2)} / ${num(mint.baseline.p99Ms, 2)} | ${num(mint.switchboard.p50Ms, 2)} / ${num(mint.switchboard.p99Ms, 2)} | |`,
    `| | server CPU µs/request | ${num(mint.baseline.cpuMicrosPerRequest, 1)} | ${num(mint.switchboard.cpuMicrosPerRequest, 1)} | ${ratio(mint.switchboard.cpuMicrosPerRequest, mint.baseline.cpuMicrosPerRequest)} |`,
    `| | with ROOM_ACCESS=open (no grant checked): requests/s, CPU µs/request | | ${num(mint.switchboardOpen.requestsPerSecond)}, ${num(mint.switchboardOpen.cpuMicrosPerRequest, 1)} | |`,
    `| | one grant check (11-entry room claim), µs | | ${num(mint.grantCheckMicros, 3)} | |`,
    `| | bare Express endpoint, requests/s | ${num(mint.bare.requestsPerSecond)} | | |`,
    `| fan-out, ${fanout.members} members on ${fanout.replicas} replicas, ${top.baseline.rate} msg/s | deliveries/s (of ${num(top.baseline.expectedPerSecond)}) | ${num(top.baseline.deliveriesPerSecond)} | ${num(top.switchboard.deliveriesPerSecond)} | ${ratio(top.switchboard.deliveriesPerSecond, top.baseline.deliveriesPerSecond)} |`,
    `| | latency p50 / p99 ms | ${num(top.baseline.p50Ms, 1)} / ${num(top.baseline.p99Ms, 1)} | ${num(top.switchboard.p50Ms, 1)} / ${num(top.switchboard.p99Ms, 1)} | |`,
    `| | server CPU µs/delivery | ${num(top.baseline.cpuMicrosPerDelivery, 2)} | ${num(top.switchboard.cpuMicrosPerDelivery, 2)} | ${ratio(top.switchboard.cpuMicrosPerDelivery, top.baseline.cpuMicrosPerDelivery)} |`,
    `| | frames/s written | ${num(top.baseline.framesPerSecond)} | ${num(top.switchboard.framesPerSecond)} | ${ratio(top.switchboard.framesPerSecond, top.baseline.framesPerSecond)} |`,
    `| connections (${num(connections.switchboard.sockets)} sockets, one replica) | handshakes/s with token redemption | ${num(connections.baseline.handshakesPerSecond)} | ${num(connections.switchboard.handshakesPerSecond)} | ${ratio(connections.switchboard.handshakesPerSecond, connections.baseline.handshakesPerSecond)} |`,
    `| | handshake p50 / p99 ms | ${num(connections.baseline.handshakeP50Ms, 1)} / ${num(connections.baseline.handshakeP99Ms, 1)} | ${num(connections.switchboard.handshakeP50Ms, 1)} / ${num(connections.switchboard.handshakeP99Ms, 1)} | |`,
    `| | heap bytes per socket | ${num(connections.baseline.heapBytesPerSocket)} | ${num(connections.switchboard.heapBytesPerSocket)} | ${ratio(connections.switchboard.heapBytesPerSocket, connections.baseline.heapBytesPerSocket)} |`,
    `| | server CPU µs/handshake (its Redis's) | ${num(connections.baseline.cpuMicrosPerHandshake)} (${num(connections.baseline.redisMicrosPerHandshake)}) | ${num(connections.switchboard.cpuMicrosPerHandshake)} (${num(connections.switchboard.redisMicrosPerHandshake)}) | ${ratio(connections.switchboard.cpuMicrosPerHandshake, connections.baseline.cpuMicrosPerHandshake)} |`,
    `| | feature-equal baseline: handshakes/s; server CPU µs/handshake (its Redis's); heap bytes/socket | ${num(fe.handshakesPerSecond)}; ${num(fe.cpuMicrosPerHandshake)} (${num(fe.redisMicrosPerHandshake)}); ${num(fe.heapBytesPerSocket)} | | CPU: ${ratio(connections.switchboard.cpuMicrosPerHandshake, fe.cpuMicrosPerHandshake)} of feature-equal |`,
    `| | Socket.IO alone (a namespace with no middleware): handshakes/s; server CPU µs/handshake; heap bytes/socket | ${num(connections.socketIoFloor.handshakesPerSecond)}; ${num(connections.socketIoFloor.cpuMicrosPerHandshake)}; ${num(connections.socketIoFloor.heapBytesPerSocket)} | | CPU: the floor is ${ratio(connections.socketIoFloor.cpuMicrosPerHandshake, fe.cpuMicrosPerHandshake)} of feature-equal |`,
    `| cross-replica latency (${latency.switchboard.rate} msg/s, ${latency.switchboard.members} members) | p50 / p99 ms | ${num(latency.baseline.crossP50Ms, 2)} / ${num(latency.baseline.crossP99Ms, 2)} | ${num(latency.switchboard.crossP50Ms, 2)} / ${num(latency.switchboard.crossP99Ms, 2)} | |`,
    `| | same-replica p50 / p99 ms | ${num(latency.baseline.sameP50Ms, 2)} / ${num(latency.baseline.sameP99Ms, 2)} | ${num(latency.switchboard.sameP50Ms, 2)} / ${num(latency.switchboard.sameP99Ms, 2)} | |`,
    ...latencyRows(
      `publish latency, history on (${pub.rate} msg/s, ${pub.members} members on ${pub.replicas} replicas, ROOM_HISTORY_SIZE=${pub.historySize})`,
      pub.historyOn,
    ),
    ...latencyRows('publish latency, history off (ROOM_HISTORY_SIZE=0)', pub.historyOff),
    `| rolling restart (${rr.restarts} of ${rr.replicas} replicas one after the other, ${rr.members} members, ${rr.rate} msg/s) | lost / duplicated deliveries | ${pair(rr.baseline.lost, rr.baseline.duplicated, 0)} | ${pair(rr.switchboard.lost, rr.switchboard.duplicated, 0)} | |`,
    `| | acknowledged events × members | ${num(rr.baseline.expectedDeliveries)} | ${num(rr.switchboard.expectedDeliveries)} | |`,
    `| | reconnects; recovered (events replayed) / refused | ${num(rr.baseline.reconnects)} | ${num(rr.switchboard.reconnects)}; ${num(rr.switchboard.recovered)} (${num(rr.switchboard.replayed)}) / ${refusals(rr.switchboard)} | |`,
    `| replica with no member in a busy room (${idle.rate} msg/s into ${idle.busyMembers} members on 2 others) | CPU µs/s | ${num(idle.baseline.idleCpuMicrosPerSecond)} | ${num(idle.switchboard.idleCpuMicrosPerSecond)} | ${ratio(idle.switchboard.idleCpuMicrosPerSecond, idle.baseline.idleCpuMicrosPerSecond)} |`,
    `| | bytes read/s (rchar) | ${num(idle.baseline.idleReadBytesPerSecond)} | ${num(idle.switchboard.idleReadBytesPerSecond)} | ${ratio(idle.switchboard.idleReadBytesPerSecond, idle.baseline.idleReadBytesPerSecond)} |`,
    `| | room-channel bytes/s | | ${num(idle.switchboard.idleRoomChannelBytesPerSecond ?? Number.NaN)} | |`,
    `| Redis link silent, circuit open (one replica, REDIS_UNRESPONSIVE_AFTER_MS=${figures.circuit.unresponsiveAfterMs}; open after ${num(figures.circuit.detectedMs)} ms) | HTTP publish p50 / p99 ms, Redis answering → circuit open | | ${num(figures.circuit.connectedP50Ms, 2)} / ${num(figures.circuit.connectedP99Ms, 2)} → ${num(figures.circuit.openP50Ms, 2)} / ${num(figures.circuit.openP99Ms, 2)} | |`,
    `| | \`GET /healthz\` p50 / p99 ms meanwhile (this machine's floor) | | ${num(figures.circuit.healthP50Ms, 2)} / ${num(figures.circuit.healthP99Ms, 2)} | |`,
    `| Redis memory per room, history full (${memory.eventsKept} events of ${num(memory.eventBytes)} bytes, data ${num(memory.dataBytes)}) | MEMORY USAGE of the room's keys, bytes | no history | ${num(memory.bytesPerRoom)} (${num(memory.bytesPerEvent, 1)} per event) | |`,
  );
  lines.push(
    '',
    `Fan-out by publish rate (${fanout.members} members, ${fanout.replicas} replicas):`,
    '',
    '| msg/s | system | deliveries/s | frames/s | p50 ms | p99 ms | CPU µs/delivery | replica cores | redis cores | loadgen cores | lost |',
    '|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  );
  for (const point of fanout.points) {
    for (const kind of ['baseline', 'switchboard'] as const) {
      const f = point[kind];
      lines.push(
        `| ${f.rate} | ${kind} | ${num(f.deliveriesPerSecond)} | ${num(f.framesPerSecond)} | ${num(f.p50Ms, 2)} | ${num(f.p99Ms, 2)} | ${num(f.cpuMicrosPerDelivery, 2)} | ${num(f.serverCores, 2)} | ${num(f.redisCores, 2)} | ${num(f.loadgenCores, 2)} | ${num(f.lost)} |`,
      );
    }
  }
  lines.push(
    '',
    ...joinCostTable(figures.joinCost),
    '',
    ...threeRoomsTable(figures.threeRooms),
    '',
    ...idempotentPublishTable(figures.idempotentPublish),
    '',
    ...webhooksTable(figures.webhooks),
    '',
    ...goalTable(goals),
  );
  return lines.join('\n');
}

export function goalTable(goals: Goal[]): string[] {
  return [
    '| goal | target | measured | |',
    '|---|---|---|---|',
    ...goals.map((goal) => `| ${goal.name} | ${goal.target} | ${goal.actual} | ${goal.met ? 'met' : 'MISSED'} |`),
  ];
}

export function joinCostTable(joinCost: JoinCostResult): string[] {
  const { small, large, smallOnTwo, huge } = joinCost;
  const row = (figures: JoinCostFigures, reference: JoinCostFigures): string =>
    `| ${num(figures.rooms)} × ${num(figures.roomSize)} | ${figures.replicas} | ${num(figures.joined)}${figures.complete ? '' : ' (incomplete)'} | ` +
    `${num(figures.fillMs / 1000, 1)} | ${num(figures.handshakeP50Ms, 1)} / ${num(figures.handshakeP99Ms, 1)} | ` +
    `${num(figures.cpuMicrosPerJoin)} | ${num(figures.redisMicrosPerJoin)} | ${figures === reference ? '' : ratio(figures.cpuMicrosPerJoin, reference.cpuMicrosPerJoin)} |`;
  return [
    `Join cost by room size (Switchboard; ${joinCost.concurrency} handshakes in flight):`,
    '',
    '| rooms × members | replicas | joined | fill s | handshake p50 / p99 ms | server CPU µs/join | Redis CPU µs/join | vs rooms of ' +
      `${small.roomSize} |`,
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    row(small, small),
    row(large, small),
    row(smallOnTwo, smallOnTwo),
    row(huge, smallOnTwo),
  ];
}

export function threeRoomsTable({ users, roomSize, oneSocket, threeSockets }: ThreeRoomsResult): string[] {
  const row = (label: string, f: ThreeRoomsResult['oneSocket']): string =>
    `| ${label} | ${num(f.sockets)} | ${num(f.cpuMicrosPerUser)} | ${num(f.redisMicrosPerUser)} | ${num(f.heapBytesPerUser)} | ${num(f.failures)} |`;
  return [
    `Three rooms per user (Switchboard, one replica; ${num(users)} users, rooms of ${roomSize}):`,
    '',
    '| | sockets | server CPU µs/user | Redis CPU µs/user | heap bytes/user | failed joins |',
    '|---|---:|---:|---:|---:|---:|',
    row('three sockets per user (old behaviour)', threeSockets),
    row('one socket per user, `room:join` for rooms 2 and 3', oneSocket),
    `| one / three | | ${ratio(oneSocket.cpuMicrosPerUser, threeSockets.cpuMicrosPerUser)} | ${ratio(oneSocket.redisMicrosPerUser, threeSockets.redisMicrosPerUser)} | ${ratio(oneSocket.heapBytesPerUser, threeSockets.heapBytesPerUser)} | |`,
  ];
}

export function idempotentPublishTable(result: IdempotentPublishResult): string[] {
  const { withKeys, withoutKeys, fanout } = result;
  const row = (label: string, f: IdempotentPublishResult['withKeys']): string =>
    `| ${label} | ${pair(f.ackP50Ms, f.ackP99Ms, 2)} | ${pair(f.deliveryP50Ms, f.deliveryP99Ms, 2)} | ${num(f.rounds.reduce((sum, r) => sum + r.serverMicrosPerEvent, 0) / Math.max(1, f.rounds.length), 1)} | ${num(f.publishErrors)} / ${num(f.lost)} |`;
  return [
    `Idempotent publish (Switchboard, ${result.members} members on ${result.replicas} replicas, ${result.rate} msg/s, ${withKeys.rounds.length} round(s) each):`,
    '',
    '| | ack p50 / p99 ms | delivery p50 / p99 ms | server CPU µs/event | errors / lost |',
    '|---|---:|---:|---:|---:|',
    row('without keys', withoutKeys),
    row('a key on every publish', withKeys),
    `| with / without | ${ratio(withKeys.ackP50Ms, withoutKeys.ackP50Ms)} / ${ratio(withKeys.ackP99Ms, withoutKeys.ackP99Ms)} | | | |`,
    '',
    `Fan-out with keys, ${fanout.members} members on 2 replicas, ${fanout.rate} msg/s: ` +
      `${num(fanout.withKeys.cpuMicrosPerDelivery, 2)} µs CPU/delivery (baseline ${num(fanout.baseline.cpuMicrosPerDelivery, 2)}), ` +
      `p50 / p99 ${num(fanout.withKeys.p50Ms, 1)} / ${num(fanout.withKeys.p99Ms, 1)} ms, ${num(fanout.withKeys.lost)} lost.`,
  ];
}

export function webhooksTable({
  replicas,
  roomSize,
  receiverDelayMs,
  rounds,
  on,
  off,
  delivery,
}: WebhooksResult): string[] {
  const row = (label: string, f: WebhooksResult['on']): string =>
    `| ${label} | ${num(f.joins)} | ${num(f.joinsPerSecond)} | ${num(f.handshakeP50Ms, 1)} / ${num(f.handshakeP99Ms, 1)} | ${num(f.cpuMicrosPerHandshake)} | ${num(f.redisMicrosPerHandshake)} | ${num(f.failures)} |`;
  return [
    `Webhooks (Switchboard, ${replicas} replicas, rooms of ${roomSize}, receiver answering in ${receiverDelayMs} ms; ` +
      `${rounds} run(s) off and ${rounds} on, alternating, summed):`,
    '',
    '| webhooks | joins | joins/s | handshake p50 / p99 ms | server CPU µs/handshake | Redis CPU µs/handshake | failures |',
    '|---|---:|---:|---:|---:|---:|---:|',
    row('off', off),
    row('on', on),
    '',
    `Delivered ${num(delivery.received)} of ${num(delivery.expected)} events (${num(delivery.repeats)} repeats); ` +
      `lag from the event to the receiver p50 / p99 / max ${num(delivery.lagP50Ms)} / ${num(delivery.lagP99Ms)} / ${num(delivery.lagMaxMs)} ms.`,
  ];
}
