import { io } from 'socket.io-client';
import type { MintTokenResponse, RoomPosition, ServerShutdownPayload, SessionPayload } from '@switchboard/contract';
import type { ResolvedBackoff } from './backoff.js';
import type { ClientSocket, ConnectionState, SocketFactory, SwitchboardOptions } from './client.js';
import {
  SwitchboardError,
  connectErrorCode,
  describeError,
  toSwitchboardError,
  type ClientErrorCode,
} from './errors.js';
import { isFatal, planRetry, type ConnectionFailure } from './retry-policy.js';

/** Server frames about one room; each names it in `room` (older gateways, in one room only, did not). */
export const ROOM_FRAMES = [
  'peer:joined',
  'peers:joined',
  'peer:left',
  'presence:count',
  'signal',
  'room:event',
  'room:events',
  'room:epoch',
  'session:ended',
] as const;
export type RoomFrame = (typeof ROOM_FRAMES)[number];

/** What a shared connection needs of each room it carries (RoomConnection). */
export interface Membership {
  readonly name: string;
  /** Where the room's events stopped: sent as `recover` with its next join. */
  readonly position: RoomPosition | undefined;
  /** A fresh RTC token for this room at `url` (tokens are single use). */
  mint(url: string): Promise<MintTokenResponse>;
  /** The room's session on `socket` started (from the handshake's `session` or `room:join`). */
  attach(socket: ClientSocket, session: SessionPayload): void;
  /** Joins the room on `socket` with `room:join`; the room attaches itself when answered. */
  join(socket: ClientSocket): void;
  /** The socket's join (handshake) for this room is on its way: hold its frames until the session. */
  expect(socket: ClientSocket): void;
  /** `socket` is gone: the room waits for the next one; `patch` is the connection's state. */
  detach(socket: ClientSocket | undefined, patch: Partial<ConnectionState>): void;
  /** A frame about this room arrived on `socket`. */
  frame(socket: ClientSocket, kind: RoomFrame, payload: unknown): void;
  /** The replica asked its clients to move. */
  shutdownNotice(notice: ServerShutdownPayload): void;
  /** Ends the room for good with `error` (nothing retried). */
  fail(error: SwitchboardError): void;
  /** The socket the room's session is on, if any. */
  readonly socket: ClientSocket | undefined;
}

export interface SharedConnectionOptions {
  urls: readonly string[];
  options: SwitchboardOptions;
  backoff: ResolvedBackoff;
  /** The connection has no room left and closed. */
  onEmpty: () => void;
}

/** The room a frame is about: its `room` field, or the first entry's for a batch. */
function frameRoom(payload: unknown): unknown {
  const first: unknown = Array.isArray(payload) ? payload[0] : payload;
  return typeof first === 'object' && first !== null ? (first as { room?: unknown }).room : undefined;
}

/**
 * One Socket.IO connection carrying every room of a client: the first room rides in the
 * handshake (so a one-room client looks exactly as it always did), the others join with
 * `room:join`. It reconnects on its own (rotating gateway URLs, honouring shutdown notices
 * make-before-break), and every reconnect re-joins each room with its own token and
 * `recover`, so one reconnect recovers every room.
 */
export class SharedConnection {
  readonly #members = new Map<string, Membership>();
  readonly #urls: readonly string[];
  readonly #options: SwitchboardOptions;
  readonly #backoff: ResolvedBackoff;
  readonly #random: () => number;
  readonly #connect: SocketFactory;
  readonly #connectTimeoutMs: number;
  readonly #onEmpty: () => void;

  #socket: ClientSocket | undefined;
  /** The socket of a draining replica, still delivering while its successor connects. */
  #outgoing: ClientSocket | undefined;
  /** The room whose token #socket's handshake carried: `session` is its. */
  #lead: Membership | undefined;
  /** `session` arrived on #socket: rooms may join it. */
  #up = false;
  #urlIndex = 0;
  #attempt = 0;
  #closed = false;
  #shutdownNotice: ServerShutdownPayload | undefined;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #shutdownTimer: ReturnType<typeof setTimeout> | undefined;

  constructor({ urls, options, backoff, onEmpty }: SharedConnectionOptions) {
    this.#urls = urls;
    this.#options = options;
    this.#backoff = backoff;
    this.#random = options.random ?? Math.random;
    this.#connect = options.connect ?? ((url, socketOptions) => io(url, socketOptions));
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.#onEmpty = onEmpty;
  }

  get url(): string {
    return this.#urls[this.#urlIndex] ?? this.#urls[0] ?? '';
  }

  get size(): number {
    return this.#members.size;
  }

  has(room: string): boolean {
    return this.#members.has(room);
  }

  /** The live socket rooms join, once its handshake's session started. */
  get joinable(): ClientSocket | undefined {
    return this.#up && this.#socket?.connected ? this.#socket : undefined;
  }

  /** Adds a room: it joins the live socket, or the next one. */
  add(member: Membership): void {
    if (this.#closed) throw new SwitchboardError('closed');
    this.#members.set(member.name, member);
    const socket = this.joinable;
    if (socket) member.join(socket);
    else if (!this.#socket && !this.#retryTimer) this.#open();
  }

  /** Removes a room that left or failed; the last one out closes the connection. */
  remove(member: Membership): void {
    if (this.#members.get(member.name) !== member) return;
    this.#members.delete(member.name);
    if (this.#members.size === 0) {
      this.close();
      return;
    }
    const socket = member.socket;
    if (socket?.connected) this.#leave(socket, member.name);
  }

  /** Disconnects for good; idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#shutdownTimer);
    this.#retryTimer = undefined;
    this.#shutdownTimer = undefined;
    this.#dropOutgoing();
    const socket = this.#socket;
    this.#socket = undefined;
    if (socket) {
      socket.removeAllListeners();
      socket.disconnect();
    }
    this.#onEmpty();
  }

  /** A room's join answered on a socket it no longer wants: leave it there. */
  #leave(socket: ClientSocket, room: string): void {
    socket
      .timeout(this.#options.ackTimeoutMs ?? 10_000)
      .emitWithAck('room:leave', { room })
      .catch(() => undefined);
  }

  /** A room attached to `socket`; once every room has moved off a draining replica, let it go. */
  attached(socket: ClientSocket, member: Membership): void {
    if (this.#members.get(member.name) !== member && socket.connected) this.#leave(socket, member.name);
    if (this.#outgoing && [...this.#members.values()].every((m) => m.socket !== this.#outgoing)) this.#dropOutgoing();
  }

  // ---- connection lifecycle -------------------------------------------------

  /** Opens the next connection; `handover`: the old one still delivers, so rooms stay `connected`. */
  #open(handover = false): void {
    this.#retryTimer = undefined;
    if (this.#closed) return;
    const url = this.url;
    this.#up = false;
    if (!handover) this.#broadcastState({ url, retryAt: undefined });
    const socket = this.#connect(url, {
      forceNew: true,
      // Reconnecting is ours: it has to rotate URLs, honour shutdown notices and re-join every room.
      reconnection: false,
      autoConnect: false,
      timeout: this.#connectTimeoutMs,
      transports: this.#options.transports ?? defaultTransports(url),
      tryAllTransports: true,
      // A function, so every connection redeems a token minted just for it (tokens are single
      // use) and asks to recover from the position the room has reached by then.
      auth: (send) => {
        void this.#handshake(socket, url).then(send, (error: unknown) => {
          const failure = toSwitchboardError(error);
          this.#fail(socket, {
            kind: 'error',
            code: failure.code,
            message: failure.message,
            retryAfterMs: failure.retryAfterMs,
          });
        });
      },
    });
    this.#socket = socket;
    this.#wire(socket);
    socket.connect();
  }

  /**
   * The handshake's auth: the token of the first room that can mint one. A room the app may
   * not enter fails alone, and the next room leads instead.
   */
  async #handshake(socket: ClientSocket, url: string): Promise<{ token: string; recover?: RoomPosition }> {
    for (;;) {
      const lead = this.#members.values().next().value;
      if (!lead) throw new SwitchboardError('closed');
      try {
        const minted = await lead.mint(url);
        if (socket !== this.#socket) throw new SwitchboardError('closed');
        if (this.#members.get(lead.name) !== lead) continue;
        lead.expect(socket);
        this.#lead = lead;
        const recover = lead.position;
        return recover ? { token: minted.token, recover } : { token: minted.token };
      } catch (error) {
        const failure = toSwitchboardError(error);
        if (!isFatal(failure.code) || failure.code === 'closed' || this.#members.get(lead.name) !== lead) throw failure;
        lead.fail(failure);
        this.remove(lead);
        if (this.#closed) throw new SwitchboardError('closed');
      }
    }
  }

  #memberFor(payload: unknown): Membership | undefined {
    const room = frameRoom(payload);
    if (typeof room === 'string') return this.#members.get(room);
    // A gateway from before many rooms per connection: it serves exactly one.
    return this.#members.size === 1 ? this.#members.values().next().value : undefined;
  }

  #wire(socket: ClientSocket): void {
    const live = () => (socket === this.#socket || socket === this.#outgoing) && !this.#closed;
    socket.on('connect_error', (error: Error & { data?: unknown }) => {
      const code = connectErrorCode(error);
      this.#fail(socket, { kind: 'error', code, message: describeError(code) });
    });
    socket.on('disconnect', (reason) => {
      if (reason === 'io client disconnect') return;
      if (socket === this.#outgoing) {
        // The draining replica let go before every room moved; they recover on the successor.
        this.#dropOutgoing();
        return;
      }
      const notice = this.#shutdownNotice;
      this.#fail(
        socket,
        notice ? { kind: 'shutdown', reconnectAfterMs: notice.reconnectAfterMs } : { kind: 'disconnect', reason },
      );
    });
    socket.on('session', (session) => {
      if (socket !== this.#socket || this.#closed) return;
      this.#up = true;
      this.#attempt = 0;
      const lead = this.#lead;
      this.#lead = undefined;
      if (lead && this.#members.get(lead.name) === lead) lead.attach(socket, session);
      else this.#leave(socket, session.room);
      for (const member of this.#members.values()) if (member !== lead && member.socket !== socket) member.join(socket);
    });
    for (const kind of ROOM_FRAMES) {
      socket.on(kind, (payload: unknown) => {
        if (!live()) return;
        this.#memberFor(payload)?.frame(socket, kind, payload);
      });
    }
    socket.on('server:shutdown', (notice) => {
      if (socket !== this.#socket || this.#closed) return;
      this.#shutdownNotice = notice;
      for (const member of this.#members.values()) member.shutdownNotice(notice);
      // Make before break: after the delay the replica asked for (it spreads its clients
      // out), connect elsewhere while this socket still delivers, and let it go once every
      // room's session has started there. Positions make the overlap harmless.
      clearTimeout(this.#shutdownTimer);
      this.#shutdownTimer = setTimeout(() => {
        this.#handOver(socket);
      }, notice.reconnectAfterMs);
    });
  }

  #handOver(socket: ClientSocket): void {
    this.#shutdownTimer = undefined;
    if (socket !== this.#socket || this.#closed) return;
    this.#dropOutgoing();
    this.#outgoing = socket;
    this.#socket = undefined;
    this.#shutdownNotice = undefined;
    this.#urlIndex = (this.#urlIndex + 1) % this.#urls.length;
    this.#open(true);
  }

  #dropOutgoing(): void {
    const outgoing = this.#outgoing;
    this.#outgoing = undefined;
    if (!outgoing) return;
    outgoing.removeAllListeners();
    outgoing.disconnect();
    for (const member of this.#members.values()) {
      if (member.socket === outgoing) member.detach(outgoing, { url: this.url });
    }
  }

  /** Ends the current attempt or connection and plans the next one. Stale sockets are ignored. */
  #fail(socket: ClientSocket, failure: ConnectionFailure & { message?: string }): void {
    if (socket !== this.#socket || this.#closed) return;
    this.#socket = undefined;
    this.#up = false;
    this.#shutdownNotice = undefined;
    clearTimeout(this.#shutdownTimer);
    this.#shutdownTimer = undefined;
    socket.removeAllListeners();
    socket.disconnect();
    const plan = planRetry(failure, this.#attempt, this.#backoff, this.#random);
    const message = (code: ClientErrorCode) => failure.message ?? describeError(code);
    if (plan.action === 'fail') {
      const error = new SwitchboardError(plan.code, message(plan.code));
      for (const member of [...this.#members.values()]) member.fail(error);
      this.close();
      return;
    }
    if (plan.rotate) this.#urlIndex = (this.#urlIndex + 1) % this.#urls.length;
    this.#attempt += 1;
    const patch: Partial<ConnectionState> = {
      url: this.url,
      attempt: this.#attempt,
      retryAt: Date.now() + plan.delayMs,
      ...(plan.code ? { error: { code: plan.code, message: message(plan.code) } } : {}),
    };
    for (const member of this.#members.values()) member.detach(socket, patch);
    this.#retryTimer = setTimeout(() => {
      this.#open();
    }, plan.delayMs);
  }

  /** Tells every room not in a session where the connection stands. */
  #broadcastState(patch: Partial<ConnectionState>): void {
    for (const member of this.#members.values()) {
      if (!member.socket?.connected) member.detach(undefined, patch);
    }
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
