/**
 * The feature-equal baseline: what a team would hand-write to do Switchboard's job at the
 * handshake with Express, Socket.IO and @socket.io/redis-adapter, and nothing more.
 *
 * - `POST /token` (Bearer access JWT, HS256) signs `{jti, sub, room, exp}` with HMAC-SHA256
 *   and stores the `jti` with `SET EX 60`.
 * - The handshake checks the signature and expiry, then redeems the `jti` once with `GETDEL`.
 * - On connect: the peer goes into the room's Redis presence hash and the hash is read back
 *   in one `MULTI`; the socket gets `session` with the room's other peers, and the room gets
 *   `peer:joined` (through the adapter, so members on other replicas hear it too).
 * - On disconnect: `HDEL` and `peer:left`.
 * - `publish` is `io.to(room).emit('room:event')`, as in the seed-faithful baseline.
 *
 * Env: PORT (0 = any; printed as `listening <port>`), REDIS_URL, KEY_PREFIX, JWT_SECRET,
 * TOKEN_SECRET, REPLICA_ID.
 */
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAdapter } from '@socket.io/redis-adapter';
import express from 'express';
import jwt from 'jsonwebtoken';
import { createClient } from 'redis';
import { Server } from 'socket.io';

interface TokenClaims {
  jti: string;
  sub: string;
  room: string;
  /** Unix seconds. */
  exp: number;
}

interface Peer {
  peerId: string;
  userId: string;
  name: string;
  replica: string;
  joinedAt: number;
}

interface SocketData {
  userId: string;
  room: string;
}

const required = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
};
const redisUrl = required('REDIS_URL');
const jwtSecret = required('JWT_SECRET');
const tokenSecret = required('TOKEN_SECRET');
const prefix = process.env.KEY_PREFIX ?? '';
const replica = process.env.REPLICA_ID ?? 'feature-equal';
const TOKEN_TTL_SECONDS = 60;

const redis = createClient({ url: redisUrl });
const pub = redis.duplicate();
const sub = redis.duplicate();
for (const client of [redis, pub, sub]) client.on('error', (error: Error) => console.error('redis:', error.message));
await Promise.all([redis.connect(), pub.connect(), sub.connect()]);

const sign = (body: string): Buffer => createHmac('sha256', tokenSecret).update(body).digest();
const tokenKey = (jti: string) => `${prefix}token:${jti}`;
const presenceKey = (room: string) => `${prefix}presence:${room}`;

/** The claims of a well-signed, unexpired token; undefined otherwise. */
function verifyToken(token: string): TokenClaims | undefined {
  const dot = token.indexOf('.');
  if (dot === -1) return undefined;
  const body = token.slice(0, dot);
  const signature = Buffer.from(token.slice(dot + 1), 'base64url');
  const expected = sign(body);
  if (signature.length !== expected.length || !timingSafeEqual(signature, expected)) return undefined;
  const claims = JSON.parse(Buffer.from(body, 'base64url').toString()) as TokenClaims;
  return claims.exp * 1000 > Date.now() ? claims : undefined;
}

const app = express();
app.use(express.json());

app.get('/healthz', (_req, res) => {
  res.json({ status: 'ok' });
});

app.post('/token', async (req, res) => {
  const bearer = /^Bearer (.+)$/.exec(req.get('authorization') ?? '')?.[1];
  let userId: string;
  try {
    const access = jwt.verify(bearer ?? '', jwtSecret, { algorithms: ['HS256'] });
    if (typeof access === 'string' || typeof access.sub !== 'string') throw new Error('no subject');
    userId = access.sub;
  } catch {
    res.status(401).json({ error: 'unauthorized' });
    return;
  }
  const { room } = req.body as { room?: unknown };
  if (typeof room !== 'string') {
    res.status(400).json({ error: 'room is required' });
    return;
  }
  const claims: TokenClaims = {
    jti: randomUUID(),
    sub: userId,
    room,
    exp: Math.floor(Date.now() / 1000) + TOKEN_TTL_SECONDS,
  };
  const body = Buffer.from(JSON.stringify(claims)).toString('base64url');
  await redis.set(tokenKey(claims.jti), '1', { EX: TOKEN_TTL_SECONDS });
  res.json({ token: `${body}.${sign(body).toString('base64url')}` });
});

const server = createServer(app);
const io = new Server(server, { cors: { origin: '*' } });
io.adapter(createAdapter(pub, sub, { key: `${prefix}socket.io` }));

io.use((socket, next) => {
  const token: unknown = (socket.handshake.auth as { token?: unknown }).token;
  const claims = typeof token === 'string' ? verifyToken(token) : undefined;
  if (!claims) {
    next(new Error('token_invalid'));
    return;
  }
  redis.getDel(tokenKey(claims.jti)).then(
    (stored) => {
      if (stored === null) {
        next(new Error('token_used'));
        return;
      }
      socket.data = { userId: claims.sub, room: claims.room } satisfies SocketData;
      next();
    },
    (error: unknown) => {
      next(error instanceof Error ? error : new Error(String(error)));
    },
  );
});

io.on('connection', (socket) => {
  const { userId, room } = socket.data as SocketData;
  const me: Peer = { peerId: socket.id, userId, name: userId, replica, joinedAt: Date.now() };
  void socket.join(room);
  redis
    .multi()
    .hSet(presenceKey(room), me.peerId, JSON.stringify(me))
    .hGetAll(presenceKey(room))
    .exec()
    .then(
      (replies) => {
        const all = replies[1] as unknown as Record<string, string>;
        const peers = Object.entries(all)
          .filter(([peerId]) => peerId !== me.peerId)
          .map(([, peer]) => JSON.parse(peer) as Peer);
        socket.emit('session', { peerId: me.peerId, userId, room, replica, peers });
        socket.to(room).emit('peer:joined', { peerId: me.peerId, userId, name: me.name });
      },
      (error: unknown) => {
        console.error('presence:', error instanceof Error ? error.message : String(error));
        socket.disconnect(true);
      },
    );
  socket.on('publish', (payload: { type: string; data: unknown }, ack?: (result: unknown) => void) => {
    const event = { id: randomUUID(), type: payload.type, data: payload.data, from: socket.id, ts: Date.now() };
    io.to(room).emit('room:event', event);
    if (typeof ack === 'function') ack({ ok: true, id: event.id });
  });
  socket.on('disconnect', (reason) => {
    redis.hDel(presenceKey(room), me.peerId).catch((error: unknown) => {
      console.error('presence:', error instanceof Error ? error.message : String(error));
    });
    io.to(room).emit('peer:left', { peerId: me.peerId, reason });
  });
});

server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  console.log(`listening ${(server.address() as AddressInfo).port}`);
});

let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  void io.close().then(async () => {
    await Promise.all([redis.close(), pub.close(), sub.close()]);
    process.exit(0);
  });
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
