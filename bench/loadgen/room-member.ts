import {
  isHandshakeErrorCode,
  type HistoryResponse,
  type RecoveryFailureReason,
  type RecoveryOutcome,
  type RoomEpochPayload,
  type RoomEvent,
  type ServerShutdownPayload,
  type SessionPayload,
} from '@switchboard/contract';
// The SDK's own ordering and reconnect policy, so that members recover, de-duplicate and
// come back exactly as an app on the SDK would (they depend on nothing but types).
import { DEFAULT_BACKOFF } from '../../frontend/src/sdk/backoff.js';
import { EventOrder } from '../../frontend/src/sdk/event-order.js';
import { planRetry, type ConnectionFailure } from '../../frontend/src/sdk/retry-policy.js';
import { unpackRoomEvents } from '../../frontend/src/sdk/room-events.js';
import { ConnectRefused, SocketClient, startsWith, type CloseReason } from './socket-client.js';

export interface Endpoint {
  host: string;
  port: number;
  /** `wss://` (a deployment behind a TLS ingress). */
  tls?: boolean;
}

export interface RoomMemberOptions {
  /**
   * The replicas in this member's order, at fixed addresses (a restarted replica comes back
   * on its port): it starts on the first and moves on to the next when it has to.
   */
  endpoints: readonly Endpoint[];
  /** Mints an RTC token through `endpoint`: a fresh one per connection, as tokens are single use. */
  mint: (endpoint: Endpoint) => Promise<string>;
  /**
   * Switchboard: keep the room's position (`session.position`, then each event's `seq`),
   * send it as `auth.recover` on every reconnect, and de-duplicate and order by `seq`, as
   * the SDK does. Without it (the baseline) every event that arrives is delivered.
   */
  recover: boolean;
  /** Server event after which a connection counts (Switchboard's `session`). */
  readyEvent: string | undefined;
  /** How long a connection attempt may take before the next one. */
  connectTimeoutMs?: number;
  /** Each event handed to the app, once (the load test's latency probe). */
  onDeliver?: (event: RoomEvent) => void;
}

export interface RecoveryTally {
  /** Reconnects answered `recovered: true`, and the events they replayed. */
  recovered: number;
  replayed: number;
  /** Reconnects answered `recovered: false`, by reason. */
  refused: Partial<Record<RecoveryFailureReason, number>>;
}

const prefix = (event: string) => Buffer.from(`2["${event}",`);
const SESSION = prefix('session');
const ROOM_EVENT_PREFIXES = [prefix('room:event'), prefix('room:events')];
const ROOM_EPOCH = prefix('room:epoch');
const SERVER_SHUTDOWN = prefix('server:shutdown');

/**
 * A room member that stays in its room across replica restarts the way an app on the
 * SDK does: on `server:shutdown` it waits the delay it was given and moves to the next
 * replica, keeping the draining connection until the new one's session has started
 * (Switchboard's handover; a baseline replica disconnects at once, so there it makes no
 * difference), after a dropped connection it backs off and moves on, and every connection
 * redeems a freshly minted token. It records which events reached the app, so that a
 * scenario can count what was lost and what arrived twice.
 */
export class RoomMember {
  /** Ids of the events handed to the app, once each. */
  readonly delivered = new Set<string>();
  /** Events handed to the app a second time. */
  duplicates = 0;
  /** Events that arrived again on the wire and were dropped by the de-duplication. */
  redelivered = 0;
  /** Connections after the first. */
  reconnects = 0;
  readonly recoveries: RecoveryTally = { recovered: 0, replayed: 0, refused: {} };

  private client: SocketClient | undefined;
  /** A draining replica's connection, kept until the next session has started. */
  private outgoing: SocketClient | undefined;
  /** Ends the current connection's wait early: its replica asked it to move. */
  private moveOn: () => void = () => undefined;
  private index = 0;
  private attempt = 0;
  private sessions = 0;
  private closed = false;
  /** Ends the current back-off early (on close). */
  private wake: () => void = () => undefined;
  private notice: ServerShutdownPayload | undefined;
  private readonly order: EventOrder | undefined;
  private readonly running: Promise<void>;
  private joined: { resolve: () => void; reject: (error: Error) => void } | undefined;
  /** Resolves on the first session; rejects when the member gives up before it. */
  readonly ready: Promise<void>;

  constructor(private readonly options: RoomMemberOptions) {
    this.order = options.recover
      ? new EventOrder({
          deliver: (event) => this.deliver(event),
          fetchHistory: (after, limit) => this.history(after, limit),
          // What a skip loses shows up as events missing from `delivered`.
          lost: () => undefined,
        })
      : undefined;
    this.ready = new Promise((resolve, reject) => {
      this.joined = { resolve, reject };
    });
    this.ready.catch(() => undefined);
    this.running = this.run();
  }

  /** Whether the member is connected to a replica right now. */
  get connected(): boolean {
    return this.client?.state === 'ready';
  }

  /** Sends `event` on the live connection and resolves with its ack; rejects when not connected. */
  request(event: string, payload: unknown): Promise<unknown> {
    const client = this.client;
    if (!client) return Promise.reject(new Error(`${event}: not connected`));
    return client.request(event, payload);
  }

  /** Leaves for good; resolves once the reconnect loop has stopped. */
  async close(): Promise<void> {
    this.closed = true;
    this.client?.close();
    this.outgoing?.close();
    this.wake();
    await this.running;
  }

  private async run(): Promise<void> {
    let failure: ConnectionFailure | undefined;
    while (!this.closed) {
      if (failure) {
        const plan = planRetry(failure, this.attempt++, DEFAULT_BACKOFF);
        if (plan.action === 'fail') {
          this.joined?.reject(new Error(`gave up: ${plan.code}`));
          return;
        }
        if (plan.rotate) this.index = (this.index + 1) % this.options.endpoints.length;
        await this.pause(plan.delayMs);
        if (this.closed) return;
      }
      failure = await this.connection();
    }
  }

  /** One connection, from mint to close: resolves with why it ended (or never began). */
  private async connection(): Promise<ConnectionFailure> {
    const endpoint = this.options.endpoints[this.index] as Endpoint;
    let ended: (reason: CloseReason | 'move') => void = () => undefined;
    const closed = new Promise<CloseReason | 'move'>((resolve) => {
      ended = resolve;
    });
    let client: SocketClient | undefined;
    let abandoned = false;
    const open = async (): Promise<void> => {
      const token = await this.options.mint(endpoint);
      if (this.closed || abandoned) throw new Error('abandoned');
      // Taken now, as the SDK does: the last event the app saw before this attempt.
      const recover = this.order?.position;
      client = new SocketClient({
        host: endpoint.host,
        port: endpoint.port,
        ...(endpoint.tls ? { tls: true } : {}),
        auth: recover ? { token, recover } : { token },
        ...(this.options.readyEvent ? { readyEvent: this.options.readyEvent } : {}),
        onPacket: (packet) => {
          this.onPacket(packet);
        },
        onClose: ended,
      });
      this.client = client;
      await client.ready;
      // The new session has started: the draining replica may go.
      this.outgoing?.close();
      this.outgoing = undefined;
    };
    try {
      await withTimeout(open(), this.options.connectTimeoutMs ?? 10_000);
    } catch (error) {
      abandoned = true;
      client?.close();
      if (error instanceof ConnectRefused) {
        return { kind: 'error', code: isHandshakeErrorCode(error.code) ? error.code : 'internal' };
      }
      return { kind: 'error', code: error instanceof TimedOut ? 'timeout' : 'unreachable' };
    }
    if (this.sessions++ > 0) this.reconnects++;
    this.attempt = 0;
    this.joined?.resolve();
    this.moveOn = () => ended('move');
    const reason = await closed;
    this.moveOn = () => undefined;
    if (reason === 'move') {
      // Make before break: this connection still delivers while the next one connects.
      this.outgoing = client;
      return { kind: 'shutdown', reconnectAfterMs: 0 };
    }
    this.order?.pause();
    const notice = this.notice;
    this.notice = undefined;
    return notice ? { kind: 'shutdown', reconnectAfterMs: notice.reconnectAfterMs } : { kind: 'disconnect', reason };
  }

  /** Waits `ms`, or less if the member is closed meanwhile. */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }

  private onPacket(packet: Buffer): void {
    const kind = ROOM_EVENT_PREFIXES.find((candidate) => startsWith(packet, candidate));
    if (kind) {
      for (const event of unpackRoomEvents(parsePayload(packet, kind))) {
        if (this.delivered.has(event.id)) this.redelivered++;
        if (this.order) this.order.receive(event);
        else this.deliver(event);
      }
    } else if (startsWith(packet, SESSION)) {
      const session = parsePayload(packet, SESSION) as SessionPayload;
      if (session.recovery) this.tally(session.recovery);
      this.order?.start(session);
    } else if (startsWith(packet, ROOM_EPOCH)) {
      this.order?.moved(parsePayload(packet, ROOM_EPOCH) as RoomEpochPayload);
    } else if (startsWith(packet, SERVER_SHUTDOWN)) {
      const notice = parsePayload(packet, SERVER_SHUTDOWN) as ServerShutdownPayload;
      this.notice = notice;
      const move = this.moveOn;
      setTimeout(() => {
        this.notice = undefined;
        move();
      }, notice.reconnectAfterMs).unref();
    }
  }

  private deliver(event: RoomEvent): void {
    if (this.delivered.has(event.id)) this.duplicates++;
    else {
      this.delivered.add(event.id);
      this.options.onDeliver?.(event);
    }
  }

  /** Cuts the connection as a network drop would; the member reconnects and recovers. */
  drop(): void {
    this.client?.cut();
  }

  private tally(outcome: RecoveryOutcome): void {
    if (outcome.recovered) {
      this.recoveries.recovered++;
      this.recoveries.replayed += outcome.replayed;
    } else {
      this.recoveries.refused[outcome.reason] = (this.recoveries.refused[outcome.reason] ?? 0) + 1;
    }
  }

  private async history(after: number, limit: number): Promise<HistoryResponse> {
    const answer = (await this.request('history', { after, limit })) as ({ ok: boolean } & HistoryResponse) | undefined;
    if (!answer?.ok) throw new Error('history refused');
    return { epoch: answer.epoch, top: answer.top, events: unpackRoomEvents(answer.events) };
  }
}

class TimedOut extends Error {}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new TimedOut(`timed out after ${ms} ms`));
    }, ms);
  });
  return Promise.race([promise, timeout]).finally(() => {
    clearTimeout(timer);
  });
}

/** The payload of `2["<event>",<payload>]`. */
function parsePayload(packet: Buffer, eventPrefix: Buffer): unknown {
  return JSON.parse(packet.toString('utf8', eventPrefix.length, packet.length - 1));
}
