import { ERROR_MESSAGES, LIMITS, type AckError, type ErrorCode, type SignalMessage } from '@switchboard/contract';
import {
  historyRequestSchema,
  peersRequestSchema,
  publishRequestSchema,
  sessionRefreshRequestSchema,
  signalRequestSchema,
} from '@switchboard/contract/schemas';
import type { z } from 'zod';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { Presence } from '../presence/types.js';
import { RedeemError, type TokenService } from '../tokens/service.js';
import { sharedCaps } from './admission.js';
import { HistoryUnavailableError, type Rooms } from './rooms.js';
import type { ExpiryWheel } from './session-expiry.js';
import type { SlowConsumers } from './slow-consumers.js';
import type { GatewaySocket } from './types.js';

type Reply = (result: { ok: true; [key: string]: unknown } | AckError) => void;

export interface ClientEventsOptions {
  tokens: TokenService;
  presence: Presence;
  rooms: Rooms;
  expiry: ExpiryWheel<GatewaySocket>;
  slowConsumers: SlowConsumers;
  socketEventsPerSecond: number;
  /** Finds a socket of this replica by peer id. */
  localSocket: (peerId: string) => GatewaySocket | undefined;
  /** Sends a signal to a peer of another replica, through the room's channel. */
  relaySignal: (room: string, to: string, signal: SignalMessage) => void;
  logger: Logger;
  metrics: Metrics;
}

/** Offences (invalid or rate-limited events) a socket may commit before it is cut off. */
const MAX_STRIKES = 100;

const fail = (code: ErrorCode, message: string = ERROR_MESSAGES[code]): AckError => ({
  ok: false,
  error: { code, message },
});

function validationMessage(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return ERROR_MESSAGES.invalid_payload;
  return issue.path.length > 0 ? `${issue.path.join('.')}: ${issue.message}` : issue.message;
}

/** Bytes of `value` as JSON; it passed the schema, so it is plain, bounded JSON. */
const jsonBytes = (value: unknown): number => Buffer.byteLength(JSON.stringify(value) ?? '');

/**
 * What an admitted socket may send. Every event gets an ack with the result, including
 * unknown events; an offence costs a strike, and only many of them disconnect.
 * Registered as one catch-all listener per socket, not one per event: each named
 * listener grows the socket's dictionary-mode `_events` (~150 bytes per socket).
 */
export function createClientEvents(options: ClientEventsOptions): (socket: GatewaySocket) => void {
  const { tokens, presence, rooms, expiry, slowConsumers, metrics } = options;
  const log = options.logger.child({ component: 'client-events' });
  const rate = options.socketEventsPerSecond;

  const strike = (socket: GatewaySocket, event: string): void => {
    if (++socket.data.strikes !== MAX_STRIKES + 1) return;
    log.warn({ peerId: socket.id, event }, 'disconnecting a socket that keeps sending bad or too many events');
    // One that also does not read is cut as a slow consumer.
    slowConsumers.disconnect(socket);
  };

  /**
   * The gate of every client event: an ack function, the rate limit, the schema and
   * the size. Returns the parsed payload, or undefined after acking the refusal.
   */
  function accept<S extends z.ZodType>(
    socket: GatewaySocket,
    event: string,
    schema: S,
    payload: unknown,
    ack: unknown,
    maxBytes?: number,
  ): { payload: z.infer<S>; reply: Reply } | undefined {
    const reply: Reply = typeof ack === 'function' ? (ack as Reply) : () => undefined;
    const data = socket.data;
    const now = Date.now();
    data.allowance = Math.min(rate * 2, data.allowance + ((now - data.refilledAt) * rate) / 1000);
    data.refilledAt = now;
    let refusal: AckError | undefined;
    let parsed: z.ZodSafeParseResult<z.infer<S>> | undefined;
    if (data.allowance < 1) refusal = fail('rate_limited');
    // A client that does not read what it asked for gets no more answers until it catches up.
    else if (slowConsumers.congested(socket))
      refusal = fail('rate_limited', 'too much is waiting to be sent to this connection; read it first');
    else {
      data.allowance -= 1;
      parsed = schema.safeParse(payload);
      if (!parsed.success) refusal = fail('invalid_payload', validationMessage(parsed.error));
      else if (maxBytes !== undefined && jsonBytes(payload) > maxBytes) {
        refusal = fail('payload_too_large', `events are limited to ${maxBytes} bytes of JSON`);
      }
    }
    if (refusal || !parsed?.success) {
      const result = refusal ?? fail('invalid_payload');
      metrics.eventsIn.inc({ event, result: result.error.code });
      reply(result);
      strike(socket, event);
      return undefined;
    }
    metrics.eventsIn.inc({ event, result: 'ok' });
    return { payload: parsed.data, reply };
  }

  function onSignal(socket: GatewaySocket, payload: unknown, ack: unknown): void {
    const accepted = accept(socket, 'signal', signalRequestSchema, payload, ack, LIMITS.eventBytes);
    if (!accepted) return;
    const { to, kind, data } = accepted.payload;
    const room = socket.data.room;
    if (to === socket.id || !presence.has(room, to)) {
      accepted.reply(fail('not_in_room'));
      return;
    }
    const signal: SignalMessage = { from: socket.id, kind, data };
    const local = options.localSocket(to);
    // A local target costs nothing; a remote one one publish on the room's channel.
    if (local) {
      if (local.data.room === room) local.emit('signal', signal);
    } else options.relaySignal(room, to, signal);
    metrics.eventsOut.inc({ event: 'signal' });
    accepted.reply({ ok: true });
  }

  function onPublish(socket: GatewaySocket, payload: unknown, ack: unknown): void {
    // Rate-limited first: a refused publish costs the sender its allowance like any other.
    const accepted = accept(socket, 'publish', publishRequestSchema, payload, ack, LIMITS.eventBytes);
    if (!accepted) return;
    if (!socket.data.caps.includes('publish')) {
      accepted.reply(fail('forbidden', 'this token does not carry the publish capability'));
      strike(socket, 'publish');
      return;
    }
    const { type, data, idempotencyKey } = accepted.payload;
    rooms.publish(socket.data.room, { type, data: data ?? null, idempotencyKey }, socket.id).then(
      (published) => accepted.reply({ ok: true, ...published }),
      (error: unknown) => {
        log.error({ err: error }, 'publish failed');
        accepted.reply(fail('internal'));
      },
    );
  }

  function onRefresh(socket: GatewaySocket, payload: unknown, ack: unknown): void {
    const accepted = accept(socket, 'session:refresh', sessionRefreshRequestSchema, payload, ack);
    if (!accepted) return;
    const refresh = async (): Promise<Parameters<Reply>[0]> => {
      const claims = tokens.verify(accepted.payload.token);
      // Checked before the token is spent, so a token for another room stays usable there.
      if (claims.room !== socket.data.room || claims.sub !== socket.data.userId) {
        return fail('forbidden', 'the token is for another room or user');
      }
      await tokens.consume(claims);
      socket.data.expiresAt = claims.sexp * 1000;
      socket.data.caps = sharedCaps(claims.caps);
      expiry.schedule(socket, socket.data.expiresAt);
      return { ok: true, expiresAt: socket.data.expiresAt };
    };
    refresh().then(accepted.reply, (error: unknown) => {
      accepted.reply(error instanceof RedeemError ? fail(error.code) : fail('internal'));
    });
  }

  function onPeers(socket: GatewaySocket, payload: unknown, ack: unknown): void {
    const accepted = accept(socket, 'peers', peersRequestSchema, payload, ack);
    if (!accepted) return;
    presence.list(socket.data.room).then(
      (peers) => accepted.reply({ ok: true, peers }),
      () => accepted.reply(fail('internal')),
    );
  }

  function onHistory(socket: GatewaySocket, payload: unknown, ack: unknown): void {
    const accepted = accept(socket, 'history', historyRequestSchema, payload ?? {}, ack);
    if (!accepted) return;
    const { after, limit = LIMITS.historyLimit } = accepted.payload;
    rooms.read(socket.data.room, { after, limit }).then(
      (page) => accepted.reply({ ok: true, ...page }),
      (error: unknown) => {
        accepted.reply(
          error instanceof HistoryUnavailableError ? fail('unavailable', error.message) : fail('internal'),
        );
      },
    );
  }

  const handlers: Record<string, (socket: GatewaySocket, payload: unknown, ack: unknown) => void> = {
    signal: onSignal,
    publish: onPublish,
    'session:refresh': onRefresh,
    peers: onPeers,
    history: onHistory,
  };

  return (socket) => {
    socket.onAny((event: unknown, payload?: unknown, ack?: unknown) => {
      // Socket.IO passes the ack last, whatever came before it.
      const reply = typeof ack === 'function' ? ack : typeof payload === 'function' ? payload : undefined;
      const handler = typeof event === 'string' && Object.hasOwn(handlers, event) ? handlers[event] : undefined;
      if (handler) {
        handler(socket, typeof payload === 'function' ? undefined : payload, reply);
        return;
      }
      metrics.eventsIn.inc({ event: 'unknown', result: 'unknown_event' });
      if (typeof reply === 'function')
        (reply as Reply)(fail('unknown_event', `no event named ${String(event).slice(0, 64)}`));
      strike(socket, 'unknown');
    });
  };
}
