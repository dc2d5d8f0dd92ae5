/**
 * A load test to point at a deployment of your own (docs/operations.md):
 *
 *   npm run loadtest -- --url https://switchboard.example.com --token "$SERVICE_TOKEN" \
 *     --rooms 50 --members 20 --rate 100 [--seconds 60] [--reconnect] [--yes]
 *
 * Members are the bench's (bench/loadgen/room-member.ts): they connect through the URL,
 * recover and de-duplicate as the SDK does. Events are published over HTTP with the
 * service token (scope `publish`), or through a member's socket without one.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import type { MintTokenResponse, RecoveryFailureReason, RoomEvent } from '@switchboard/contract';
import { RoomMember, type Endpoint } from './loadgen/room-member.js';
import { Samples, round, type LatencySummary } from './loadgen/stats.js';

export interface LoadTestOptions {
  url: string;
  rooms: number;
  members: number;
  /** Room events per second, across all rooms. */
  rate: number;
  seconds: number;
  /** Service JWT: scope `publish` to publish over HTTP, scope `mint` to mint on behalf of the members. */
  token: string | undefined;
  /** Members sign in through the gateway's dev login (development gateways) instead of minting on behalf. */
  devLogin: boolean;
  /** Drop and reconnect a tenth of the members halfway, to measure recovery. */
  reconnect: boolean;
  /** Called about once a second while the test runs. */
  progress?: (line: string) => void;
}

export interface LoadTestSummary {
  members: number;
  connected: number;
  connectMs: LatencySummary;
  published: number;
  publishErrors: number;
  /** Deliveries expected: each published event once to each member of its room. */
  expected: number;
  delivered: number;
  lost: number;
  duplicates: number;
  deliveryMs: LatencySummary;
  recoveries: { recovered: number; replayed: number; refused: Partial<Record<RecoveryFailureReason, number>> };
}

/** Hosts a load test may hit without `--yes`. */
const LOCAL_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);
/** How long deliveries may trail the last publish before what is missing counts as lost. */
const SETTLE_MS = 5_000;

export const QUICK = { rooms: 2, members: 5, rate: 20, seconds: 10 } as const;

export function isLocalUrl(url: string): boolean {
  return LOCAL_HOSTS.has(new URL(url).hostname);
}

async function json<T>(response: Response, what: string): Promise<T> {
  if (!response.ok) throw new Error(`${what}: ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

export async function runLoadTest(options: LoadTestOptions): Promise<LoadTestSummary> {
  const base = new URL(options.url);
  const origin = base.origin;
  const tls = base.protocol === 'https:';
  const endpoint: Endpoint = {
    host: base.hostname.replace(/^\[|\]$/g, ''),
    port: Number(base.port || (tls ? 443 : 80)),
    ...(tls ? { tls: true } : {}),
  };
  if (!options.devLogin && !options.token)
    throw new Error(
      'give a service token (--token, scopes mint and publish), or --dev-login for a development gateway',
    );

  const post = (path: string, body: unknown, token?: string) =>
    fetch(`${origin}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    });
  const accessFor = new Map<string, string>();
  const mintFor = (userId: string, room: string) => async (): Promise<string> => {
    if (options.devLogin) {
      let access = accessFor.get(userId);
      if (!access) {
        access = (await json<{ accessToken: string }>(await post('/api/dev/login', { userId }), 'dev login'))
          .accessToken;
        accessFor.set(userId, access);
      }
      return (await json<MintTokenResponse>(await post('/api/rtc/tokens', { room }, access), 'mint')).token;
    }
    return (await json<MintTokenResponse>(await post('/api/rtc/tokens', { room, userId }, options.token), 'mint'))
      .token;
  };

  const run = Date.now().toString(36);
  const rooms = Array.from({ length: options.rooms }, (_, i) => `loadtest-${run}-${i}`);
  const sentAt = new Map<string, number>();
  const latency = new Samples();
  const connectMs = new Samples();
  const members: Array<{ room: string; member: RoomMember }> = [];
  let delivered = 0;
  const onDeliver = (event: RoomEvent) => {
    delivered++;
    const t = (event.data as { t?: unknown } | null)?.t;
    if (typeof t === 'number') latency.push(performance.now() - t);
  };

  try {
    // Joins a few at a time, so the connect latency is the deployment's, not a queue's.
    const joins = rooms.flatMap((room) =>
      Array.from({ length: options.members }, (_, i) => ({ room, userId: `loadtest-${run}-${room.slice(-4)}-${i}` })),
    );
    let next = 0;
    const joinOne = async (): Promise<void> => {
      for (let job = joins[next++]; job; job = joins[next++]) {
        const { room, userId } = job;
        const started = performance.now();
        const member = new RoomMember({
          endpoints: [endpoint],
          mint: mintFor(userId, room),
          recover: true,
          readyEvent: 'session',
          onDeliver,
        });
        members.push({ room, member });
        await member.ready.then(
          () => connectMs.push(performance.now() - started),
          () => undefined,
        );
        options.progress?.(`joined ${members.length}/${joins.length}`);
      }
    };
    await Promise.all(Array.from({ length: 16 }, joinOne));
    const connected = members.filter(({ member }) => member.connected).length;

    // Publishing: one room in turn, at the rate asked for.
    const byRoom = new Map<string, RoomMember[]>();
    for (const { room, member } of members) byRoom.set(room, [...(byRoom.get(room) ?? []), member]);
    const published = new Map<string, string>();
    let publishErrors = 0;
    let inFlight = 0;
    const publishOne = async (room: string, n: number): Promise<void> => {
      inFlight++;
      const data = { t: performance.now(), n };
      try {
        let id: string | undefined;
        if (options.token) {
          const answer = await post(`/api/rooms/${room}/events`, { type: 'loadtest', data }, options.token);
          id = (await json<{ id: string }>(answer, 'publish')).id;
        } else {
          const member = byRoom.get(room)?.find((candidate) => candidate.connected);
          const ack = (await member?.request('publish', { type: 'loadtest', data })) as
            { ok: boolean; id?: string } | undefined;
          id = ack?.ok ? ack.id : undefined;
        }
        if (id) {
          published.set(id, room);
          sentAt.set(id, data.t);
        } else publishErrors++;
      } catch {
        publishErrors++;
      } finally {
        inFlight--;
      }
    };

    const total = Math.round(options.rate * options.seconds);
    const started = performance.now();
    let dropped = false;
    let lastReport = 0;
    const sends: Array<Promise<void>> = [];
    for (let n = 0; n < total; n++) {
      const due = started + (n * 1000) / options.rate;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      sends.push(publishOne(rooms[n % rooms.length] as string, n));
      if (options.reconnect && !dropped && n >= total / 2) {
        dropped = true;
        members.filter((_, i) => i % 10 === 0).forEach(({ member }) => member.drop());
      }
      if (performance.now() - lastReport >= 1000) {
        lastReport = performance.now();
        const online = members.filter(({ member }) => member.connected).length;
        options.progress?.(
          `${Math.round((performance.now() - started) / 1000)} s: ${online}/${members.length} connected, ` +
            `${published.size} published (${inFlight} in flight), ${delivered} delivered`,
        );
      }
    }
    await Promise.all(sends);

    // Deliveries trail the last publish a little; recoveries a little more.
    const expectedFor = () => {
      let expected = 0;
      let got = 0;
      for (const { room, member } of members) {
        for (const [id, eventRoom] of published) {
          if (eventRoom !== room) continue;
          expected++;
          if (member.delivered.has(id)) got++;
        }
      }
      return { expected, got };
    };
    const settleBy = performance.now() + SETTLE_MS;
    let tally = expectedFor();
    while (tally.got < tally.expected && performance.now() < settleBy) {
      await sleep(200);
      tally = expectedFor();
    }

    const recoveries = { recovered: 0, replayed: 0, refused: {} as Partial<Record<RecoveryFailureReason, number>> };
    let duplicates = 0;
    for (const { member } of members) {
      duplicates += member.duplicates;
      recoveries.recovered += member.recoveries.recovered;
      recoveries.replayed += member.recoveries.replayed;
      for (const [reason, count] of Object.entries(member.recoveries.refused) as Array<[RecoveryFailureReason, number]>)
        recoveries.refused[reason] = (recoveries.refused[reason] ?? 0) + count;
    }
    return {
      members: members.length,
      connected,
      connectMs: connectMs.summary(),
      published: published.size,
      publishErrors,
      expected: tally.expected,
      delivered: tally.got,
      lost: tally.expected - tally.got,
      duplicates,
      deliveryMs: latency.summary(),
      recoveries,
    };
  } finally {
    await Promise.all(members.map(({ member }) => member.close()));
  }
}

export function formatSummary(summary: LoadTestSummary): string {
  const ms = (value: number) => `${round(value, 1)} ms`;
  const latency = (s: LatencySummary) =>
    s.samples === 0 ? 'no samples' : `p50 ${ms(s.p50)}, p99 ${ms(s.p99)}, max ${ms(s.max)} (${s.samples} samples)`;
  const refused = Object.entries(summary.recoveries.refused)
    .map(([reason, count]) => `${reason} ${count}`)
    .join(', ');
  return [
    'summary',
    `  members          ${summary.connected}/${summary.members} connected`,
    `  connect          ${latency(summary.connectMs)}`,
    `  published        ${summary.published} events (${summary.publishErrors} failed)`,
    `  delivered        ${summary.delivered}/${summary.expected}`,
    `  lost             ${summary.lost}${summary.expected ? ` (${round((summary.lost / summary.expected) * 100, 3)} %)` : ''}`,
    `  duplicates       ${summary.duplicates}`,
    `  delivery latency ${latency(summary.deliveryMs)}`,
    `  recoveries       ${summary.recoveries.recovered} recovered (${summary.recoveries.replayed} events replayed)` +
      (refused ? `, refused: ${refused}` : ''),
  ].join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' },
      token: { type: 'string' },
      rooms: { type: 'string' },
      members: { type: 'string' },
      rate: { type: 'string' },
      seconds: { type: 'string' },
      quick: { type: 'boolean', default: false },
      'dev-login': { type: 'boolean', default: false },
      reconnect: { type: 'boolean', default: false },
      yes: { type: 'boolean', default: false },
    },
  });
  if (!values.url) throw new Error('--url is required, e.g. --url http://localhost:8080');
  if (!/^https?:\/\//.test(values.url)) throw new Error(`--url must be http:// or https://, got ${values.url}`);
  if (!isLocalUrl(values.url) && !values.yes) {
    throw new Error(
      `${values.url} is not this machine: the load test adds real load and rooms to it. ` +
        'Run it again with --yes if that is what you want.',
    );
  }
  const preset = values.quick ? QUICK : { rooms: 50, members: 20, rate: 100, seconds: 60 };
  const number = (name: string, text: string | undefined, fallback: number) => {
    const value = text === undefined ? fallback : Number(text);
    if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number, got ${text}`);
    return value;
  };
  const options: LoadTestOptions = {
    url: values.url,
    rooms: number('rooms', values.rooms, preset.rooms),
    members: number('members', values.members, preset.members),
    rate: number('rate', values.rate, preset.rate),
    seconds: number('seconds', values.seconds, preset.seconds),
    token: values.token ?? process.env.SWITCHBOARD_SERVICE_TOKEN,
    devLogin: values['dev-login'],
    reconnect: values.reconnect,
    progress: (line) => process.stdout.write(`${line}\n`),
  };
  process.stdout.write(
    `load test of ${options.url}: ${options.rooms} rooms × ${options.members} members, ` +
      `${options.rate} events/s for ${options.seconds} s\n`,
  );
  const summary = await runLoadTest(options);
  process.stdout.write(`${formatSummary(summary)}\n`);
  if (summary.lost > 0 || summary.connected < summary.members) process.exitCode = 1;
}

if (process.argv[1]?.endsWith('loadtest.ts')) {
  main().catch((error: unknown) => {
    process.stderr.write(`loadtest: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  });
}
