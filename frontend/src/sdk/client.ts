import type { ManagerOptions, Socket, SocketOptions } from 'socket.io-client';
import type {
  Capability,
  ClientToServerEvents,
  HistoryRequest,
  HistoryResponse,
  IceServer,
  JsonValue,
  MintTokenResponse,
  PeerInfo,
  PeerJoinedPayload,
  PeerLeftPayload,
  PeersPage,
  PublishEventResponse,
  RecoveryOutcome,
  RoomEvent,
  RoomPosition,
  ServerShutdownPayload,
  ServerToClientEvents,
  SessionEndedPayload,
  SessionPayload,
  SignalKind,
  SignalMessage,
} from '@switchboard/contract';
import { accessTokenFrom } from './access-token.js';
import { resolveBackoff, type BackoffOptions } from './backoff.js';
import type { ClientErrorCode, SwitchboardError } from './errors.js';
import type { FetchLike } from './http.js';
import { SharedConnection } from './connection.js';
import { RoomConnection } from './room.js';
import { createUpstreamApi, type UpstreamApi } from './upstream.js';

export type ClientSocket = Socket<ServerToClientEvents, ClientToServerEvents>;
export type SocketFactory = (url: string, options: Partial<ManagerOptions & SocketOptions>) => ClientSocket;

export interface AccessTokenContext {
  /**
   * True when a cached token will not do: the gateway refused it, or the session is
   * being refreshed and needs a token that expires later than the current one.
   */
  forceRefresh: boolean;
}

/** What `getRtcToken` is asked for. */
export interface RtcTokenRequest {
  room: string;
  /** The capabilities `join` asked for; absent: whatever the app allows. */
  caps?: Capability[];
  /** The gateway origin the token is for (any replica accepts it). */
  gateway: string;
}

export interface SwitchboardOptions {
  /** One gateway origin, e.g. `https://rtc.example.com`. Defaults to the page's origin. */
  url?: string;
  /** Several gateway origins, tried in order: when one is unreachable or draining, the next. */
  urls?: string[];
  /**
   * Your app's access JWT. Throw a SwitchboardError with a transient code (`unreachable`)
   * to have the SDK retry; anything else thrown ends the room in `failed` / `unauthorized`.
   * Needed unless `getRtcToken` is given (and then still for AI voice).
   */
  getAccessToken?: (context: AccessTokenContext) => string | Promise<string>;
  /**
   * When your backend mints RTC tokens for its users (a service JWT with scope `mint`:
   * `POST /api/rtc/tokens {room, caps?, userId, name?}`), fetch one from your backend here.
   * The SDK calls it for every connection, reconnection and session refresh (tokens are
   * single use) instead of minting with `getAccessToken`; return the gateway's answer
   * as it is. Errors are handled as for `getAccessToken`.
   */
  getRtcToken?: (request: RtcTokenRequest) => MintTokenResponse | Promise<MintTokenResponse>;
  /** Reconnect delays. */
  backoff?: BackoffOptions;
  /**
   * How long to wait for an ack before rejecting with `timeout`.
   * @default 10000
   */
  ackTimeoutMs?: number;
  /**
   * How long one connection attempt (transport open, mint) may take.
   * @default 10000
   */
  connectTimeoutMs?: number;
  /**
   * Refresh the session when this share of its remaining lifetime has passed.
   * @default 0.8
   */
  refreshAt?: number;
  /**
   * Socket.IO transports, tried in order. WebSocket first: it needs no sticky sessions
   * across replicas, and a refused origin arrives as `origin_forbidden` (over polling the
   * browser's CORS check hides it). Polling is the fallback where WebSockets are blocked,
   * for a gateway on the page's own origin only: cross-origin, long-polling requests carry
   * no affinity cookie and could each reach another replica, so the default there is
   * WebSocket only. Set polling explicitly only if your balancer pins clients without
   * cookies (by client address, as deploy/nginx/nginx.conf does).
   * @default ['websocket', 'polling'] same-origin, ['websocket'] cross-origin
   */
  transports?: ('polling' | 'websocket' | 'webtransport')[];
  /**
   * Most rooms one connection carries; a further `join` opens another connection. Keep it at
   * or below the gateway's `MAX_ROOMS_PER_CONNECTION`.
   * @default 16
   */
  maxRoomsPerConnection?: number;
  /**
   * How long a `publish` may wait for the gateway's acknowledgement, across reconnects,
   * before its promise rejects with `timeout`. Keep it well inside the gateway's
   * `IDEMPOTENCY_WINDOW_SECONDS`, so a retried publish is still recognised.
   * @default 60000
   */
  publishTimeoutMs?: number;
  /**
   * Most publishes of one room waiting for their acknowledgement (while reconnecting, say);
   * a further `publish` rejects at once with `rate_limited`.
   * @default 100
   */
  maxPendingPublishes?: number;
  /** For tests and non-browser runtimes. */
  fetch?: FetchLike;
  /** For tests: how sockets are made. Defaults to socket.io-client's `io`. */
  connect?: SocketFactory;
  /** For tests: the jitter source. */
  random?: () => number;
}

export interface JoinOptions {
  /** Capabilities to ask for (default: all the gateway grants, i.e. `publish`). */
  caps?: Capability[];
}

export type ConnectionStatus = 'connecting' | 'connected' | 'reconnecting' | 'disconnected' | 'failed';

export interface ConnectionError {
  code: ClientErrorCode;
  message: string;
}

export interface ConnectionState {
  status: ConnectionStatus;
  /** The gateway in use, or the one the next attempt will try. */
  url: string | undefined;
  /** The replica serving this session (from `session.replica`). */
  replica: string | undefined;
  peerId: string | undefined;
  /** Why the last attempt failed; cleared when a session starts. */
  error: ConnectionError | undefined;
  /** Failed attempts since the last session. */
  attempt: number;
  /** Epoch milliseconds of the next attempt while waiting to retry. */
  retryAt: number | undefined;
}

/** `room.peersPage()`: where to start, and how many. */
export interface PeerPageOptions {
  /** The `cursor` of the previous page; absent for the first. */
  cursor?: string;
  /** At most this many (default and maximum 100). */
  limit?: number;
}

export interface RoomEventMap {
  /** The room's session started: on joining, and again after every reconnect (with a new `peerId`). */
  session: SessionPayload;
  /** In rooms of up to the gateway's `ROOM_ANNOUNCE_MAX` members; larger rooms only update `peerCount`. */
  'peer:joined': PeerJoinedPayload;
  'peer:left': PeerLeftPayload;
  signal: SignalMessage;
  /** One event at a time, in order, whether the gateway sent it alone or in a batch. */
  'room:event': RoomEvent;
  /**
   * After every reconnect (and whenever events could not be delivered): whether the events
   * missed meanwhile were replayed. On `recovered: false`, reload what the app shows
   * (for example from `room.history()`).
   */
  recovery: RecoveryOutcome;
  'server:shutdown': ServerShutdownPayload;
  'session:ended': SessionEndedPayload;
  state: ConnectionState;
  /** `room.peerCount` changed: a join or leave, a session, or a large room's `presence:count`. */
  peerCount: number;
  /** A background task failed without ending the connection (e.g. a session refresh). */
  error: SwitchboardError;
}

export interface Room {
  readonly name: string;
  readonly state: ConnectionState;
  /** The current session; replaced on every (re)join, with a new `peerId`. */
  readonly session: SessionPayload | undefined;
  readonly peerId: string | undefined;
  /** ICE servers from the latest RTC token. */
  readonly iceServers: IceServer[];
  /** The last room event delivered to the app; sent on every reconnect to recover what was missed. */
  readonly position: RoomPosition | undefined;
  /**
   * How many members the room has, this one included: from the session, kept current by
   * joins and leaves, and in large rooms by the gateway's `presence:count` (at most once a second).
   */
  readonly peerCount: number;
  /** Resolves with the first session; rejects if the room fails or is left first. */
  readonly ready: Promise<SessionPayload>;
  on<K extends keyof RoomEventMap>(event: K, listener: (payload: RoomEventMap[K]) => void): () => void;
  off<K extends keyof RoomEventMap>(event: K, listener: (payload: RoomEventMap[K]) => void): void;
  /** Sends a signaling message to one peer of the room. */
  signal(to: string, kind: SignalKind, data: JsonValue): Promise<void>;
  /**
   * Publishes a room event to every member (needs the `publish` capability). Resolves with
   * its id and seq; `local: true` when the gateway could reach only its own members.
   * Every publish carries an idempotency key: one not acknowledged when the connection
   * drops (or sent while reconnecting) goes out again after the reconnect with the same
   * key, so it is published once and the promise settles once. It rejects on a refusal,
   * on `leave()`, or after `publishTimeoutMs`.
   */
  publish(type: string, data?: JsonValue): Promise<PublishEventResponse>;
  /** The room's recent events: after `after`, or the latest `limit` (at most 100). */
  history(options?: HistoryRequest): Promise<HistoryResponse>;
  /** Every peer of the room across replicas, this one included (all pages; see `peerPages` for large rooms). */
  peers(): Promise<PeerInfo[]>;
  /** One page of the room's peers (at most 100); pass its `cursor` back for the next. */
  peersPage(options?: PeerPageOptions): Promise<PeersPage>;
  /** The room's peers page by page, each listed once. */
  peerPages(options?: Omit<PeerPageOptions, 'cursor'>): AsyncGenerator<PeersPage, void, undefined>;
  /** Extends the session with a fresh access token; the SDK also does this on its own. */
  refresh(): Promise<{ expiresAt: number }>;
  /** Leaves the room for good (`room:leave`); the connection closes with its last room. Idempotent. */
  leave(): void;
}

export interface Switchboard {
  readonly urls: readonly string[];
  /**
   * Joins a room. Every room of one Switchboard shares one connection (up to
   * `maxRoomsPerConnection`); each keeps its own session, position and recovery.
   */
  join(room: string, options?: JoinOptions): Room;
  /** Provider secrets for AI voice sessions, brokered by the gateway (`upstream.openai()`). */
  readonly upstream: UpstreamApi;
  /** Leaves every room; idempotent. */
  close(): void;
}

function normalizeUrls(options: SwitchboardOptions): string[] {
  const given = options.urls ?? (options.url !== undefined ? [options.url] : []);
  const base = typeof location === 'undefined' ? undefined : location.href;
  const urls = (given.length > 0 ? given : base ? [base] : []).map((url) => new URL(url, base).origin);
  if (urls.length === 0) throw new TypeError('createSwitchboard needs `url` or `urls` outside a browser page');
  return urls;
}

export function createSwitchboard(options: SwitchboardOptions): Switchboard {
  if (!options.getAccessToken && !options.getRtcToken) {
    throw new TypeError('createSwitchboard needs `getAccessToken`, or `getRtcToken` when your backend mints tokens');
  }
  const urls = normalizeUrls(options);
  const backoff = resolveBackoff(options.backoff);
  const rooms = new Set<RoomConnection>();
  const connections: SharedConnection[] = [];
  const maxRooms = options.maxRoomsPerConnection ?? 16;
  if (!(maxRooms >= 1)) throw new RangeError('maxRoomsPerConnection must be >= 1');
  return {
    urls,
    upstream: createUpstreamApi({
      urls,
      accessToken: (forceRefresh) => accessTokenFrom(options, forceRefresh),
      fetch: options.fetch,
      timeoutMs: options.connectTimeoutMs ?? 10_000,
    }),
    join(name, joinOptions = {}) {
      // A room already joined here gets a connection of its own: one connection is in a room once.
      let connection = connections.find((c) => !c.has(name) && c.size < maxRooms);
      if (!connection) {
        const created = new SharedConnection({
          urls,
          options,
          backoff,
          onEmpty: () => {
            const index = connections.indexOf(created);
            if (index >= 0) connections.splice(index, 1);
          },
        });
        connections.push(created);
        connection = created;
      }
      const room: RoomConnection = new RoomConnection({
        name,
        joinOptions,
        options,
        backoff,
        connection,
        onLeave: () => rooms.delete(room),
      });
      rooms.add(room);
      connection.add(room);
      return room;
    },
    close() {
      for (const room of [...rooms]) room.leave();
    },
  };
}
