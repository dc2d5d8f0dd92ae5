import { io, type ManagerOptions, type Socket, type SocketOptions } from 'socket.io-client';
import type {
  Capability,
  ClientToServerEvents,
  IceServer,
  JsonValue,
  MintTokenResponse,
  PeerInfo,
  PeerLeftPayload,
  RoomEvent,
  ServerShutdownPayload,
  ServerToClientEvents,
  SessionEndedPayload,
  SessionPayload,
  SignalKind,
  SignalMessage,
} from '@switchboard/contract';
import { unwrapAck } from './acks.js';
import { backoffDelay, resolveBackoff, type BackoffOptions, type ResolvedBackoff } from './backoff.js';
import { Emitter } from './emitter.js';
import {
  SwitchboardError,
  connectErrorCode,
  describeError,
  toSwitchboardError,
  type ClientErrorCode,
} from './errors.js';
import { mintRtcToken, type FetchLike } from './http.js';
import { planRetry, type ConnectionFailure } from './retry-policy.js';
import { unpackRoomEvents } from './room-events.js';
import { refreshDelayMs } from './session-refresh.js';
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

export interface SwitchboardOptions {
  /** One gateway origin, e.g. `https://rtc.example.com`. Defaults to the page's origin. */
  url?: string;
  /** Several gateway origins, tried in order: when one is unreachable or draining, the next. */
  urls?: string[];
  /**
   * Your app's access JWT. Throw a SwitchboardError with a transient code (`unreachable`)
   * to have the SDK retry; anything else thrown ends the room in `failed` / `unauthorized`.
   */
  getAccessToken: (context: AccessTokenContext) => string | Promise<string>;
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
   * browser's CORS check hides it). Polling is the fallback where WebSockets are blocked.
   * @default ['websocket', 'polling']
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
  /** Resolves with the first session; rejects if the room fails or is left first. */
  readonly ready: Promise<SessionPayload>;
  on<K extends keyof RoomEventMap>(event: K, listener: (payload: RoomEventMap[K]) => void): () => void;
  off<K extends keyof RoomEventMap>(event: K, listener: (payload: RoomEventMap[K]) => void): void;
  /** Sends a signaling message to one peer of the room. */
  signal(to: string, kind: SignalKind, data: JsonValue): Promise<void>;
  /** Publishes a room event to every member (needs the `publish` capability). */
  publish(type: string, data?: JsonValue): Promise<{ id: string }>;
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

/** The app's access token; a failure that is not already a SwitchboardError becomes `unauthorized`. */
async function accessTokenFrom(options: SwitchboardOptions, forceRefresh: boolean): Promise<string> {
  try {
    return await options.getAccessToken({ forceRefresh });
  } catch (error) {
    if (error instanceof SwitchboardError) throw error;
    const reason = error instanceof Error ? `: ${error.message}` : '';
    throw new SwitchboardError('unauthorized', `could not get an access token${reason}`, { cause: error });
  }
}

export function createSwitchboard(options: SwitchboardOptions): Switchboard {
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
      const room = new RoomConnection(name, joinOptions, urls, options, backoff, () => rooms.delete(room));
      rooms.add(room);
      room.start();
      return room;
    },
    close() {
      for (const room of [...rooms]) room.leave();
    },
  };
}

class RoomConnection extends Emitter<RoomEventMap> implements Room {
  readonly name: string;
  readonly ready: Promise<SessionPayload>;
  readonly #caps: Capability[] | undefined;
  readonly #urls: readonly string[];
  readonly #options: SwitchboardOptions;
  readonly #backoff: ResolvedBackoff;
  readonly #random: () => number;
  readonly #connect: SocketFactory;
  readonly #ackTimeoutMs: number;
  readonly #connectTimeoutMs: number;
  readonly #onLeave: () => void;
  #resolveReady: (session: SessionPayload) => void = () => undefined;
  #rejectReady: (error: SwitchboardError) => void = () => undefined;

  #socket: ClientSocket | undefined;
  #urlIndex = 0;
  #attempt = 0;
  #hasConnected = false;
  #closed = false;
  #session: SessionPayload | undefined;
  #iceServers: IceServer[] = [];
  #shutdownNotice: ServerShutdownPayload | undefined;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #refreshTimer: ReturnType<typeof setTimeout> | undefined;
  #shutdownTimer: ReturnType<typeof setTimeout> | undefined;
  #refreshFailures = 0;
  #state: ConnectionState;

  constructor(
    name: string,
    joinOptions: JoinOptions,
    urls: readonly string[],
    options: SwitchboardOptions,
    backoff: ResolvedBackoff,
    onLeave: () => void,
  ) {
    super();
    this.name = name;
    this.#caps = joinOptions.caps;
    this.#urls = urls;
    this.#options = options;
    this.#backoff = backoff;
    this.#random = options.random ?? Math.random;
    this.#connect = options.connect ?? ((url, socketOptions) => io(url, socketOptions));
    this.#ackTimeoutMs = options.ackTimeoutMs ?? 10_000;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.#onLeave = onLeave;
    this.#state = {
      status: 'connecting',
      url: urls[0],
      replica: undefined,
      peerId: undefined,
      error: undefined,
      attempt: 0,
      retryAt: undefined,
    };
    this.ready = new Promise<SessionPayload>((resolve, reject) => {
      this.#resolveReady = resolve;
      this.#rejectReady = reject;
    });
    // Apps that only watch `state` need not await `ready`; its rejection is not a crash.
    this.ready.catch(() => undefined);
  }

  get state(): ConnectionState {
    return this.#state;
  }
  get session(): SessionPayload | undefined {
    return this.#session;
  }
  get peerId(): string | undefined {
    return this.#session?.peerId;
  }
  get iceServers(): IceServer[] {
    return this.#iceServers;
  }

  start(): void {
    this.#open();
  }

  // ---- connection lifecycle -------------------------------------------------

  #open(): void {
    this.#retryTimer = undefined;
    if (this.#closed) return;
    const url = this.#urls[this.#urlIndex] ?? this.#urls[0] ?? '';
    this.#setState({ status: this.#hasConnected ? 'reconnecting' : 'connecting', url, retryAt: undefined });
    const socket = this.#connect(url, {
      forceNew: true,
      // Reconnecting is ours: it has to rotate URLs and honour shutdown notices.
      reconnection: false,
      autoConnect: false,
      timeout: this.#connectTimeoutMs,
      transports: this.#options.transports ?? ['websocket', 'polling'],
      tryAllTransports: true,
      // A function, so every connection redeems a token minted just for it (tokens are single use).
      auth: (send) => {
        this.#mint(url, false).then(
          (minted) => {
            if (this.#socket === socket) send({ token: minted.token });
          },
          (error: unknown) => {
            const failure = toSwitchboardError(error);
            this.#fail(socket, {
              kind: 'error',
              code: failure.code,
              message: failure.message,
              retryAfterMs: failure.retryAfterMs,
            });
          },
        );
      },
    });
    this.#socket = socket;
    this.#wire(socket);
    socket.connect();
  }

  #wire(socket: ClientSocket): void {
    const current = () => socket === this.#socket && !this.#closed;
    // The gateway sends `session` before any room traffic, but the SDK does not depend on
    // it (older gateways did not): whatever overtakes `session` is held and replayed after
    // it, so apps always see the session (and their own peer id) first and no offer is lost.
    let early: Array<() => void> | undefined = [];
    const relay = (deliver: () => void) => {
      if (!current()) return;
      if (early) early.push(deliver);
      else deliver();
    };
    socket.on('connect_error', (error: Error & { data?: unknown }) => {
      const code = connectErrorCode(error);
      this.#fail(socket, { kind: 'error', code, message: describeError(code) });
    });
    socket.on('disconnect', (reason) => {
      if (reason === 'io client disconnect') return;
      const notice = this.#shutdownNotice;
      this.#fail(
        socket,
        notice ? { kind: 'shutdown', reconnectAfterMs: notice.reconnectAfterMs } : { kind: 'disconnect', reason },
      );
    });
    socket.on('session', (session) => {
      if (!current()) return;
      const held = early ?? [];
      early = undefined;
      this.#onSession(session);
      for (const deliver of held) if (current()) deliver();
    });
    socket.on('peer:joined', (peer) => {
      relay(() => {
        this.emit('peer:joined', peer);
      });
    });
    socket.on('peer:left', (payload) => {
      relay(() => {
        this.emit('peer:left', payload);
      });
    });
    socket.on('signal', (message) => {
      relay(() => {
        this.emit('signal', message);
      });
    });
    const deliver = (payload: unknown) => {
      relay(() => {
        for (const event of unpackRoomEvents(payload)) this.emit('room:event', event);
      });
    };
    socket.on('room:event', deliver);
    socket.on('room:events', deliver);
    socket.on('server:shutdown', (notice) => {
      if (!current()) return;
      this.#shutdownNotice = notice;
      this.emit('server:shutdown', notice);
      // The replica disconnects us right after; if that goodbye is lost, leave on our own.
      clearTimeout(this.#shutdownTimer);
      this.#shutdownTimer = setTimeout(() => {
        this.#fail(socket, { kind: 'shutdown', reconnectAfterMs: 0 });
      }, notice.reconnectAfterMs + 1_000);
    });
    socket.on('session:ended', (payload) => {
      relay(() => {
        this.emit('session:ended', payload);
      });
    });
  }

  #onSession(session: SessionPayload): void {
    this.#session = session;
    this.#attempt = 0;
    this.#refreshFailures = 0;
    this.#hasConnected = true;
    this.#shutdownNotice = undefined;
    this.#setState({
      status: 'connected',
      replica: session.replica,
      peerId: session.peerId,
      error: undefined,
      attempt: 0,
      retryAt: undefined,
    });
    this.#scheduleRefresh(session.expiresAt);
    this.#resolveReady(session);
    this.emit('session', session);
  }

  /** Ends the current attempt or connection and plans the next one. Stale sockets are ignored. */
  #fail(socket: ClientSocket, failure: ConnectionFailure & { message?: string }): void {
    if (socket !== this.#socket || this.#closed) return;
    this.#dropSocket();
    const plan = planRetry(failure, this.#attempt, this.#backoff, this.#random);
    const message = (code: ClientErrorCode) => failure.message ?? describeError(code);
    if (plan.action === 'fail') {
      const error = new SwitchboardError(plan.code, message(plan.code));
      this.#closed = true;
      this.#clearTimers();
      this.#setState({
        status: 'failed',
        replica: undefined,
        error: { code: plan.code, message: error.message },
        retryAt: undefined,
      });
      this.#rejectReady(error);
      this.#onLeave();
      return;
    }
    if (plan.rotate) this.#urlIndex = (this.#urlIndex + 1) % this.#urls.length;
    this.#attempt += 1;
    this.#setState({
      status: this.#hasConnected ? 'reconnecting' : 'connecting',
      url: this.#urls[this.#urlIndex],
      replica: undefined,
      peerId: undefined,
      error: plan.code ? { code: plan.code, message: message(plan.code) } : this.#state.error,
      attempt: this.#attempt,
      retryAt: Date.now() + plan.delayMs,
    });
    this.#retryTimer = setTimeout(() => {
      this.#open();
    }, plan.delayMs);
  }

  #dropSocket(): void {
    const socket = this.#socket;
    this.#socket = undefined;
    this.#shutdownNotice = undefined;
    clearTimeout(this.#refreshTimer);
    clearTimeout(this.#shutdownTimer);
    this.#refreshTimer = undefined;
    this.#shutdownTimer = undefined;
    if (socket) {
      socket.removeAllListeners();
      socket.disconnect();
    }
  }

  #clearTimers(): void {
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#refreshTimer);
    clearTimeout(this.#shutdownTimer);
    this.#retryTimer = undefined;
    this.#refreshTimer = undefined;
    this.#shutdownTimer = undefined;
  }

  #setState(patch: Partial<ConnectionState>): void {
    this.#state = { ...this.#state, ...patch };
    this.emit('state', this.#state);
  }

  // ---- tokens and session refresh -----------------------------------------

  async #mint(url: string, forceRefresh: boolean): Promise<MintTokenResponse> {
    const request = async (force: boolean): Promise<MintTokenResponse> => {
      const accessToken = await accessTokenFrom(this.#options, force);
      return mintRtcToken({
        baseUrl: url,
        accessToken,
        room: this.name,
        ...(this.#caps ? { caps: this.#caps } : {}),
        ...(this.#options.fetch ? { fetch: this.#options.fetch } : {}),
        timeoutMs: this.#connectTimeoutMs,
      });
    };
    let minted: MintTokenResponse;
    try {
      minted = await request(forceRefresh);
    } catch (error) {
      // A cached access token may have expired since it was handed out: ask once for a new one.
      if (forceRefresh || !(error instanceof SwitchboardError) || error.code !== 'unauthorized') throw error;
      minted = await request(true);
    }
    this.#iceServers = minted.iceServers;
    return minted;
  }

  #scheduleRefresh(expiresAt: number): void {
    clearTimeout(this.#refreshTimer);
    const fraction = this.#options.refreshAt ?? 0.8;
    this.#refreshTimer = setTimeout(
      () => {
        void this.#autoRefresh();
      },
      refreshDelayMs(expiresAt, Date.now(), fraction),
    );
  }

  async #autoRefresh(): Promise<void> {
    this.#refreshTimer = undefined;
    const socket = this.#socket;
    try {
      await this.refresh();
    } catch (error) {
      if (socket !== this.#socket || this.#closed) return;
      this.emit('error', toSwitchboardError(error));
      const remaining = (this.#session?.expiresAt ?? 0) - Date.now();
      if (remaining <= 0) return;
      // Keep trying while the session lasts; if it ends first, the gateway says so and we rejoin.
      const delay = Math.min(backoffDelay(this.#refreshFailures++, this.#backoff, this.#random), remaining / 2);
      this.#refreshTimer = setTimeout(() => {
        void this.#autoRefresh();
      }, delay);
    }
  }

  async refresh(): Promise<{ expiresAt: number }> {
    const socket = this.#liveSocket('session:refresh');
    const minted = await this.#mint(this.#state.url ?? this.#urls[0] ?? '', true);
    const ack = await this.#ack('session:refresh', (s) =>
      s.timeout(this.#ackTimeoutMs).emitWithAck('session:refresh', { token: minted.token }),
    );
    const expiresAt = ack.expiresAt;
    if (typeof expiresAt !== 'number') throw new SwitchboardError('internal', 'session:refresh ack has no expiresAt');
    if (socket === this.#socket && this.#session) {
      this.#session = { ...this.#session, expiresAt };
      this.#refreshFailures = 0;
      this.#scheduleRefresh(expiresAt);
    }
    return { expiresAt };
  }

  // ---- requests ------------------------------------------------------------

  #liveSocket(operation: string): ClientSocket {
    const socket = this.#socket;
    if (this.#closed) throw new SwitchboardError('closed', `${operation}: ${describeError('closed')}`);
    // Socket.IO would buffer the emit until a reconnect, but by then the peer ids it names are stale.
    if (!socket?.connected || this.#state.status !== 'connected') {
      throw new SwitchboardError('not_connected', `${operation}: ${describeError('not_connected')}`);
    }
    return socket;
  }

  async #ack(operation: string, send: (socket: ClientSocket) => Promise<unknown>): Promise<Record<string, unknown>> {
    const socket = this.#liveSocket(operation);
    let raw: unknown;
    try {
      raw = await send(socket);
    } catch (error) {
      throw new SwitchboardError('timeout', `${operation} timed out after ${this.#ackTimeoutMs} ms`, { cause: error });
    }
    return unwrapAck(raw, operation);
  }

  async signal(to: string, kind: SignalKind, data: JsonValue): Promise<void> {
    await this.#ack('signal', (s) => s.timeout(this.#ackTimeoutMs).emitWithAck('signal', { to, kind, data }));
  }

  async publish(type: string, data?: JsonValue): Promise<{ id: string }> {
    const ack = await this.#ack('publish', (s) =>
      s.timeout(this.#ackTimeoutMs).emitWithAck('publish', data === undefined ? { type } : { type, data }),
    );
    if (typeof ack.id !== 'string') throw new SwitchboardError('internal', 'publish ack has no id');
    return { id: ack.id };
  }

  async peers(): Promise<PeerInfo[]> {
    const ack = await this.#ack('peers', (s) => s.timeout(this.#ackTimeoutMs).emitWithAck('peers', {}));
    if (!Array.isArray(ack.peers)) throw new SwitchboardError('internal', 'peers ack has no peers');
    return ack.peers as PeerInfo[];
  }

  leave(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#clearTimers();
    const socket = this.#socket;
    this.#socket = undefined;
    if (socket) {
      socket.removeAllListeners();
      socket.disconnect();
    }
    this.#setState({ status: 'disconnected', replica: undefined, peerId: undefined, retryAt: undefined });
    this.#rejectReady(new SwitchboardError('closed'));
    this.#onLeave();
  }
}
