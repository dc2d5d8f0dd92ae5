/**
 * Runtime validation of everything a client sends, for the gateway. A separate entry
 * (`@switchboard/contract/schemas`) so the browser SDK, which needs only the types,
 * does not bundle zod. `satisfies` keeps each schema in step with its contract type.
 * The schemas of what the gateway answers and sends follow; the API documents (OpenAPI,
 * AsyncAPI) are generated from all of them.
 */
import { z } from 'zod';
import {
  CAPABILITIES,
  ERROR_CODES,
  EVENT_TYPE_PATTERN,
  HANDSHAKE_ERROR_CODES,
  LIMITS,
  MEMBER_LEFT_REASONS,
  ROOM_NAME_PATTERN,
  WEBHOOK_EVENT_TYPES,
  SIGNAL_KINDS,
  USER_ID_PATTERN,
  isBoundedJson,
  type Ack,
  type AckError,
  type BatchEventRequest,
  type BatchPublishRequest,
  type BatchPublishResponse,
  type DevLoginRequest,
  type DevLoginResponse,
  type ErrorBody,
  type HandshakeAuth,
  type HandshakeRefusal,
  type HealthResponse,
  type HttpErrorResponse,
  type HistoryRequest,
  type HistoryResponse,
  type IceServer,
  type JsonValue,
  type MintTokenRequest,
  type MintTokenResponse,
  type PeerInfo,
  type PeerLeftPayload,
  type PeerJoinedPayload,
  type PeerLeftReason,
  type PeersPage,
  type PeersRequest,
  type PeersResponse,
  type PresenceCountPayload,
  type PublishEventRequest,
  type PublishEventResponse,
  type PublishRequest,
  type ReadyResponse,
  type RoomAuthorizerResponse,
  type RoomDetailResponse,
  type RoomSummary,
  type RoomsListQuery,
  type RoomsListResponse,
  type ReadyStatus,
  type RecoveryFailureReason,
  type RecoveryOutcome,
  type RedisStatus,
  type RoomEpochPayload,
  type RoomEvent,
  type RoomEventFrame,
  type RoomJoinRequest,
  type RoomLeaveRequest,
  type RoomPosition,
  type ServerShutdownPayload,
  type SessionEndedPayload,
  type SessionPayload,
  type SessionRefreshRequest,
  type SignalMessage,
  type SignalRequest,
  type SocketHistoryRequest,
  type UpstreamCapabilityResponse,
  type UpstreamProvider,
  type UpstreamSessionRequest,
  type UpstreamSessionResponse,
  type WebhookBody,
} from './index.js';

/**
 * Names and descriptions for the API documents: a schema with an `id` here becomes
 * `#/components/schemas/<id>`, referenced wherever it is used. The contract's own
 * registry rather than zod's global one, so nothing else in a process adds to it.
 */
export const contractRegistry = z.registry<{ id?: string; description?: string }>();

function described<S extends z.ZodType>(description: string, schema: S): S {
  contractRegistry.add(schema, { description });
  return schema;
}
const jsonData = z.custom<JsonValue>((value) => isBoundedJson(value), {
  message: `must be JSON, at most ${LIMITS.dataDepth} levels deep and ${LIMITS.dataNodes} values`,
});

export const roomNameSchema = z
  .string()
  .regex(ROOM_NAME_PATTERN, 'room must be 1-128 characters of A-Z a-z 0-9 _ . : -');
export const eventTypeSchema = z
  .string()
  .regex(EVENT_TYPE_PATTERN, 'type must be 1-64 characters of A-Z a-z 0-9 _ . : -');

const userIdSchema = z.string().regex(USER_ID_PATTERN, 'userId must be 1-128 characters of A-Z a-z 0-9 _ . : @ -');
const displayNameSchema = z.string().trim().min(1).max(LIMITS.displayName);

export const capabilitiesSchema = z
  .array(z.enum(CAPABILITIES))
  .max(CAPABILITIES.length)
  .refine((caps) => new Set(caps).size === caps.length, 'caps must not repeat');

/** Room grants as the access JWT's room claim carries them: a room name or `prefix*` → capabilities. */
export const roomGrantsSchema = z
  .record(
    z.string().regex(/^[A-Za-z0-9_.:-]{0,128}\*?$/, 'keys must be a room name or a "prefix*" pattern'),
    capabilitiesSchema,
  )
  .refine((grants) => Object.keys(grants).length <= 100, 'at most 100 grants');

export const devLoginRequestSchema = z.strictObject({
  userId: userIdSchema,
  name: displayNameSchema.optional(),
  rooms: roomGrantsSchema.optional(),
}) satisfies z.ZodType<DevLoginRequest>;

export const mintTokenRequestSchema = z
  .strictObject({
    room: roomNameSchema,
    caps: capabilitiesSchema.optional(),
    userId: userIdSchema.optional(),
    name: displayNameSchema.optional(),
  })
  .refine((body) => body.name === undefined || body.userId !== undefined, {
    message: 'name is only accepted with userId',
    path: ['name'],
  }) satisfies z.ZodType<MintTokenRequest>;

/** A room authorizer's answer; anything else counts as no answer (fails closed). */
export const roomAuthorizerResponseSchema = z.union([
  z.object({
    allow: z.literal(true),
    caps: capabilitiesSchema.optional(),
    ttlSeconds: z.number().int().min(0).max(86_400).optional(),
  }),
  z.object({ allow: z.literal(false), ttlSeconds: z.number().int().min(0).max(86_400).optional() }),
]) satisfies z.ZodType<RoomAuthorizerResponse>;

/** Shapes only: which models and voices are allowed is the gateway's configuration. */
export const upstreamSessionRequestSchema = z.strictObject({
  room: roomNameSchema.optional(),
  model: z.string().min(1).max(128).optional(),
  voice: z.string().min(1).max(128).optional(),
}) satisfies z.ZodType<UpstreamSessionRequest>;

export const idempotencyKeySchema = z
  .string()
  .min(1, 'idempotencyKey must not be empty')
  .max(LIMITS.idempotencyKey, `idempotencyKey: at most ${LIMITS.idempotencyKey} characters`);

export const publishEventRequestSchema = z.strictObject({
  type: eventTypeSchema,
  data: jsonData.optional(),
  idempotencyKey: idempotencyKeySchema.optional(),
}) satisfies z.ZodType<PublishEventRequest>;

export const batchEventRequestSchema = publishEventRequestSchema.extend({
  room: roomNameSchema,
}) satisfies z.ZodType<BatchEventRequest>;

/** A batch's `events`: 1 to LIMITS.batchEvents of `item`. */
const batchOf = <T extends z.ZodType>(item: T) =>
  z.strictObject({
    events: z
      .array(item)
      .min(1, 'events must not be empty')
      .max(LIMITS.batchEvents, `at most ${LIMITS.batchEvents} events per batch`),
  });

export const batchPublishRequestSchema = batchOf(batchEventRequestSchema) satisfies z.ZodType<BatchPublishRequest>;

/** A batch as a whole, each event left unchecked: the gateway checks each on its own (its own result). */
export const batchEnvelopeSchema = batchOf(z.unknown());

/** The query of `GET /api/rooms`. */
export const roomsListQuerySchema = z.strictObject({
  cursor: z.string().min(1).max(256).optional(),
  limit: z.coerce.number().int().min(1).max(LIMITS.roomsPage).optional(),
}) satisfies z.ZodType<RoomsListQuery>;
/** `room` on a client event: which of the connection's rooms it is about. */
const roomField = described(
  "Which of the connection's rooms this is about: required on a connection in more than one room.",
  roomNameSchema.optional(),
);

export const signalRequestSchema = z.strictObject({
  room: roomField,
  to: z.string().min(1).max(64),
  kind: z.enum(SIGNAL_KINDS),
  data: jsonData,
}) satisfies z.ZodType<SignalRequest>;

export const publishRequestSchema = publishEventRequestSchema.extend({
  room: roomField,
}) satisfies z.ZodType<PublishRequest>;

const rtcTokenSchema = z.string().min(1).max(4096);

export const sessionRefreshRequestSchema = z.strictObject({
  room: roomField,
  token: rtcTokenSchema,
}) satisfies z.ZodType<SessionRefreshRequest>;

export const historyRequestSchema = z.strictObject({
  after: z.number().int().min(0).optional(),
  limit: z.number().int().min(1).max(LIMITS.historyLimit).optional(),
}) satisfies z.ZodType<HistoryRequest>;

/** The socket's `history`: the same request, in one of the connection's rooms. */
export const socketHistoryRequestSchema = historyRequestSchema.extend({
  room: roomField,
}) satisfies z.ZodType<SocketHistoryRequest>;

/** The query of `GET /api/rooms/:room/events`: the same request, as strings. */
export const historyQuerySchema = z.strictObject({
  after: z.coerce.number().int().min(0).optional(),
  limit: z.coerce.number().int().min(1).max(LIMITS.historyLimit).optional(),
}) satisfies z.ZodType<HistoryRequest>;

/** A point in a room's stream, e.g. the handshake's `auth.recover`: the last event seen. */
export const roomPositionSchema = z.strictObject({
  epoch: z.string().min(1).max(64),
  seq: z.number().int().min(0),
}) satisfies z.ZodType<RoomPosition>;

export const peersRequestSchema = z.union([
  z.strictObject({
    room: roomField,
    cursor: described('The `cursor` of the previous page.', z.string().min(1).max(64).optional()),
    limit: z.number().int().min(1).max(LIMITS.peersPage).optional(),
  }),
  z.undefined(),
  z.null(),
]) satisfies z.ZodType<PeersRequest | undefined | null>;

export const roomJoinRequestSchema = z.strictObject({
  token: rtcTokenSchema,
  recover: described(
    'The last event this client saw in the room, on a reconnect: the events it missed are replayed.',
    roomPositionSchema.optional(),
  ),
}) satisfies z.ZodType<RoomJoinRequest>;

export const roomLeaveRequestSchema = z.strictObject({
  room: roomNameSchema,
}) satisfies z.ZodType<RoomLeaveRequest>;

// ---------------------------------------------------------------------------
// What the gateway answers and sends
// ---------------------------------------------------------------------------

const epochMs = (description: string) => described(description, z.number().int().nonnegative());

/** A zod enum of every member of the string union `T`: a member missing here, or extra, fails to compile. */
const enumOf = <T extends string>(members: { [K in T]: K }): z.ZodEnum<{ [K in T]: K }> => z.enum(members);

const capabilitySchema = z.enum(CAPABILITIES);

export const tokenIdSchema = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/);

/** A user id in a path (`DELETE /api/rooms/:room/members/:userId`): an access JWT's `sub`. */
export const userIdParamSchema = z
  .string()
  .min(1, 'userId must not be empty')
  .max(128, 'userId: at most 128 characters');

export const errorBodySchema = z.object({
  code: z.enum(ERROR_CODES),
  message: z.string(),
}) satisfies z.ZodType<ErrorBody>;

export const httpErrorResponseSchema = z.object({ error: errorBodySchema }) satisfies z.ZodType<HttpErrorResponse>;

export const peerInfoSchema = z.object({
  peerId: described('Changes on every (re)join.', z.string()),
  userId: described("The `sub` of the member's access JWT.", z.string()),
  name: z.string(),
  replica: described('The replica that holds the socket.', z.string()),
  joinedAt: epochMs('When the peer joined, epoch milliseconds.'),
}) satisfies z.ZodType<PeerInfo>;

export const healthResponseSchema = z.object({ status: z.literal('ok') }) satisfies z.ZodType<HealthResponse>;

export const readyResponseSchema = z.object({
  status: enumOf<ReadyStatus>({ ready: 'ready', degraded: 'degraded', draining: 'draining' }),
  redis: enumOf<RedisStatus>({
    connected: 'connected',
    disconnected: 'disconnected',
    unresponsive: 'unresponsive',
    disabled: 'disabled',
  }),
  tokenStore: enumOf<ReadyResponse['tokenStore']>({ redis: 'redis', memory: 'memory' }),
  replica: z.string(),
  connections: described('Sockets connected to this replica.', z.number().int().nonnegative()),
}) satisfies z.ZodType<ReadyResponse>;

export const devLoginResponseSchema = z.object({
  accessToken: z.string(),
  expiresIn: described('Seconds until the access token expires.', z.number().int().positive()),
}) satisfies z.ZodType<DevLoginResponse>;

export const iceServerSchema = z.object({
  urls: z.array(z.string()),
  username: z.string().optional(),
  credential: z.string().optional(),
}) satisfies z.ZodType<IceServer>;

export const mintTokenResponseSchema = z.object({
  token: described('Send it as the Socket.IO handshake `auth: { token }`; redeemable once.', z.string()),
  jti: tokenIdSchema,
  room: roomNameSchema,
  expiresAt: epochMs('When the token stops being redeemable, epoch milliseconds.'),
  ttlSeconds: z.number().int().positive(),
  iceServers: z.array(iceServerSchema),
}) satisfies z.ZodType<MintTokenResponse>;

const seqSchema = described(
  "The event's place in its room: grows by exactly 1 per event, within the room's epoch.",
  z.number().int().positive(),
);

const publishedFields = {
  id: z.string(),
  seq: seqSchema,
  local: described(
    'Present when Redis was unreachable: only members on this replica got the event, under a replica-local epoch.',
    z.literal(true).optional(),
  ),
};

export const publishEventResponseSchema = z.object(publishedFields) satisfies z.ZodType<PublishEventResponse>;

export const peersResponseSchema = z.object({ peers: z.array(peerInfoSchema) }) satisfies z.ZodType<PeersResponse>;

const upstreamProviderSchema = enumOf<UpstreamProvider>({ openai: 'openai' });

export const upstreamCapabilityResponseSchema = z.object({
  provider: upstreamProviderSchema,
  models: described('The `model`s a client may ask for; the first is the default.', z.array(z.string())),
  voices: described('The `voice`s a client may ask for; the first is the default.', z.array(z.string())),
  callsUrl: described(
    "The provider's WebRTC endpoint: POST the SDP offer there, with a client secret's `value` as Bearer.",
    z.string(),
  ),
}) satisfies z.ZodType<UpstreamCapabilityResponse>;

/** Opaque to clients: the gateway answers 404 for anything it did not hand out. */
export const upstreamSessionIdSchema = z.string();

export const upstreamSessionResponseSchema = z.object({
  id: upstreamSessionIdSchema,
  value: described(
    "The provider's ephemeral client secret: the Bearer key of the provider's realtime API until `expiresAt`.",
    z.string(),
  ),
  expiresAt: epochMs("The provider's `expires_at`, epoch milliseconds: no new call opens with `value` after it."),
  provider: upstreamProviderSchema,
  model: z.string(),
  voice: z.string(),
}) satisfies z.ZodType<UpstreamSessionResponse>;

export const handshakeAuthSchema = z.object({
  token: described(
    'An RTC token: the connection joins its room and gets `session`. Without one it starts in no room (`room:join`).',
    rtcTokenSchema.optional(),
  ),
  recover: described(
    'The last event this client saw in the room, on a reconnect: the events it missed are replayed.',
    roomPositionSchema.optional(),
  ),
}) satisfies z.ZodType<HandshakeAuth>;

export const handshakeRefusalSchema = z.object({
  message: z.enum(HANDSHAKE_ERROR_CODES),
  data: z.object({ code: z.enum(HANDSHAKE_ERROR_CODES), message: z.string() }),
}) satisfies z.ZodType<HandshakeRefusal>;

export const ackErrorSchema = z.object({ ok: z.literal(false), error: errorBodySchema }) satisfies z.ZodType<AckError>;

const ackOf = <Shape extends z.core.$ZodLooseShape>(shape: Shape) =>
  z.discriminatedUnion('ok', [z.object({ ok: z.literal(true), ...shape }), ackErrorSchema]);

export const signalAckSchema = ackOf({}) satisfies z.ZodType<Ack>;
export const publishAckSchema = ackOf(publishedFields) satisfies z.ZodType<Ack<PublishEventResponse>>;
export const sessionRefreshAckSchema = ackOf({
  expiresAt: epochMs('The new session expiry, epoch milliseconds.'),
}) satisfies z.ZodType<Ack<{ expiresAt: number }>>;
const peersPageFields = {
  peers: described('At most `limit` peers, in a stable order.', z.array(peerInfoSchema)),
  peerCount: described('How many peers the room has.', z.number().int().nonnegative()),
  cursor: described('Present when there are more peers: send it back to get the next page.', z.string().optional()),
};
export const peersPageSchema = z.object(peersPageFields) satisfies z.ZodType<PeersPage>;
export const peersAckSchema = ackOf(peersPageFields) satisfies z.ZodType<Ack<PeersPage>>;
export const roomLeaveAckSchema = ackOf({}) satisfies z.ZodType<Ack>;

const recoveryFailureReasonSchema = enumOf<RecoveryFailureReason>({
  epoch_changed: 'epoch_changed',
  history_expired: 'history_expired',
  too_many: 'too_many',
  history_disabled: 'history_disabled',
});

export const recoveryOutcomeSchema = z.discriminatedUnion('recovered', [
  z.object({ recovered: z.literal(true), replayed: z.number().int().nonnegative() }),
  z.object({ recovered: z.literal(false), replayed: z.literal(0), reason: recoveryFailureReasonSchema }),
]) satisfies z.ZodType<RecoveryOutcome>;

export const sessionPayloadSchema = z.object({
  peerId: described("This socket's id in the room; new on every (re)join.", z.string()),
  userId: z.string(),
  name: z.string(),
  room: roomNameSchema,
  replica: z.string(),
  peers: described(
    'Other members at the time of joining, across replicas: at most `PRESENCE_SNAPSHOT_MAX` of them; page through the rest with `peers`.',
    z.array(peerInfoSchema),
  ),
  peerCount: described('How many members the room has, this connection included.', z.number().int().positive()),
  expiresAt: epochMs('The server disconnects the socket then unless it is refreshed; epoch milliseconds.'),
  caps: z.array(capabilitySchema),
  position: described(
    "The room's position when the socket joined: every event after it follows, once and in order.",
    roomPositionSchema,
  ),
  recovery: described('The answer to `auth.recover`; absent when none was sent.', recoveryOutcomeSchema.optional()),
}) satisfies z.ZodType<SessionPayload>;

export const roomJoinAckSchema = z.discriminatedUnion('ok', [
  sessionPayloadSchema.extend({ ok: z.literal(true) }),
  ackErrorSchema,
]) satisfies z.ZodType<Ack<SessionPayload>>;

export const peerJoinedPayloadSchema = peerInfoSchema.extend({
  room: roomNameSchema,
}) satisfies z.ZodType<PeerJoinedPayload>;

export const peerJoinedBatchSchema = z.array(peerJoinedPayloadSchema).min(1) satisfies z.ZodType<PeerJoinedPayload[]>;

export const presenceCountPayloadSchema = z.object({
  room: roomNameSchema,
  count: described('How many members the room has now.', z.number().int().nonnegative()),
}) satisfies z.ZodType<PresenceCountPayload>;

export const peerLeftPayloadSchema = z.object({
  room: roomNameSchema,
  peerId: z.string(),
  reason: enumOf<PeerLeftReason>({
    disconnect: 'disconnect',
    session_expired: 'session_expired',
    replica_lost: 'replica_lost',
    server_shutdown: 'server_shutdown',
    kicked: 'kicked',
  }),
}) satisfies z.ZodType<PeerLeftPayload>;

export const signalMessageSchema = z.object({
  room: described('The room both peers share, that the signal was sent in.', roomNameSchema),
  from: described('The peer id of the sender, stamped by the server.', z.string()),
  kind: z.enum(SIGNAL_KINDS),
  data: jsonData,
}) satisfies z.ZodType<SignalMessage>;

export const roomEventSchema = z.object({
  id: z.string(),
  type: eventTypeSchema,
  data: jsonData,
  from: described('The peer id of the sender, or `service:<sub>` for events published over HTTP.', z.string()),
  ts: epochMs('When the gateway accepted the event, epoch milliseconds.'),
  seq: seqSchema,
}) satisfies z.ZodType<RoomEvent>;

export const roomEventFrameSchema = roomEventSchema.extend({
  room: roomNameSchema,
}) satisfies z.ZodType<RoomEventFrame>;

export const roomEventBatchSchema = z.array(roomEventFrameSchema).min(1) satisfies z.ZodType<RoomEventFrame[]>;

export const peerInfoBatchSchema = z.array(peerInfoSchema).min(1) satisfies z.ZodType<PeerInfo[]>;

export const historyResponseSchema = z.object({
  epoch: z.string(),
  top: described("The room's last seq (0 for a room with no history).", z.number().int().nonnegative()),
  events: described('Oldest first.', z.array(roomEventSchema)),
  more: described(
    "Present when the page stopped early to stay under the reply's byte limit: ask again with `after`.",
    z.literal(true).optional(),
  ),
}) satisfies z.ZodType<HistoryResponse>;

export const historyAckSchema = ackOf(historyResponseSchema.shape) satisfies z.ZodType<Ack<HistoryResponse>>;

export const roomSummarySchema = z.object({
  room: roomNameSchema,
  members: described('Members on every replica.', z.number().int().nonnegative()),
  top: described("The room's last seq (0 for a room with no history).", z.number().int().nonnegative()),
}) satisfies z.ZodType<RoomSummary>;

export const roomsListResponseSchema = z.object({
  rooms: described('Ordered by name.', z.array(roomSummarySchema)),
  cursor: described('Present when there are more rooms: pass it as `cursor` for the next page.', z.string().optional()),
}) satisfies z.ZodType<RoomsListResponse>;

export const roomDetailResponseSchema = z.object({
  room: roomNameSchema,
  members: z.number().int().nonnegative(),
  epoch: z.string(),
  top: described("The room's last seq (0 for a room with no history).", z.number().int().nonnegative()),
  replicas: described('Replicas with members in the room.', z.array(z.string())),
}) satisfies z.ZodType<RoomDetailResponse>;

export const batchPublishResponseSchema = z.object({
  results: described('One per event, in the order sent.', z.array(publishAckSchema)),
}) satisfies z.ZodType<BatchPublishResponse>;

const webhookBase = {
  id: described('Unique per transition; the same on every retry.', z.string()),
  ts: epochMs('When it happened, epoch milliseconds.'),
  room: z.string(),
  replica: described('The replica that saw it happen.', z.string()),
};
const emptyData = z.strictObject({});

export const webhookBodySchema = z.discriminatedUnion('type', [
  z.object({ ...webhookBase, type: z.literal('room.occupied'), data: emptyData }),
  z.object({ ...webhookBase, type: z.literal('room.vacated'), data: emptyData }),
  z.object({
    ...webhookBase,
    type: z.literal('member.joined'),
    userId: z.string(),
    peerId: z.string(),
    data: z.object({ name: z.string() }),
  }),
  z.object({
    ...webhookBase,
    type: z.literal('member.left'),
    userId: z.string(),
    peerId: z.string(),
    data: z.object({ reason: z.enum(MEMBER_LEFT_REASONS) }),
  }),
  z.object({
    ...webhookBase,
    type: z.literal('upstream.minted'),
    userId: z.string(),
    data: z.object({ id: z.string(), provider: z.literal('openai'), model: z.string(), expiresAt: z.number().int() }),
  }),
]) satisfies z.ZodType<WebhookBody>;

export const webhookEventTypeSchema = z.enum(WEBHOOK_EVENT_TYPES);

export const roomEpochPayloadSchema = z.object({
  room: roomNameSchema,
  epoch: z.string(),
  seq: z.number().int().nonnegative(),
  reason: described(
    'Present when events between the old position and this one could not be delivered: reload what the app shows.',
    recoveryFailureReasonSchema.optional(),
  ),
}) satisfies z.ZodType<RoomEpochPayload>;

export const serverShutdownPayloadSchema = z.object({
  reconnectAfterMs: z.number().int().nonnegative(),
}) satisfies z.ZodType<ServerShutdownPayload>;

export const sessionEndedPayloadSchema = z.object({
  room: described('The room whose session ended; the connection stays in its other rooms.', roomNameSchema),
  reason: enumOf<SessionEndedPayload['reason']>({
    session_expired: 'session_expired',
    server_shutdown: 'server_shutdown',
    kicked: 'kicked',
  }),
}) satisfies z.ZodType<SessionEndedPayload>;

// ---------------------------------------------------------------------------
// Names for the API documents
// ---------------------------------------------------------------------------

const NAMES: Array<[schema: z.ZodType, id: string, description: string]> = [
  [
    jsonData,
    'JsonValue',
    `Any JSON value, at most ${LIMITS.dataDepth} levels deep and ${LIMITS.dataNodes} values in all.`,
  ],
  [roomNameSchema, 'RoomName', 'A room: 1-128 characters of A-Z a-z 0-9 _ . : -'],
  [eventTypeSchema, 'EventType', "A room event's type: 1-64 characters of A-Z a-z 0-9 _ . : -"],
  [capabilitySchema, 'Capability', 'What an RTC token allows beyond signaling: `publish` room events.'],
  [tokenIdSchema, 'TokenId', "An RTC token's id (its `jti` claim), for `DELETE /api/rtc/tokens/{jti}`."],
  [errorBodySchema, 'ErrorBody', 'Why a request or an event was refused: a stable `code`, and text for people.'],
  [httpErrorResponseSchema, 'HttpErrorResponse', 'Every HTTP error answer.'],
  [peerInfoSchema, 'PeerInfo', 'A member of a room, on whichever replica it is connected to.'],
  [peerInfoBatchSchema, 'PeerInfoBatch', 'Several peers that joined a room, in the order they joined.'],
  [healthResponseSchema, 'HealthResponse', 'The process is up.'],
  [
    readyResponseSchema,
    'ReadyResponse',
    '`degraded` while Redis is unreachable (the replica still serves, from memory); `draining` after SIGTERM.',
  ],
  [devLoginRequestSchema, 'DevLoginRequest', 'Who to sign in as.'],
  [devLoginResponseSchema, 'DevLoginResponse', 'An access JWT signed by the gateway itself.'],
  [
    mintTokenRequestSchema,
    'MintTokenRequest',
    'The room to admit to, and what the token allows there (`caps`: all by default).',
  ],
  [iceServerSchema, 'IceServer', 'One entry of `RTCConfiguration.iceServers`; TURN credentials are time-limited.'],
  [
    mintTokenResponseSchema,
    'MintTokenResponse',
    'A single-use RTC token for one room, and the ICE servers for its peer connections.',
  ],
  [publishEventRequestSchema, 'PublishEventRequest', 'A room event to deliver to every member of the room.'],
  [publishRequestSchema, 'PublishRequest', "A room event to deliver to every member of one of the connection's rooms."],
  [
    publishEventResponseSchema,
    'PublishEventResponse',
    'The `id` and `seq` the event carries to every member; `local` when only the members on this replica could be reached.',
  ],
  [peersResponseSchema, 'PeersResponse', "The room's members across replicas."],
  [roomSummarySchema, 'RoomSummary', 'An active room: members across replicas and its last seq.'],
  [roomsListResponseSchema, 'RoomsListResponse', 'A page of active rooms, ordered by name.'],
  [roomDetailResponseSchema, 'RoomDetailResponse', 'A room now: members, position, and the replicas serving it.'],
  [
    batchPublishRequestSchema,
    'BatchPublishRequest',
    `Up to ${LIMITS.batchEvents} events, each for its own room, published in order.`,
  ],
  [batchPublishResponseSchema, 'BatchPublishResponse', "Each event's own outcome, in the order sent."],
  [
    webhookBodySchema,
    'WebhookBody',
    'A lifecycle webhook, POSTed to each of `WEBHOOK_URLS` with a `Switchboard-Signature` header.',
  ],
  [upstreamProviderSchema, 'UpstreamProvider', 'A realtime AI provider whose client secrets the gateway mints.'],
  [
    upstreamCapabilityResponseSchema,
    'UpstreamCapabilityResponse',
    'What a client may ask the provider for, and where to open the call.',
  ],
  [
    upstreamSessionRequestSchema,
    'UpstreamSessionRequest',
    "The voice session to mint a client secret for; without `model` or `voice`, the first of the gateway's lists.",
  ],
  [
    upstreamSessionResponseSchema,
    'UpstreamSessionResponse',
    "A client secret for the provider's realtime API, minted with the gateway's key, and the gateway's record of it.",
  ],
  [
    upstreamSessionIdSchema,
    'UpstreamSessionId',
    "The gateway's record of a client secret, for `DELETE /api/rtc/upstream/{id}`; opaque.",
  ],
  [
    handshakeAuthSchema,
    'HandshakeAuth',
    'The Socket.IO handshake `auth`: an RTC token from `POST /api/rtc/tokens`, used once.',
  ],
  [
    handshakeRefusalSchema,
    'HandshakeRefusal',
    'A refused handshake (`connect_error`): `message` is the code; `data` has it with text for people.',
  ],
  [signalRequestSchema, 'SignalRequest', 'A signaling message for one peer of the same room (`to`: its peer id).'],
  [
    sessionRefreshRequestSchema,
    'SessionRefreshRequest',
    'A fresh RTC token for the same room and user, to move the session expiry.',
  ],
  [
    peersRequestSchema,
    'PeersRequest',
    'A page of peers: `{}` (or `null`, or no payload) for the first, `{cursor}` for the next.',
  ],
  [peersPageSchema, 'PeersPage', "A page of the room's peers, and how many there are."],
  [
    roomJoinRequestSchema,
    'RoomJoinRequest',
    'One more room on this connection: a fresh RTC token for it, for the same user.',
  ],
  [roomJoinAckSchema, 'RoomJoinAck', 'The room was joined: what `session` carries for it.'],
  [roomLeaveRequestSchema, 'RoomLeaveRequest', 'A room to leave; the connection stays in its other rooms.'],
  [roomLeaveAckSchema, 'RoomLeaveAck', 'The room was left.'],
  [
    presenceCountPayloadSchema,
    'PresenceCountPayload',
    "A large room's member count: sent instead of per-peer announcements above `ROOM_ANNOUNCE_MAX` members.",
  ],
  [peerJoinedPayloadSchema, 'PeerJoinedPayload', 'A member that entered a room.'],
  [peerJoinedBatchSchema, 'PeerJoinedBatch', 'Several members that entered one room, in the order they joined.'],
  [roomEventFrameSchema, 'RoomEventFrame', 'A room event, naming its room.'],
  [socketHistoryRequestSchema, 'SocketHistoryRequest', "A history page of one of the connection's rooms."],
  [roomPositionSchema, 'RoomPosition', "A point in a room's event stream: `{epoch, seq}` of the last event seen."],
  [
    recoveryOutcomeSchema,
    'RecoveryOutcome',
    'Whether the events missed since `auth.recover` were replayed, and if not why.',
  ],
  [historyRequestSchema, 'HistoryRequest', 'Events after `after`, or the latest `limit` (default and most 100).'],
  [historyResponseSchema, 'HistoryResponse', "A page of the room's recent events."],
  [historyAckSchema, 'HistoryAck', "A page of the room's recent events."],
  [
    roomEpochPayloadSchema,
    'RoomEpochPayload',
    "The room's numbering moved to another epoch (Redis became unreachable or came back, or the history was lost): events that follow continue after `seq` in `epoch`.",
  ],
  [ackErrorSchema, 'AckError', 'A refused event.'],
  [signalAckSchema, 'SignalAck', 'The signal was relayed.'],
  [
    publishAckSchema,
    'PublishAck',
    'The event was accepted: `id` and `seq` are what every member receives; `local` when only the members on this replica could be reached.',
  ],
  [sessionRefreshAckSchema, 'SessionRefreshAck', 'The session now ends at `expiresAt`.'],
  [peersAckSchema, 'PeersAck', "A page of the room's members across replicas."],
  [sessionPayloadSchema, 'SessionPayload', 'Sent right after a handshake is admitted, before any room traffic.'],
  [peerLeftPayloadSchema, 'PeerLeftPayload', 'A member left the room.'],
  [signalMessageSchema, 'SignalMessage', 'A signaling message from another peer of the room.'],
  [
    roomEventSchema,
    'RoomEvent',
    'A room event, from a member (socket `publish`) or a service (`POST /api/rooms/{room}/events`).',
  ],
  [roomEventBatchSchema, 'RoomEventBatch', 'Several room events in one frame, oldest first.'],
  [
    serverShutdownPayloadSchema,
    'ServerShutdownPayload',
    'This replica is draining: reconnect, through another replica, after `reconnectAfterMs`.',
  ],
  [
    sessionEndedPayloadSchema,
    'SessionEndedPayload',
    'Why the server ends the session; the socket is disconnected right after.',
  ],
];
for (const [schema, id, description] of NAMES) contractRegistry.add(schema, { id, description });
