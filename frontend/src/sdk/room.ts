import {
  LIMITS,
  type Capability,
  type HistoryRequest,
  type HistoryResponse,
  type IceServer,
  type JsonValue,
  type MintTokenResponse,
  type PeerInfo,
  type PeerJoinedPayload,
  type PeerLeftPayload,
  type PeersPage,
  type PresenceCountPayload,
  type PublishEventResponse,
  type RoomEpochPayload,
  type RoomPosition,
  type ServerShutdownPayload,
  type SessionEndedPayload,
  type SessionPayload,
  type SignalKind,
  type SignalMessage,
} from '@switchboard/contract';
import { accessTokenFrom, rtcTokenFrom } from './access-token.js';
import { unwrapAck } from './acks.js';
import { backoffDelay, type ResolvedBackoff } from './backoff.js';
import type {
  ClientSocket,
  ConnectionState,
  JoinOptions,
  PeerPageOptions,
  Room,
  RoomEventMap,
  SwitchboardOptions,
} from './client.js';
import type { Membership, RoomFrame, SharedConnection } from './connection.js';
import { Emitter } from './emitter.js';
import { SwitchboardError, describeError, toSwitchboardError } from './errors.js';
import { EventOrder } from './event-order.js';
import { mintRtcToken } from './http.js';
import { PublishQueue } from './publish-queue.js';
import { isFatal } from './retry-policy.js';
import { unpackRoomEvents } from './room-events.js';
import { refreshDelayMs } from './session-refresh.js';

/** Bytes of `value` as UTF-8 JSON, as the gateway counts them. */
function jsonBytes(value: unknown): number {
  return new TextEncoder().encode(JSON.stringify(value)).length;
}

function isSession(value: Record<string, unknown>): boolean {
  return (
    typeof value.peerId === 'string' &&
    typeof value.room === 'string' &&
    typeof value.expiresAt === 'number' &&
    Array.isArray(value.peers) &&
    typeof value.position === 'object' &&
    value.position !== null
  );
}

export interface RoomConnectionOptions {
  name: string;
  joinOptions: JoinOptions;
  options: SwitchboardOptions;
  backoff: ResolvedBackoff;
  /** The connection this room rides on, shared with the client's other rooms. */
  connection: SharedConnection;
  onLeave: () => void;
}

/**
 * One room on a shared connection: its session, its position (so that every reconnect
 * recovers the events it missed), its presence count, its session refresh and its
 * publishes until they are acknowledged. The connection it rides on is shared with the
 * client's other rooms; a fatal error (kicked, forbidden) ends only this room.
 */
export class RoomConnection extends Emitter<RoomEventMap> implements Room, Membership {
  readonly name: string;
  readonly ready: Promise<SessionPayload>;
  readonly #caps: Capability[] | undefined;
  readonly #options: SwitchboardOptions;
  readonly #backoff: ResolvedBackoff;
  readonly #random: () => number;
  readonly #ackTimeoutMs: number;
  readonly #connectTimeoutMs: number;
  readonly #connection: SharedConnection;
  readonly #onLeave: () => void;
  #resolveReady: (session: SessionPayload) => void = () => undefined;
  #rejectReady: (error: SwitchboardError) => void = () => undefined;

  /** The socket this room's session is on. */
  #socket: ClientSocket | undefined;
  /** The socket this room is joining (handshake or `room:join`), and what arrived there before its session. */
  #joining: ClientSocket | undefined;
  #early: Array<() => void> = [];
  #hasConnected = false;
  #closed = false;
  #session: SessionPayload | undefined;
  #peerCount = 0;
  #iceServers: IceServer[] = [];
  #refreshTimer: ReturnType<typeof setTimeout> | undefined;
  #joinTimer: ReturnType<typeof setTimeout> | undefined;
  #refreshFailures = 0;
  #joinFailures = 0;
  #state: ConnectionState;
  readonly #order: EventOrder;
  readonly #publishes: PublishQueue<ClientSocket>;

  constructor({ name, joinOptions, options, backoff, connection, onLeave }: RoomConnectionOptions) {
    super();
    this.name = name;
    this.#caps = joinOptions.caps;
    this.#options = options;
    this.#backoff = backoff;
    this.#random = options.random ?? Math.random;
    this.#ackTimeoutMs = options.ackTimeoutMs ?? 10_000;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.#connection = connection;
    this.#onLeave = onLeave;
    this.#state = {
      status: 'connecting',
      url: connection.url,
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
    this.#publishes = new PublishQueue<ClientSocket>({
      current: () => (this.#state.status === 'connected' ? this.#socket : undefined),
      send: (socket, payload) =>
        socket.timeout(this.#ackTimeoutMs).emitWithAck('publish', { ...payload, room: this.name }),
      max: options.maxPendingPublishes ?? 100,
      timeoutMs: options.publishTimeoutMs ?? 60_000,
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
  get peerCount(): number {
    return this.#peerCount;
  }
  get socket(): ClientSocket | undefined {
    return this.#socket;
  }

  // ---- membership on the shared connection -----------------------------------

  expect(socket: ClientSocket): void {
    if (this.#closed) return;
    this.#joining = socket;
    this.#early = [];
  }

  join(socket: ClientSocket): void {
    if (this.#closed || this.#joining === socket || this.#socket === socket) return;
    clearTimeout(this.#joinTimer);
    this.#joinTimer = undefined;
    this.expect(socket);
    if (!this.#socket?.connected) this.#setState({ status: this.#waitingStatus(), url: this.#connection.url });
    void this.#joinOn(socket);
  }

  async #joinOn(socket: ClientSocket): Promise<void> {
    const stale = () => this.#joining !== socket || this.#closed;
    try {
      const minted = await this.mint(this.#connection.url);
      if (stale()) return;
      const recover = this.#order.position;
      const raw: unknown = await socket
        .timeout(this.#ackTimeoutMs)
        .emitWithAck('room:join', recover ? { token: minted.token, recover } : { token: minted.token });
      // Left while the gateway was admitting it: the connection leaves the room there again.
      if (this.#closed && (raw as { ok?: unknown } | null)?.ok === true) this.#connection.attached(socket, this);
      if (stale()) return;
      const session: Record<string, unknown> = { ...unwrapAck(raw, 'room:join') };
      delete session.ok;
      if (!isSession(session)) throw new SwitchboardError('internal', 'room:join ack is not a session');
      this.attach(socket, session as unknown as SessionPayload);
    } catch (error) {
      if (stale()) return;
      const failure =
        error instanceof SwitchboardError
          ? error
          : new SwitchboardError('timeout', `room:join timed out after ${this.#ackTimeoutMs} ms`, { cause: error });
      if (isFatal(failure.code)) {
        this.fail(failure);
        return;
      }
      this.#joining = undefined;
      this.#early = [];
      const delay = Math.max(
        backoffDelay(this.#joinFailures++, this.#backoff, this.#random),
        failure.retryAfterMs ?? 0,
      );
      this.#setState({
        status: this.#waitingStatus(),
        error: { code: failure.code, message: failure.message },
        attempt: this.#joinFailures,
        retryAt: Date.now() + delay,
      });
      this.#joinTimer = setTimeout(() => {
        this.#joinTimer = undefined;
        const live = this.#connection.joinable;
        if (live) this.join(live);
      }, delay);
    }
  }

  attach(socket: ClientSocket, session: SessionPayload): void {
    if (this.#closed) {
      this.#connection.attached(socket, this);
      return;
    }
    const held = this.#joining === socket ? this.#early : [];
    this.#joining = undefined;
    this.#early = [];
    this.#socket = socket;
    this.#session = session;
    this.#joinFailures = 0;
    this.#refreshFailures = 0;
    this.#hasConnected = true;
    clearTimeout(this.#joinTimer);
    this.#joinTimer = undefined;
    this.#setState({
      status: 'connected',
      url: this.#connection.url,
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
    // Gateways from before large rooms send every peer and no count.
    this.#setPeerCount(typeof session.peerCount === 'number' ? session.peerCount : session.peers.length + 1);
    for (const deliver of held) if (this.#socket === socket && !this.#closed) deliver();
    if (this.#socket === socket && !this.#closed) this.#publishes.flush(socket);
    this.#connection.attached(socket, this);
  }

  detach(gone: ClientSocket | undefined, patch: Partial<ConnectionState>): void {
    if (this.#closed) return;
    if (gone && this.#joining === gone) {
      this.#joining = undefined;
      this.#early = [];
    }
    if (gone && this.#socket === gone) this.#endSession();
    // Still in session on a draining replica while its successor connects.
    if (this.#socket?.connected) return;
    this.#setState({ ...patch, status: this.#waitingStatus(), replica: undefined, peerId: undefined });
  }

  /** This room's session is over on its socket; its position stays for the next join. */
  #endSession(): void {
    this.#socket = undefined;
    this.#order.pause();
    clearTimeout(this.#refreshTimer);
    this.#refreshTimer = undefined;
  }

  #waitingStatus(): 'connecting' | 'reconnecting' {
    return this.#hasConnected ? 'reconnecting' : 'connecting';
  }

  shutdownNotice(notice: ServerShutdownPayload): void {
    if (!this.#closed) this.emit('server:shutdown', notice);
  }

  frame(socket: ClientSocket, kind: RoomFrame, payload: unknown): void {
    if (this.#closed) return;
    if (kind === 'session:ended' && (payload as SessionEndedPayload).reason === 'kicked') {
      // Final wherever it comes from: the app removed this user from the room.
      this.emit('session:ended', payload as SessionEndedPayload);
      this.fail(new SwitchboardError('kicked'));
      return;
    }
    const deliver = () => {
      this.#onFrame(kind, payload);
    };
    if (socket === this.#socket) deliver();
    // The gateway sends a room's session before its traffic, but the SDK does not depend on
    // it: whatever overtakes the session is held and replayed after it, so apps always see
    // the session (and their own peer id) first and no offer is lost.
    else if (socket === this.#joining) this.#early.push(deliver);
  }

  #onFrame(kind: RoomFrame, payload: unknown): void {
    switch (kind) {
      case 'peer:joined':
        this.emit('peer:joined', payload as PeerJoinedPayload);
        this.#setPeerCount(this.#peerCount + 1);
        return;
      case 'peers:joined': {
        const peers = payload as PeerJoinedPayload[];
        for (const peer of peers) this.emit('peer:joined', peer);
        this.#setPeerCount(this.#peerCount + peers.length);
        return;
      }
      case 'peer:left':
        this.emit('peer:left', payload as PeerLeftPayload);
        this.#setPeerCount(Math.max(1, this.#peerCount - 1));
        return;
      case 'presence:count':
        this.#setPeerCount((payload as PresenceCountPayload).count);
        return;
      case 'signal':
        this.emit('signal', payload as SignalMessage);
        return;
      case 'room:event':
      case 'room:events':
        for (const event of unpackRoomEvents(payload)) this.#order.receive(event);
        return;
      case 'room:epoch':
        this.#order.moved(payload as RoomEpochPayload);
        return;
      case 'session:ended':
        this.#onSessionEnded(payload as SessionEndedPayload);
        return;
    }
  }

  #onSessionEnded(payload: SessionEndedPayload): void {
    this.emit('session:ended', payload);
    if (payload.reason !== 'session_expired') return;
    // The gateway let this room go (the connection may stay in others): join it again.
    // If the whole connection goes instead, its reconnect re-joins every room.
    const socket = this.#socket;
    this.#endSession();
    this.#setState({ status: 'reconnecting', replica: undefined, peerId: undefined });
    setTimeout(() => {
      if (socket?.connected && !this.#closed && !this.#socket) this.join(socket);
    }, 0);
  }

  #setPeerCount(count: number): void {
    if (!Number.isFinite(count) || count === this.#peerCount) return;
    this.#peerCount = count;
    this.emit('peerCount', count);
  }

  /** Ends this room for good with `error`; the client's other rooms are not affected. */
  fail(error: SwitchboardError): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#clearTimers();
    this.#socket = undefined;
    this.#joining = undefined;
    this.#early = [];
    this.#order.pause();
    this.#setState({
      status: 'failed',
      replica: undefined,
      error: { code: error.code, message: error.message },
      retryAt: undefined,
    });
    this.#rejectReady(error);
    this.#publishes.failAll(error);
    this.#connection.remove(this);
    this.#onLeave();
  }

  #clearTimers(): void {
    clearTimeout(this.#refreshTimer);
    clearTimeout(this.#joinTimer);
    this.#refreshTimer = undefined;
    this.#joinTimer = undefined;
  }

  #setState(patch: Partial<ConnectionState>): void {
    this.#state = { ...this.#state, ...patch };
    this.emit('state', this.#state);
  }

  // ---- tokens and session refresh -----------------------------------------

  mint(url: string): Promise<MintTokenResponse> {
    return this.#mint(url, false);
  }

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
    const minted = await this.#mint(this.#connection.url, true);
    const ack = await this.#ack('session:refresh', (s) =>
      s.timeout(this.#ackTimeoutMs).emitWithAck('session:refresh', { room: this.name, token: minted.token }),
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
    if (this.#closed) throw new SwitchboardError('closed', `${operation}: ${describeError('closed')}`);
    // Socket.IO would buffer the emit until a reconnect, but by then the peer ids it names are stale.
    const socket = this.#socket;
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
    const payload = { room: this.name, to, kind, data };
    this.#checkSize('signal', payload);
    await this.#ack('signal', (s) => s.timeout(this.#ackTimeoutMs).emitWithAck('signal', payload));
  }

  async publish(type: string, data?: JsonValue): Promise<PublishEventResponse> {
    if (this.#closed) throw new SwitchboardError('closed', `publish: ${describeError('closed')}`);
    const payload = data === undefined ? { type } : { type, data };
    // Counted with what the SDK adds (the room and a 36-character key), as the gateway sees it.
    this.#checkSize('publish', { ...payload, room: this.name, idempotencyKey: '0'.repeat(36) });
    return this.#publishes.add(payload);
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
    const ack = await this.#ack('history', (s) =>
      s.timeout(this.#ackTimeoutMs).emitWithAck('history', { ...request, room: this.name }),
    );
    if (typeof ack.epoch !== 'string' || typeof ack.top !== 'number' || !Array.isArray(ack.events)) {
      throw new SwitchboardError('internal', 'history ack has no epoch, top or events');
    }
    const events = unpackRoomEvents(ack.events);
    return ack.more === true
      ? { epoch: ack.epoch, top: ack.top, events, more: true }
      : { epoch: ack.epoch, top: ack.top, events };
  }

  async peersPage(options: PeerPageOptions = {}): Promise<PeersPage> {
    const request = {
      room: this.name,
      ...(options.cursor !== undefined ? { cursor: options.cursor } : {}),
      ...(options.limit !== undefined ? { limit: options.limit } : {}),
    };
    const ack = await this.#ack('peers', (s) => s.timeout(this.#ackTimeoutMs).emitWithAck('peers', request));
    if (!Array.isArray(ack.peers)) throw new SwitchboardError('internal', 'peers ack has no peers');
    const peers = ack.peers as PeerInfo[];
    // Gateways from before large rooms answer every peer, without a count or a cursor.
    const peerCount = typeof ack.peerCount === 'number' ? ack.peerCount : peers.length + 1;
    this.#setPeerCount(peerCount);
    return typeof ack.cursor === 'string' ? { peers, peerCount, cursor: ack.cursor } : { peers, peerCount };
  }

  async *peerPages(options: Omit<PeerPageOptions, 'cursor'> = {}): AsyncGenerator<PeersPage, void, undefined> {
    const seen = new Set<string>();
    let cursor: string | undefined;
    do {
      const page = await this.peersPage(cursor === undefined ? options : { ...options, cursor });
      yield page;
      cursor = page.cursor;
      // A gateway answering the same cursor twice would page forever.
      if (cursor !== undefined && seen.has(cursor)) return;
      if (cursor !== undefined) seen.add(cursor);
    } while (cursor !== undefined);
  }

  async peers(): Promise<PeerInfo[]> {
    const peers: PeerInfo[] = [];
    for await (const page of this.peerPages()) peers.push(...page.peers);
    return peers;
  }

  leave(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#clearTimers();
    // While the room's socket is still known, the connection tells the gateway it left.
    this.#connection.remove(this);
    this.#socket = undefined;
    this.#joining = undefined;
    this.#early = [];
    this.#order.pause();
    this.#setState({ status: 'disconnected', replica: undefined, peerId: undefined, retryAt: undefined });
    const closed = new SwitchboardError('closed');
    this.#rejectReady(closed);
    this.#publishes.failAll(closed);
    this.#onLeave();
  }
}
