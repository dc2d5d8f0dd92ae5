import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BenchConfig } from '../lib/config.js';
import { readMetric } from '../lib/metrics.js';
import { openRoom, settleAfterJoins } from '../lib/open-room.js';
import { CpuMeter, readBytes } from '../lib/processes.js';
import { connectMany, mintMany, type System } from '../lib/systems.js';
import type { SocketClient } from '../loadgen/socket-client.js';
import { round } from '../loadgen/stats.js';

export interface IdleReplicaFigures {
  /** CPU of the replica with no member in the busy room, µs per second (1,000,000 = one core). */
  idleCpuMicrosPerSecond: number;
  /** Bytes that replica read per second (`rchar`: its Redis connections and sockets). */
  idleReadBytesPerSecond: number;
  /** Switchboard only: bytes per second on the room channels it follows (switchboard_room_channel_bytes_total). */
  idleRoomChannelBytesPerSecond?: number;
  /** Mean CPU of the two replicas that serve the busy room, µs per second. */
  busyCpuMicrosPerSecond: number;
  /** Deliveries in the busy room per second: the load that was there to be ignored. */
  deliveriesPerSecond: number;
  lost: number;
}

const CHANNEL_BYTES = 'switchboard_room_channel_bytes_total';

/**
 * Three replicas: the busy room's members (and publishers) on the first two, members of
 * quiet rooms only on the third. What does the third pay for a room it has no member in?
 */
export async function measureIdleReplica(system: System, config: BenchConfig): Promise<IdleReplicaFigures> {
  const { busyMembers, publishersPerReplica, rate, quietRooms, quietRoomMembers, warmupMs, durationMs } =
    config.idleReplica;
  const idle = system.replicas[2];
  if (!idle) throw new Error(`${system.kind}: the idle replica scenario needs three replicas`);
  const busy = await openRoom(system, {
    room: 'busy',
    members: busyMembers,
    sampledPerReplica: 0,
    publishersPerReplica,
    publishFromFirstReplicaOnly: false,
    on: [0, 1],
  });
  let quiet: SocketClient[] = [];
  try {
    const requests = Array.from({ length: quietRooms * quietRoomMembers }, (_, i) => ({
      user: `quiet-${i}`,
      room: `quiet-${i % quietRooms}`,
    }));
    const tokens = await mintMany(system, idle, requests);
    const joined = await connectMany(
      system,
      requests.map(() => idle),
      tokens,
      16,
    );
    quiet = joined.clients;
    if (joined.failures > 0) throw new Error(`${system.kind}: ${joined.failures} quiet members failed to join`);
    await sleep(settleAfterJoins(requests.length));

    const channels = system.kind === 'switchboard' ? () => readMetric(idle, CHANNEL_BYTES) : undefined;
    const channelBefore = await channels?.();
    const publishing = busy.publish(rate, warmupMs + durationMs);
    await sleep(warmupMs);
    const pids = system.replicas.map((replica) => replica.pid);
    const meter = new CpuMeter(pids);
    const readBefore = readBytes(idle.pid);
    const started = performance.now();
    busy.startRecording();
    await publishing;
    busy.stopRecording();
    const seconds = (performance.now() - started) / 1000;
    const readAfter = readBytes(idle.pid);
    const [busyA = 0, busyB = 0, idleCpu = 0] = meter.read();
    const channelAfter = await channels?.();
    const lost = await busy.drain(busy.published * busyMembers);
    return {
      idleCpuMicrosPerSecond: round(idleCpu / seconds, 0),
      idleReadBytesPerSecond: round((readAfter - readBefore) / seconds, 0),
      ...(channelBefore !== undefined && channelAfter !== undefined
        ? { idleRoomChannelBytesPerSecond: round((channelAfter - channelBefore) / seconds, 0) }
        : {}),
      busyCpuMicrosPerSecond: round((busyA + busyB) / 2 / seconds, 0),
      deliveriesPerSecond: round(busy.deliveries / seconds, 0),
      lost,
    };
  } finally {
    busy.close();
    for (const client of quiet) client.close();
  }
}
