import {
  LIMITS,
  type ClientToServerEvents,
  type ErrorCode,
  type HandshakeErrorCode,
  type ServerToClientEvents,
} from '@switchboard/contract';
import {
  ackErrorSchema,
  handshakeAuthSchema,
  historyAckSchema,
  historyRequestSchema,
  roomEpochPayloadSchema,
  handshakeRefusalSchema,
  peerInfoBatchSchema,
  peerInfoSchema,
  peerLeftPayloadSchema,
  peersAckSchema,
  peersRequestSchema,
  publishAckSchema,
  publishRequestSchema,
  roomEventBatchSchema,
  roomEventSchema,
  serverShutdownPayloadSchema,
  sessionEndedPayloadSchema,
  sessionPayloadSchema,
  sessionRefreshAckSchema,
  sessionRefreshRequestSchema,
  signalAckSchema,
  signalMessageSchema,
  signalRequestSchema,
} from '@switchboard/contract/schemas';
import type { z } from 'zod';

type PayloadOf<Listener> = Listener extends (payload: infer P, ...rest: never[]) => void ? P : never;
type AckOf<Listener> = Listener extends (payload: never, ack: (result: infer R) => void) => void ? R : never;

/** A client-to-server event; its schemas must fit the contract's `ClientToServerEvents`. */
export interface ClientEvent<Listener> {
  summary: string;
  description: string;
  /** What the gateway validates the payload with (`undefined`: no payload sent at all). */
  payload: z.ZodType<PayloadOf<Listener> | undefined | null>;
  ack: z.ZodType<AckOf<Listener>>;
  /** The codes the ack can refuse with, and when. */
  errors: Partial<Record<ErrorCode, string>>;
}

/** A server-to-client event; its schema must fit the contract's `ServerToClientEvents`. */
export interface ServerEvent<Listener> {
  summary: string;
  description: string;
  payload: z.ZodType<PayloadOf<Listener>>;
}

const TOO_LARGE = `The payload is over ${LIMITS.eventBytes / 1024} KiB of JSON.`;

const OFFENCES: Partial<Record<ErrorCode, string>> = {
  invalid_payload: 'The payload does not match the schema.',
  rate_limited: 'More events than `SOCKET_EVENTS_PER_SECOND` allows (with a burst of twice that).',
};

/**
 * Every Socket.IO event in both directions; the AsyncAPI document is generated from these
 * tables and the contract's zod schemas. Keyed by event name and checked against the
 * contract's event maps, so an event missing here, or a schema that does not fit, fails
 * to compile.
 */
export const CLIENT_EVENTS = {
  signal: {
    summary: 'Send a signaling message to one peer of the room',
    description:
      'Relayed as `signal` to the peer `to`, on whichever replica it is, with `from` stamped by the gateway. Needs no capability.',
    payload: signalRequestSchema,
    ack: signalAckSchema,
    errors: {
      ...OFFENCES,
      not_in_room: '`to` is not a peer of this room (or is the sender).',
      payload_too_large: TOO_LARGE,
    },
  },
  publish: {
    summary: 'Publish a room event',
    description: 'Delivered as `room:event` to every member of the room, the sender included, on every replica.',
    payload: publishRequestSchema,
    ack: publishAckSchema,
    errors: {
      ...OFFENCES,
      forbidden: 'The RTC token of this session has no `publish` capability.',
      payload_too_large: TOO_LARGE,
      internal: 'The gateway failed.',
    },
  },
  'session:refresh': {
    summary: 'Extend the session',
    description:
      "Redeems a fresh RTC token (minted with a fresh access JWT) for the same room and user, and moves the session's expiry to that token's.",
    payload: sessionRefreshRequestSchema,
    ack: sessionRefreshAckSchema,
    errors: {
      ...OFFENCES,
      token_invalid: 'The token is not valid.',
      token_expired: 'The token has expired.',
      token_used: 'The token was already redeemed.',
      token_revoked: 'The token was revoked.',
      forbidden: 'The token is for another room or user (it stays usable there).',
      internal: 'The gateway failed.',
    },
  },
  peers: {
    summary: "List the room's peers",
    description: 'The members of the room across replicas, this socket included.',
    payload: peersRequestSchema,
    ack: peersAckSchema,
    errors: { ...OFFENCES, internal: 'The gateway failed.' },
  },
  history: {
    summary: "Read the room's recent events",
    description:
      'Events with `seq` after `after`, oldest first, at most `limit` (default and most 100); without `after`, the latest `limit`. Served by this replica when it holds them, else from the history in Redis.',
    payload: historyRequestSchema,
    ack: historyAckSchema,
    errors: {
      ...OFFENCES,
      unavailable: 'Redis is unreachable and this replica does not hold the events asked for.',
      internal: 'The gateway failed.',
    },
  },
} satisfies { [E in keyof ClientToServerEvents]: ClientEvent<ClientToServerEvents[E]> };

export const SERVER_EVENTS = {
  session: {
    summary: 'The session started',
    description: 'Right after the handshake, before any room traffic; again, with a new `peerId`, after every rejoin.',
    payload: sessionPayloadSchema,
  },
  'peer:joined': {
    summary: 'A peer joined the room',
    description: 'Sent to every other member.',
    payload: peerInfoSchema,
  },
  'peers:joined': {
    summary: 'Several peers joined the room',
    description:
      'Peers that joined within `EVENT_COALESCE_MS` of each other travel as one frame, in the order they joined; each is sent to every member that had not learnt it from its `session`. Listen to both `peer:joined` and `peers:joined`.',
    payload: peerInfoBatchSchema,
  },
  'peer:left': {
    summary: 'A peer left the room',
    description: '`replica_lost`: its replica stopped answering and another replica announced it.',
    payload: peerLeftPayloadSchema,
  },
  signal: {
    summary: 'A signaling message from a peer',
    description: 'What another peer sent with `signal` to this socket.',
    payload: signalMessageSchema,
  },
  'room:event': {
    summary: 'One room event',
    description:
      'From `publish` or `POST /api/rooms/{room}/events`. Every event with `seq` after `session.position.seq` arrives once, in `seq` order.',
    payload: roomEventSchema,
  },
  'room:epoch': {
    summary: "The room's numbering moved",
    description:
      "Redis became unreachable or came back, or the room's history was lost: the events that follow continue after `seq` in `epoch`. With `reason`, events in between could not be delivered: reload what the app shows (e.g. from `history`).",
    payload: roomEpochPayloadSchema,
  },
  'room:events': {
    summary: 'Several room events at once',
    description:
      'Events published within `EVENT_COALESCE_MS` of each other travel as one frame, oldest first. Listen to both `room:event` and `room:events`.',
    payload: roomEventBatchSchema,
  },
  'server:shutdown': {
    summary: 'This replica is draining',
    description: 'Reconnect, through another replica, after `reconnectAfterMs`; the socket is disconnected shortly.',
    payload: serverShutdownPayloadSchema,
  },
  'session:ended': {
    summary: 'The server ends the session',
    description:
      'Sent just before the server disconnects a session whose access JWT expired without a `session:refresh`.',
    payload: sessionEndedPayloadSchema,
  },
} satisfies { [E in keyof ServerToClientEvents]: ServerEvent<ServerToClientEvents[E]> };

/** The Socket.IO handshake: what the client sends, what a refusal carries, and why it is refused. */
export const HANDSHAKE = {
  auth: handshakeAuthSchema,
  refusal: handshakeRefusalSchema,
  errors: {
    token_missing: 'No `auth.token`.',
    token_invalid: 'The token is malformed, or not one this deployment minted.',
    token_expired: 'The token was not used within its `ttlSeconds`.',
    token_used: 'The token was already redeemed, by a connection or a `session:refresh`.',
    token_revoked:
      'The token was revoked with `DELETE /api/rtc/tokens/{jti}`, or its user was removed from the room (`DELETE /api/rooms/{room}/members/{userId}`) after it was minted.',
    origin_forbidden: "The page's `Origin` is not one of the gateway's `CORS_ORIGINS`.",
    rate_limited: 'The user already has `MAX_CONNECTIONS_PER_USER` connections.',
    server_draining: 'This replica is shutting down: connect again, with a new token, through another.',
    unavailable:
      'Redis is reachable but did not confirm the single use of the token in time: connect again with a new token.',
  } satisfies Record<HandshakeErrorCode, string>,
};

/** The answer to any event the tables above do not list, when it is sent with an ack. */
export const UNKNOWN_EVENT = {
  summary: 'The ack of an event not described here',
  description:
    'Any other event sent with an ack is answered with `unknown_event` (and counts as an offence: a socket that keeps sending them is disconnected). Without an ack it is dropped.',
  ack: ackErrorSchema,
};
