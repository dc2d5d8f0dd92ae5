import { performance } from 'node:perf_hooks';
import type { RecoveryFailureReason } from '@switchboard/contract';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BenchConfig } from '../lib/config.js';
import { settleAfterJoins } from '../lib/open-room.js';
import { mintOne, type System } from '../lib/systems.js';
import { HttpConnection } from '../loadgen/http-client.js';
import { atRate } from '../loadgen/room-load.js';
import { RoomMember, type Endpoint } from '../loadgen/room-member.js';
import { round } from '../loadgen/stats.js';

export interface RollingRestartFigures {
  /** Publishes the publisher got an ack for: the events every member must see. */
  published: number;
  /** Publishes without an ack (refused, not connected, or the connection closed first): not events. */
  failedPublishes: number;
  /** published × members. */
  expectedDeliveries: number;
  /** Acknowledged events that never reached a member, summed over the members. */
  lost: number;
  /** Events that reached a member's app more than once, summed over the members. */
  duplicated: number;
  membersWithLoss: number;
  /** Connections after each member's first. */
  reconnects: number;
  /** Reconnects that recovered what was missed, and the events they replayed. */
  recovered: number;
  replayed: number;
  /** Reconnects whose recovery was refused, by reason (`session.recovery.reason`). */
  recoveryRefused: Partial<Record<RecoveryFailureReason, number>>;
  /** Events that arrived a second time on the wire and were dropped by de-duplication by `seq`. */
  redelivered: number;
  /** Events members received that the publisher has no ack for (its ack was lost in a restart). */
  unacknowledged: number;
  /** Mean time from SIGTERM to the restarted replica's readiness. */
  restartMs: number;
  /** From the first publish to the last. */
  publishingSeconds: number;
}

/**
 * A steady publisher and members spread over three replicas, which are restarted one
 * after the other (SIGTERM, start again on the same port, wait until ready, next). Every
 * member reconnects by itself, like an app on the SDK (see RoomMember); Switchboard's
 * members also recover from their position and de-duplicate by `seq`. Loss is counted
 * against the events the publisher got acks for.
 */
export async function measureRollingRestart(
  system: System,
  config: BenchConfig,
  progress: (line: string) => void,
): Promise<RollingRestartFigures> {
  const { members: count, rate, restarts, warmupMs, settleMs, tailMs } = config.rollingRestart;
  const room = 'rolling';
  const endpoints: Endpoint[] = system.replicas.map(({ host, port }) => ({ host, port }));
  const n = endpoints.length;
  /**
   * Member `i` starts on replica `i mod n` and moves forward or, every other round,
   * backward through the list, so those of a stopped replica spread over the others
   * instead of all landing on the next one to restart.
   */
  const order = (i: number): Endpoint[] => {
    const step = Math.floor(i / n) % 2 === 0 ? 1 : n - 1;
    return endpoints.map((_, k) => endpoints[(i + k * step) % n] as Endpoint);
  };
  const join = (user: string, i: number, recover: boolean) =>
    new RoomMember({
      endpoints: order(i),
      recover,
      readyEvent: system.readyEvent,
      mint: async ({ host, port }) => {
        const connection = new HttpConnection(host, port);
        try {
          return await mintOne(connection, system.mintCall(user, room));
        } finally {
          connection.close();
        }
      },
    });
  const switchboard = system.kind === 'switchboard';
  const members = Array.from({ length: count }, (_, i) => join(`${room}-${i}`, i, switchboard));
  // On the replica restarted last: the room's traffic goes on while the others restart.
  const publisher = join(`${room}-publisher`, n - 1, false);
  const everyone = [...members, publisher];
  try {
    await Promise.all(everyone.map((member) => member.ready));
    // Let the join announcements finish before anything is counted.
    await sleep(settleAfterJoins(everyone.length));

    const acked = new Set<string>();
    let failedPublishes = 0;
    let inFlight = 0;
    let sequence = 0;
    const stop = new AbortController();
    const started = performance.now();
    const publishing = atRate(
      rate,
      Number.POSITIVE_INFINITY,
      () => {
        inFlight++;
        publisher
          .request('publish', { type: 'chat', data: { n: sequence++ } })
          .then(
            (answer) => {
              const ack = answer as { ok?: unknown; id?: unknown } | undefined;
              if (ack?.ok === true && typeof ack.id === 'string') acked.add(ack.id);
              else failedPublishes++;
            },
            () => {
              failedPublishes++;
            },
          )
          .finally(() => {
            inFlight--;
          });
      },
      stop.signal,
    );

    await sleep(warmupMs);
    let restartTotal = 0;
    for (let i = 0; i < restarts; i++) {
      const begun = performance.now();
      await system.restart(i);
      const took = performance.now() - begun;
      restartTotal += took;
      progress(`  rolling restart ${system.kind}: replica ${i} back after ${Math.round(took)} ms`);
      await sleep(settleMs);
    }
    await sleep(tailMs);
    stop.abort();
    await publishing;
    const publishingSeconds = (performance.now() - started) / 1000;
    for (const deadline = performance.now() + 10_000; inFlight > 0 && performance.now() < deadline;) {
      await sleep(20);
    }
    await drain(members, acked);

    let lost = 0;
    let membersWithLoss = 0;
    const unacknowledged = new Set<string>();
    for (const member of members) {
      let missing = 0;
      for (const id of acked) if (!member.delivered.has(id)) missing++;
      for (const id of member.delivered) if (!acked.has(id)) unacknowledged.add(id);
      lost += missing;
      if (missing > 0) membersWithLoss++;
    }
    const sum = (pick: (member: RoomMember) => number) => members.reduce((total, member) => total + pick(member), 0);
    return {
      published: acked.size,
      failedPublishes,
      expectedDeliveries: acked.size * members.length,
      lost,
      duplicated: sum((member) => member.duplicates),
      membersWithLoss,
      reconnects: sum((member) => member.reconnects),
      recovered: sum((member) => member.recoveries.recovered),
      replayed: sum((member) => member.recoveries.replayed),
      recoveryRefused: refusals(members),
      redelivered: sum((member) => member.redelivered),
      unacknowledged: unacknowledged.size,
      restartMs: round(restartTotal / restarts, 0),
      publishingSeconds: round(publishingSeconds, 1),
    };
  } finally {
    await Promise.all(everyone.map((member) => member.close()));
  }
}

function refusals(members: RoomMember[]): Partial<Record<RecoveryFailureReason, number>> {
  const byReason: Partial<Record<RecoveryFailureReason, number>> = {};
  for (const member of members) {
    for (const [reason, n] of Object.entries(member.recoveries.refused) as Array<[RecoveryFailureReason, number]>) {
      byReason[reason] = (byReason[reason] ?? 0) + n;
    }
  }
  return byReason;
}

/**
 * Waits until every member has every acknowledged event, or until all are connected and
 * nothing arrived for 1 s (a member still waiting to reconnect may yet recover); at most 30 s.
 */
async function drain(members: RoomMember[], acked: Set<string>): Promise<void> {
  const total = () => members.reduce((sum, member) => sum + member.delivered.size, 0);
  const complete = () => members.every((member) => [...acked].every((id) => member.delivered.has(id)));
  const deadline = performance.now() + 30_000;
  let last = total();
  let lastChange = performance.now();
  while (!complete() && performance.now() < deadline) {
    await sleep(100);
    const now = total();
    if (now !== last) {
      last = now;
      lastChange = performance.now();
    } else if (performance.now() - lastChange >= 1_000 && members.every((member) => member.connected)) {
      return;
    }
  }
}
