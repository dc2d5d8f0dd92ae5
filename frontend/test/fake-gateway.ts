import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server, type Socket } from 'socket.io';
import type {
  ClientToServerEvents,
  ErrorCode,
  HandshakeErrorCode,
  MintTokenResponse,
  PeerInfo,
  RecoveryOutcome,
  RoomEvent,
  RoomPosition,
  ServerToClientEvents,
  SessionPayload,
} from '@switchboard/contract';

type GatewayServer = Server<ClientToServerEvents, ServerToClientEvents>;
export type GatewaySocket = Socket<ClientToServerEvents, ServerToClientEvents>;

export interface FakeGatewayOptions {
  replica: string;
  /** Handshake refusals, one per connection attempt, answered before anyone is admitted. */
  refusals?: HandshakeErrorCode[];
  /** Mint failures, one per mint, before mints succeed. */
  mintFailures?: Array<{ status: number; code: ErrorCode; retryAfter?: string }>;
  /** Access tokens the gateway accepts (default: any). */
  acceptAccessToken?: (token: string) => boolean;
  /** Session lifetime given at join, and after each refresh. */
  sessionMs?: number;
  refreshedSessionMs?: number;
  /** Runs on each admitted socket before `session` is sent, as room traffic can on the real gateway. */
  beforeSession?: (socket: GatewaySocket) => void;
  /** The room's history, served by `history` and used to answer `auth.recover` (epoch `e1`). */
  log?: RoomEvent[];
  /** Most events one `history` answer carries before it says `more`. */
  historyPageMax?: number;
  /** Every room's peers, as `peers` pages through them. */
  roomPeers?: PeerInfo[];
  /**
   * Publishes whose ack is lost: the event is published, then the socket is cut before the
   * ack goes out, as when a replica dies between the two.
   */
  loseAcks?: number;
  /** How long `room:join` takes to answer. */
  joinDelayMs?: number;
}

export interface FakeGateway {
  readonly url: string;
  readonly replica: string;
  readonly mints: Array<{ accessToken: string; room: unknown; token: string }>;
  /** Tokens presented at handshakes, in order. */
  readonly handshakes: unknown[];
  /** Tokens presented to `session:refresh`. */
  readonly refreshes: string[];
  /** The room each `session:refresh` named (undefined when it named none). */
  readonly refreshedRooms: unknown[];
  /** `auth.recover` of each handshake (undefined when none was sent). */
  readonly recovers: unknown[];
  /** The history of room `standup`; tests append to it to play events the client has not seen. */
  readonly log: RoomEvent[];
  /** A room's history (created empty on first use). */
  logOf(room: string): RoomEvent[];
  /** `room:join` requests, in order: the room of each token, and its `recover`. */
  readonly joins: Array<{ room: string; recover: unknown }>;
  /** `room:leave` requests, in order. */
  readonly leaves: string[];
  /** Every publish as received, with its idempotency key. */
  readonly publishes: Array<{ room: unknown; type: string; idempotencyKey: unknown }>;
  sockets(): GatewaySocket[];
  /** The next mint fails so. */
  failNextMint(failure: { status: number; code: ErrorCode }): void;
  /** Connections ever admitted. */
  readonly connections: number;
  close(): Promise<void>;
}

/**
 * A scripted stand-in for the gateway on port 0: the real Socket.IO server and the
 * contract's HTTP shapes, with refusals and failures on demand, so the SDK's
 * connection logic is tested against the real client library without Redis.
 */
export async function startFakeGateway(options: FakeGatewayOptions): Promise<FakeGateway> {
  const refusals = [...(options.refusals ?? [])];
  const mintFailures = [...(options.mintFailures ?? [])];
  const issued = new Set<string>();
  const used = new Set<string>();
  const mints: FakeGateway['mints'] = [];
  const handshakes: unknown[] = [];
  const refreshes: string[] = [];
  const refreshedRooms: unknown[] = [];
  const recovers: unknown[] = [];
  const logs = new Map<string, RoomEvent[]>([['standup', options.log ?? []]]);
  const logOf = (room: string): RoomEvent[] => {
    let found = logs.get(room);
    if (!found) logs.set(room, (found = []));
    return found;
  };
  const log = logOf('standup');
  const top = (room: string) => logOf(room).at(-1)?.seq ?? 0;
  /** The room each issued token is for. */
  const tokenRooms = new Map<string, string>();
  const joins: FakeGateway['joins'] = [];
  const leaves: string[] = [];
  const publishes: FakeGateway['publishes'] = [];
  /** Answers by room and idempotency key, as the gateway's APPEND script keeps them. */
  const answered = new Map<string, { id: string; seq: number }>();
  let loseAcks = options.loseAcks ?? 0;
  let connections = 0;
  let counter = 0;

  const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.method !== 'POST' || req.url !== '/api/rtc/tokens') {
      json(res, 404, { error: { code: 'not_found', message: 'no such route' } });
      return;
    }
    let raw = '';
    for await (const chunk of req) raw += String(chunk);
    const accessToken = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '';
    if (!(options.acceptAccessToken ?? (() => true))(accessToken)) {
      json(res, 401, { error: { code: 'unauthorized', message: 'access token expired' } });
      return;
    }
    const failure = mintFailures.shift();
    if (failure) {
      json(
        res,
        failure.status,
        { error: { code: failure.code, message: `scripted ${failure.code}` } },
        failure.retryAfter ? { 'retry-after': failure.retryAfter } : {},
      );
      return;
    }
    const body = JSON.parse(raw) as { room?: unknown };
    const token = `${options.replica}-token-${++counter}`;
    issued.add(token);
    tokenRooms.set(token, String(body.room));
    mints.push({ accessToken, room: body.room, token });
    const response: MintTokenResponse = {
      token,
      jti: `jti-${counter}`,
      room: String(body.room),
      expiresAt: Date.now() + 60_000,
      ttlSeconds: 60,
      iceServers: [{ urls: [`stun:${options.replica}.test:3478`] }],
    };
    json(res, 201, response);
  };

  const httpServer = createServer((req, res) => {
    handle(req, res).catch(() => {
      json(res, 500, { error: { code: 'internal', message: 'fake gateway failed' } });
    });
  });
  const io: GatewayServer = new Server(httpServer, { serveClient: false });

  const redeem = (token: unknown): HandshakeErrorCode | undefined => {
    if (typeof token !== 'string' || token === '') return 'token_missing';
    if (!issued.has(token)) return 'token_invalid';
    if (used.has(token)) return 'token_used';
    used.add(token);
    return undefined;
  };

  io.use((socket, next) => {
    const { token, recover } = socket.handshake.auth as { token?: unknown; recover?: unknown };
    handshakes.push(token);
    recovers.push(recover);
    const refusal = refusals.shift() ?? redeem(token);
    next(refusal ? new Error(refusal) : undefined);
  });

  /** What `session` (or `room:join`'s answer) carries for `room`, and the events to replay after it. */
  const enter = (socket: GatewaySocket, room: string, recover: RoomPosition | undefined) => {
    const missed = recover ? logOf(room).filter((event) => event.seq > recover.seq) : [];
    const recovery: RecoveryOutcome | undefined = !recover
      ? undefined
      : recover.epoch === 'e1'
        ? { recovered: true, replayed: missed.length }
        : { recovered: false, replayed: 0, reason: 'epoch_changed' };
    void socket.join(room);
    const session: SessionPayload = {
      peerId: socket.id,
      userId: 'user-1',
      name: 'User One',
      room,
      replica: options.replica,
      peers: [],
      peerCount: 1 + (options.roomPeers?.length ?? 0),
      expiresAt: Date.now() + (options.sessionMs ?? 3_600_000),
      caps: ['publish'],
      position: { epoch: 'e1', seq: top(room) },
      ...(recovery ? { recovery } : {}),
    };
    const replay = recovery?.recovered && missed.length > 0 ? missed.map((event) => ({ ...event, room })) : [];
    return { session, replay };
  };
  /** The room a client event is about: `room`, or the socket's only room. */
  const roomOf = (socket: GatewaySocket, payload: { room?: unknown }): string =>
    typeof payload.room === 'string' ? payload.room : ([...socket.rooms].find((room) => room !== socket.id) ?? '');

  io.on('connection', (socket) => {
    connections++;
    options.beforeSession?.(socket);
    const token = (socket.handshake.auth as { token?: string }).token ?? '';
    const recover = (socket.handshake.auth as { recover?: RoomPosition }).recover;
    const first = enter(socket, tokenRooms.get(token) ?? 'standup', recover);
    socket.emit('session', first.session);
    if (first.replay.length > 0) socket.emit('room:events', first.replay);
    socket.on('room:join', async ({ token: joinToken, recover: joinRecover }, ack) => {
      await new Promise((resolve) => setTimeout(resolve, options.joinDelayMs ?? 0));
      const refusal = redeem(joinToken);
      if (refusal) {
        ack({ ok: false, error: { code: refusal, message: `scripted ${refusal}` } });
        return;
      }
      const room = tokenRooms.get(joinToken) ?? '';
      joins.push({ room, recover: joinRecover });
      const { session, replay } = enter(socket, room, joinRecover);
      ack({ ok: true, ...session });
      if (replay.length > 0) socket.emit('room:events', replay);
    });
    socket.on('room:leave', ({ room }, ack) => {
      leaves.push(room);
      void socket.leave(room);
      ack({ ok: true });
    });
    socket.on('publish', (payload, ack) => {
      const room = roomOf(socket, payload);
      publishes.push({ room: payload.room, type: payload.type, idempotencyKey: payload.idempotencyKey });
      const key = payload.idempotencyKey === undefined ? undefined : `${room}\n${payload.idempotencyKey}`;
      const first = key === undefined ? undefined : answered.get(key);
      if (first) {
        ack({ ok: true, ...first });
        return;
      }
      const roomLog = logOf(room);
      const event: RoomEvent = {
        id: `${options.replica}-event-${top(room) + 1}`,
        type: payload.type,
        data: payload.data ?? null,
        from: socket.id,
        ts: Date.now(),
        seq: top(room) + 1,
      };
      roomLog.push(event);
      if (key !== undefined) answered.set(key, { id: event.id, seq: event.seq });
      io.to(room).emit('room:event', { ...event, room });
      if (loseAcks > 0) {
        loseAcks--;
        socket.disconnect(true);
        return;
      }
      ack({ ok: true, id: event.id, seq: event.seq });
    });
    socket.on('history', (payload, ack) => {
      const { after, limit = 100 } = payload;
      const roomLog = logOf(roomOf(socket, payload));
      const last = roomLog.at(-1)?.seq ?? 0;
      const events = after === undefined ? roomLog.slice(-limit) : roomLog.filter((e) => e.seq > after).slice(0, limit);
      // As the gateway cuts a reply at HISTORY_REPLY_MAX_BYTES.
      const cut = options.historyPageMax !== undefined && events.length > options.historyPageMax;
      const page = cut ? events.slice(0, options.historyPageMax) : events;
      ack(
        cut
          ? { ok: true, epoch: 'e1', top: last, events: page, more: true }
          : { ok: true, epoch: 'e1', top: last, events },
      );
    });
    socket.on('signal', ({ to }, ack) => {
      ack(
        to === 'nobody'
          ? { ok: false, error: { code: 'not_in_room', message: 'That peer is not in this room.' } }
          : { ok: true },
      );
    });
    socket.on('session:refresh', ({ token: refreshToken, room }, ack) => {
      refreshes.push(refreshToken);
      refreshedRooms.push(room);
      if (redeem(refreshToken))
        ack({ ok: false, error: { code: 'token_used', message: 'The RTC token was already used.' } });
      else ack({ ok: true, expiresAt: Date.now() + (options.refreshedSessionMs ?? 3_600_000) });
    });
    socket.on('peers', (payload, ack) => {
      const all = options.roomPeers ?? [];
      const start = Number(payload?.cursor ?? 0);
      const end = start + (payload?.limit ?? 100);
      const page = all.slice(start, end);
      const peerCount = all.length + 1;
      ack(
        end < all.length
          ? { ok: true, peers: page, peerCount, cursor: String(end) }
          : { ok: true, peers: page, peerCount },
      );
    });
  });

  await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  const { port } = httpServer.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}`,
    replica: options.replica,
    mints,
    handshakes,
    refreshes,
    refreshedRooms,
    recovers,
    log,
    logOf,
    joins,
    leaves,
    publishes,
    sockets: () => [...io.of('/').sockets.values()],
    failNextMint(failure) {
      mintFailures.push(failure);
    },
    get connections() {
      return connections;
    },
    close() {
      closing ??= (async () => {
        httpServer.closeAllConnections();
        await io.close();
      })();
      return closing;
    },
  };
}
