import { WEBHOOK_SIGNATURE_HEADER } from '@switchboard/contract';
import { signatureHeader } from '../auth/signature.js';
import { createPoster } from './poster.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';

/** One webhook read from an outbox, not yet accepted by every receiver. */
export interface OutboxEntry {
  /** The outbox's own id for it (a stream id in Redis). */
  id: string;
  /** The outbox partition it came from. */
  partition: string;
  room: string;
  /** The signed JSON, exactly as sent. */
  body: string;
  /** When the event happened (its `ts`), epoch ms. */
  ts: number;
}

interface Queued extends OutboxEntry {
  attempts: number;
  nextAt: number;
  /** Receivers (by index in `urls`) that accepted it already: a retry skips them. */
  accepted: Set<number>;
  inFlight: boolean;
}

export interface DispatcherOptions {
  urls: string[];
  secret: string;
  /** Given up when not accepted this long after it happened. */
  retryMs: number;
  /** Acknowledges an entry delivered or given up, so no replica sends it again. */
  done: (entry: OutboxEntry) => Promise<void>;
  metrics: Metrics;
  logger: Logger;
  /** Most requests in flight at once. */
  concurrency?: number;
  /** Per request. */
  timeoutMs?: number;
  now?: () => number;
  random?: () => number;
}

export interface Dispatcher {
  /** Queues entries behind those of their rooms already queued (callers add in outbox order). */
  add(entries: OutboxEntry[]): void;
  /** Forgets a partition's entries (its lease was lost: another replica delivers them now). */
  drop(partition: string): void;
  /** Entries held for `partition` (all partitions when omitted). */
  held(partition?: string): number;
  /** When the oldest held entry happened, or undefined. */
  oldest(): number | undefined;
  /** Starts whatever is due; the owner calls it on a timer for retries. */
  pump(): void;
  close(): Promise<void>;
}

/** Retry delay after `attempts` failures: 1 s, 2 s, 4 s … capped at 30 s, each between half and all of it. */
export function retryDelayMs(attempts: number, random: () => number = Math.random): number {
  const ceiling = Math.min(30_000, 1_000 * 2 ** Math.max(0, attempts - 1));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/**
 * Sends webhooks, each room's in the order they happened: a room's next event waits
 * until the one before it was accepted or given up, while other rooms go on. Every
 * receiver in `urls` gets each event; it counts as delivered once all of them answered 2xx.
 */
export function createDispatcher(options: DispatcherOptions): Dispatcher {
  const { urls, secret, retryMs, metrics, now = Date.now, random = Math.random } = options;
  const concurrency = options.concurrency ?? 32;
  const timeoutMs = options.timeoutMs ?? 5_000;
  const log = options.logger.child({ component: 'webhooks' });
  const rooms = new Map<string, Queued[]>();
  const inFlight = new Set<Promise<void>>();
  let closed = false;
  let lastWarning = 0;

  const post = createPoster({ concurrency, timeoutMs, userAgent: 'switchboard-webhooks' });
  const send = (url: string, body: string): Promise<void> =>
    post(url, body, { [WEBHOOK_SIGNATURE_HEADER]: signatureHeader(secret, body, now()) });

  const finish = (entry: Queued): void => {
    const queue = rooms.get(entry.room);
    if (queue?.[0] === entry) queue.shift();
    if (queue?.length === 0) rooms.delete(entry.room);
    options.done(entry).catch((error: unknown) => {
      // Not acknowledged: it is sent again later (at least once), never lost.
      log.warn({ err: error instanceof Error ? error.message : String(error) }, 'webhook acknowledgement failed');
    });
  };

  const attempt = async (entry: Queued): Promise<void> => {
    const failures: string[] = [];
    await Promise.all(
      urls.map(async (url, i) => {
        if (entry.accepted.has(i)) return;
        try {
          await send(url, entry.body);
          entry.accepted.add(i);
        } catch (error) {
          failures.push(`${new URL(url).host}: ${error instanceof Error ? error.message : String(error)}`);
        }
      }),
    );
    entry.inFlight = false;
    if (closed || rooms.get(entry.room)?.[0] !== entry) return;
    const t = now();
    if (failures.length === 0) {
      metrics.webhooksDelivered.inc();
      metrics.webhookLagSeconds.observe(Math.max(0, t - entry.ts) / 1000);
      finish(entry);
      return;
    }
    entry.attempts++;
    if (t - entry.ts >= retryMs) {
      metrics.webhooksGivenUp.inc({ reason: 'expired' });
      log.error(
        { room: entry.room, webhook: entry.body.slice(0, 200), attempts: entry.attempts, failures },
        'webhook given up: not accepted within WEBHOOK_RETRY_SECONDS',
      );
      finish(entry);
      return;
    }
    metrics.webhooksRetried.inc();
    entry.nextAt = t + retryDelayMs(entry.attempts, random);
    if (t - lastWarning > 5_000) {
      lastWarning = t;
      log.warn({ failures, attempts: entry.attempts }, 'webhook not accepted; retrying with backoff');
    }
  };

  const dispatcher: Dispatcher = {
    add(entries) {
      for (const entry of entries) {
        const queued: Queued = { ...entry, attempts: 0, nextAt: 0, accepted: new Set(), inFlight: false };
        const queue = rooms.get(entry.room);
        if (queue) queue.push(queued);
        else rooms.set(entry.room, [queued]);
      }
      dispatcher.pump();
    },
    drop(partition) {
      for (const [room, queue] of rooms) {
        const kept = queue.filter((entry) => entry.partition !== partition);
        if (kept.length === 0) rooms.delete(room);
        else rooms.set(room, kept);
      }
    },
    held(partition) {
      let count = 0;
      for (const queue of rooms.values())
        for (const entry of queue) if (partition === undefined || entry.partition === partition) count++;
      return count;
    },
    oldest() {
      let oldest: number | undefined;
      for (const queue of rooms.values()) {
        const head = queue[0];
        if (head && (oldest === undefined || head.ts < oldest)) oldest = head.ts;
      }
      return oldest;
    },
    pump() {
      if (closed) return;
      const t = now();
      for (const queue of rooms.values()) {
        if (inFlight.size >= concurrency) return;
        const head = queue[0];
        if (!head || head.inFlight || head.nextAt > t) continue;
        head.inFlight = true;
        const running: Promise<void> = attempt(head).finally(() => {
          inFlight.delete(running);
          dispatcher.pump();
        });
        inFlight.add(running);
      }
    },
    async close() {
      closed = true;
      // Requests in flight finish (bounded by their timeout); what is unacknowledged stays in the outbox.
      await Promise.allSettled([...inFlight]);
      rooms.clear();
      post.close();
    },
  };
  return dispatcher;
}
