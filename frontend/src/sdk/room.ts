import { io } from 'socket.io-client';
import {
  LIMITS,
  type Capability,
  type HistoryRequest,
  type HistoryResponse,
  type IceServer,
  type JsonValue,
  type MintTokenResponse,
  type PeerInfo,
  type PublishEventResponse,
  type RoomPosition,
  type ServerShutdownPayload,
  type SessionPayload,
  type SignalKind,
} from '@switchboard/contract';
import { accessTokenFrom, rtcTokenFrom } from './access-token.js';
import { unwrapAck } from './acks.js';
import { backoffDelay, type ResolvedBackoff } from './backoff.js';
import type {
  ClientSocket,
  ConnectionState,
  JoinOptions,
  Room,
  RoomEventMap,
  SocketFactory,
  SwitchboardOptions,
} from './client.js';
import { Emitter } from './emitter.js';
import {
  SwitchboardError,
  connectErrorCode,
  describeError,
  toSwitchboardError,
  type ClientErrorCode,
} from './errors.js';
import { EventOrder } from './event-order.js';
import { mintRtcToken } from './http.js';
import { planRetry, type ConnectionFailure } from './retry-policy.js';
import { unpackRoomEvents } from './room-events.js';
import { refreshDelayMs } from './session-refresh.js';

/** Bytes of `value` as UTF-8 JSON, as the gateway counts them. */
function jsonBytes(value: unknown): number {
  return new TextEncoder().encode(JSON.stringify(value)).length;
}

/**
 * One room: a Socket.IO connection that reconnects on its own (rotating gateway URLs,
 * honouring shutdown notices), refreshes its session, and keeps the room's position so
 * that every reconnect recovers the events it missed.
 */
export class RoomConnection extends Emitter<RoomEventMap> implements Room {
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
  /** The socket of a draining replica, still delivering while its successor connects. */
  #outgoing: ClientSocket | undefined;
  #urlIndex = 0;
  #attempt = 0;
  #hasConnected = false;
  #closed = false;
  /** The app removed this user from the room: the disconnect that follows is final. */
  #kicked = false;
  #session: SessionPayload | undefined;
  #iceServers: IceServer[] = [];
  #shutdownNotice: ServerShutdownPayload | undefined;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #refreshTimer: ReturnType<typeof setTimeout> | undefined;
  #shutdownTimer: ReturnType<typeof setTimeout> | undefined;
  #refreshFailures = 0;
  #state: ConnectionState;
  readonly #order: EventOrder;

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
    this.#order = new EventOrder({
      deliver: (event) => this.emit('room:event', event),
      fetchHistory: (after, limit) => this.history({ after, limit }),
      lost: (reason) => this.emit('recovery', { recovered: false, replayed: 0, reason }),
    });
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
  get position(): RoomPosition | undefined {
    return this.#order.position;
  }

  start(): void {
    this.#open();
  }

  // ---- connection lifecycle -------------------------------------------------

  /** Opens the next connection; `handover`: the old one still delivers, so the room stays `connected`. */
  #open(handover = false): void {
    this.#retryTimer = undefined;
    if (this.#closed) return;
    const url = this.#urls[this.#urlIndex] ?? this.#urls[0] ?? '';
    if (handover) this.#setState({ url });
    else this.#setState({ status: this.#hasConnected ? 'reconnecting' : 'connecting', url, retryAt: undefined });
    const socket = this.#connect(url, {
      forceNew: true,
      // Reconnecting is ours: it has to rotate URLs and honour shutdown notices.
      reconnection: false,
      autoConnect: false,
      timeout: this.#connectTimeoutMs,
      transports: this.#options.transports ?? defaultTransports(url),
      tryAllTransports: true,
      // A function, so every connection redeems a token minted just for it (tokens are single
      // use) and asks to recover from the position the app has reached by then.
      auth: (send) => {
        this.#mint(url, false).then(
          (minted) => {
            const recover = this.#order.position;
            if (this.#socket === socket) send(recover ? { token: minted.token, recover } : { token: minted.token });
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
    const current = () => (socket === this.#socket || socket === this.#outgoing) && !this.#closed;
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
      if (socket === this.#outgoing) {
        // The draining replica let go before the successor's session started; that one
        // recovers what falls in between.
        this.#dropOutgoing();
        if (!this.#socket?.connected) this.#setState({ status: 'reconnecting', replica: undefined, peerId: undefined });
        return;
      }
      const notice = this.#shutdownNotice;
      this.#fail(
        socket,
        this.#kicked
          ? { kind: 'error', code: 'kicked' }
          : notice
            ? { kind: 'shutdown', reconnectAfterMs: notice.reconnectAfterMs }
            : { kind: 'disconnect', reason },
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
    socket.on('peers:joined', (peers) => {
      relay(() => {
        for (const peer of peers) this.emit('peer:joined', peer);
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
        for (const event of unpackRoomEvents(payload)) this.#order.receive(event);
      });
    };
    socket.on('room:event', deliver);
    socket.on('room:events', deliver);
    socket.on('room:epoch', (payload) => {
      relay(() => {
        this.#order.moved(payload);
      });
    });
    socket.on('server:shutdown', (notice) => {
      if (socket !== this.#socket || this.#closed) return;
      this.#shutdownNotice = notice;
      this.emit('server:shutdown', notice);
      // Make before break: after the delay the replica asked for (it spreads its clients
      // out), connect elsewhere while this socket still delivers, and let it go once the
      // new session has started. Positions make the overlap harmless.
      clearTimeout(this.#shutdownTimer);
      this.#shutdownTimer = setTimeout(() => {
        this.#handOver(socket);
      }, notice.reconnectAfterMs);
    });
    socket.on('session:ended', (payload) => {
      if (payload.reason === 'kicked' && current()) this.#kicked = true;
      relay(() => {
        this.emit('session:ended', payload);
      });
    });
  }

  #handOver(socket: ClientSocket): void {
    this.#shutdownTimer = undefined;
    if (socket !== this.#socket || this.#closed) return;
    this.#dropOutgoing();
    this.#outgoing = socket;
    this.#socket = undefined;
    this.#shutdownNotice = undefined;
    clearTimeout(this.#refreshTimer);
    this.#refreshTimer = undefined;
    this.#urlIndex = (this.#urlIndex + 1) % this.#urls.length;
    this.#open(true);
  }

  #dropOutgoing(): void {
    const outgoing = this.#outgoing;
    this.#outgoing = undefined;
    if (outgoing) {
      outgoing.removeAllListeners();
      outgoing.disconnect();
    }
  }

  #onSession(session: SessionPayload): void {
    this.#dropOutgoing();
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
    this.#order.start(session);
    this.#resolveReady(session);
    this.emit('session', session);
    if (session.recovery) this.emit('recovery', session.recovery);
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
    this.#order.pause();
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
    const fromBackend = this.#options.getRtcToken;
    if (fromBackend) {
      const minted = await rtcTokenFrom(fromBackend, {
        room: this.name,
        gateway: url,
        ...(this.#caps ? { caps: this.#caps } : {}),
      });
      this.#iceServers = minted.iceServers;
      return minted;
    }
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
    // During a handover the draining replica still serves requests until the successor is up.
    const socket = this.#socket?.connected || !this.#outgoing?.connected ? this.#socket : this.#outgoing;
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

  /** Refuses before sending what the gateway would refuse: it answers, but only after the upload. */
  #checkSize(operation: string, payload: object): void {
    const bytes = jsonBytes(payload);
    if (bytes > LIMITS.eventBytes) {
      throw new SwitchboardError(
        'payload_too_large',
        `${operation}: ${bytes} bytes of JSON; events are limited to ${LIMITS.eventBytes}`,
      );
    }
  }

  async signal(to: string, kind: SignalKind, data: JsonValue): Promise<void> {
    const payload = { to, kind, data };
    this.#checkSize('signal', payload);
    await this.#ack('signal', (s) => s.timeout(this.#ackTimeoutMs).emitWithAck('signal', payload));
  }

  async publish(type: string, data?: JsonValue): Promise<PublishEventResponse> {
    const payload = data === undefined ? { type } : { type, data };
    this.#checkSize('publish', payload);
    const ack = await this.#ack('publish', (s) => s.timeout(this.#ackTimeoutMs).emitWithAck('publish', payload));
    if (typeof ack.id !== 'string' || typeof ack.seq !== 'number') {
      throw new SwitchboardError('internal', 'publish ack has no id or seq');
    }
    return ack.local === true ? { id: ack.id, seq: ack.seq, local: true } : { id: ack.id, seq: ack.seq };
  }

  /**
   * Up to `limit` events (default and most 100), oldest first. The gateway cuts a reply
   * at its byte limit and says `more`; this pages on until `limit` is reached.
   */
  async history(options: HistoryRequest = {}): Promise<HistoryResponse> {
    const limit = options.limit ?? LIMITS.historyLimit;
    let page = await this.#historyPage(options);
    const events = page.events;
    for (let last = events.at(-1); page.more && last && events.length < limit; last = events.at(-1)) {
      const next = await this.#historyPage({ after: last.seq, limit: limit - events.length });
      // The history was lost meanwhile: what was read belongs to another numbering.
      if (next.epoch !== page.epoch) return next;
      events.push(...next.events);
      page = next;
    }
    return { epoch: page.epoch, top: page.top, events };
  }

  async #historyPage(request: HistoryRequest): Promise<HistoryResponse> {
    const ack = await this.#ack('history', (s) => s.timeout(this.#ackTimeoutMs).emitWithAck('history', request));
    if (typeof ack.epoch !== 'string' || typeof ack.top !== 'number' || !Array.isArray(ack.events)) {
      throw new SwitchboardError('internal', 'history ack has no epoch, top or events');
    }
    const events = unpackRoomEvents(ack.events);
    return ack.more === true
      ? { epoch: ack.epoch, top: ack.top, events, more: true }
      : { epoch: ack.epoch, top: ack.top, events };
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
    this.#dropOutgoing();
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

/**
 * WebSocket first, then long-polling, for a gateway on the page's own origin. Cross-origin,
 * WebSocket only: each long-polling request may reach another replica unless the load
 * balancer pins the client, and the usual pin, an affinity cookie, is not sent on a
 * cross-origin request (socket.io-client's `withCredentials` is off, and the gateway's CORS
 * answers `*` or an exact origin without credentials). A WebSocket is one connection to one
 * replica. Outside a browser there is no page origin: both, as Socket.IO does.
 */
export function defaultTransports(url: string): Array<'websocket' | 'polling'> {
  const page = typeof location === 'undefined' ? undefined : location.origin;
  return page !== undefined && new URL(url, page).origin !== page ? ['websocket'] : ['websocket', 'polling'];
}
