import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { startsWith, type SocketClient } from './socket-client.js';
import { Samples } from './stats.js';

/** `2["room:event` — a Socket.IO EVENT packet carrying one room event or (`room:events`) a batch. */
const ROOM_EVENT_PREFIX = Buffer.from('2["room:event');
const BATCH_MARKER_INDEX = ROOM_EVENT_PREFIX.length;
const CHAR_S = 's'.charCodeAt(0);
/**
 * Once in every serialized room event on both systems (Switchboard's start with `seq`,
 * the baseline's with `id`); the bench's `data` has no `from` key.
 */
const EVENT_MARKER = Buffer.from('"from":"');

const TEXT = 'the quick brown fox jumps over the lazy dog, twice';

export interface PublishOptions {
  /** Every publish carries an `idempotencyKey` of its own. */
  idempotencyKeys?: boolean;
}

export interface Member {
  client: SocketClient;
  /** Index of the replica the socket is connected to. */
  replica: number;
  /** Parse every event this socket receives and record its latency. */
  sampled: boolean;
}

interface LatencyData {
  /** performance.now() of the publisher (same process) when it sent the event. */
  t: number;
  /** Replica the publisher was connected to. */
  r: number;
}

/**
 * Drives one room: publishers send `publish` at a fixed rate with a timestamp in
 * `data`; every member counts deliveries (a batch counts its length), and sampled
 * members parse events to record end-to-end latency, split by whether the event
 * crossed replicas.
 */
export class RoomLoad {
  /** Deliveries and frames received while recording. */
  deliveries = 0;
  frames = 0;
  /** Every delivery since the last `resetTotals`, recording or not. */
  totalDeliveries = 0;
  published = 0;
  /** Publishes answered with an error, or whose connection closed before the ack. */
  publishErrors = 0;
  readonly sameReplica = new Samples();
  readonly crossReplica = new Samples();
  /** Publish to ack at the publisher, ms, while recording. */
  readonly acks = new Samples();
  private recording = false;
  /** Idempotency keys: unique to this load, so no run repeats another's within the window. */
  private readonly keyPrefix = `${randomUUID()}-`;
  private keysSent = 0;

  constructor(
    readonly members: Member[],
    private readonly publishers: Member[],
  ) {
    for (const member of members) {
      member.client.onPacket = member.sampled
        ? (packet) => {
            this.onSampled(packet, member.replica);
          }
        : (packet) => {
            this.onPacket(packet);
          };
    }
  }

  startRecording(): void {
    this.deliveries = 0;
    this.frames = 0;
    this.sameReplica.clear();
    this.crossReplica.clear();
    this.acks.clear();
    this.recording = true;
  }

  stopRecording(): void {
    this.recording = false;
  }

  resetTotals(): void {
    this.totalDeliveries = 0;
    this.published = 0;
    this.publishErrors = 0;
  }

  /**
   * Publishes `rate` events per second, spread over the publishers, for `durationMs`; with
   * `idempotencyKeys`, each with a key of its own, as the SDK sends them.
   */
  async publish(rate: number, durationMs: number, { idempotencyKeys = false }: PublishOptions = {}): Promise<void> {
    const publishers = this.publishers;
    if (publishers.length === 0) throw new Error('the room has no publishers');
    let sent = 0;
    await atRate(rate, durationMs, () => {
      const publisher = publishers[sent++ % publishers.length] as Member;
      const t = performance.now();
      const data: LatencyData & { text: string } = { t, r: publisher.replica, text: TEXT };
      this.published++;
      const request = idempotencyKeys
        ? { type: 'chat', data, idempotencyKey: `${this.keyPrefix}${this.keysSent++}` }
        : { type: 'chat', data };
      publisher.client.request('publish', request).then(
        (answer) => {
          if ((answer as { ok?: unknown } | undefined)?.ok !== true) this.publishErrors++;
          else if (this.recording) this.acks.push(performance.now() - t);
        },
        () => {
          this.publishErrors++;
        },
      );
    });
  }

  /** Waits until `expected` deliveries arrived, or nothing arrived for `quietMs`; returns the shortfall. */
  async drain(expected: number, quietMs = 1_000, capMs = 60_000): Promise<number> {
    const deadline = performance.now() + capMs;
    let last = this.totalDeliveries;
    let lastChange = performance.now();
    while (this.totalDeliveries < expected && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      if (this.totalDeliveries !== last) {
        last = this.totalDeliveries;
        lastChange = performance.now();
      } else if (performance.now() - lastChange > quietMs) break;
    }
    return Math.max(0, expected - this.totalDeliveries);
  }

  close(): void {
    for (const member of this.members) member.client.close();
  }

  private onPacket(packet: Buffer): void {
    if (!startsWith(packet, ROOM_EVENT_PREFIX)) return;
    let count = 1;
    if (packet[BATCH_MARKER_INDEX] === CHAR_S) {
      count = 0;
      let at = packet.indexOf(EVENT_MARKER, BATCH_MARKER_INDEX);
      while (at !== -1) {
        count++;
        at = packet.indexOf(EVENT_MARKER, at + EVENT_MARKER.length);
      }
    }
    this.totalDeliveries += count;
    if (this.recording) {
      this.deliveries += count;
      this.frames++;
    }
  }

  private onSampled(packet: Buffer, replica: number): void {
    if (!startsWith(packet, ROOM_EVENT_PREFIX)) return;
    const now = performance.now();
    const [name, body] = JSON.parse(packet.toString('utf8', 1)) as [string, unknown];
    const events = (name === 'room:events' ? body : [body]) as Array<{ data: LatencyData }>;
    this.totalDeliveries += events.length;
    if (!this.recording) return;
    this.deliveries += events.length;
    this.frames++;
    for (const event of events) {
      (event.data.r === replica ? this.sameReplica : this.crossReplica).push(now - event.data.t);
    }
  }
}

/**
 * Calls `send` `rate` times per second for `durationMs` (or until `signal` aborts), on a
 * 1 ms tick that catches up on whatever a late tick owed, so the rate holds while the
 * event loop is busy.
 */
export async function atRate(rate: number, durationMs: number, send: () => void, signal?: AbortSignal): Promise<void> {
  const started = performance.now();
  let sent = 0;
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const elapsed = performance.now() - started;
      const due = Math.floor((Math.min(elapsed, durationMs) * rate) / 1000);
      for (; sent < due && !signal?.aborted; sent++) send();
      if (elapsed >= durationMs || signal?.aborted) {
        clearInterval(timer);
        resolve();
      }
    }, 1);
  });
}
