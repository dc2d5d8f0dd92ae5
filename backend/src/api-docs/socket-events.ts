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
  socketHistoryRequestSchema,
  roomEpochPayloadSchema,
  handshakeRefusalSchema,
  peerJoinedBatchSchema,
  peerJoinedPayloadSchema,
  peerLeftPayloadSchema,
  presenceCountPayloadSchema,
  roomJoinAckSchema,
  roomJoinRequestSchema,
  roomLeaveAckSchema,
  roomLeaveRequestSchema,
  peersAckSchema,
  peersRequestSchema,
  publishAckSchema,
  publishRequestSchema,
  roomEventBatchSchema,
  roomEventFrameSchema,
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
  invalid_payload:
    'The payload does not match the schema, or it leaves out `room` on a connection in more than one room.',
  rate_limited: 'More events than `SOCKET_EVENTS_PER_SECOND` allows (with a burst of twice that).',
};

/** What a room-scoped event can be refused with besides its own errors. */
const NOT_A_MEMBER = { not_in_room: 'The connection is not in `room` (or in no room at all).' };

/** Why a room's RTC token is refused, at `room:join` and `session:refresh`. */
const TOKEN_REFUSALS: Partial<Record<ErrorCode, string>> = {
  token_invalid: 'The token is not valid.',
  token_expired: 'The token has expired.',
  token_used: 'The token was already redeemed.',
  token_revoked: 'The token was revoked, or its user was removed from the room after it was minted.',
  unavailable: 'Redis did not confirm the single use of the token in time: try again with a new token.',
};

/**
 * Every Socket.IO event in both directions; the AsyncAPI document is generated from these
 * tables and the contract's zod schemas. Keyed by event name and checked against the
 * contract's event maps, so an event missing here, or a schema that does not fit, fails
 * to compile.
 */
export const CLIENT_EVENTS = {
  'room:join': {
    summary: 'Join one more room on this connection',
    description:
      "Redeems a fresh RTC token for the room (same single use, revocation and room access as the handshake) and answers with what `session` carries for it; with `recover`, the missed events follow as `room:events` before any live one. The token must be for the connection's user (the first token's).",
    payload: roomJoinRequestSchema,
    ack: roomJoinAckSchema,
    errors: {
      ...OFFENCES,
      ...TOKEN_REFUSALS,
      rate_limited:
        'More events than `SOCKET_EVENTS_PER_SECOND` allows, or the connection is already in `MAX_ROOMS_PER_CONNECTION` rooms.',
      forbidden: "The token is for another user than the connection's.",
      invalid_request: 'The connection is already in that room.',
      internal: 'The gateway failed.',
    },
  },
  'room:leave': {
    summary: 'Leave one room',
    description:
      'The room sees `peer:left` (reason `disconnect`); the connection stays open and in its other rooms. A connection left in no room is closed after a minute unless it joins one.',
    payload: roomLeaveRequestSchema,
    ack: roomLeaveAckSchema,
    errors: { ...OFFENCES, ...NOT_A_MEMBER },
  },
  signal: {
    summary: 'Send a signaling message to one peer of the room',
    description:
      'Relayed as `signal` to the peer `to`, on whichever replica it is, with `from` stamped by the gateway. Needs no capability.',
    payload: signalRequestSchema,
    ack: signalAckSchema,
    errors: {
      ...OFFENCES,
      not_in_room: '`to` is not a peer of `room` (or is the sender), or the connection is not in `room`.',
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
      ...NOT_A_MEMBER,
      forbidden: 'The RTC token of this session has no `publish` capability.',
      payload_too_large: TOO_LARGE,
      internal: 'The gateway failed.',
    },
  },
  'session:refresh': {
    summary: 'Extend the session',
    description:
      "Redeems a fresh RTC token (minted with a fresh access JWT) for one of the connection's rooms and the same user, and moves that room's session expiry to that token's.",
    payload: sessionRefreshRequestSchema,
    ack: sessionRefreshAckSchema,
    errors: {
      ...OFFENCES,
      ...TOKEN_REFUSALS,
      ...NOT_A_MEMBER,
      forbidden: 'The token is for another room or user (it stays usable there).',
      internal: 'The gateway failed.',
    },
  },
  peers: {
    summary: "Page through the room's peers",
    description:
      'The members of the room across replicas, this connection included, at most `limit` (default and most 100) per page in a stable order, with `peerCount`. While `cursor` comes back, ask again with it: every peer that stays in the room is listed exactly once across the pages.',
    payload: peersRequestSchema,
    ack: peersAckSchema,
    errors: {
      ...OFFENCES,
      ...NOT_A_MEMBER,
      invalid_request: 'The `cursor` is not one this connection was given.',
      internal: 'The gateway failed.',
    },
  },
  history: {
    summary: "Read the room's recent events",
    description:
      'Events with `seq` after `after`, oldest first, at most `limit` (default and most 100); without `after`, the latest `limit`. Served by this replica when it holds them, else from the history in Redis.',
    payload: socketHistoryRequestSchema,
    ack: historyAckSchema,
    errors: {
      ...OFFENCES,
      ...NOT_A_MEMBER,
      unavailable: 'Redis is unreachable and this replica does not hold the events asked for.',
      internal: 'The gateway failed.',
    },
  },
} satisfies { [E in keyof ClientToServerEvents]: ClientEvent<ClientToServerEvents[E]> };

export const SERVER_EVENTS = {
  session: {
    summary: 'The session started',
    description:
      "Right after a handshake with a token, before any room traffic; again, with a new `peerId`, after every rejoin. Lists at most `PRESENCE_SNAPSHOT_MAX` peers (`peerCount` says how many there are). A handshake without a token gets no `session`: the connection's rooms are joined with `room:join`, whose answer carries the same.",
    payload: sessionPayloadSchema,
  },
  'peer:joined': {
    summary: 'A peer joined a room',
    description: 'Sent to every other member, while the room has at most `ROOM_ANNOUNCE_MAX` members.',
    payload: peerJoinedPayloadSchema,
  },
  'peers:joined': {
    summary: 'Several peers joined the room',
    description:
      'Peers that joined within `EVENT_COALESCE_MS` of each other travel as one frame, in the order they joined; each is sent to every member that had not learnt it from its `session`. Listen to both `peer:joined` and `peers:joined`.',
    payload: peerJoinedBatchSchema,
  },
  'peer:left': {
    summary: 'A peer left a room',
    description:
      '`replica_lost`: its replica stopped answering and another replica announced it. Sent while the room has at most `ROOM_ANNOUNCE_MAX` members.',
    payload: peerLeftPayloadSchema,
  },
  'presence:count': {
    summary: "A large room's member count",
    description:
      'In a room with more than `ROOM_ANNOUNCE_MAX` members, joins and leaves are not announced one by one: members get the count instead, at most once per `PRESENCE_COUNT_INTERVAL_MS` and only when it changed. Page `peers` to see who is there.',
    payload: presenceCountPayloadSchema,
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
    payload: roomEventFrameSchema,
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
      "Sent when the server ends the connection's session in `room`: its access JWT expired without a `session:refresh`, or the app removed the user from the room (`kicked`: do not rejoin). The connection leaves that room; one left in no room is disconnected.",
    payload: sessionEndedPayloadSchema,
  },
} satisfies { [E in keyof ServerToClientEvents]: ServerEvent<ServerToClientEvents[E]> };

/** The Socket.IO handshake: what the client sends, what a refusal carries, and why it is refused. */
export const HANDSHAKE = {
  auth: handshakeAuthSchema,
  refusal: handshakeRefusalSchema,
  errors: {
    token_missing: '`auth.token` is an empty string (leave it out to connect without a room).',
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
