import type { BenchConfig } from '../lib/config.js';
import { openRoom } from '../lib/open-room.js';
import { startSystems, type System, type SystemRedis } from '../lib/systems.js';
import type { PublishOptions } from '../loadgen/room-load.js';
import { round } from '../loadgen/stats.js';
import { measurePublishLatency, type PublishLatencyFigures } from './publish-latency.js';
import { fanoutPoint, type FanoutFigures } from './rooms.js';

/** Ack latency of one variant, over its rounds. */
export interface KeyedLatencyFigures {
  /** Means of the rounds' p50 and p99. */
  ackP50Ms: number;
  ackP99Ms: number;
  deliveryP50Ms: number;
  deliveryP99Ms: number;
  publishErrors: number;
  lost: number;
  rounds: PublishLatencyFigures[];
}

export interface IdempotentPublishResult {
  rate: number;
  members: number;
  replicas: number;
  withoutKeys: KeyedLatencyFigures;
  withKeys: KeyedLatencyFigures;
  fanout: {
    members: number;
    rate: number;
    /** Switchboard with a key on every publish. */
    withKeys: FanoutFigures;
    /** The seed-faithful baseline at the same rate (from the run's fan-out scenario when there was one). */
    baseline: FanoutFigures;
  };
}

/**
 * Publish latency with and without idempotency keys on two Switchboard replicas (default
 * history), in the order without, with, with, without… so that drift in the machine's load
 * weighs on both; then fan-out at the headline rate with a key on every publish. The
 * baseline's fan-out figure comes from `baselineFanout` or is measured here.
 */
export async function runIdempotentPublish(
  redis: { switchboard: SystemRedis; baseline: SystemRedis },
  config: BenchConfig,
  progress: (line: string) => void,
  baselineFanout?: FanoutFigures,
): Promise<IdempotentPublishResult> {
  const [switchboard] = (await startSystems([{ kind: 'switchboard', redis: redis.switchboard, replicas: 2 }])) as [
    System,
  ];
  const rounds: Record<'with' | 'without', PublishLatencyFigures[]> = { with: [], without: [] };
  let withKeys: FanoutFigures;
  try {
    for (let round = 0; round < config.idempotentPublish.rounds; round++) {
      const order = round % 2 === 0 ? (['without', 'with'] as const) : (['with', 'without'] as const);
      for (const variant of order) {
        const figures = await measurePublishLatency(switchboard, `keys-${variant}-${round}`, config, {
          idempotencyKeys: variant === 'with',
        });
        rounds[variant].push(figures);
        progress(
          `  publish ${variant} keys, round ${round + 1}: ack p50 ${figures.ackP50Ms} / p99 ${figures.ackP99Ms} ms`,
        );
      }
    }
    withKeys = await fanout(switchboard, config, { idempotencyKeys: true });
    progress(`  fan-out with keys: ${withKeys.cpuMicrosPerDelivery} µs CPU/delivery, p99 ${withKeys.p99Ms} ms`);
  } finally {
    await switchboard.stop();
  }
  let baseline = baselineFanout;
  if (!baseline) {
    const [system] = (await startSystems([{ kind: 'baseline', redis: redis.baseline, replicas: 2 }])) as [System];
    try {
      baseline = await fanout(system, config, {});
      progress(`  fan-out baseline: ${baseline.cpuMicrosPerDelivery} µs CPU/delivery`);
    } finally {
      await system.stop();
    }
  }
  return {
    rate: config.publishLatency.rate,
    members: config.publishLatency.members,
    replicas: 2,
    withoutKeys: summarize(rounds.without),
    withKeys: summarize(rounds.with),
    fanout: { members: config.fanout.members, rate: config.fanout.headlineRate, withKeys, baseline },
  };
}

async function fanout(system: System, config: BenchConfig, options: PublishOptions): Promise<FanoutFigures> {
  const load = await openRoom(system, {
    room: `keys-fanout-${options.idempotencyKeys ? 'with' : 'without'}`,
    members: config.fanout.members,
    sampledPerReplica: config.fanout.sampledPerReplica,
    publishersPerReplica: config.fanout.publishersPerReplica,
    publishFromFirstReplicaOnly: false,
  });
  try {
    return await fanoutPoint(system, load, config.fanout.headlineRate, config, options);
  } finally {
    load.close();
  }
}

function summarize(rounds: PublishLatencyFigures[]): KeyedLatencyFigures {
  const mean = (pick: (figures: PublishLatencyFigures) => number) =>
    round(rounds.reduce((sum, figures) => sum + pick(figures), 0) / Math.max(1, rounds.length), 2);
  return {
    ackP50Ms: mean((f) => f.ackP50Ms),
    ackP99Ms: mean((f) => f.ackP99Ms),
    deliveryP50Ms: mean((f) => f.deliveryP50Ms),
    deliveryP99Ms: mean((f) => f.deliveryP99Ms),
    publishErrors: rounds.reduce((sum, f) => sum + f.publishErrors, 0),
    lost: rounds.reduce((sum, f) => sum + f.lost, 0),
    rounds,
  };
}
