import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { startRedisServer } from '../support/redis-server.js';
import { SocketClient } from './loadgen/socket-client.js';
const N = Number(process.argv[2] ?? 3000);
const redis = await startRedisServer();
const child = spawn(process.execPath, ['--inspect=127.0.0.1:0', '--import', 'tsx', 'bench/baseline/server.ts'], { env: { ...process.env, REDIS_URL: redis.url, PORT: '39556' }, stdio: ['ignore', 'inherit', 'pipe'] });
let err = '';
child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
await new Promise((r) => setTimeout(r, 3000));
const { Inspector } = await import('./lib/processes.js');
const inspector = await Inspector.open(/ws:\/\/\S+/.exec(err)?.[0] ?? '');
await inspector.call('Profiler.enable');
await inspector.call('Profiler.setSamplingInterval', { interval: 200 });
const url = 'http://127.0.0.1:39556';
const tokens: string[] = [];
for (let i = 0; i < N; i += 100) {
  await Promise.all(Array.from({ length: Math.min(100, N - i) }, async (_, k) => {
    const r = await fetch(`${url}/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ room: `room-${Math.floor((i + k) / 10)}`, userId: `u${i + k}` }) });
    tokens.push(((await r.json()) as { token: string }).token);
  }));
}
const cpu = () => { const s = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(' '); return (Number(s[13]) + Number(s[14])) * 10_000; };
const split = async () => { const s = (await import('node:fs')).readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(' '); return [Number(s[13]) * 10_000, Number(s[14]) * 10_000]; };
if (process.env.PROF) await inspector.call('Profiler.start');
const s0 = await split();
const c0 = cpu(); const t0 = performance.now();
let next = 0; const clients: SocketClient[] = [];
await Promise.all(Array.from({ length: 64 }, async () => {
  while (next < tokens.length) { const i = next++; const c = new SocketClient({ host: '127.0.0.1', port: 39556, auth: { token: tokens[i] } }); clients.push(c); await c.ready; }
}));
const ms = performance.now() - t0; const s1 = await split();
console.log(`user ${((s1[0]-s0[0])/N).toFixed(0)} µs, sys ${((s1[1]-s0[1])/N).toFixed(0)} µs per handshake`);
const c1 = cpu();
if (process.env.PROF) (await import('node:fs')).writeFileSync('/tmp/prof/run.cpuprofile', JSON.stringify(((await inspector.call('Profiler.stop')) as unknown as { result: { profile: unknown } }).result.profile));
console.log(`baseline ${N} handshakes in ${ms.toFixed(0)} ms: ${(N / ms * 1000).toFixed(0)}/s, CPU ${((c1 - c0) / N).toFixed(0)} µs/handshake`);
for (const c of clients) c.close();
child.kill('SIGTERM'); await new Promise((r) => child.once('exit', r)); await redis.stop();
