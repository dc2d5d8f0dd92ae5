import { setTimeout as sleep } from 'node:timers/promises';
import type { BenchConfig } from '../lib/config.js';
import { openRoom } from '../lib/open-room.js';
import { CpuMeter } from '../lib/processes.js';
import type { System } from '../lib/systems.js';
import type { PublishOptions } from '../loadgen/room-load.js';
import { round, Samples } from '../loadgen/stats.js';

export interface PublishLatencyFigures {
  /** From writing `publish` to reading its ack, at the publisher. */
  ackP50Ms: number;
  ackP99Ms: number;
  /** From writing `publish` to a member reading the event, members on both replicas. */
  deliveryP50Ms: number;
  deliveryP99Ms: number;
  ackSamples: number;
  deliverySamples: number;
  /** CPU time of both replicas, and of Redis, per published event. */
  serverMicrosPerEvent: number;
  redisMicrosPerEvent: number;
  /** Publishes refused or left without an ack. */
  publishErrors: number;
  /** Deliveries still missing once the room went quiet. */
  lost: number;
}

export interface PublishLatencyResult {
  rate: number;
  members: number;
  replicas: number;
  /** ROOM_HISTORY_SIZE of `historyOn` (`historyOff` runs with 0). */
  historySize: number;
  baseline: PublishLatencyFigures;
  historyOn: PublishLatencyFigures;
  historyOff: PublishLatencyFigures;
}

/**
 * One room of `members` on two replicas, publishers on both, `rate` events/s: publish-to-ack
 * and publish-to-delivery latency. Switchboard acks once Redis has numbered (and, with
 * history, stored) the event; the baseline acks as soon as it handed the event to its adapter.
 */
export async function measurePublishLatency(
  system: System,
  room: string,
  config: BenchConfig,
  publishOptions: PublishOptions = {},
): Promise<PublishLatencyFigures> {
  const { members, publishersPerReplica, sampledPerReplica, rate, warmupMs, durationMs } = config.publishLatency;
  const load = await openRoom(system, {
    room,
    members,
    sampledPerReplica,
    publishersPerReplica,
    publishFromFirstReplicaOnly: false,
  });
  try {
    const publishing = load.publish(rate, warmupMs + durationMs, publishOptions);
    await sleep(warmupMs);
    const pids = system.replicas.map((replica) => replica.pid);
    const meter = new CpuMeter([...pids, system.redisPid]);
    const publishedBefore = load.published;
    load.startRecording();
    await publishing;
    load.stopRecording();
    const cpu = meter.read();
    const events = Math.max(1, load.published - publishedBefore);
    const lost = await load.drain(load.published * members);
    const ack = load.acks.summary();
    const delivery = Samples.merge(load.sameReplica, load.crossReplica).summary();
    const serverMicros = cpu.slice(0, pids.length).reduce((sum, value) => sum + value, 0);
    return {
      ackP50Ms: round(ack.p50, 2),
      ackP99Ms: round(ack.p99, 2),
      deliveryP50Ms: round(delivery.p50, 2),
      deliveryP99Ms: round(delivery.p99, 2),
      ackSamples: ack.samples,
      deliverySamples: delivery.samples,
      serverMicrosPerEvent: round(serverMicros / events, 1),
      redisMicrosPerEvent: round((cpu[pids.length] ?? 0) / events, 1),
      publishErrors: load.publishErrors,
      lost,
    };
  } finally {
    load.close();
  }
}

/** Publish latency of the baseline, and of Switchboard with history on and off, one after the other. */
export async function runPublishLatency(
  systems: Record<'baseline' | 'historyOn' | 'historyOff', System>,
  config: BenchConfig,
  progress: (line: string) => void,
): Promise<PublishLatencyResult> {
  const measured: Partial<Pick<PublishLatencyResult, 'baseline' | 'historyOn' | 'historyOff'>> = {};
  for (const label of ['baseline', 'historyOn', 'historyOff'] as const) {
    const figures = await measurePublishLatency(systems[label], `publish-${label}`, config);
    measured[label] = figures;
    progress(
      `  publish latency ${label}: ack p50 ${figures.ackP50Ms} / p99 ${figures.ackP99Ms} ms, ` +
        `delivery p50 ${figures.deliveryP50Ms} / p99 ${figures.deliveryP99Ms} ms`,
    );
  }
  const { rate, members, historySize } = config.publishLatency;
  return {
    rate,
    members,
    replicas: 2,
    historySize,
    ...(measured as Pick<PublishLatencyResult, 'baseline' | 'historyOn' | 'historyOff'>),
  };
}
