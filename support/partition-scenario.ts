import type { PublishEventResponse, ReadyResponse, RoomEvent } from '@switchboard/contract';
import { createClient } from 'redis';
import { accessToken, postJson, type ConnectedClient } from './client.js';
import { waitFor } from './ports.js';

/** What a publisher was told about one event. */
export interface Ack {
  id: string;
  seq: number;
  local: boolean;
  /** When the answer came (ms since the epoch), and how long it took. */
  at: number;
  ms: number;
}

export interface Publisher {
  readonly acks: Ack[];
  /** Publishes that failed outright (status, body). */
  readonly failures: string[];
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A backend publishing into `room` over HTTP through `url`, one event every `everyMs`
 * (20/s by default), each answered before the next is sent, as a simple backend would.
 */
export function startPublisher(url: () => string, room: string, everyMs = 50): Publisher {
  const token = accessToken({ sub: 'partition-backend', scope: 'publish' });
  const acks: Ack[] = [];
  const failures: string[] = [];
  let running = true;
  let n = 0;
  const loop = (async () => {
    while (running) {
      const started = Date.now();
      try {
        const { status, body } = await postJson(
          `${url()}/api/rooms/${room}/events`,
          { type: 'tick', data: { n: n++ } },
          { authorization: `Bearer ${token}` },
        );
        const answer = body as PublishEventResponse;
        if (status === 202) {
          acks.push({
            id: answer.id,
            seq: answer.seq,
            local: answer.local === true,
            at: Date.now(),
            ms: Date.now() - started,
          });
        } else failures.push(`${status} ${JSON.stringify(body)}`);
      } catch (error) {
        failures.push(String(error));
      }
      await sleep(Math.max(0, everyMs - (Date.now() - started)));
    }
  })();
  return {
    acks,
    failures,
    async stop() {
      running = false;
      await loop;
    },
  };
}

export const readyz = async (url: string): Promise<ReadyResponse> =>
  (await (await fetch(`${url}/readyz`)).json()) as ReadyResponse;

/** Polls until every url's /readyz passes `test`; resolves with the ms it took. */
export async function untilReady(
  urls: string[],
  what: string,
  test: (ready: ReadyResponse) => boolean,
  timeoutMs = 15_000,
): Promise<number> {
  const started = Date.now();
  await waitFor(
    what,
    async () => {
      const states = await Promise.all(urls.map((url) => readyz(url).catch(() => undefined)));
      return states.every((state) => state && test(state)) || undefined;
    },
    { timeoutMs, intervalMs: 50 },
  );
  return Date.now() - started;
}

/** The ids of `events` that are in `wanted`, in the order they arrived. */
export function arrived(events: RoomEvent[], wanted: Set<string>): string[] {
  return events.filter((event) => wanted.has(event.id)).map((event) => event.id);
}

/** Waits until `member` has received every one of `acks` (or times out, for the assertion to say what is missing). */
export async function untilDelivered(member: ConnectedClient, acks: Ack[], timeoutMs = 15_000): Promise<void> {
  const wanted = new Set(acks.map((ack) => ack.id));
  await waitFor(
    'every shared event delivered',
    () => (new Set(arrived(member.events, wanted)).size >= wanted.size ? true : undefined),
    { timeoutMs },
  ).catch(() => undefined);
}

/** The room's shared history as Redis holds it: `{epoch, top, events}` straight from the keys. */
export async function sharedHistory(
  redisUrl: string,
  room: string,
): Promise<{ epoch: string | undefined; top: number; events: RoomEvent[] }> {
  const client = createClient({ url: redisUrl });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const [meta, log] = await Promise.all([
      client.hGetAll(`history:{${room}}`),
      client.lRange(`history:{${room}}:log`, 0, -1),
    ]);
    return { epoch: meta.e, top: Number(meta.s ?? 0), events: log.map((entry) => JSON.parse(entry) as RoomEvent) };
  } finally {
    client.destroy();
  }
}

/** How many log lines of a gateway's output carry `message`. */
export function logCount(output: string, message: string): number {
  return output.split('\n').filter((line) => line.includes(`"msg":"${message}`)).length;
}

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}
