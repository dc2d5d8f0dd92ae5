/**
 * A rolling restart as Kubernetes does one, under load: three replicas on one Redis,
 * tens of members using the SDK (which keeps its position and recovers on reconnect),
 * a backend publishing ~100 events/s, some members publishing too (the SDK retries what
 * a move left unacknowledged, with its idempotency key), and each replica in turn drained
 * with SIGTERM and started again. Every member must end with every acknowledged event,
 * once, in order.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PublishEventResponse, RecoveryOutcome, RoomEvent } from '@switchboard/contract';
import { createSwitchboard, type Room, type Switchboard } from '../frontend/src/sdk/index.js';
import { accessToken } from '../support/client.js';
import { startGatewayProcess, type GatewayProcess } from '../support/gateway-process.js';
import { waitFor } from '../support/ports.js';
import { startRedisServer, type RedisServerHandle } from '../support/redis-server.js';

const MEMBERS = 30;
const ROOM = 'rolling';
const PUBLISH_EVERY_MS = 10;
/** Members that also publish, each every MEMBER_PUBLISH_EVERY_MS. */
const PUBLISHING_MEMBERS = 5;
const MEMBER_PUBLISH_EVERY_MS = 100;

interface Member {
  room: Room;
  log: RoomEvent[];
  recoveries: RecoveryOutcome[];
}

describe('a rolling restart of three replicas under load', () => {
  let redis: RedisServerHandle;
  const replicas: GatewayProcess[] = [];
  const switchboards: Switchboard[] = [];
  // A member away longer than RECOVERY_MAX_EVENTS is refused recovery by design (100 events
  // are 1 s here); on a loaded CI machine a move can take that long, and this test is about
  // loss, not speed. bench/scenarios/rolling-restart.ts runs with the defaults.
  const env = () => ({
    REDIS_URL: redis.url,
    SHUTDOWN_TIMEOUT_MS: '5000',
    ROOM_HISTORY_SIZE: '1000',
    RECOVERY_MAX_EVENTS: '1000',
    LOG_LEVEL: 'info',
  });

  beforeAll(async () => {
    redis = await startRedisServer();
    for (const id of ['roll-1', 'roll-2', 'roll-3'])
      replicas.push(await startGatewayProcess({ env: env(), replica: id }));
  });
  afterAll(async () => {
    for (const switchboard of switchboards) switchboard.close();
    await Promise.all(replicas.map((replica) => replica.stop('SIGKILL')));
    await redis.stop();
  });

  it('leaves every member with every event, once and in order', async () => {
    const urls = replicas.map((replica) => replica.url);
    const members: Member[] = [];
    for (let i = 0; i < MEMBERS; i++) {
      // Each member starts on a different replica; the SDK moves on to the next one when it must.
      const own = [...urls.slice(i % 3), ...urls.slice(0, i % 3)];
      const switchboard = createSwitchboard({
        urls: own,
        // The app's own login: it does not go down with a replica.
        getAccessToken: () => accessToken({ sub: `member-${i}` }),
        backoff: { baseMs: 100, maxMs: 1_000 },
      });
      switchboards.push(switchboard);
      const member: Member = { room: switchboard.join(ROOM), log: [], recoveries: [] };
      member.room.on('room:event', (event) => member.log.push(event));
      member.room.on('recovery', (outcome) => member.recoveries.push(outcome));
      members.push(member);
    }
    await Promise.all(members.map((member) => member.room.ready));

    // The backend publishes to whichever replica is not being restarted.
    const service = accessToken({ sub: 'backend', scope: 'publish' });
    const acked: PublishEventResponse[] = [];
    let restarting = -1;
    let publishing = true;
    let n = 0;
    const publisher = (async () => {
      while (publishing) {
        const target = [0, 1, 2].filter((i) => i !== restarting)[n % 2] ?? 0;
        n++;
        try {
          const response = await fetch(`${replicas[target]?.url ?? ''}/api/rooms/${ROOM}/events`, {
            method: 'POST',
            headers: { authorization: `Bearer ${service}`, 'content-type': 'application/json' },
            body: JSON.stringify({ type: 'tick', data: n }),
          });
          if (response.status === 202) acked.push((await response.json()) as PublishEventResponse);
        } catch {
          // A publish that got no answer is not an event the members owe us.
        }
        await new Promise((resolve) => setTimeout(resolve, PUBLISH_EVERY_MS));
      }
    })();

    // Members publish through the SDK, whichever replica they are on or moving between.
    const memberPublishes: Array<Promise<void>> = [];
    const memberFailures: string[] = [];
    const memberPublishers = members.slice(0, PUBLISHING_MEMBERS).map(async (member, m) => {
      for (let k = 0; publishing; k++) {
        memberPublishes.push(
          member.room.publish('chat', { member: m, k }).then(
            (answer) => {
              acked.push(answer);
            },
            (error: unknown) => {
              memberFailures.push(String(error));
            },
          ),
        );
        await new Promise((resolve) => setTimeout(resolve, MEMBER_PUBLISH_EVERY_MS));
      }
    });

    for (let i = 0; i < replicas.length; i++) {
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      const old = replicas[i] as GatewayProcess;
      restarting = i;
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(await old.stop('SIGTERM')).toBe(0);
      replicas[i] = await startGatewayProcess({ env: env(), replica: old.replica, port: old.port });
      await waitFor(`${old.replica} back on Redis`, async () => {
        const ready = (await (await fetch(`${old.url}/readyz`)).json()) as { redis: string };
        return ready.redis === 'connected' || undefined;
      });
      restarting = -1;
    }
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    publishing = false;
    await publisher;
    await Promise.all(memberPublishers);
    // Every member publish settles: acknowledged (first time or on a retry with its key), never lost.
    await Promise.all(memberPublishes);
    expect(memberFailures).toEqual([]);
    expect(memberPublishes.length).toBeGreaterThan(50);

    const ids = acked.map((event) => event.id);
    expect(acked.length).toBeGreaterThan(300);
    await waitFor(
      'every member caught up',
      () => members.every((member) => member.log.length >= acked.length) || undefined,
      { timeoutMs: 20_000 },
    ).catch((error: unknown) => {
      const behind = members.map((m, i) => `member ${i}: ${m.log.length}/${acked.length}, ${m.room.state.status}`);
      throw new Error(`${String(error)}\n${behind.join('\n')}`);
    });
    let lost = 0;
    let duplicated = 0;
    for (const [i, member] of members.entries()) {
      const seen = member.log.map((event) => event.id);
      lost += ids.filter((id) => !seen.includes(id)).length;
      duplicated += seen.length - new Set(seen).size;
      const seqs = member.log.map((event) => event.seq);
      const gaps = seqs.flatMap((seq, k) => (k > 0 && seq !== (seqs[k - 1] ?? 0) + 1 ? [`${seqs[k - 1]}→${seq}`] : []));
      const refused = member.recoveries.filter((outcome) => !outcome.recovered);
      expect({ member: i, gaps, refused }).toEqual({ member: i, gaps: [], refused: [] });
    }
    expect({ lost, duplicated }).toEqual({ lost: 0, duplicated: 0 });
    // Everyone moved at least once: the restarts really took their sockets away.
    expect(members.every((member) => member.recoveries.length >= 1)).toBe(true);
    console.log(
      `rolling restart: ${acked.length} events (${memberPublishes.length} published by members) to ${MEMBERS} members, ` +
        `${members.reduce((sum, m) => sum + m.recoveries.length, 0)} recoveries, 0 lost, 0 duplicated`,
    );
  }, 120_000);
});
