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
  PeerLeftPayload,
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

export interface RoomEventMap {
  session: SessionPayload;
  'peer:joined': PeerInfo;
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
  /** Resolves with the first session; rejects if the room fails or is left first. */
  readonly ready: Promise<SessionPayload>;
  on<K extends keyof RoomEventMap>(event: K, listener: (payload: RoomEventMap[K]) => void): () => void;
  off<K extends keyof RoomEventMap>(event: K, listener: (payload: RoomEventMap[K]) => void): void;
  /** Sends a signaling message to one peer of the room. */
  signal(to: string, kind: SignalKind, data: JsonValue): Promise<void>;
  /**
   * Publishes a room event to every member (needs the `publish` capability). Resolves with
   * its id and seq; `local: true` when the gateway could reach only its own members.
   */
  publish(type: string, data?: JsonValue): Promise<PublishEventResponse>;
  /** The room's recent events: after `after`, or the latest `limit` (at most 100). */
  history(options?: HistoryRequest): Promise<HistoryResponse>;
  /** The room's peers across replicas, this one included. */
  peers(): Promise<PeerInfo[]>;
  /** Extends the session with a fresh access token; the SDK also does this on its own. */
  refresh(): Promise<{ expiresAt: number }>;
  /** Disconnects for good; idempotent. */
  leave(): void;
}

export interface Switchboard {
  readonly urls: readonly string[];
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
  return {
    urls,
    upstream: createUpstreamApi({
      urls,
      accessToken: (forceRefresh) => accessTokenFrom(options, forceRefresh),
      fetch: options.fetch,
      timeoutMs: options.connectTimeoutMs ?? 10_000,
    }),
    join(name, joinOptions = {}) {
      const room: RoomConnection = new RoomConnection(name, joinOptions, urls, options, backoff, () =>
        rooms.delete(room),
      );
      rooms.add(room);
      room.start();
      return room;
    },
    close() {
      for (const room of [...rooms]) room.leave();
    },
  };
}
