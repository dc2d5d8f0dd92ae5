import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Samples } from './stats.js';

/**
 * A webhook receiver for the bench: answers every POST with 204 after `delayMs`, as an
 * app's backend that does a little work would, and records each distinct event's lag
 * (arrival − the event's `ts`). Repeats of an `id` (retries) are counted, not timed.
 */
export class WebhookReceiver {
  /** Lag of each distinct event since the last `reset`, ms. */
  readonly lags = new Samples();
  received = 0;
  repeats = 0;
  /** Events since the last `reset`, by type. */
  readonly byType = new Map<string, number>();
  lastArrivalAt = 0;
  private readonly seen = new Set<string>();
  private since = 0;

  private readonly server: Server;
  /** Where to POST, once started. */
  url = '';

  private constructor(delayMs: number) {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        this.record(Buffer.concat(chunks).toString());
        setTimeout(() => {
          res.writeHead(204).end();
        }, delayMs);
      });
    });
    this.server.keepAliveTimeout = 60_000;
  }

  static async start(delayMs: number): Promise<WebhookReceiver> {
    const receiver = new WebhookReceiver(delayMs);
    await new Promise<void>((resolve) => receiver.server.listen(0, '127.0.0.1', resolve));
    receiver.url = `http://127.0.0.1:${(receiver.server.address() as AddressInfo).port}/webhooks`;
    return receiver;
  }

  /** Forgets the counts and lags; from now on, events that happened before are ignored (repeats still count). */
  reset(): void {
    this.lags.clear();
    this.received = 0;
    this.repeats = 0;
    this.byType.clear();
    this.since = Date.now();
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private record(body: string): void {
    this.lastArrivalAt = performance.now();
    let event: { id?: unknown; type?: unknown; ts?: unknown; data?: { reason?: unknown } };
    try {
      event = JSON.parse(body) as typeof event;
    } catch {
      return;
    }
    if (typeof event.id !== 'string' || typeof event.ts !== 'number') return;
    if (this.seen.has(event.id)) {
      this.repeats++;
      return;
    }
    this.seen.add(event.id);
    if (event.ts < this.since) return;
    this.received++;
    this.lags.push(Date.now() - event.ts);
    // `member.left` by reason: in the bench nobody leaves while measured, so any is worth seeing.
    const reason = typeof event.data?.reason === 'string' ? `:${event.data.reason}` : '';
    const type = `${typeof event.type === 'string' ? event.type : 'unknown'}${reason}`;
    this.byType.set(type, (this.byType.get(type) ?? 0) + 1);
  }
}
