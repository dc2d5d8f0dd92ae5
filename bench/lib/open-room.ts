import { setTimeout as sleep } from 'node:timers/promises';
import { RoomLoad, type Member } from '../loadgen/room-load.js';
import type { ServerProcess } from './processes.js';
import { connectMany, mintMany, type System } from './systems.js';

export interface RoomPlan {
  room: string;
  members: number;
  sampledPerReplica: number;
  publishersPerReplica: number;
  /** Only the first replica publishes (to time the crossing); otherwise all do. */
  publishFromFirstReplicaOnly: boolean;
  /** Indexes of the replicas the members alternate between (default: all of them). */
  on?: number[];
}

/** Mints and connects a room's members, alternating replicas; the last ones publish. */
export async function openRoom(system: System, plan: RoomPlan): Promise<RoomLoad> {
  const on = plan.on ?? system.replicas.map((_, i) => i);
  const replicaOf = (i: number) => on[i % on.length] as number;
  const requests = Array.from({ length: plan.members }, (_, i) => ({ user: `${plan.room}-${i}`, room: plan.room }));
  const tokens = await mintMany(system, system.replicas[replicaOf(0)] as ServerProcess, requests);
  const targets = requests.map((_, i) => system.replicas[replicaOf(i)] as ServerProcess);
  // Modest concurrency: every join is announced to the members already there.
  const result = await connectMany(system, targets, tokens, 16);
  if (result.failures > 0) {
    for (const client of result.clients) client.close();
    throw new Error(
      `${system.kind}: ${result.failures} of ${plan.members} sockets failed to join: ${result.firstError ?? ''}`,
    );
  }
  const members: Member[] = result.clients.map((client, i) => ({
    client,
    replica: replicaOf(i),
    sampled: Math.floor(i / on.length) < plan.sampledPerReplica,
  }));
  const publishers = members
    .slice()
    .reverse()
    .filter((member) => !plan.publishFromFirstReplicaOnly || member.replica === on[0])
    .slice(0, plan.publishersPerReplica * (plan.publishFromFirstReplicaOnly ? 1 : on.length));
  // Let the join announcements finish before anything is measured (every member hears of every later one).
  await sleep(settleAfterJoins(plan.members));
  return new RoomLoad(members, publishers);
}

/** How long the announcements of `members` joins take to settle: 10 ms each, at most 1 s. */
export function settleAfterJoins(members: number): number {
  return Math.min(1_000, 10 * members);
}
