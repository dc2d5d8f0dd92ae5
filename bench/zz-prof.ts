import { startRedisServer } from '../support/redis-server.js';
import { switchboardEnv } from './lib/processes.js';
import { SocketClient } from './loadgen/socket-client.js';
import { accessToken } from '../support/client.js';

const N = Number(process.argv[2] ?? 3000);
const redis = await startRedisServer();
import { spawn } from 'node:child_process';
const env = { ...switchboardEnv(redis.url, 'p:'), ...(process.env.XP_NOPRES ? { XP_NOPRES: '1' } : {}), ...(process.env.XP_NOCAP ? { XP_NOCAP: '1' } : {}), ...(process.env.XP_NOJOINED ? { XP_NOJOINED: '1' } : {}), PORT: '39555', REPLICA_ID: 'prof', PATH: process.env.PATH ?? '' };
const child = spawn(process.execPath, ['--inspect=127.0.0.1:0', 'backend/dist/main.js'], { env, stdio: ['ignore', 'inherit', 'pipe'] });
let err = '';
child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
await new Promise((r) => setTimeout(r, 1500));
const { Inspector } = await import('./lib/processes.js');
const inspector = await Inspector.open(/ws:\/\/\S+/.exec(err)?.[0] ?? '');
await inspector.call('Profiler.enable');
await inspector.call('Profiler.setSamplingInterval', { interval: 200 });
const gw = { url: 'http://127.0.0.1:39555', port: 39555, pid: child.pid ?? 0, stop: async () => { child.kill('SIGTERM'); await new Promise((r) => child.once('exit', r)); } };
const minter = spawn(process.execPath, ['backend/dist/main.js'], { env: { ...env, PORT: '39557', REPLICA_ID: 'minter' }, stdio: 'ignore' });
await new Promise((r) => setTimeout(r, 1500));
const tokens: string[] = [];
for (let i = 0; i < N; i += 100) {
  await Promise.all(Array.from({ length: Math.min(100, N - i) }, async (_, k) => {
    const r = await fetch(`http://127.0.0.1:39557/api/rtc/tokens`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${accessToken({ sub: `u${i + k}` })}` }, body: JSON.stringify({ room: `room-${Math.floor((i + k) / 10)}` }) });
    tokens.push(((await r.json()) as { token: string }).token);
  }));
}
const pid = gw.pid;
const cpu = async () => { const s = (await import('node:fs')).readFileSync(`/proc/${pid}/stat`, 'utf8').split(' '); return (Number(s[13]) + Number(s[14])) * 10_000; };
const split = async () => { const s = (await import('node:fs')).readFileSync(`/proc/${pid}/stat`, 'utf8').split(' '); return [Number(s[13]) * 10_000, Number(s[14]) * 10_000]; };
if (process.env.PROF) await inspector.call('Profiler.start');
const s0 = await split();
const c0 = await cpu();
const t0 = performance.now();
let next = 0;
const clients: SocketClient[] = [];
await Promise.all(Array.from({ length: 64 }, async () => {
  while (next < tokens.length) {
    const i = next++;
    const c = new SocketClient({ host: '127.0.0.1', port: gw.port, auth: { token: tokens[i] }, readyEvent: 'session' });
    clients.push(c);
    await c.ready;
  }
}));
const ms = performance.now() - t0;
const s1 = await split();
console.log(`user ${((s1[0]-s0[0])/N).toFixed(0)} µs, sys ${((s1[1]-s0[1])/N).toFixed(0)} µs per handshake`);
const c1 = await cpu();
if (process.env.PROF) (await import('node:fs')).writeFileSync('/tmp/prof/run.cpuprofile', JSON.stringify(((await inspector.call('Profiler.stop')) as unknown as { result: { profile: unknown } }).result.profile));
console.log(`${N} handshakes in ${ms.toFixed(0)} ms: ${(N / ms * 1000).toFixed(0)}/s, gateway CPU ${((c1 - c0) / N).toFixed(0)} µs/handshake`);
const metrics = await (await fetch(`${gw.url}/metrics`)).text();
console.log(metrics.split('\n').filter((l) => /^switchboard_(redis_command_failures|handshakes_total|tokens_redeemed|tokens_minted)/.test(l)).join('\n'));
for (const c of clients) c.close();
await gw.stop(); minter.kill('SIGKILL');
await redis.stop();
