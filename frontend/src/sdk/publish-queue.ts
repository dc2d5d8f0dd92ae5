import type { JsonValue, PublishEventResponse, PublishRequest } from '@switchboard/contract';
import { unwrapAck } from './acks.js';
import { SwitchboardError, toSwitchboardError } from './errors.js';

/** A connection a publish can go out on (a Socket.IO socket). */
export interface PublishChannel {
  readonly connected: boolean;
}

export interface PublishQueueOptions<C extends PublishChannel> {
  /** The connection publishes go out on now, if the room is in a session. */
  current: () => C | undefined;
  /** Sends one publish on `channel` and resolves with the raw ack (rejects on timeout or disconnect). */
  send: (channel: C, payload: PublishRequest & { idempotencyKey: string }) => Promise<unknown>;
  /** Most publishes waiting for their ack; more are refused at once. */
  max: number;
  /** How long a publish may wait for its ack, across reconnects, before it is rejected with `timeout`. */
  timeoutMs: number;
  /** For tests: how keys are made. */
  newKey?: () => string;
}

interface Pending<C> {
  readonly key: string;
  readonly payload: { type: string; data?: JsonValue };
  readonly resolve: (response: PublishEventResponse) => void;
  readonly reject: (error: SwitchboardError) => void;
  readonly timer: ReturnType<typeof setTimeout>;
  /** The connection its latest copy went out on, while its ack is awaited. */
  sentOn: C | undefined;
}

/** Answers that mean "not here, not now": the publish waits for the next session. */
const RETRY_AFTER_RECONNECT = new Set(['server_draining']);

/** 122 random bits as a UUID v4: `crypto.randomUUID` exists only in secure contexts (https, localhost). */
export function newIdempotencyKey(): string {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x40;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  const hex = [...bytes].map((byte) => byte.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * A room's publishes until the gateway acknowledges them. Each has an idempotency key, so
 * a copy sent again after a reconnect (the ack of the first was lost with its connection)
 * is answered with the first one's `{id, seq}` and published nothing: the app's promise
 * settles exactly once, with the event every member received.
 */
export class PublishQueue<C extends PublishChannel> {
  readonly #pending = new Map<string, Pending<C>>();
  readonly #options: PublishQueueOptions<C>;

  constructor(options: PublishQueueOptions<C>) {
    this.#options = options;
  }

  get size(): number {
    return this.#pending.size;
  }

  add(payload: { type: string; data?: JsonValue }): Promise<PublishEventResponse> {
    if (this.#pending.size >= this.#options.max) {
      return Promise.reject(
        new SwitchboardError(
          'rate_limited',
          `publish: ${this.#options.max} publishes are already waiting for the gateway; wait for some to settle`,
        ),
      );
    }
    return new Promise<PublishEventResponse>((resolve, reject) => {
      const key = (this.#options.newKey ?? newIdempotencyKey)();
      const timer = setTimeout(() => {
        this.#settle(key, () => {
          reject(new SwitchboardError('timeout', `publish was not acknowledged within ${this.#options.timeoutMs} ms`));
        });
      }, this.#options.timeoutMs);
      const entry: Pending<C> = { key, payload, resolve, reject, timer, sentOn: undefined };
      this.#pending.set(key, entry);
      const channel = this.#options.current();
      if (channel?.connected) this.#send(entry, channel);
    });
  }

  /** A session started on `channel`: sends, in order, every publish not already out on it. */
  flush(channel: C): void {
    for (const entry of this.#pending.values()) if (entry.sentOn !== channel) this.#send(entry, channel);
  }

  /** Rejects every waiting publish (the room was left or failed). */
  failAll(error: SwitchboardError): void {
    for (const key of [...this.#pending.keys()]) {
      this.#settle(key, (entry) => {
        entry.reject(error);
      });
    }
  }

  #send(entry: Pending<C>, channel: C): void {
    entry.sentOn = channel;
    this.#options.send(channel, { ...entry.payload, idempotencyKey: entry.key }).then(
      (raw) => {
        if (this.#pending.get(entry.key) !== entry) return;
        let ack: Record<string, unknown>;
        try {
          ack = unwrapAck(raw, 'publish');
        } catch (error) {
          const failure = toSwitchboardError(error);
          if (RETRY_AFTER_RECONNECT.has(failure.code)) {
            entry.sentOn = undefined;
            return;
          }
          this.#settle(entry.key, () => {
            entry.reject(failure);
          });
          return;
        }
        const { id, seq, local } = ack;
        this.#settle(entry.key, () => {
          if (typeof id !== 'string' || typeof seq !== 'number') {
            entry.reject(new SwitchboardError('internal', 'publish ack has no id or seq'));
          } else entry.resolve(local === true ? { id, seq, local: true } : { id, seq });
        });
      },
      () => {
        // No ack: timed out, or the connection went. Send the same key again while this
        // connection lasts; after a reconnect `flush` sends it on the new one.
        if (this.#pending.get(entry.key) !== entry || entry.sentOn !== channel) return;
        entry.sentOn = undefined;
        const current = this.#options.current();
        if (current === channel && channel.connected) this.#send(entry, channel);
      },
    );
  }

  #settle(key: string, settle: (entry: Pending<C>) => void): void {
    const entry = this.#pending.get(key);
    if (!entry) return;
    this.#pending.delete(key);
    clearTimeout(entry.timer);
    settle(entry);
  }
}
