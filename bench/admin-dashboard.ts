/**
 * What the operations dashboard costs a replica: two replicas on a private Redis with a
 * few members, measured idle, then with the dashboard open in five Chromium tabs (each
 * polling the overview and one room's detail). Goal: < 1 % of a core per replica.
 *
 *   npm run bench:admin [-- --seconds 30]
 */
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { launchChromium } from '../support/chromium.js';
import { accessToken, joinRoom, type ConnectedClient } from '../support/client.js';
import { startGatewayProcess, type GatewayProcess } from '../support/gateway-process.js';
import { startRedisServer } from '../support/redis-server.js';
import { CpuMeter } from './lib/processes.js';

const TABS = 5;
const GOAL_PERCENT = 1;

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '30' } } });
const seconds = Number(values.seconds);

/** Percent of one core each replica used over `seconds`. */
async function measure(replicas: GatewayProcess[]): Promise<number[]> {
  const meter = new CpuMeter(replicas.map((replica) => replica.pid));
  await sleep(seconds * 1000);
  return meter.read().map((micros) => (micros / (seconds * 1e6)) * 100);
}

const redis = await startRedisServer();
const env = { REDIS_URL: redis.url, ADMIN_ENABLED: 'true' };
const replicas = await Promise.all([
  startGatewayProcess({ env, replica: 'admin-bench-a' }),
  startGatewayProcess({ env, replica: 'admin-bench-b' }),
]);
const members: ConnectedClient[] = [];
const browser = await launchChromium();
try {
  const [a, b] = replicas;
  for (let i = 0; i < 10; i++) members.push(await joinRoom(i % 2 ? b.url : a.url, `member-${i}`, `room-${i % 3}`));
  await sleep(3_000);
  const idle = await measure(replicas);

  const token = accessToken({ sub: 'bench-admin', scope: 'admin' }, { expiresInSeconds: 3_600 });
  for (let tab = 0; tab < TABS; tab++) {
    const context = await browser.newContext({ viewport: { width: 1440, height: 1000 } });
    const page = await context.newPage();
    // Each tab on either replica, as a load balancer would spread them.
    await page.goto(`${(tab % 2 ? b : a).url}/admin/`);
    await page.getByTestId('token-input').fill(token);
    await page.getByTestId('signin-button').click();
    await page.locator('[data-testid="room-row"][data-room="room-0"]').click();
    await page.getByTestId('member-row').first().waitFor();
  }
  await sleep(3_000);
  const open = await measure(replicas);

  const rows = replicas.map((replica, i) => {
    const extra = (open[i] ?? 0) - (idle[i] ?? 0);
    return { replica: replica.replica, idle: idle[i] ?? 0, open: open[i] ?? 0, extra };
  });
  console.log(`dashboard in ${TABS} tabs, ${seconds} s each way, CPU in % of one core:`);
  for (const row of rows) {
    console.log(
      `  ${row.replica}: idle ${row.idle.toFixed(2)} %, with the dashboard ${row.open.toFixed(2)} %, ` +
        `cost ${row.extra.toFixed(2)} % (goal < ${GOAL_PERCENT} %)`,
    );
  }
  const worst = Math.max(...rows.map((row) => row.extra));
  console.log(worst < GOAL_PERCENT ? 'goal met' : 'goal MISSED');
  process.exitCode = worst < GOAL_PERCENT ? 0 : 1;
} finally {
  for (const member of members) member.close();
  await browser.close();
  await Promise.all(replicas.map((replica) => replica.stop()));
  await redis.stop();
}
