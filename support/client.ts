import jwt from 'jsonwebtoken';
import { io, type ManagerOptions, type Socket, type SocketOptions } from 'socket.io-client';
import type {
  ClientToServerEvents,
  DevLoginResponse,
  MintTokenResponse,
  PublishEventResponse,
  RoomEpochPayload,
  RoomEvent,
  RoomPosition,
  ServerToClientEvents,
  SessionPayload,
} from '@switchboard/contract';
import { TEST_SECRETS } from './gateway-process.js';

export type TestSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

export async function postJson(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: unknown; headers: Headers }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Not JSON; the test decides whether that is a failure.
  }
  return { status: response.status, body: parsed, headers: response.headers };
}

/** Every room, with publish: the grant test users sign in with unless a test asks for less. */
export const ALL_ROOMS: Record<string, string[]> = { '*': ['publish'] };

export async function devLogin(
  baseUrl: string,
  userId: string,
  name?: string,
  rooms: Record<string, string[]> = ALL_ROOMS,
): Promise<string> {
  const { status, body } = await postJson(`${baseUrl}/api/dev/login`, { userId, ...(name ? { name } : {}), rooms });
  if (status !== 200) throw new Error(`dev login failed: ${status} ${JSON.stringify(body)}`);
  return (body as DevLoginResponse).accessToken;
}

/** An access JWT signed like the app's own login would, e.g. a service token with scopes. */
export function accessToken(
  claims: { sub: string; scope?: string; name?: string; rooms?: Record<string, string[]> },
  options: { expiresInSeconds?: number; secret?: string } = {},
): string {
  // Test users may enter every room unless a test says otherwise (`rooms: {}` grants none).
  return jwt.sign({ rooms: ALL_ROOMS, ...claims }, options.secret ?? TEST_SECRETS.JWT_SECRET, {
    algorithm: 'HS256',
    expiresIn: options.expiresInSeconds ?? 300,
  });
}

export async function mintToken(baseUrl: string, access: string, room: string): Promise<MintTokenResponse> {
  const { status, body } = await postJson(`${baseUrl}/api/rtc/tokens`, { room }, { authorization: `Bearer ${access}` });
  if (status !== 201) throw new Error(`mint failed: ${status} ${JSON.stringify(body)}`);
  return body as MintTokenResponse;
}

export interface ConnectedClient {
  socket: TestSocket;
  session: SessionPayload;
  /** Every room event received, batches unpacked, in arrival order. */
  events: RoomEvent[];
  /** Every `room:epoch` notice received, in order. */
  moves: RoomEpochPayload[];
  /** Peer ids announced by `peer:joined` and `peers:joined` (batches unpacked), in arrival order. */
  joined: string[];
  /** How many frames those announcements took. */
  joinFrames: number;
  close(): void;
}

/**
 * Opens a socket with `token` (WebSocket only unless `options` says otherwise) and
 * resolves on `session`, or rejects with the connect_error code.
 */
export function connectWithToken(
  baseUrl: string,
  token: string,
  options: Partial<ManagerOptions & SocketOptions> = {},
  recover?: RoomPosition,
): Promise<ConnectedClient> {
  const socket: TestSocket = io(baseUrl, {
    transports: ['websocket'],
    ...options,
    auth: recover ? { token, recover } : { token },
    reconnection: false,
    forceNew: true,
  });
  const events: RoomEvent[] = [];
  const moves: RoomEpochPayload[] = [];
  socket.on('room:event', (event) => events.push(event));
  socket.on('room:events', (batch) => events.push(...batch));
  socket.on('room:epoch', (move) => moves.push(move));
  const client = { socket, events, moves, joined: [] as string[], joinFrames: 0, close: () => socket.close() };
  socket.on('peer:joined', (peer) => {
    client.joined.push(peer.peerId);
    client.joinFrames += 1;
  });
  socket.on('peers:joined', (peers) => {
    client.joined.push(...peers.map((peer) => peer.peerId));
    client.joinFrames += 1;
  });
  return new Promise((resolve, reject) => {
    socket.once('session', (session) => {
      resolve(Object.assign(client, { session }));
    });
    socket.once('connect_error', (error) => {
      socket.close();
      reject(error);
    });
  });
}

/** Logs in as `userId`, mints a token for `room` and connects. */
export async function joinRoom(
  baseUrl: string,
  userId: string,
  room: string,
  options?: Partial<ManagerOptions & SocketOptions>,
  recover?: RoomPosition,
): Promise<ConnectedClient> {
  const minted = await mintToken(baseUrl, await devLogin(baseUrl, userId), room);
  return connectWithToken(baseUrl, minted.token, options, recover);
}

/** `seq`s of `events`, and whether they run without a gap or a repeat. */
export function seqs(events: RoomEvent[]): { seqs: number[]; consecutive: boolean } {
  const list = events.map((event) => event.seq);
  return { seqs: list, consecutive: list.every((seq, i) => i === 0 || seq === (list[i - 1] ?? 0) + 1) };
}

export function nextEvent<E extends keyof ServerToClientEvents>(
  socket: TestSocket,
  event: E,
  predicate: (...args: Parameters<ServerToClientEvents[E]>) => boolean = () => true,
  timeoutMs = 10_000,
): Promise<Parameters<ServerToClientEvents[E]>[0]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off(event, handler as never);
      reject(new Error(`no ${event} within ${timeoutMs} ms`));
    }, timeoutMs);
    const handler = (...args: Parameters<ServerToClientEvents[E]>): void => {
      if (!predicate(...args)) return;
      clearTimeout(timer);
      socket.off(event, handler as never);
      resolve(args[0]);
    };
    socket.on(event, handler as never);
  });
}

export async function scrapeMetric(
  baseUrl: string,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const wanted = Object.entries(labels).map(([key, value]) => `${key}="${value}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const [series, value] = line.split(' ');
    if (!series || value === undefined) continue;
    const bare = series.split('{')[0];
    if (bare !== name) continue;
    if (wanted.every((pair) => series.includes(pair))) return Number(value);
  }
  return 0;
}

/** Publishes the event `n` (`{type: 'n', data: {n}}`) to `room` over HTTP as a service; throws unless 202. */
export async function publishNumbered(
  baseUrl: string,
  room: string,
  n: number,
  serviceToken: string,
): Promise<PublishEventResponse> {
  const response = await postJson(
    `${baseUrl}/api/rooms/${room}/events`,
    { type: 'n', data: { n } },
    { authorization: `Bearer ${serviceToken}` },
  );
  if (response.status !== 202) throw new Error(`publish failed: ${response.status} ${JSON.stringify(response.body)}`);
  return response.body as PublishEventResponse;
}
