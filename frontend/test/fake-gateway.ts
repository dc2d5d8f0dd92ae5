import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server, type Socket } from 'socket.io';
import type {
  ClientToServerEvents,
  ErrorCode,
  HandshakeErrorCode,
  MintTokenResponse,
  RecoveryOutcome,
  RoomEvent,
  RoomPosition,
  ServerToClientEvents,
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
}

export interface FakeGateway {
  readonly url: string;
  readonly replica: string;
  readonly mints: Array<{ accessToken: string; room: unknown; token: string }>;
  /** Tokens presented at handshakes, in order. */
  readonly handshakes: unknown[];
  /** Tokens presented to `session:refresh`. */
  readonly refreshes: string[];
  /** `auth.recover` of each handshake (undefined when none was sent). */
  readonly recovers: unknown[];
  /** The room's history; tests append to it to play events the client has not seen. */
  readonly log: RoomEvent[];
  sockets(): GatewaySocket[];
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
  const recovers: unknown[] = [];
  const log = options.log ?? [];
  const top = () => log[log.length - 1]?.seq ?? 0;
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

  io.on('connection', (socket) => {
    options.beforeSession?.(socket);
    const recover = (socket.handshake.auth as { recover?: RoomPosition }).recover;
    const missed = recover ? log.filter((event) => event.seq > recover.seq) : [];
    const recovery: RecoveryOutcome | undefined = !recover
      ? undefined
      : recover.epoch === 'e1'
        ? { recovered: true, replayed: missed.length }
        : { recovered: false, replayed: 0, reason: 'epoch_changed' };
    socket.emit('session', {
      peerId: socket.id,
      userId: 'user-1',
      name: 'User One',
      room: 'standup',
      replica: options.replica,
      peers: [],
      expiresAt: Date.now() + (options.sessionMs ?? 3_600_000),
      caps: ['publish'],
      position: { epoch: 'e1', seq: top() },
      ...(recovery ? { recovery } : {}),
    });
    if (recovery?.recovered && missed.length > 0) socket.emit('room:events', missed);
    socket.on('publish', ({ type, data }, ack) => {
      const event: RoomEvent = {
        id: `${options.replica}-event-${top() + 1}`,
        type,
        data: data ?? null,
        from: socket.id,
        ts: Date.now(),
        seq: top() + 1,
      };
      log.push(event);
      ack({ ok: true, id: event.id, seq: event.seq });
    });
    socket.on('history', ({ after, limit = 100 }, ack) => {
      const events = after === undefined ? log.slice(-limit) : log.filter((e) => e.seq > after).slice(0, limit);
      // As the gateway cuts a reply at HISTORY_REPLY_MAX_BYTES.
      const cut = options.historyPageMax !== undefined && events.length > options.historyPageMax;
      const page = cut ? events.slice(0, options.historyPageMax) : events;
      ack(
        cut
          ? { ok: true, epoch: 'e1', top: top(), events: page, more: true }
          : { ok: true, epoch: 'e1', top: top(), events },
      );
    });
    socket.on('signal', ({ to }, ack) => {
      ack(
        to === 'nobody'
          ? { ok: false, error: { code: 'not_in_room', message: 'That peer is not in this room.' } }
          : { ok: true },
      );
    });
    socket.on('session:refresh', ({ token }, ack) => {
      refreshes.push(token);
      if (redeem(token)) ack({ ok: false, error: { code: 'token_used', message: 'The RTC token was already used.' } });
      else ack({ ok: true, expiresAt: Date.now() + (options.refreshedSessionMs ?? 3_600_000) });
    });
    socket.on('peers', (_payload, ack) => {
      ack({ ok: true, peers: [] });
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
    recovers,
    log,
    sockets: () => [...io.of('/').sockets.values()],
    close() {
      closing ??= (async () => {
        httpServer.closeAllConnections();
        await io.close();
      })();
      return closing;
    },
  };
}
