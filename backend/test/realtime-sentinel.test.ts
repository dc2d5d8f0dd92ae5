import { expect, it } from 'vitest';
import { accessToken, connectWithToken, devLogin, joinRoom, mintToken, postJson, seqs } from '../../support/client.js';
import { waitFor } from '../../support/ports.js';
import { realtimeSuite } from './suites/realtime.js';

realtimeSuite('sentinel', ({ topology, replicas }) => {
  it('follows a master failover without a restart: tokens, events across replicas, history', async () => {
    const sentinel = topology().sentinel;
    if (!sentinel) throw new Error('no sentinel topology');
    const [r1, r2] = [replicas()[0]?.url ?? '', replicas()[1]?.url ?? ''];
    const service = accessToken({ sub: 'backend', scope: 'publish read' });
    const publish = (url: string, n: number) =>
      postJson(`${url}/api/rooms/failover/events`, { type: 'n', data: n }, { authorization: `Bearer ${service}` });
    const a = await joinRoom(r1, 'fa', 'failover');
    const b = await joinRoom(r2, 'fb', 'failover');
    try {
      await publish(r1, 1);
      await waitFor('the first event', () => (a.events.length === 1 && b.events.length === 1) || undefined);
      // The replica has the history before its master goes.
      await waitFor('replica in sync', async () => {
        const info = await topology().withClient((c) => c.info('replication'));
        return /slave0:.*state=online/.test(info) || undefined;
      });
      const oldMaster = await sentinel.currentMaster();
      const killedAt = Date.now();
      await sentinel.master.kill();
      await waitFor('a promotion', async () => ((await sentinel.currentMaster()) !== oldMaster ? true : undefined), {
        timeoutMs: 30_000,
      });
      const promotedAfter = Date.now() - killedAt;
      for (const url of [r1, r2]) {
        await waitFor(
          `${url} on the new master`,
          async () =>
            ((await (await fetch(`${url}/readyz`)).json()) as { redis: string }).redis === 'connected' || undefined,
          { timeoutMs: 15_000 },
        );
      }
      const followedAfter = Date.now() - killedAt;
      // Within the failover time plus a few seconds.
      expect(followedAfter - promotedAfter).toBeLessThan(5_000);

      // A token minted on one replica is single use on the other, on the new master.
      const minted = await mintToken(r1, await devLogin(r1, 'after-failover'), 'failover');
      const tokenKeys = await topology().withClient((c) => c.keys('rtc:token:*'));
      expect(tokenKeys.some((key) => key.endsWith(minted.jti))).toBe(true);
      const late = await connectWithToken(r2, minted.token);
      await expect(connectWithToken(r1, minted.token)).rejects.toThrow('token_used');

      // Events still cross replicas, numbered after the ones the old master held.
      const response = await publish(r2, 2);
      expect(response.status).toBe(202);
      await waitFor('the second event', () => (a.events.length === 2 && b.events.length === 2) || undefined);
      expect(seqs(a.events)).toEqual({ seqs: [1, 2], consecutive: true });
      expect(seqs(b.events).seqs).toEqual([1, 2]);
      await waitFor('the late joiner gets it too', () => (late.events.length === 1 ? true : undefined));
      late.close();
      for (const replica of replicas().slice(0, 2)) {
        expect(replica.output()).not.toMatch(/unhandled/i);
      }
    } finally {
      a.close();
      b.close();
    }
  }, 60_000);
});
