/**
 * The Switchboard wire contract (docs/protocol.md): HTTP shapes, Socket.IO events,
 * payload schemas and error codes. The gateway and the browser SDK both import
 * this module, so a change here is a change to the protocol.
 */

// ---------------------------------------------------------------------------
// Error codes
// ---------------------------------------------------------------------------

/** Codes a Socket.IO handshake can be refused with; they arrive as `connect_error.message`. */
export const HANDSHAKE_ERROR_CODES = [
  'token_missing',
  'token_invalid',
  'token_expired',
  'token_used',
  'token_revoked',
  'origin_forbidden',
  'rate_limited',
  'server_draining',
  /** Redis did not answer the token's redemption in time; retry with a fresh token. */
  'unavailable',
] as const;
export type HandshakeErrorCode = (typeof HANDSHAKE_ERROR_CODES)[number];

export const ERROR_CODES = [
  ...HANDSHAKE_ERROR_CODES,
  'invalid_request',
  'invalid_payload',
  'unauthorized',
  'forbidden',
  'not_found',
  'not_in_room',
  'payload_too_large',
  'unknown_event',
  'internal',
  'identity_unavailable',
  'upstream_unavailable',
  'authorizer_unavailable',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export interface ErrorBody {
  code: ErrorCode;
  message: string;
}

/** Every HTTP error response: `{ error: { code, message } }`. */
export interface HttpErrorResponse {
  error: ErrorBody;
}

/** The HTTP status of each code the HTTP API answers with (400 for any other). */
export const HTTP_ERROR_STATUS: Partial<Record<ErrorCode, number>> = {
  invalid_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  payload_too_large: 413,
  rate_limited: 429,
  internal: 500,
  unavailable: 503,
  upstream_unavailable: 502,
  server_draining: 503,
  identity_unavailable: 503,
  authorizer_unavailable: 503,
};

export function isHandshakeErrorCode(value: unknown): value is HandshakeErrorCode {
  return (HANDSHAKE_ERROR_CODES as readonly unknown[]).includes(value);
}

// ---------------------------------------------------------------------------
// Shared limits and primitives
// ---------------------------------------------------------------------------

export const LIMITS = {
  /** JSON bodies over this get 413 `payload_too_large`. */
  httpBodyBytes: 64 * 1024,
  /**
   * Largest client event (its payload as JSON), like an HTTP body; an SDP offer with many
   * candidates is ~10 KiB. Bigger events are acked with `payload_too_large`.
   */
  eventBytes: 64 * 1024,
  /**
   * Largest Socket.IO packet the transport accepts, a little above `eventBytes` so that an
   * oversized event still arrives and can be answered; past this the connection is dropped.
   */
  socketPacketBytes: 72 * 1024,
  /** Most events one history read returns (and its default). */
  historyLimit: 100,
  /** Deepest nesting accepted in `data` (deeper payloads get `invalid_payload`). */
  dataDepth: 16,
  /** Most keys and items accepted across all of `data`. */
  dataNodes: 2_000,
  displayName: 64,
  /** Longest `idempotencyKey` on a publish (socket or HTTP). */
  idempotencyKey: 64,
  /** Most events one `POST /api/rooms/events:batch` carries. */
  batchEvents: 100,
  /** Most rooms one `GET /api/rooms` page lists (and its default). */
  roomsPage: 100,
  /** Most peers one `peers` page returns (and its default). */
  peersPage: 100,
  /**
   * Largest frame the gateway sends about presence (`session`, `room:join`'s answer, a
   * `peers` page, `peers:joined`): lists are cut or split to stay under it.
   */
  presenceFrameBytes: 64 * 1024,
  /**
   * A connection in no room (no handshake token, or after its last `room:leave`) is closed
   * after this. A handshake without a token costs nothing to make, so this is what bounds
   * the sockets anyone can hold open: as long as Socket.IO itself holds a connection that
   * has not connected to a namespace (`connectTimeout`).
   */
  roomlessConnectionMs: 10_000,
} as const;

export const ROOM_NAME_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;

/**
 * The Socket.IO room that holds a room's members on each replica. Socket.IO names each
 * socket's own room by its id, and ids fit ROOM_NAME_PATTERN: the `#`, which no room name
 * has, keeps a room called like someone's socket id from ever reaching that socket. Use it
 * with `@socket.io/redis-emitter`: `emitter.to(socketIoRoom(room))`.
 */
export const socketIoRoom = (room: string): string => `room#${room}`;

/**
 * The `key` to give `@socket.io/redis-emitter` for a deployment's `REDIS_KEY_PREFIX`: the
 * Socket.IO adapter's channels start with the prefix, a `:` after it when it has none, then
 * `socket.io`. With the default empty prefix that is plain `socket.io`.
 */
export const socketIoEmitterKey = (redisKeyPrefix = ''): string =>
  `${redisKeyPrefix && !redisKeyPrefix.endsWith(':') ? `${redisKeyPrefix}:` : redisKeyPrefix}socket.io`;
export const EVENT_TYPE_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;
export const USER_ID_PATTERN = /^[A-Za-z0-9_.:@-]{1,128}$/;

export const CAPABILITIES = ['publish'] as const;
export type Capability = (typeof CAPABILITIES)[number];

/**
 * What a service JWT's scope claim may grant (after `JWT_SCOPE_PREFIX`). Any other scope,
 * such as an identity provider's `openid profile`, grants nothing.
 */
export const SERVICE_SCOPES = ['publish', 'read', 'revoke', 'mint', 'kick', 'admin'] as const;
export type ServiceScope = (typeof SERVICE_SCOPES)[number];

/** How the gateway learns which rooms a user may enter (`ROOM_ACCESS`). */
export const ROOM_ACCESS_MODES = ['grants', 'authorizer', 'open'] as const;
export type RoomAccessMode = (typeof ROOM_ACCESS_MODES)[number];

export const SIGNAL_KINDS = ['offer', 'answer', 'candidate', 'bye'] as const;
export type SignalKind = (typeof SIGNAL_KINDS)[number];

/** JSON-compatible value, as carried in `signal.data` and `room:event.data`. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/**
 * Whether `value` is plain JSON within the depth and size limits. Iterative, so a
 * hostile payload nested thousands deep cannot overflow the stack, and it refuses
 * what JSON cannot carry (binary attachments, functions, non-finite numbers).
 */
export function isBoundedJson(
  value: unknown,
  maxDepth: number = LIMITS.dataDepth,
  maxNodes: number = LIMITS.dataNodes,
): value is JsonValue {
  const stack: Array<[unknown, number]> = [[value, 0]];
  let nodes = 0;
  while (stack.length > 0) {
    const [current, depth] = stack.pop() as [unknown, number];
    if (++nodes > maxNodes) return false;
    if (current === null || typeof current === 'string' || typeof current === 'boolean') continue;
    if (typeof current === 'number') {
      if (!Number.isFinite(current)) return false;
      continue;
    }
    if (typeof current !== 'object' || depth >= maxDepth) return false;
    if (Array.isArray(current)) {
      for (const item of current) stack.push([item, depth + 1]);
      continue;
    }
    const proto: unknown = Object.getPrototypeOf(current);
    if (proto !== Object.prototype && proto !== null) return false;
    for (const key of Object.keys(current)) stack.push([(current as Record<string, unknown>)[key], depth + 1]);
  }
  return true;
}

// ---------------------------------------------------------------------------
// HTTP API
// ---------------------------------------------------------------------------

export const HTTP_PATHS = {
  healthz: '/healthz',
  readyz: '/readyz',
  metrics: '/metrics',
  devLogin: '/api/dev/login',
  rtcTokens: '/api/rtc/tokens',
  /** `POST` mints an OpenAI Realtime client secret (404 when not offered); `GET` says whether this gateway can (204 when not). */
  upstreamOpenai: '/api/rtc/upstream/openai',
  /** `DELETE <upstreamSessions>/:id` forgets a minted secret's record and frees the user's slot. */
  upstreamSessions: '/api/rtc/upstream',
  /** `GET`: active rooms, paged with `cursor` (scope `read`); `GET <rooms>/:room`: one room. */
  rooms: '/api/rooms',
  /** `POST`: publish up to LIMITS.batchEvents events into any rooms (scope `publish`). */
  roomsEventsBatch: '/api/rooms/events:batch',
  openApi: '/api/openapi.json',
  asyncApi: '/api/asyncapi.json',
} as const;

export interface DevLoginRequest {
  userId: string;
  name?: string;
  /**
   * Room grants for the token (with `ROOM_ACCESS=grants`), as an app's login would put in
   * its access JWT: a room name or `prefix*` pattern → capabilities.
   */
  rooms?: Record<string, Capability[]>;
}

export interface DevLoginResponse {
  accessToken: string;
  /** Seconds until the access token expires. */
  expiresIn: number;
}

export interface MintTokenRequest {
  room: string;
  /** Subset of CAPABILITIES; defaults to all that the caller's room access grants. */
  caps?: Capability[];
  /** With a service JWT of scope `mint`: the user the token is for. */
  userId?: string;
  /** With `userId`: the name other peers see. */
  name?: string;
}

/** What `ROOM_AUTHORIZER_URL` receives, signed (`Switchboard-Signature`). */
export interface RoomAuthorizerRequest {
  userId: string;
  room: string;
  /** The capabilities asked for. */
  caps: Capability[];
  /** The access JWT's claims. */
  claims: Record<string, unknown>;
}

/** What `ROOM_AUTHORIZER_URL` answers with 200. */
export type RoomAuthorizerResponse =
  { allow: true; caps?: Capability[]; ttlSeconds?: number } | { allow: false; ttlSeconds?: number };

/** One entry of `RTCConfiguration.iceServers`. */
export interface IceServer {
  urls: string[];
  username?: string;
  credential?: string;
}

export interface MintTokenResponse {
  token: string;
  /** The token's id, for `DELETE /api/rtc/tokens/:jti`. */
  jti: string;
  room: string;
  /** Epoch milliseconds at which the RTC token stops being redeemable. */
  expiresAt: number;
  ttlSeconds: number;
  iceServers: IceServer[];
}

/** Providers whose realtime sessions the gateway brokers. */
export type UpstreamProvider = 'openai';

export interface UpstreamSessionRequest {
  /** The room the voice session belongs to; recorded with the secret. */
  room?: string;
  /** One of the gateway's allowed models; defaults to the first. */
  model?: string;
  /** One of the gateway's allowed voices; defaults to the first. */
  voice?: string;
}

export interface UpstreamSessionResponse {
  /** The gateway's record of this secret, for `DELETE /api/rtc/upstream/:id`. */
  id: string;
  /** The provider's ephemeral client secret: a Bearer key for the provider's realtime API. */
  value: string;
  /** Epoch milliseconds: the provider's `expires_at`. */
  expiresAt: number;
  provider: UpstreamProvider;
  model: string;
  voice: string;
}

/** `GET /api/rtc/upstream/openai`: what a client may ask for, and where to open the call. */
export interface UpstreamCapabilityResponse {
  provider: UpstreamProvider;
  models: string[];
  voices: string[];
  /** The provider's WebRTC endpoint: POST the SDP offer here with the secret as Bearer. */
  callsUrl: string;
}

export interface PublishEventRequest {
  type: string;
  data?: JsonValue;
  /**
   * 1-64 characters chosen by the publisher. A repeat of the same key in the same room
   * within `IDEMPOTENCY_WINDOW_SECONDS` answers the first publish's `{id, seq}` and
   * publishes nothing, so an unacknowledged publish can be retried safely.
   */
  idempotencyKey?: string;
}

export interface PublishEventResponse {
  id: string;
  /** The event's position in its room (see RoomEvent.seq). */
  seq: number;
  /**
   * Present (true) when Redis was unreachable: only this replica's members got the event,
   * under a replica-local epoch.
   */
  local?: true;
}

// ---------------------------------------------------------------------------
// Server API for rooms (service JWTs)
// ---------------------------------------------------------------------------

/** `GET /api/rooms?cursor=&limit=`. */
export interface RoomsListQuery {
  /** The `cursor` of the previous page; absent for the first. */
  cursor?: string;
  /** At most this many rooms (default and maximum LIMITS.roomsPage). */
  limit?: number;
}

/** An active room: one with members on some replica. */
export interface RoomSummary {
  room: string;
  /** Members on every replica. */
  members: number;
  /** The room's last `seq` (0 for a room with no history). */
  top: number;
}

/** `GET /api/rooms`: active rooms ordered by name. */
export interface RoomsListResponse {
  rooms: RoomSummary[];
  /** Present when there are more rooms: pass it as `cursor` for the next page. */
  cursor?: string;
}

/** `GET /api/rooms/:room`: a room now (a room nobody is in answers `members: 0`). */
export interface RoomDetailResponse {
  room: string;
  members: number;
  epoch: string;
  top: number;
  /** Replicas with members in the room. */
  replicas: string[];
}

/** One event of a batch: an HTTP publish with the room it goes to. */
export interface BatchEventRequest extends PublishEventRequest {
  room: string;
}

/**
 * `POST /api/rooms/events:batch`. Only the list itself is checked as a whole; an event
 * that is not valid gets its own `invalid_request` result and the others are published.
 */
export interface BatchPublishRequest {
  /** 1..LIMITS.batchEvents events, each room's published in this order. */
  events: BatchEventRequest[];
}

/** Each event's own outcome, in the order sent: what a socket publish would have been acked with. */
export type BatchPublishResult = AckOk<PublishEventResponse> | AckError;

export interface BatchPublishResponse {
  results: BatchPublishResult[];
}

// ---------------------------------------------------------------------------
// Lifecycle webhooks
// ---------------------------------------------------------------------------

/** What the gateway POSTs to `WEBHOOK_URLS` (filtered by `WEBHOOK_EVENTS`). */
export const WEBHOOK_EVENT_TYPES = [
  'room.occupied',
  'room.vacated',
  'member.joined',
  'member.left',
  'upstream.minted',
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** Why a member left: on its own, removed by the app, its session ran out, its replica died or drained. */
export const MEMBER_LEFT_REASONS = ['left', 'kicked', 'expired', 'crashed', 'drained'] as const;
export type MemberLeftReason = (typeof MEMBER_LEFT_REASONS)[number];

/** The header that signs each webhook: `t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`. */
export const WEBHOOK_SIGNATURE_HEADER = 'Switchboard-Signature';

interface WebhookBase<T extends WebhookEventType, D> {
  /** Unique per transition; the same on every retry, so a receiver can drop repeats. */
  id: string;
  type: T;
  /** When it happened, epoch milliseconds. */
  ts: number;
  room: string;
  userId?: string;
  peerId?: string;
  /** The replica that saw it happen. */
  replica: string;
  data: D;
}

export type WebhookBody =
  /** The room's first member anywhere arrived. */
  | WebhookBase<'room.occupied', Record<string, never>>
  /** The room's last member left (or its replica died and presence noticed). */
  | WebhookBase<'room.vacated', Record<string, never>>
  | (WebhookBase<'member.joined', { name: string }> & { userId: string; peerId: string })
  | (WebhookBase<'member.left', { reason: MemberLeftReason }> & { userId: string; peerId: string })
  /** An AI-voice client secret was minted; `room` is `""` when the request named none. */
  | (WebhookBase<'upstream.minted', { id: string; provider: UpstreamProvider; model: string; expiresAt: number }> & {
      userId: string;
    });

// ---------------------------------------------------------------------------
// Room history and recovery
// ---------------------------------------------------------------------------

/**
 * A point in a room's event stream: the last event seen. `epoch` names the history
 * that `seq` counts in; a new epoch starts whenever that history is gone.
 */
export interface RoomPosition {
  epoch: string;
  seq: number;
}

export const RECOVERY_FAILURE_REASONS = ['epoch_changed', 'history_expired', 'too_many', 'history_disabled'] as const;
export type RecoveryFailureReason = (typeof RECOVERY_FAILURE_REASONS)[number];

/** The answer to `auth.recover`, in `session.recovery`. */
export type RecoveryOutcome =
  { recovered: true; replayed: number } | { recovered: false; replayed: 0; reason: RecoveryFailureReason };

export interface HistoryRequest {
  /** Events with `seq` greater than this; without it, the latest `limit` events. */
  after?: number;
  /** At most this many (default and maximum LIMITS.historyLimit). */
  limit?: number;
}

export interface HistoryResponse {
  epoch: string;
  /** The room's last `seq` (0 for a room with no history). */
  top: number;
  /** Oldest first. */
  events: RoomEvent[];
  /**
   * Present (true) when the page stopped early to stay under the reply's byte limit:
   * ask again with `after` = the last event's seq.
   */
  more?: true;
}

/**
 * Sent when the numbering of a socket's room moves to another epoch while it stays
 * connected (Redis became unreachable or came back, or the room's history was lost).
 * Events that follow continue from `seq` in `epoch`. `reason` is present when events
 * in between could not be delivered: show what the room holds again (e.g. from history).
 */
export interface RoomEpochPayload extends RoomPosition {
  room: string;
  reason?: RecoveryFailureReason;
}

export interface HealthResponse {
  status: 'ok';
}

export type ReadyStatus = 'ready' | 'degraded' | 'draining';
/** `unresponsive`: connected, but some client's PING went unanswered for REDIS_UNRESPONSIVE_AFTER_MS (a silent link). */
export type RedisStatus = 'connected' | 'disconnected' | 'unresponsive' | 'disabled';

export interface ReadyResponse {
  status: ReadyStatus;
  redis: RedisStatus;
  tokenStore: 'redis' | 'memory';
  replica: string;
  connections: number;
}

export interface PeerInfo {
  peerId: string;
  userId: string;
  name: string;
  replica: string;
  /** Epoch milliseconds. */
  joinedAt: number;
}

export interface PeersResponse {
  peers: PeerInfo[];
}

// ---------------------------------------------------------------------------
// Socket.IO (namespace "/")
// ---------------------------------------------------------------------------

export interface HandshakeAuth {
  /**
   * An RTC token: the connection joins its room, and `session` follows. Without one the
   * connection starts in no room, and joins rooms with `room:join`.
   */
  token?: string;
  /** The last event seen in the token's room before a reconnect: its missed events are replayed. */
  recover?: RoomPosition;
}

/**
 * Names the room an event is about. Required on a connection that is in more than one
 * room; on a connection in exactly one room it may be left out.
 */
export interface RoomScoped {
  room?: string;
}

/** `room:join`: one more room on this connection, with a fresh RTC token for it. */
export interface RoomJoinRequest {
  token: string;
  /** The last event seen in that room (after a reconnect): its missed events are replayed. */
  recover?: RoomPosition;
}

/** `room:leave`: leaves one room; the connection stays in the others. */
export interface RoomLeaveRequest {
  room: string;
}

/** A refused handshake, as Socket.IO's `connect_error` carries it: `message` is the code. */
export interface HandshakeRefusal {
  message: HandshakeErrorCode;
  data: { code: HandshakeErrorCode; message: string };
}

/**
 * What a connection learns on entering a room: sent as `session` for the handshake's
 * token, and as `room:join`'s answer for every other room.
 */
export interface SessionPayload {
  /** This connection's peer id: the same in every room it is in. */
  peerId: string;
  userId: string;
  name: string;
  room: string;
  replica: string;
  /**
   * Other peers in the room, across replicas, at the time of joining: at most
   * `PRESENCE_SNAPSHOT_MAX` of them (page through the rest with `peers`).
   */
  peers: PeerInfo[];
  /** How many peers the room has, this one included. */
  peerCount: number;
  /** Epoch milliseconds; the server disconnects the socket then unless it is refreshed. */
  expiresAt: number;
  caps: Capability[];
  /** The room's position when this socket joined: it receives every event after it. */
  position: RoomPosition;
  /** The outcome of `auth.recover`; absent when none was sent. */
  recovery?: RecoveryOutcome;
}

export type PeerLeftReason = 'disconnect' | 'session_expired' | 'replica_lost' | 'server_shutdown' | 'kicked';

/** `peer:joined` (and each entry of `peers:joined`): a peer that entered `room`. */
export interface PeerJoinedPayload extends PeerInfo {
  room: string;
}

export interface PeerLeftPayload {
  room: string;
  peerId: string;
  reason: PeerLeftReason;
}

/**
 * Sent instead of `peer:joined`/`peer:left` in a room with more than `ROOM_ANNOUNCE_MAX`
 * members: its member count, at most once per `PRESENCE_COUNT_INTERVAL_MS` and only when
 * it changed.
 */
export interface PresenceCountPayload {
  room: string;
  count: number;
}

export interface SignalMessage {
  /** The room both peers share, that the signal was sent in. */
  room: string;
  /** Server-stamped peer id of the sender. */
  from: string;
  kind: SignalKind;
  data: JsonValue;
}

export interface RoomEvent {
  id: string;
  type: string;
  data: JsonValue;
  /** Peer id of the sender, or `service:<sub>` for events published over HTTP. */
  from: string;
  /** Epoch milliseconds at which the gateway accepted the event. */
  ts: number;
  /** Grows by exactly 1 per event in the room, within the room's epoch. */
  seq: number;
}

/** A room event as a socket receives it (`room:event`, and each entry of `room:events`). */
export interface RoomEventFrame extends RoomEvent {
  room: string;
}

export interface ServerShutdownPayload {
  reconnectAfterMs: number;
}

/** Why the server ended a session; sent as `session:ended` just before it disconnects. */
export interface SessionEndedPayload {
  /** The room whose session ended; the connection stays in its other rooms, if any. */
  room: string;
  /**
   * `kicked`: removed by the app (`DELETE /api/rooms/:room/members/:userId`); do not reconnect.
   */
  reason: 'session_expired' | 'server_shutdown' | 'kicked';
}

export interface SignalRequest extends RoomScoped {
  to: string;
  kind: SignalKind;
  data: JsonValue;
}

export interface PublishRequest extends PublishEventRequest, RoomScoped {}

/** A fresh RTC token for a room this connection is in; `room`, when given, must be the token's. */
export interface SessionRefreshRequest extends RoomScoped {
  token: string;
}

/** The socket's `history`: `HistoryRequest` in one of the connection's rooms. */
export interface SocketHistoryRequest extends HistoryRequest, RoomScoped {}

/** `peers`: one page of a room's peers, in a stable order. */
export interface PeersRequest extends RoomScoped {
  /** Where the previous page stopped (its `cursor`); without it, the first page. */
  cursor?: string;
  /** At most this many (default and maximum `LIMITS.peersPage`). */
  limit?: number;
}

export interface PeersPage {
  peers: PeerInfo[];
  /** How many peers the room has. */
  peerCount: number;
  /** Present when there are more: ask again with it. Every peer is listed once across pages. */
  cursor?: string;
}

export type AckOk<T extends object = object> = { ok: true } & T;
export interface AckError {
  ok: false;
  error: ErrorBody;
}
export type Ack<T extends object = object> = AckOk<T> | AckError;

export interface ServerToClientEvents {
  session: (payload: SessionPayload) => void;
  'peer:joined': (payload: PeerJoinedPayload) => void;
  /**
   * Several `peer:joined` of one room in one frame, in the order they joined (a burst within
   * `EVENT_COALESCE_MS`); every entry names the same room.
   */
  'peers:joined': (payload: PeerJoinedPayload[]) => void;
  'peer:left': (payload: PeerLeftPayload) => void;
  'presence:count': (payload: PresenceCountPayload) => void;
  signal: (payload: SignalMessage) => void;
  'room:event': (payload: RoomEventFrame) => void;
  /** Several events of one room, oldest first; every entry names the same room. */
  'room:events': (payload: RoomEventFrame[]) => void;
  'room:epoch': (payload: RoomEpochPayload) => void;
  'server:shutdown': (payload: ServerShutdownPayload) => void;
  'session:ended': (payload: SessionEndedPayload) => void;
}

export interface ClientToServerEvents {
  'room:join': (payload: RoomJoinRequest, ack: (result: Ack<SessionPayload>) => void) => void;
  'room:leave': (payload: RoomLeaveRequest, ack: (result: Ack) => void) => void;
  signal: (payload: SignalRequest, ack: (result: Ack) => void) => void;
  publish: (payload: PublishRequest, ack: (result: Ack<PublishEventResponse>) => void) => void;
  'session:refresh': (payload: SessionRefreshRequest, ack: (result: Ack<{ expiresAt: number }>) => void) => void;
  peers: (payload: PeersRequest, ack: (result: Ack<PeersPage>) => void) => void;
  history: (payload: SocketHistoryRequest, ack: (result: Ack<HistoryResponse>) => void) => void;
}

/** Human text for each code, for clients that show errors to people. */
export const ERROR_MESSAGES: Record<ErrorCode, string> = {
  token_missing: 'No RTC token was sent with the connection.',
  token_invalid: 'The RTC token is not valid.',
  token_expired: 'The RTC token has expired.',
  token_used: 'The RTC token was already used.',
  token_revoked: 'The RTC token was revoked.',
  origin_forbidden: 'This site is not allowed to connect.',
  rate_limited: 'Too many requests; slow down and try again shortly.',
  server_draining: 'The server is restarting; reconnecting elsewhere.',
  invalid_request: 'The request is not valid.',
  invalid_payload: 'The message is not valid.',
  unauthorized: 'You are not signed in, or your sign-in has expired.',
  forbidden: 'You are not allowed to do that.',
  not_found: 'Not found.',
  not_in_room: 'That peer is not in this room.',
  payload_too_large: 'The message is too large.',
  unknown_event: 'No such event.',
  unavailable: 'A service the gateway needs is unreachable; try again shortly.',
  internal: 'Something went wrong on the server.',
  identity_unavailable: 'Sign-in cannot be checked right now; try again shortly.',
  upstream_unavailable: 'The voice provider is unavailable right now; try again shortly.',
  authorizer_unavailable: "The app's room authorizer did not answer; try again shortly.",
};

export * from './admin.js';
