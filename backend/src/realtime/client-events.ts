import {
  ERROR_MESSAGES,
  LIMITS,
  type AckError,
  type ErrorCode,
  type PeersPage,
  type SessionPayload,
} from '@switchboard/contract';
import {
  peersRequestSchema,
  publishRequestSchema,
  roomJoinRequestSchema,
  roomLeaveRequestSchema,
  sessionRefreshRequestSchema,
  signalRequestSchema,
  socketHistoryRequestSchema,
} from '@switchboard/contract/schemas';
import type { z } from 'zod';
import { HistoryUnavailableError } from '../history/types.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { Presence } from '../presence/types.js';
import { RedeemError, type TokenService } from '../tokens/service.js';
import { CapReachedError, type Admission } from './admission.js';
import { sharedCaps, type Memberships } from './memberships.js';
import type { Rooms } from './rooms.js';
import type { ExpiryWheel } from './session-expiry.js';
import type { Signals } from './signals.js';
import type { SlowConsumers } from './slow-consumers.js';
import type { GatewaySocket, Membership } from './types.js';

type Reply = (result: { ok: true; [key: string]: unknown } | AckError) => void;

export interface ClientEventsOptions {
  tokens: TokenService;
  admission: Admission;
  memberships: Memberships;
  presence: Presence;
  rooms: Rooms;
  signals: Signals;
  expiry: ExpiryWheel<Membership>;
  slowConsumers: SlowConsumers;
  socketEventsPerSecond: number;
  /** `MAX_ROOMS_PER_CONNECTION`. */
  maxRoomsPerConnection: number;
  isDraining: () => boolean;
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
  const { tokens, admission, memberships, presence, rooms, signals, expiry, slowConsumers, metrics } = options;
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

  /**
   * The membership a room-scoped event is about: the one it names, or the connection's
   * only one. Acks the refusal (and returns undefined) otherwise.
   */
  function membershipOf(socket: GatewaySocket, room: string | undefined, reply: Reply): Membership | undefined {
    const rooms = socket.data.rooms;
    if (room !== undefined) {
      const named = rooms.get(room);
      if (!named) reply(fail('not_in_room', 'this connection is not in that room'));
      return named;
    }
    const single = rooms.single();
    if (single) return single;
    reply(
      rooms.size === 0
        ? fail('not_in_room', 'this connection is in no room')
        : fail('invalid_payload', 'room: required on a connection in more than one room'),
    );
    return undefined;
  }

  const tokenFailure = (error: unknown): AckError => {
    if (error instanceof RedeemError) return fail(error.code);
    if (error instanceof CapReachedError) return fail('rate_limited', error.message);
    log.error({ err: error }, 'room join failed');
    return fail('internal');
  };

  function onJoin(socket: GatewaySocket, payload: unknown, ack: unknown): void {
    const accepted = accept(socket, 'room:join', roomJoinRequestSchema, payload, ack);
    if (!accepted) return;
    const { token, recover } = accepted.payload;
    const data = socket.data;
    let room: string | undefined;
    const join = async (): Promise<Parameters<Reply>[0] | undefined> => {
      if (options.isDraining()) return fail('server_draining');
      const claims = tokens.verify(token);
      room = claims.room;
      // Checked before the token is spent, so a refused token stays usable where it belongs.
      if (data.userId !== undefined && claims.sub !== data.userId) {
        return fail('forbidden', "the token is for another user than this connection's");
      }
      if (data.rooms.has(claims.room)) return fail('invalid_request', 'this connection is already in that room');
      if (data.rooms.size >= options.maxRoomsPerConnection) {
        return fail('rate_limited', `a connection may be in at most ${options.maxRoomsPerConnection} rooms`);
      }
      await admission.redeem(socket, claims);
      if (!socket.connected) return undefined;
      if (data.rooms.has(claims.room)) return fail('invalid_request', 'this connection is already in that room');
      let answered = false;
      const session = await memberships.join(socket, claims, recover, (joined: SessionPayload) => {
        answered = true;
        accepted.reply({ ok: true, ...joined });
      });
      if (session || answered) return undefined;
      return fail('token_revoked', 'the session in that room ended while joining');
    };
    join().then(
      (result) => {
        if (result) accepted.reply(result);
      },
      (error: unknown) => {
        // A join that failed half way (the room's history unreadable, say) leaves nothing behind.
        const membership = room === undefined ? undefined : data.rooms.get(room);
        if (membership) memberships.leave(membership, 'disconnect');
        accepted.reply(tokenFailure(error));
      },
    );
  }

  function onLeave(socket: GatewaySocket, payload: unknown, ack: unknown): void {
    const accepted = accept(socket, 'room:leave', roomLeaveRequestSchema, payload, ack);
    if (!accepted) return;
    const membership = membershipOf(socket, accepted.payload.room, accepted.reply);
    if (!membership) return;
    memberships.leave(membership, 'disconnect');
    accepted.reply({ ok: true });
  }

  function onSignal(socket: GatewaySocket, payload: unknown, ack: unknown): void {
    const accepted = accept(socket, 'signal', signalRequestSchema, payload, ack, LIMITS.eventBytes);
    if (!accepted) return;
    const { room, to, kind, data } = accepted.payload;
    const membership = membershipOf(socket, room, accepted.reply);
    if (!membership) return;
    accepted.reply(signals.send(membership, to, kind, data) ? { ok: true } : fail('not_in_room'));
  }

  function onPublish(socket: GatewaySocket, payload: unknown, ack: unknown): void {
    // Rate-limited first: a refused publish costs the sender its allowance like any other.
    const accepted = accept(socket, 'publish', publishRequestSchema, payload, ack, LIMITS.eventBytes);
    if (!accepted) return;
    const { room, type, data, idempotencyKey } = accepted.payload;
    const membership = membershipOf(socket, room, accepted.reply);
    if (!membership) return;
    if (!membership.caps.includes('publish')) {
      accepted.reply(fail('forbidden', 'this token does not carry the publish capability'));
      strike(socket, 'publish');
      return;
    }
    rooms.publish(membership.room, { type, data: data ?? null, idempotencyKey }, socket.id).then(
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
      const named = accepted.payload.room;
      const membership = socket.data.rooms.get(claims.room);
      // Checked before the token is spent, so a token for another room stays usable there.
      if (!membership || (named !== undefined && named !== claims.room) || claims.sub !== socket.data.userId) {
        return fail('forbidden', 'the token is for another room or user');
      }
      await tokens.consume(claims);
      membership.expiresAt = claims.sexp * 1000;
      membership.caps = sharedCaps(claims.caps);
      if (socket.data.rooms.get(claims.room) === membership) expiry.schedule(membership, membership.expiresAt);
      return { ok: true, expiresAt: membership.expiresAt };
    };
    refresh().then(accepted.reply, (error: unknown) => {
      accepted.reply(error instanceof RedeemError ? fail(error.code) : fail('internal'));
    });
  }

  function onPeers(socket: GatewaySocket, payload: unknown, ack: unknown): void {
    const accepted = accept(socket, 'peers', peersRequestSchema, payload, ack);
    if (!accepted) return;
    const { room, cursor, limit = LIMITS.peersPage } = accepted.payload ?? {};
    const membership = membershipOf(socket, room, accepted.reply);
    if (!membership) return;
    const after = cursor === undefined ? 0 : Number.parseInt(cursor, 36);
    if (!Number.isSafeInteger(after) || after < 0) {
      accepted.reply(fail('invalid_request', 'cursor: not one this connection was given'));
      return;
    }
    const page = presence.page(membership.room, after, limit);
    const answer: PeersPage = {
      peers: page.peers,
      peerCount: page.peerCount,
      ...(page.cursor !== undefined ? { cursor: page.cursor.toString(36) } : {}),
    };
    accepted.reply({ ok: true, ...answer });
  }

  function onHistory(socket: GatewaySocket, payload: unknown, ack: unknown): void {
    const accepted = accept(socket, 'history', socketHistoryRequestSchema, payload ?? {}, ack);
    if (!accepted) return;
    const { room, after, limit = LIMITS.historyLimit } = accepted.payload;
    const membership = membershipOf(socket, room, accepted.reply);
    if (!membership) return;
    rooms.read(membership.room, { after, limit }).then(
      (page) => accepted.reply({ ok: true, ...page }),
      (error: unknown) => {
        accepted.reply(error instanceof HistoryUnavailableError ? fail(error.code, error.message) : fail('internal'));
      },
    );
  }

  const handlers: Record<string, (socket: GatewaySocket, payload: unknown, ack: unknown) => void> = {
    'room:join': onJoin,
    'room:leave': onLeave,
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
